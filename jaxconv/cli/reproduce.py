"""``jaxconv reproduce [NAME ...|all] [--quick] [--out DIR]``: run the experiments, report what they reproduce.

The scripts live in ``experiments/`` of a source checkout (beside the ``jaxconv`` package; they are not installed
with it). Each runs in its own Python process (``python experiments/NAME.py [--quick] --out DIR --seed S``, its
output in ``DIR/logs/NAME.log``) and writes its figures and JSON files into ``DIR``; every JSON file lists its
reproduced quantities under ``"reproduced"`` (keys :data:`ROW_KEYS`, see ``experiments/_common.py``). This command
collects them into ``DIR/results.json`` (one object: settings, one entry per experiment, every row) and
``DIR/REPORT.md`` (one table row per quantity: published value and source, ours with its uncertainty, agree or
not). Experiments that need the LLM logs are skipped, with the reason, when ``jaxconv data fetch`` has not been run.
"""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

EXPERIMENTS = {  # name: what it reproduces; the order of `all`
    "committed_minority": "Xie et al. 2011: a committed minority tips the binary naming game",
    "naming_scaling": "Baronchelli et al. 2006: N^1.5 scaling of the naming game on the complete graph",
    "finite_pool": "Ashery et al. 2025 baseline: naming game with W names, N=24",
    "beta_transition": "Baronchelli et al. 2007: consensus iff beta > 1/3",
    "naming_networks": "Baronchelli et al. 2006, Dall'Asta et al. 2006: convergence time on networks",
    "best_response_tipping": "Centola et al. 2018: critical mass of best responders with memory M",
    "llm_protocol": "Ashery et al. 2025: collective bias in the LLM protocol with model agents",
    "llm_fit": "Ashery et al. 2025: policies fitted to the LLM logs against the observed outcomes",
    "tipping_gradients": "Xie et al. 2011, Centola et al. 2018: thresholds by stochastic Newton steps",
    "gradient_estimators": "gradient estimators against exact derivatives; no published values",
}
NEEDS_LOGS = frozenset({"llm_fit"})
ROW_KEYS = ("quantity", "published", "source", "ours", "uncertainty", "agree")


def add_parser(commands) -> None:
    """Add the ``reproduce`` subcommand to ``commands`` (an argparse subparsers action)."""
    parser = commands.add_parser(
        "reproduce",
        help="run the experiments, write their figures, results.json and REPORT.md",
        description="Run the experiment scripts of a source checkout (experiments/), each in its own process, and "
        "write their figures, DIR/results.json and DIR/REPORT.md: one row per reproduced quantity, with the "
        "published value and its source, ours with its uncertainty, and whether they agree. Experiments: "
        + ", ".join(EXPERIMENTS)
        + ".",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="experiments to run, or all (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few minutes on 2 cores")
    parser.add_argument(
        "--out", dest="directory", metavar="DIR", default="reproduction", help="folder for every output file"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed given to every experiment")


def run(args, progress: bool | None = None) -> dict:
    """Run the experiments ``args.names`` (``[]`` or ``["all"]``: every one) into ``args.directory``.

    Writes ``results.json`` and ``REPORT.md`` there and returns the results object. ``progress``: a tqdm bar
    (default: when stderr is a terminal); one line per finished experiment is printed to stderr in any case.
    Raises ChildProcessError (after writing the report) when an experiment failed."""
    names = resolve(args.names)
    folder = experiments_dir()
    out = Path(args.directory).expanduser().resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    entries = []
    started = time.time()
    bar = _bar(names, progress)
    for index, name in enumerate(names):
        if bar is not None:
            bar.set_description(name)
        entry = run_one(folder, name, out, quick=args.quick, seed=args.seed)
        entries.append(entry)
        line = f"[{index + 1}/{len(names)}] {name}: {_outcome(entry)}"
        if bar is not None:
            bar.write(line, file=sys.stderr)
            bar.update()
        else:
            print(line, file=sys.stderr, flush=True)
    if bar is not None:
        bar.close()
    from jaxconv import __version__

    quick = ["--quick"] if args.quick else []
    result = {
        "version": __version__,
        "command": " ".join(["jaxconv reproduce", *(args.names or ["all"]), *quick, "--seed", str(args.seed)]),
        "quick": bool(args.quick),
        "seed": args.seed,
        "directory": str(out),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.time() - started, 1),
        "experiments": entries,
        "rows": [dict(r, experiment=e["name"]) for e in entries for r in e.get("rows", [])],
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "REPORT.md").write_text(report(result))
    failed = [e["name"] for e in entries if e["status"] == "failed"]
    if failed:
        raise ChildProcessError(
            f"{len(failed)} of {len(entries)} experiments failed ({', '.join(failed)}); their logs are in "
            f"{out / 'logs'}, the report of the others in {out / 'REPORT.md'}"
        )
    return result


def resolve(names) -> list[str]:
    """The experiments to run, in the order of :data:`EXPERIMENTS`; ValueError naming an unknown one."""
    names = list(names or [])
    if not names or "all" in names:
        return list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment {unknown[0]!r}; choose from all, {', '.join(EXPERIMENTS)}")
    return [n for n in EXPERIMENTS if n in names]


def experiments_dir() -> Path:
    """The ``experiments/`` folder of the source checkout the package runs from; a one-line FileNotFoundError
    saying to clone the repository when the package is installed without it."""
    import jaxconv

    folder = Path(jaxconv.__file__).resolve().parents[1] / "experiments"
    if not (folder / "_common.py").is_file():
        raise FileNotFoundError(
            "jaxconv reproduce runs the scripts in experiments/ of a source checkout, and this installation has "
            "none: clone the jaxconv repository, `pip install -e .` in it, and run the command from there"
        )
    return folder


def run_one(folder: Path, name: str, out: Path, quick: bool, seed: int) -> dict:
    """Run ``folder/name.py`` into ``out``; its entry: status (ok, skipped, failed), seconds, the figures and JSON
    files it wrote, its rows, and the reason when skipped or failed."""
    entry = {"name": name, "description": EXPERIMENTS.get(name, "")}
    if name in NEEDS_LOGS:
        from jaxconv.data.fetch import ENVIRONMENT_VARIABLE, data_dir

        if data_dir() is None:
            reason = f"needs the LLM logs: run `jaxconv data fetch` (or set ${ENVIRONMENT_VARIABLE} to their folder)"
            return entry | {"status": "skipped", "reason": reason}
    before = _files(out)
    command = [sys.executable, str(folder / f"{name}.py"), "--out", str(out), "--seed", str(seed)]
    command += ["--quick"] if quick else []
    log = out / "logs" / f"{name}.log"
    env = dict(os.environ, MPLBACKEND="Agg")
    start = time.perf_counter()
    with open(log, "w") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env, check=False).returncode
    entry["seconds"] = round(time.perf_counter() - start, 1)
    entry["log"] = str(log.relative_to(out))
    written = sorted(path for path, stamp in _files(out).items() if before.get(path) != stamp)
    entry["figures"] = [p for p in written if p.endswith(".png")]
    entry["json"] = [p for p in written if p.endswith(".json") and p != "results.json"]
    if code != 0:
        return entry | {"status": "failed", "reason": f"exit status {code}: {_last_line(log)}"}
    rows = []
    for path in entry["json"]:
        try:
            found = json.loads((out / path).read_text()).get("reproduced", [])
        except (OSError, ValueError) as error:
            return entry | {"status": "failed", "reason": f"{path}: {type(error).__name__}: {error}"}
        for row in found:
            missing = [key for key in ROW_KEYS if key not in row]
            if missing:
                return entry | {"status": "failed", "reason": f"{path}: a reproduced row lacks {missing}"}
            rows.append(row)
    return entry | {"status": "ok", "rows": rows}


def report(result: dict) -> str:
    """REPORT.md: settings, one table row per reproduced quantity, figures, skipped and failed experiments."""
    rows = result["rows"]
    agreed = sum(r["agree"] is True for r in rows)
    disagreed = sum(r["agree"] is False for r in rows)
    lines = [
        "# Reproduction report",
        "",
        f"`{result['command']}` — jaxconv {result['version']}, {result['date']}, {result['seconds']:.0f} s.",
        "",
    ]
    if result["quick"]:
        lines += [
            "**Quick run**: small sizes and few replicas, a smoke test. Quantities that need large populations or "
            "many runs cannot agree at these sizes, and their rows say so; run without `--quick` (on a GPU) for the "
            "comparison proper.",
            "",
        ]
    lines += [
        f"{len(rows)} quantities: {agreed} agree, {disagreed} disagree, {len(rows) - agreed - disagreed} undecided. "
        "Ours: mean ± standard error (SE), or a 95% interval in brackets. A numeric comparison agrees when the "
        "published value is within 3 combined standard errors of ours (a simulated reference's own SE included), "
        "or inside our 95% interval; a note says when another rule decides.",
        "",
        "| experiment | quantity | published | source | ours | agree |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = {True: "yes", False: "**no**", None: "undecided"}[r["agree"]]
        if r.get("note"):
            verdict += f" ({r['note']})"
        cells = [r["experiment"], r["quantity"], _value(r["published"]), r["source"], _ours(r), verdict]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Experiments", ""]
    for e in result["experiments"]:
        if e["status"] == "ok":
            lines.append(f"- **{e['name']}** ({e['description']}): {e['seconds']:.0f} s, log `{e['log']}`")
            lines += [f"  ![{Path(f).stem}]({f})" for f in e["figures"]]
        else:
            lines.append(f"- **{e['name']}**: {e['status']}, {e['reason']}")
    return "\n".join(lines) + "\n"


def text(result: dict) -> str:
    """A short readable summary."""
    rows = result["rows"]
    lines = [f"{e['name']}: {_outcome(e)}" for e in result["experiments"]]
    agreed = sum(r["agree"] is True for r in rows)
    lines.append(
        f"{len(rows)} reproduced quantities, {agreed} agree; report in {Path(result['directory']) / 'REPORT.md'}"
    )
    return "\n".join(lines)


def _outcome(entry: dict) -> str:
    if entry["status"] != "ok":
        return f"{entry['status']}, {entry['reason']}"
    rows = entry["rows"]
    figures = len(entry["figures"])
    agreed = sum(r["agree"] is True for r in rows)
    return (
        f"{entry['seconds']:.0f} s, {figures} figure{'s' * (figures != 1)}, "
        f"{len(rows)} reproduced quantit{'ies' if len(rows) != 1 else 'y'} ({agreed} agree)"
    )


def _bar(names, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=len(names), unit="experiment", file=sys.stderr)


def _files(out: Path) -> dict:
    """Figures and JSON files directly in ``out``: name -> (modification time, size)."""
    found = {}
    for path in out.iterdir():
        if path.suffix in (".png", ".json") and path.is_file():
            stat = path.stat()
            found[path.name] = (stat.st_mtime_ns, stat.st_size)
    return found


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return str(value)


def _ours(r: dict) -> str:
    ours, uncertainty = _value(r["ours"]), r["uncertainty"]
    if isinstance(uncertainty, (int, float)) and not isinstance(uncertainty, bool):
        return f"{ours} ± {uncertainty:.2g}"
    if isinstance(uncertainty, (list, tuple)) and len(uncertainty) == 2:
        return f"{ours} [{_value(uncertainty[0])}, {_value(uncertainty[1])}]"
    return ours


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
