"""Command line: ``jaxconv simulate naming-game|memory-game|best-response ...``, ``jaxconv data fetch [NAME ...]``,
``jaxconv data summary [PATH]``, ``jaxconv fit [PATH]``, ``jaxconv tipping MODEL ...``.

Every command prints one JSON object with ``--json`` (a short text summary otherwise) and writes that JSON object
to a file with ``--out FILE``. Without a PATH, ``data summary`` and ``fit`` read the logs fetched by ``jaxconv data
fetch`` (:func:`jaxconv.data.fetch.logs_path`). Bad input ends with a one-line ``jaxconv: error: ...`` message and
exit status 2; ``jaxconv`` alone prints the help.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from jaxconv import __version__
from jaxconv.cli import fit as cli_fit
from jaxconv.cli import memory as cli_memory
from jaxconv.cli import tipping as cli_tipping


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option that has a default and does not already state it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or (isinstance(default, (list, tuple)) and not default)
            or (not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        ):
            return text
        return f"{text} (default: %(default)s)".strip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        default = kwargs.get("default")
        if kwargs.get("help") is None and not (default is None or default is False or default in ([], ())):
            kwargs["help"] = "(default: %(default)s)"  # argparse hides the help line of an option without help
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        command = self.prog.removeprefix("jaxconv").strip()  # "jaxconv: error: " is the prefix already
        raise SystemExit(_fail(f"{command}: {message}" if command else message))


def _fail(message: str) -> int:
    print(f"jaxconv: error: {message}", file=sys.stderr)
    return 2


def seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [-2**63, 2**63) (what a JAX key holds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text[:40]!r}") from None
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [-2**63, 2**63), got {text[:40]}")
    return value


def _vocabulary(text: str):
    if text == "open":
        return "open"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'open' or a number of names, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxconv",
        description="Dynamics of social conventions in JAX.",
        epilog="`jaxconv COMMAND --help` describes a command. Every command prints one JSON object with --json and "
        "writes it to a file with --out FILE.",
    )
    parser.add_argument("--version", action="version", version=f"jaxconv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    simulate = commands.add_parser("simulate", help="run an ensemble of a game")
    games = simulate.add_subparsers(dest="game", required=True, parser_class=_Parser)
    naming = games.add_parser("naming-game", help="the naming game family (Baronchelli et al. 2006)")
    naming.add_argument("--agents", type=int, default=100, help="N, uncommitted agents (default 100)")
    naming.add_argument("--replicas", type=int, default=256, help="independent runs")
    naming.add_argument(
        "--steps", type=int, default=20_000, help="interactions per replica (rounded up to whole rounds)"
    )
    naming.add_argument("--seed", type=seed, default=0, help="random seed")
    naming.add_argument("--vocabulary", type=_vocabulary, default="open", help="'open' or a pool of W names")
    naming.add_argument("--empty-speaker", default="keeps", help="keeps | forgets (finite pool only)")
    naming.add_argument("--beta", type=float, default=1.0, help="probability that a success collapses inventories")
    naming.add_argument("--committed", type=int, default=0, help="K committed agents")
    naming.add_argument("--committed-mode", default="added", help="added | converted")
    naming.add_argument("--initial", default="empty", help="empty | prepared (uncommitted agents hold name 0)")
    naming.add_argument("--schedule", default="pairs", help="pairs | matching")
    naming.add_argument(
        "--until-consensus", action="store_true", help="stop each replica at consensus (--steps is then the maximum)"
    )
    naming.add_argument(
        "--inventory", default="auto", help="auto | bitsets | slots (K word ids per agent, for large N)"
    )
    naming.add_argument("--capacity", type=int, default=None, help="initial word slots per agent (default from N)")
    _add_device_arguments(naming)
    naming.add_argument("--json", action="store_true", help="print one JSON object")
    cli_memory.add_parsers(games)

    data = commands.add_parser("data", help="LLM experiment logs: fetch the published ones, summarize")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    fetch = data_commands.add_parser(
        "fetch",
        help="download the published logs (SHA-256 verified, cached)",
        description="Download the LLM logs of Ashery, Aiello & Baronchelli (2025) from the authors' repository "
        "(pinned commit), check their SHA-256 and keep them in a cache; a file already cached is not downloaded "
        "again. Commands given no PATH read them from there.",
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="files to fetch (default: all four; e.g. claude)")
    fetch.add_argument("--to", metavar="DIR", help="folder to write to (default: $JAXCONV_AI_NORMS, else the cache)")
    fetch.add_argument(
        "--base-url", metavar="URL", help="repository root; file NAME is at URL/data/NAME (default: pinned commit)"
    )
    fetch.add_argument("--json", action="store_true", help="print one JSON object")
    summary = data_commands.add_parser("summary", help="metadata, winners, stop times and flips per file")
    summary.add_argument(
        "path", nargs="?", help="a zip file, a folder or a single log file (default: the fetched logs)"
    )
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    cli_fit.add_parser(commands)
    _optional_path(commands.choices["fit"])
    cli_tipping.add_parser(commands)
    for command in _leaf_parsers(parser):
        if "--json" in command._option_string_actions:
            command.add_argument("--out", metavar="FILE", help="also write the JSON object to FILE")
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` that has no subcommands."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield parser
    for action in subcommands:
        for child in action.choices.values():
            yield from _leaf_parsers(child)


def _optional_path(parser: argparse.ArgumentParser) -> None:
    """Make the positional ``path`` of ``parser`` optional (missing: the fetched logs)."""
    for action in parser._actions:
        if action.dest == "path" and not action.option_strings and action.nargs is None:
            action.nargs, action.required, action.default = argparse.OPTIONAL, False, None
            action.help = f"{action.help} (default: the fetched logs, see `jaxconv data fetch`)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    out_file = getattr(args, "out", None)
    as_json = getattr(args, "json", False)
    try:
        if out_file is not None:
            _check_writable(out_file)
        if args.command == "simulate" and args.game == "naming-game":
            result = _simulate_naming_game(args)
        elif args.command in ("simulate", "fit"):
            if args.command == "fit":
                from jaxconv.data.fetch import logs_path

                args.path = str(logs_path(args.path))
            from jaxconv.devices import use_cpu_cores

            use_cpu_cores()
            result = (cli_memory if args.command == "simulate" else cli_fit).run(args)
        elif args.command == "tipping":
            result = cli_tipping.run(args)
        elif args.data_command == "fetch":
            result = _fetch(args, progress=not as_json and sys.stderr.isatty())
        else:
            from jaxconv.data.fetch import logs_path
            from jaxconv.data.summary import summarize_path

            result = summarize_path(logs_path(args.path))
        if out_file is not None:
            _write_json(result, out_file)
    except (ValueError, OSError, OverflowError, MemoryError) as error:  # OSError includes FileNotFoundError
        return _fail((str(error).splitlines() or [type(error).__name__])[0][:500])
    if as_json:
        print(json.dumps(result))
    elif args.command in ("fit", "tipping"):
        print((cli_fit if args.command == "fit" else cli_tipping).text(result))
    elif args.command == "data" and args.data_command == "summary":
        from jaxconv.data.summary import summary_text

        print(summary_text(result))
    elif args.command == "data":
        print(_fetch_text(result))
    else:
        _print(result, False)
    return 0


def _check_writable(path: str) -> None:
    """Fail before a long run when ``--out`` cannot be written."""
    folder = Path(path).expanduser().resolve().parent
    if Path(path).is_dir():
        raise IsADirectoryError(f"--out {path} is a folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"--out {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"--out {path}: folder {folder} is not writable")


def _write_json(result: dict, path: str) -> None:
    """Write ``result`` as one JSON object to ``path`` (through a temporary file, so a failure leaves no half file)."""
    target = Path(path).expanduser()
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        temporary.write_text(json.dumps(result) + "\n")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _fetch(args, progress: bool = False) -> dict:
    """``jaxconv data fetch``: download (or find cached) the logs; one entry per file."""
    from jaxconv.data import fetch

    report: list[dict] = []
    paths = fetch.fetch(args.names, to=args.to, base_url=args.base_url, progress=progress, report=report)
    return {
        "directory": str(paths[0].parent) if paths else str(fetch.default_dir()),
        "source": fetch.BASE_URL if args.base_url is None else args.base_url,
        "files": report,
    }


def _fetch_text(result: dict) -> str:
    lines = [
        f"{f['name']}: {'downloaded' if f['downloaded'] else 'already cached'}, {f['bytes']} bytes, SHA-256 verified"
        for f in result["files"]
    ]
    return "\n".join([*lines, f"in {result['directory']}"])


def _add_device_arguments(parser) -> None:
    """--devices and the multi-process settings (jaxconv.devices.configure)."""
    parser.add_argument("--devices", type=int, default=None, help="CPU devices (default: XLA_FLAGS, else one per core)")
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (several processes)")
    parser.add_argument("--num-processes", type=int, default=None, help="number of processes")
    parser.add_argument("--process-id", type=int, default=None, help="this process, 0 .. num-processes - 1")
    parser.add_argument("--cluster", action="store_true", help="detect the processes (SLURM, MPI, ...) as JAX does")


def _simulate_naming_game(args) -> dict:
    from jaxconv.devices import configure

    used = configure(
        args.devices,
        coordinator=args.coordinator,
        n_processes=args.num_processes,
        process_id=args.process_id,
        cluster=args.cluster,
    )
    import jax
    import numpy as np

    from jaxconv.engine import check_steps, devices_for, timed_ensemble
    from jaxconv.games.naming import NamingGame

    game = NamingGame(
        args.agents,
        vocabulary=args.vocabulary,
        empty_speaker=args.empty_speaker,
        beta=args.beta,
        committed=args.committed,
        committed_mode=args.committed_mode,
        initial=args.initial,
        schedule=args.schedule,
        inventory=args.inventory,
        capacity=args.capacity,
    )
    check_steps(args.steps, 1)
    if args.replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {args.replicas}")
    steps_per_round = 2 if args.schedule == "matching" else game.n_population
    interactions_per_round = steps_per_round * game.interactions_per_step
    n_rounds = -(-args.steps // interactions_per_round)
    if n_rounds * steps_per_round >= 2**31:
        raise ValueError(
            f"--steps {args.steps} (rounded up to {n_rounds} whole rounds = {n_rounds * steps_per_round} steps) "
            f"overflows the int32 step counters (max {2**31 - 1} steps)"
        )
    result, compile_seconds, run_seconds = timed_ensemble(
        jax.random.key(args.seed),
        game,
        args.replicas,
        n_rounds * steps_per_round,
        steps_per_round,
        until_done=args.until_consensus,
    )
    summary, observations = result
    reached = summary["consensus_time"] >= 0
    interactions = int(np.sum(summary["interactions"], dtype=np.int64))
    n_devices = devices_for(args.replicas)
    per_device = -(-args.replicas // n_devices)
    path = (
        f"{args.replicas} replica(s) on {n_devices} of {used['devices']} device(s) in {used['processes']} "
        f"process(es), {per_device} per device, "
        + ("unbatched (as simulate)" if per_device == 1 else "vmapped")
        + (", stopped at consensus" if args.until_consensus else "")
    )
    capacities = summary.get("capacity", np.array([game.capacity]))
    out = {
        "game": "naming-game",
        "agents": args.agents,
        "population": game.n_population,
        "replicas": args.replicas,
        "interactions": n_rounds * interactions_per_round,
        "interactions_per_round": interactions_per_round,
        "devices": used["devices"],
        "devices_used": n_devices,
        "processes": used["processes"],
        "path": path,
        "interactions_per_second": interactions / run_seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "inventory": game.inventory,
        "capacity": int(np.max(capacities)),
        "initial_capacity": game.capacity,
        "capacity_regrowths": int(round(np.log2(np.max(capacities) / game.capacity))),
        "replicas_regrown": int(np.sum(capacities > game.capacity)),
        "state_bytes_per_replica": game.state_bytes(),
        "consensus_fraction": float(reached.mean()),
        "consensus_time_mean": float(summary["consensus_time"][reached].mean()) if reached.any() else None,
        "max_total_words_mean": float(summary["peak_total_words"].mean()),
    }
    if args.replicas == 1:
        out["consensus_time"] = int(summary["consensus_time"][0])
    if observations is not None:
        successes = np.diff(observations["successes"], axis=1, prepend=0) / interactions_per_round
        out["success_rate_by_round"] = [round(float(x), 6) for x in successes.mean(axis=0)]
    if args.committed > 0:
        out["committed_flip_fraction"] = float(summary["committed_flip"].mean())
    return out


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, list) and len(value) > 8 and all(isinstance(v, float) for v in value):
            value = f"[{', '.join(f'{v:.3g}' for v in value[:8])}, ...] ({len(value)} values)"
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
