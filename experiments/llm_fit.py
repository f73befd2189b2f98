"""LLM populations vs softmax agents fitted to their choices alone and to their choices and collective outcomes.

For every model found in the logs (from the file names; nothing depends on which models), the softmax family with
the best held-out choice likelihood (optional first-move bias, unanimity bonus, lapse: ``jaxconv fit --policy
auto``) is fitted by maximum likelihood to every game choice given the agent's memory, then refitted to the choices
plus the collective outcomes of the baseline runs (stop time and its distribution, the share of runs each name
wins, success per round; and P(flip) at every observed k of each committed-minority series, ``--flip-targets``;
:mod:`jaxconv.estimate.collective`). Where the choices show shared, time-local shocks (``--drift``,
:mod:`jaxconv.estimate.drift`: kept when the held-out likelihood gain is at least 2 standard errors), both fits'
runs are simulated with them. Replicas of each fitted agent, over bootstrap
parameter draws, play the experiment's protocol (:mod:`jaxconv.estimate.predict`); the whole pipeline is
:func:`jaxconv.estimate.pipeline.fit_path`.

Figure, one row per model: observed (grey, 95% interval) vs choice-only fit (blue) vs collective fit (orange), each
prediction with its 95% interval over parameter draws, and the model-free reference (green: the empirical table
P(name | last 3 rounds) of the logged choices simulated itself, ``jaxconv fit --window-table 3``; W=2 only, a W=10
table is too large): where even it misses, no agent fitted to the choices alone can do better, and the miss lies in
how runs differ from one another (``run_dispersion``): mean stop time per baseline condition (population rounds);
share of runs won by the second name in the W=2 baselines; share of runs won by each name in the W>2 baselines;
critical mass k per committed-minority series (the paper's flip criterion, :mod:`jaxconv.criteria`; predicted:
the median over replays of the observed design, as many runs per k as were logged with their budgets and stop rule,
:func:`jaxconv.estimate.predict.predict_experiments`; an open triangle: no k up to the largest observed one flips).
The JSON's ``reproduced`` list has one row per observed quantity
(value in the published logs, ours from the collective fit with its interval, and whether it meets the target of
issue [collective-fit]: stop time within 15%, winner share inside the observed 95% binomial interval, critical
mass within one agent).

``--cv runs``: instead, held-out collective outcomes (:func:`jaxconv.estimate.collective.cross_validate`): each
model's baseline runs of every W=2 name set with at least 6 runs dealt to 2 folds, both fits made without a fold
and scored on its mean stop time and winner share (written to ``llm_fit_cv.json``). ``--cv files``: each baseline
file of a name set held out whole, the fits made on the model's other files of that name set (other population
sizes, committed-minority and evolved runs); a name set's only baseline file is then predicted from runs of other
conditions alone, by the choice-only fit (the collective fit has no baseline target left).

Logs: ``--data PATH`` (a folder or a zip), else the fetched logs (``jaxconv data fetch``, or ``$JAXCONV_AI_NORMS``).
``--quick``: the smallest archive's Q,M files, tiny sizes (a smoke run). ``--fit-json FILE``: the figure and the
JSON of a saved ``jaxconv fit PATH --collective --json`` output (no fitting).
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save

from jaxconv.data.fetch import logs_path
from jaxconv.estimate.pipeline import fit_path
from jaxconv.estimate.predict import critical_mass_met

FITS = (
    ("choice_only", "C0", "choice-only fit"),
    ("collective", "C1", "collective fit"),
    ("window_table", "C2", "window table: the logged P(name | last rounds), model-free"),
)
SOURCE = "Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368 (2025): published logs"
WIDTH = 0.2  # of a bar; observed and the fits side by side at x - 1.5 WIDTH, ..., x + 1.5 WIDTH


def _options(parser):
    parser.add_argument("--data", type=Path, default=None, help="folder or zip of logs (default: the fetched logs)")
    parser.add_argument(
        "--cv",
        choices=("runs", "files"),
        default=None,
        help="held-out collective outcomes instead: 2 folds of runs, or each baseline file held out",
    )
    parser.add_argument(
        "--fit-json", type=Path, default=None, help="draw from a saved `jaxconv fit --collective --json` output"
    )


def main():
    args = arguments(__doc__, extra=_options)
    if args.fit_json is not None:
        import json

        return draw(args, json.loads(args.fit_json.read_text()), Path(args.fit_json))
    try:
        data = logs_path(args.data)
        if not data.exists():
            raise FileNotFoundError(f"no such file or folder: {data} (run `jaxconv data fetch`)")
    except FileNotFoundError as error:
        sys.exit(f"llm_fit: {error}")
    if args.cv:
        return cross_validation(args, data)
    if args.quick:
        data = min(data.glob("*.zip"), key=lambda p: p.stat().st_size) if data.is_dir() else data
        settings = {"names": ["Q", "M"], "policy": "softmax", "bootstrap": 2, "replicas": 64, "folds": 2}
        settings |= {"draws": 2, "collective_steps": 2, "window_table": 1}
    else:
        settings = {"policy": "auto", "bootstrap": 19, "replicas": 4000, "draws": 20, "collective_steps": 60}
        settings |= {"window_table": 3, "flip_targets": True, "drift": True}
    result = fit_path(
        data,
        collective=True,
        seed=args.seed,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
        **settings,
    )
    draw(args, result, data)


def _targets_over_groups(models: dict) -> dict:
    """Per fit, :func:`jaxconv.estimate.predict.targets_summary` of the targets of every group (``expected_if_true``
    None for results written before the targets' chances)."""
    from jaxconv.estimate.predict import targets_summary

    targets = {}
    for entry in models.values():
        for group in entry["groups"]:
            for fit, prediction in group.get("prediction", {}).items():
                if isinstance(prediction, dict) and "targets" in prediction:
                    targets.setdefault(fit, []).extend(prediction["targets"])
    return {fit: targets_summary(listed) for fit, listed in targets.items()}


def draw(args, result: dict, data: Path) -> None:
    """The figure, the printed lines and the JSON of a :func:`fit_path` result (with ``collective=True``)."""
    models = result["models"]
    numbers = {"source": str(data), "settings": result["settings"], "models": {}, "reproduced": []}
    flips = {}  # model -> its committed-minority series, for the second figure
    figure, axes = plt.subplots(len(models), 4, figsize=(20, 4.6 * len(models)), squeeze=False, layout="constrained")
    for row, (model, entry) in zip(axes, models.items(), strict=True):
        rows = [_condition_rows(g) for g in entry["groups"]]
        _plot_stop(row[0], model, [r for rs in rows for r in rs["stop"]])
        _plot_winners(row[1], model, [r for rs in rows for r in rs["winners"] if len(r["names"]) == 2])
        _plot_many_winners(row[2], model, [r for rs in rows for r in rs["winners"] if len(r["names"]) > 2])
        flips[model] = [r for rs in rows for r in rs["critical"]]
        _plot_critical(row[3], model, flips[model])
        numbers["models"][model] = {"conditions": rows, "fits": entry["groups"]}
        numbers["reproduced"] += [line for r in rows for line in _reproduced(model, r)]
        for r in rows:
            for line in r["lines"]:
                print(f"{model} {line}")
    numbers["targets"] = _targets_over_groups(models)
    for fit, total in numbers["targets"].items():
        expected = (
            "" if total["expected_if_true"] is None else f"; the prediction as truth: {total['expected_if_true']:g}"
        )
        print(f"targets met, {fit}: {total['met']} of {total['of']}{expected}")
    handles = [plt.Rectangle((0, 0), 1, 1, color="0.45")] + [plt.Rectangle((0, 0), 1, 1, color=c) for _, c, _ in FITS]
    labels = ["LLM population (observed)"] + [label for _, _, label in FITS]
    figure.legend(handles, labels, loc="outside upper center", ncol=4, frameon=False)
    save(args.out, "llm_fit", numbers, figure)
    if any(flips.values()):
        _flips_figure(flips).savefig(args.out / "llm_fit_flips.png", dpi=120, bbox_inches="tight")
        print(f"wrote {args.out / 'llm_fit_flips.png'}")


def cross_validation(args, data: Path) -> None:
    """Both fits without a fold of baseline runs, scored on that fold's collective outcomes."""
    import json

    import jax

    from jaxconv.data import load_logs
    from jaxconv.data.summary import model_names
    from jaxconv.estimate.collective import cross_validate
    from jaxconv.estimate.fit import FAMILIES

    steps, replicas = (5, 128) if args.quick else (40, 2000)
    collection = load_logs(data)
    games = [log for log in collection.files if log.meta.kind in ("game", "committed", "evolved") and log.runs]
    canonical = model_names(log.meta.model for log in games)
    out = {}
    for model in sorted(set(canonical.values())):
        logs = [log for log in games if canonical[log.meta.model] == model]
        baselines = [
            log
            for log in logs
            if log.meta.kind == "game" and len(log.runs) >= 6 and len(log.names) == 2 and log.meta.memory is not None
        ]
        if args.cv == "runs":  # one cross-validation per baseline file
            studies = [(f"N={log.n_agents}", log.names, log.meta.memory) for log in baselines]
        else:  # one per name set and H whose files are a baseline file and at least one other file
            groups = {}
            for log in logs:
                groups.setdefault((frozenset(log.names), log.meta.memory), []).append(log)
            studies = []
            for group in groups.values():
                held = [log for log in group if log in baselines]
                if held and len(group) > 1:
                    studies.append(("by files", held[0].names, held[0].meta.memory))
        for label, names, memory in studies:
            names = tuple(names)
            rows = cross_validate(
                FAMILIES["softmax+first+unanimity"],
                [x for x in logs if set(x.names) == set(names)],
                names,
                memory,
                jax.random.key(args.seed),
                by=args.cv,
                steps=steps,
                replicas=replicas,
            )
            out[f"{model} {','.join(names)} {label}"] = rows
            for row in rows:
                observed = row["observed"]
                held = f"{row['held_out_runs']} held-out runs of N={row['n_agents']}"
                fits = {k: row[k] for k in ("choice_only", "collective") if "stop_mean" in row[k]}
                stops = ", ".join(f"{v['stop_mean']:.2f} {k}" for k, v in fits.items())
                wins = ", ".join(f"{v['win_share'][1]:.2f} {k}" for k, v in fits.items())
                print(
                    f"{model} {','.join(names)} fold {row['fold']} ({held}): stop {observed['stop_mean']:.2f} "
                    f"observed, {stops}; {names[1]} wins {observed['win_share'][1]:.2f} observed, {wins}"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "llm_fit_cv.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out / 'llm_fit_cv.json'}")


def _condition_rows(group: dict) -> dict:
    """Observed and both fits' predictions of one group, per condition."""
    label = ",".join(group["names"]) if len(group["names"]) <= 3 else f"W={len(group['names'])}"
    predictions = dict(group.get("prediction", {}))
    table = group.get("window_table", {})
    if table.get("simulated"):
        predictions["window_table"] = {"baseline": table["baseline"], "tipping": []}
    out = {"names": group["names"], "policy": group["policy"], "stop": [], "winners": [], "critical": [], "lines": []}
    if not predictions.get("choice_only"):
        return out
    for i, base in enumerate(predictions["choice_only"]["baseline"]):
        condition = f"{label} N={base['n_agents']}"
        entry = {"condition": condition, "runs": base["observed"]["runs"], "observed": base["observed"]["stop_rounds"]}
        shares = {"condition": condition, "names": group["names"], "observed": base["observed"]}
        for fit, _, _ in FITS:
            if fit in predictions:
                predicted = predictions[fit]["baseline"][i]["predicted"]
                entry[fit] = predicted["stop_rounds"]
                shares[fit] = predicted
        out["stop"].append(entry)
        out["winners"].append(shares)
        fits = ", ".join(f"{fit} {_number(entry[fit]['mean'])}" for fit, _, _ in FITS if fit in entry)
        out["lines"].append(f"{condition}: stop rounds observed {entry['observed']['mean']:.2f}, {fits}")
        for name in group["names"]:
            fits = ", ".join(f"{fit} {shares[fit]['winner_share'][name]:.3f}" for fit, _, _ in FITS if fit in shares)
            observed = base["observed"]
            out["lines"].append(
                f"{condition}: {name} wins observed {observed['winner_share'][name]:.3f} "
                f"{observed['winner_interval'][name]}, {fits}"
            )
    for i, series in enumerate(predictions["choice_only"]["tipping"]):
        condition = f"{label} N={series['n_agents']} {series['incumbent']}->{series['pushed']}"
        entry = {
            "condition": condition,
            "n_agents": series["n_agents"],
            "largest_k": max(int(k) for k in series["predicted"]["flipped"]),
            "observed": series["observed"]["critical_k"],
            "runs": series["observed"]["runs"],
            "runs_flipped": series["observed"].get("runs_flipped"),  # absent in older fit JSONs
        }
        for fit, _, _ in FITS:
            if predictions.get(fit, {}).get("tipping"):
                predicted = predictions[fit]["tipping"][i]["predicted"]
                entry[fit] = {
                    "k": predicted["critical_k"],
                    "interval": predicted["critical_k_interval"],
                    "flips_p_value": predicted.get("flips_check", {}).get("p_value"),  # absent in older fit JSONs
                    "p_flip": predicted.get("p_flip_design"),
                    "p_flip_interval": predicted.get("p_flip_design_interval"),
                }
        out["critical"].append(entry)
        fits = ", ".join(
            f"{fit} {entry[fit]['k']} (flips per k p = {_number(entry[fit]['flips_p_value'], '.2g')})"
            for fit, _, _ in FITS
            if fit in entry
        )
        out["lines"].append(f"{condition}: critical k observed {entry['observed']}, {fits}")
    return out


def _number(value, spec: str = ".2f") -> str:
    return "none" if value is None else format(value, spec)


def _reproduced(model: str, rows: dict) -> list[dict]:
    """Rows of the reproduction report: each observed quantity of the logs next to the collective fit's prediction."""
    fit = "collective" if any("collective" in r for r in rows["stop"]) else "choice_only"
    out = []
    for row in rows["stop"]:
        observed, predicted = row["observed"]["mean"], row[fit]["mean"]
        out.append(
            {
                "quantity": f"{model} {row['condition']}: mean stop time (population rounds), {fit} fit",
                "published": round(observed, 3),
                "source": SOURCE,
                "ours": None if predicted is None else round(predicted, 3),
                "uncertainty": row[fit].get("interval"),
                "agree": predicted is not None and abs(predicted - observed) <= 0.15 * observed,
            }
        )
    for row in rows["winners"]:
        names = row["names"] if len(row["names"]) > 2 else row["names"][1:]
        for name in names:
            observed, (low, high) = row["observed"]["winner_share"][name], row["observed"]["winner_interval"][name]
            predicted = row[fit]["winner_share"][name]
            out.append(
                {
                    "quantity": f"{model} {row['condition']}: share of runs won by {name}, {fit} fit",
                    "published": round(observed, 3),
                    "source": SOURCE,
                    "ours": round(predicted, 3),
                    "uncertainty": row[fit]["winner_interval"][name],
                    "agree": low - 1e-9 <= predicted <= high + 1e-9,
                }
            )
    for row in rows["critical"]:
        observed, predicted = row["observed"], row[fit]["k"]
        agree = critical_mass_met(observed, predicted)
        out.append(
            {
                "quantity": f"{model} {row['condition']}: critical mass k (paper's flip criterion), {fit} fit",
                "published": observed,
                "source": SOURCE,
                "ours": predicted,
                "uncertainty": row[fit]["interval"],
                "agree": agree,
            }
        )
    return out


def _errors(value, interval, low=-np.inf, high=np.inf):
    """Error bar lengths ``[[below], [above]]`` of ``interval`` around ``value``, the interval clipped to
    ``[low, high]`` (so that a share's bar never goes below 0 or above 1)."""
    if interval is None or value is None:
        return None
    bottom, top = max(interval[0], low), min(interval[1], high)
    return [[max(value - bottom, 0)], [max(top - value, 0)]]


def _bars(axis, i, observed, observed_interval, fits: list, bounds=(-np.inf, np.inf)):
    """Bars at x = i: observed (grey) and each of ``FITS``, each with its clipped interval."""
    if observed is not None:
        axis.bar(_x(i, 0), observed, WIDTH, color="0.45", yerr=_errors(observed, observed_interval, *bounds))
    for j, (value, interval) in enumerate(fits):
        if value is not None:
            color = FITS[j][1]
            axis.bar(_x(i, j + 1), value, WIDTH, color=color, yerr=_errors(value, interval, *bounds), capsize=2)


def _x(i: int, k: int) -> float:
    """Position of bar ``k`` (0: observed, then ``FITS``) of the group at x = i."""
    return i + (k - len(FITS) / 2) * WIDTH


def _empty(axis, text: str) -> None:
    axis.text(0.5, 0.5, text, ha="center", va="center", transform=axis.transAxes, color="0.4")
    axis.set_xticks([])
    axis.set_yticks([])


def _plot_stop(axis, model: str, rows: list[dict]) -> None:
    for i, row in enumerate(rows):
        observed = row["observed"]
        fits = [(row[f]["mean"], row[f].get("interval")) if f in row else (None, None) for f, _, _ in FITS]
        _bars(axis, i, observed["mean"], observed["interval"], fits, (0, np.inf))
    axis.set_xticks(np.arange(len(rows)), [r["condition"] for r in rows], rotation=25, ha="right", fontsize=8)
    axis.set(ylabel="mean stop time (population rounds)", title=f"{model}: stop time")
    means = [r["observed"]["mean"] for r in rows]
    if means and max(means) > 4 * min(means):  # conditions of very different lengths: a log scale shows them all
        axis.set_yscale("log")


def _plot_winners(axis, model: str, rows: list[dict]) -> None:
    if not rows:
        return _empty(axis, "no W=2 baseline")
    for i, row in enumerate(rows):
        name = row["names"][1]
        observed = row["observed"]
        fits = [
            (row[f]["winner_share"][name], row[f]["winner_interval"][name]) if f in row else (None, None)
            for f, _, _ in FITS
        ]
        _bars(axis, i, observed["winner_share"][name], observed["winner_interval"][name], fits, (0, 1))
    ticks = [f"{r['condition']}: {r['names'][1]}" for r in rows]
    axis.set_xticks(np.arange(len(rows)), ticks, rotation=25, ha="right", fontsize=8)
    axis.set(ylabel="share of runs won", ylim=(0, 1.05), title=f"{model}: collective bias, W=2")


def _plot_many_winners(axis, model: str, rows: list[dict]) -> None:
    if not rows:
        return _empty(axis, "no W>2 baseline")
    row = max(rows, key=lambda r: r["observed"]["runs"])  # the largest W>2 baseline
    names = row["names"]
    for i, name in enumerate(names):
        fits = [
            (row[f]["winner_share"][name], row[f]["winner_interval"][name]) if f in row else (None, None)
            for f, _, _ in FITS
        ]
        observed = row["observed"]
        _bars(axis, i, observed["winner_share"][name], observed["winner_interval"][name], fits, (0, 1))
    axis.set_xticks(np.arange(len(names)), names)
    axis.set(xlabel="name", ylabel="share of runs won", ylim=(0, 1.05), title=f"{model}: winners, {row['condition']}")


def _plot_critical(axis, model: str, rows: list[dict]) -> None:
    """Critical k per series as points (observed grey; fits in colour: the median over replays of the observed
    design, with its 95% interval); a triangle at the series' largest k + 1 when no k up to it flips (an interval
    that reaches "no k flips" ends there too)."""
    if not rows:
        return _empty(axis, "no committed-minority series")
    for i, row in enumerate(rows):
        none = row["largest_k"] + 1
        points = [(row["observed"], None, "0.45", _x(i, 0))] + [
            (row[f]["k"], row[f]["interval"], color, _x(i, j + 1)) for j, (f, color, _) in enumerate(FITS) if f in row
        ]
        for value, interval, color, x in points:
            if interval is not None:
                interval = [none if v is None else v for v in interval]
            if value is None:
                axis.plot(x, none, marker="^", color=color, markerfacecolor="none", markersize=8)
            else:
                axis.errorbar(x, value, yerr=_errors(value, interval, 0), fmt="o", color=color, capsize=2)
    axis.set_xticks(np.arange(len(rows)), [r["condition"] for r in rows], rotation=25, ha="right", fontsize=8)
    axis.set_xlim(-0.7, len(rows) - 0.3)
    axis.set_ylim(bottom=-0.5)
    axis.set(ylabel="critical mass k (agents)", title=f"{model}: critical mass (open triangle: no k flips)")


def _flips_figure(series: dict[str, list[dict]]):
    """Second figure: P(flip) per run against k, one panel per committed-minority series (rows: models)."""
    columns = max(len(rows) for rows in series.values())
    figure, axes = plt.subplots(
        len(series), columns, figsize=(4.2 * columns, 3.6 * len(series)), squeeze=False, layout="constrained"
    )
    for row, (model, rows) in zip(axes, series.items(), strict=True):
        for axis, entry in zip(row, rows, strict=False):
            _plot_flips(axis, model, entry)
        for axis in row[len(rows) :]:
            axis.set_axis_off()
    handles = [plt.Line2D([], [], color="0.45", marker="o", linestyle="none")]
    handles += [plt.Line2D([], [], color=color, marker=".") for _, color, _ in FITS[:2]]
    labels = ["observed runs flipped (95% interval)"] + [f"{label}, 95% over draws" for _, _, label in FITS[:2]]
    figure.legend(handles, labels, loc="outside upper center", ncol=3, frameon=False)
    return figure


def _plot_flips(axis, model: str, entry: dict) -> None:
    """Observed share of runs that flipped at each logged k (grey, Clopper-Pearson 95%, number of runs above) and
    each fit's predicted P(flip) per run under the logged design (:func:`jaxconv.estimate.predict.flips_check` gives
    the p-value in the title)."""
    from jaxconv.estimate.predict import binomial_interval

    flipped = entry.get("runs_flipped")
    if flipped is None:
        return _empty(axis, f"{entry['condition']}: no per-run flips in this fit JSON")
    ks = sorted(int(k) for k in flipped)
    runs = [entry["runs"][str(k)] for k in ks]
    shares = [flipped[str(k)] / n for k, n in zip(ks, runs, strict=True)]
    intervals = [binomial_interval(flipped[str(k)], n) for k, n in zip(ks, runs, strict=True)]
    bars = np.array([[s - low, high - s] for s, (low, high) in zip(shares, intervals, strict=True)]).T
    axis.errorbar(ks, shares, yerr=bars, fmt="o", color="0.45", capsize=2, zorder=3)
    for k, share, n in zip(ks, shares, runs, strict=True):
        axis.annotate(f"{n}", (k, share), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.3")
    titles = []
    for j, (fit, color, _) in enumerate(FITS[:2]):
        predicted = entry.get(fit, {})
        if predicted.get("p_flip") is None:
            continue
        offset = (j - 0.5) * 0.15  # side by side, so that the two fits' intervals do not hide each other
        values = [predicted["p_flip"][str(k)] for k in ks]
        axis.plot(np.array(ks) + offset, values, marker=".", color=color)
        if predicted.get("p_flip_interval"):
            low_high = [predicted["p_flip_interval"][str(k)] or [v, v] for k, v in zip(ks, values, strict=True)]
            errors = np.array([[max(v - lo, 0), max(hi - v, 0)] for v, (lo, hi) in zip(values, low_high, strict=True)])
            axis.errorbar(np.array(ks) + offset, values, yerr=errors.T, fmt="none", color=color, capsize=2)
        titles.append(f"{fit.replace('_', '-')} p = {_number(predicted['flips_p_value'], '.2g')}")
    axis.set(xlabel="committed agents k", ylabel="P(flip) per run", ylim=(-0.03, 1.03))
    axis.set_xlim(ks[0] - 0.6, ks[-1] + 0.6)
    axis.set_xticks(ks, [str(k) for k in ks], fontsize=7)  # the logged k only
    check = ", ".join(titles)
    axis.set_title(f"{model} {entry['condition']}\nflips check {check}" if check else entry["condition"], fontsize=9)


if __name__ == "__main__":
    main()
