"""LLM populations vs softmax agents fitted to their choices alone and to their choices and collective outcomes.

For every model found in the logs folder (from the file names; nothing depends on which models), the softmax
family with the best held-out choice likelihood (optional first-move bias, unanimity bonus, lapse:
``jaxconv fit --policy auto``) is fitted by maximum likelihood to every game choice given the agent's memory, then
refitted to the choices plus the collective outcomes of the baseline runs (stop time, winner; ``--collective``,
:mod:`jaxconv.estimate.collective`). Replicas of each fitted agent, over bootstrap parameter draws, play the
experiment's protocol (:mod:`jaxconv.estimate.predict`). Figure, one row per model, observed (black, 95% interval)
vs choice-only fit (blue) vs collective fit (orange), each prediction with its 95% interval over parameter draws:
mean stop time per baseline condition; share of runs won by each name in the W=2 baselines; critical mass k per
committed-minority series (the paper's flip criterion, :mod:`jaxconv.criteria`; a missing bar: no k flips).

``--cv``: instead, held-out collective outcomes (:func:`jaxconv.estimate.collective.cross_validate`): each
model's baseline runs of every name set with at least 6 runs dealt to 2 folds, both fits made without a fold and
scored on its mean stop time and winner share (written to ``llm_fit_cv.json``).

Logs folder: ``--data PATH`` (default ../shared/data/ai-norms beside the repository).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save

from jaxconv.cli.fit import fit_path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ai-norms"
FITS = (("choice_only", "C0", "choice-only fit"), ("collective", "C1", "collective fit"))


def _options(parser):
    parser.add_argument("--data", type=Path, default=DATA, help="folder or zip of logs")
    parser.add_argument("--cv", action="store_true", help="held-out collective outcomes (2 folds of runs)")


def main():
    args = arguments(__doc__, extra=_options)
    if args.cv:
        return cross_validation(args)
    bootstrap, replicas, steps = (2, 128, 5) if args.quick else (19, 4000, 60)
    result = fit_path(
        args.data,
        policy="auto",
        bootstrap=bootstrap,
        replicas=replicas,
        draws=bootstrap + 1,
        collective=True,
        collective_steps=steps,
        seed=args.seed,
        progress=True,
    )
    models = result["models"]
    figure, axes = plt.subplots(len(models), 3, figsize=(17, 4.4 * len(models)), squeeze=False)
    numbers = {"source": str(args.data), "settings": result["settings"], "models": {}}
    for row, (model, entry) in zip(axes, models.items(), strict=True):
        groups = entry["groups"]
        rows = [_condition_rows(g) for g in groups]
        _plot_stop(row[0], model, [r for rs in rows for r in rs["stop"]])
        _plot_winners(row[1], model, [r for rs in rows for r in rs["winners"]])
        _plot_critical(row[2], model, [r for rs in rows for r in rs["critical"]])
        numbers["models"][model] = {"conditions": rows, "fits": groups}
        for r in rows:
            for line in r["lines"]:
                print(f"{model} {line}")
    save(args.out, "llm_fit", numbers, figure)


def cross_validation(args) -> None:
    """Both fits without a fold of baseline runs, scored on that fold's collective outcomes."""
    import json

    import jax

    from jaxconv.data import load_logs
    from jaxconv.data.summary import model_names
    from jaxconv.estimate.collective import cross_validate
    from jaxconv.estimate.fit import FAMILIES

    steps, replicas = (5, 128) if args.quick else (40, 2000)
    collection = load_logs(args.data)
    games = [log for log in collection.files if log.meta.kind in ("game", "committed", "evolved") and log.runs]
    canonical = model_names(log.meta.model for log in games)
    out = {}
    for model in sorted(set(canonical.values())):
        logs = [log for log in games if canonical[log.meta.model] == model]
        for log in logs:
            if log.meta.kind != "game" or len(log.runs) < 6 or len(log.names) != 2 or log.meta.memory is None:
                continue
            names = tuple(log.names)
            rows = cross_validate(
                FAMILIES["softmax+first+unanimity"],
                [x for x in logs if set(x.names) == set(names)],
                names,
                log.meta.memory,
                jax.random.key(args.seed),
                steps=steps,
                replicas=replicas,
            )
            out[f"{model} {','.join(names)} N={log.n_agents}"] = rows
            for row in rows:
                observed = row["observed"]
                print(
                    f"{model} {','.join(names)} fold {row['fold']} ({row['held_out_runs']} held-out runs): stop "
                    f"{observed['stop_mean']:.2f} observed, {row['choice_only']['stop_mean']:.2f} choice-only, "
                    f"{row['collective']['stop_mean']:.2f} collective; {names[1]} wins {observed['win_share']:.2f} "
                    f"observed, {row['choice_only']['win_share']:.2f} choice-only, "
                    f"{row['collective']['win_share']:.2f} collective"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "llm_fit_cv.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out / 'llm_fit_cv.json'}")


def _condition_rows(group: dict) -> dict:
    """Observed and both fits' predictions of one group, per condition."""
    label = ",".join(group["names"]) if len(group["names"]) <= 3 else f"W={len(group['names'])}"
    predictions = group.get("prediction", {})
    predictions = predictions if "choice_only" in predictions else {"choice_only": predictions}
    out = {"names": group["names"], "policy": group["policy"], "stop": [], "winners": [], "critical": [], "lines": []}
    if not predictions.get("choice_only"):
        return out
    for i, base in enumerate(predictions["choice_only"]["baseline"]):
        condition = f"{label} N={base['n_agents']}"
        entry = {"condition": condition, "observed": base["observed"]["stop_rounds"]}
        shares = {"condition": condition, "names": group["names"], "observed": base["observed"]}
        for fit, _, _ in FITS:
            if fit in predictions:
                predicted = predictions[fit]["baseline"][i]["predicted"]
                entry[fit] = predicted["stop_rounds"]
                shares[fit] = predicted
        out["stop"].append(entry)
        if len(group["names"]) == 2:
            out["winners"].append(shares)
        fits = ", ".join(f"{fit} {entry[fit]['mean']:.2f}" for fit, _, _ in FITS if fit in entry)
        out["lines"].append(f"{condition}: stop rounds observed {entry['observed']['mean']:.2f}, {fits}")
    for i, series in enumerate(predictions["choice_only"]["tipping"]):
        condition = f"{label} N={series['n_agents']} {series['incumbent']}->{series['pushed']}"
        entry = {"condition": condition, "n_agents": series["n_agents"], "observed": series["observed"]["critical_k"]}
        for fit, _, _ in FITS:
            if fit in predictions:
                predicted = predictions[fit]["tipping"][i]["predicted"]
                entry[fit] = {"k": predicted["critical_k"], "interval": predicted["critical_k_interval"]}
        out["critical"].append(entry)
        fits = ", ".join(f"{fit} {entry[fit]['k']}" for fit, _, _ in FITS if fit in entry)
        out["lines"].append(f"{condition}: critical k observed {entry['observed']}, {fits}")
    return out


def _errors(value, interval):
    if interval is None or value is None:
        return None
    return [[max(value - interval[0], 0)], [max(interval[1] - value, 0)]]


def _plot_stop(axis, model: str, rows: list[dict]) -> None:
    x = np.arange(len(rows))
    for i, row in enumerate(rows):
        observed = row["observed"]
        axis.bar(i - 0.27, observed["mean"], 0.27, color="0.3", yerr=_errors(observed["mean"], observed["interval"]))
        for j, (fit, color, _) in enumerate(FITS):
            if fit in row and row[fit]["mean"] is not None:
                value = row[fit]["mean"]
                axis.bar(i + 0.27 * j, value, 0.27, color=color, yerr=_errors(value, row[fit].get("interval")))
    axis.set_xticks(x, [r["condition"] for r in rows], rotation=20, fontsize=8)
    title = f"{model}: stop time (grey LLM, blue choice fit, orange collective)"
    axis.set(ylabel="mean stop time (rounds)", title=title)


def _plot_winners(axis, model: str, rows: list[dict]) -> None:
    ticks = []
    for i, row in enumerate(rows):
        name = row["names"][1]
        observed = row["observed"]["winner_share"][name]
        interval = row["observed"]["winner_interval"][name]
        axis.bar(i - 0.27, observed, 0.27, color="0.3", yerr=_errors(observed, interval))
        for j, (fit, color, _) in enumerate(FITS):
            if fit in row:
                value = row[fit]["winner_share"][name]
                axis.bar(i + 0.27 * j, value, 0.27, color=color, yerr=_errors(value, row[fit]["winner_interval"][name]))
        ticks.append(f"{row['condition']}: {name}")
    axis.set_xticks(np.arange(len(rows)), ticks, rotation=20, fontsize=8)
    axis.set(ylabel="share of runs won", ylim=(0, 1.05), title=f"{model}: collective bias, W=2")


def _plot_critical(axis, model: str, rows: list[dict]) -> None:
    for i, row in enumerate(rows):
        if row["observed"] is not None:
            axis.bar(i - 0.27, row["observed"], 0.27, color="0.3")
        for j, (fit, color, _) in enumerate(FITS):
            if fit in row and row[fit]["k"] is not None:
                value = row[fit]["k"]
                axis.bar(i + 0.27 * j, value, 0.27, color=color, yerr=_errors(value, row[fit]["interval"]))
    axis.set_xticks(np.arange(len(rows)), [r["condition"] for r in rows], rotation=20, fontsize=8)
    axis.set(ylabel="critical mass k", title=f"{model}: critical mass (paper's criterion)")


if __name__ == "__main__":
    main()
