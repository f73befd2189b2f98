"""LLM populations vs a softmax agent fitted to their choices: collective bias and tipping.

For every model found in the logs folder (from the file names; nothing depends on which models), the biased
softmax surrogate is fitted by maximum likelihood to every game choice given the agent's memory
(:mod:`jaxconv.estimate.fit`: held-out folds over runs, bootstrap over runs), then replicas of the fitted agent play
the experiment's protocol (:mod:`jaxconv.estimate.predict`). Figure, one row per model: winner distribution of the
W=2 and W=10 baselines (collective bias), observed vs predicted; tipping curves, the non-committed agents' mean
share of the pushed name over the last 3 of 30 rounds against the committed fraction k/N, observed (markers,
filled = flipped by the paper's criterion) vs predicted (lines), one colour per series (N, incumbent -> pushed).

Logs folder: ``--data PATH`` (default ../shared/data/ai-norms beside the repository).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save

from jaxconv.cli_fit import fit_path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ai-norms"


def main():
    args = arguments(
        __doc__,
        extra=lambda parser: parser.add_argument("--data", type=Path, default=DATA, help="folder or zip of logs"),
    )
    bootstrap, replicas = (4, 256) if args.quick else (50, 10_000)
    result = fit_path(args.data, bootstrap=bootstrap, replicas=replicas, seed=args.seed)

    models = result["models"]
    figure, axes = plt.subplots(len(models), 3, figsize=(16, 4.2 * len(models)), squeeze=False)
    numbers = {"source": str(args.data), "bootstrap": bootstrap, "replicas": replicas, "models": {}}
    for row, (model, entry) in zip(axes, models.items(), strict=True):
        groups = entry["groups"]
        two = _baseline_group(groups, lambda w: w == 2)
        many = _baseline_group(groups, lambda w: w > 2)
        for axis, group in zip(row[:2], (two, many), strict=True):
            if group is None:
                axis.set_axis_off()
                continue
            _plot_winners(axis, model, group)
        _plot_tipping(row[2], model, [s for g in groups for s in g.get("prediction", {}).get("tipping", [])])
        numbers["models"][model] = {"comparison": [_comparison(g) for g in groups], "fits": groups}
        for group in groups:
            print(_headline(model, group))
    save(args.out, "llm_fit", numbers, figure)


def _baseline_group(groups: list[dict], width) -> dict | None:
    """The group with the most baseline runs among those whose number of names passes ``width``."""
    candidates = [g for g in groups if width(len(g["names"])) and g.get("prediction", {}).get("baseline")]
    return max(candidates, key=lambda g: sum(b["observed"]["runs"] for b in g["prediction"]["baseline"]), default=None)


def _plot_winners(axis, model: str, group: dict) -> None:
    base = max(group["prediction"]["baseline"], key=lambda b: b["observed"]["runs"])
    names = group["names"]
    runs = base["observed"]["runs"]
    observed = np.array([base["observed"]["winners"][n] for n in names]) / runs
    predicted = np.array([base["predicted"]["winner_share"][n] for n in names])
    x = np.arange(len(names))
    error = np.sqrt(np.maximum(predicted * (1 - predicted), 1e-12) / runs)  # sampling sd of the observed shares
    axis.bar(x - 0.2, observed, 0.4, label=f"LLM ({runs} runs)")
    axis.bar(x + 0.2, predicted, 0.4, yerr=2 * error, capsize=2, label="fitted agent (±2 sd of the LLM sample)")
    axis.set_xticks(x, names)
    axis.set(ylabel="share of runs won", title=f"{model}: winners, W={len(names)}, N={base['n_agents']}")
    axis.legend(fontsize=8)


def _plot_tipping(axis, model: str, series_list: list[dict]) -> None:
    for index, series in enumerate(series_list):
        color = f"C{index}"
        n = series["n_agents"]
        label = f"N={n} {series['incumbent']} -> {series['pushed']}"
        predicted = series["predicted"]["last_rounds_share"]
        ks = sorted(int(k) for k in predicted)
        axis.plot(np.array(ks) / n, [np.mean(predicted[str(k)]) for k in ks], "-", color=color, label=label)
        observed = series["observed"]
        for k, share in observed["last_rounds_share"].items():
            filled = observed["flipped"][k]
            axis.plot(int(k) / n, np.mean(share), "o", color=color, mfc=color if filled else "none")
    axis.axhline(0.95, color="k", lw=0.8, ls="--")
    axis.set(
        xlabel="committed fraction k/N",
        ylabel="pushed name's share, last 3 rounds",
        title=f"{model}: tipping (markers LLM, lines fitted agent)",
        ylim=(-0.02, 1.02),
    )
    if series_list:
        axis.legend(fontsize=7)


def _comparison(group: dict) -> dict:
    """The headline numbers of one group: fitted parameters, held-out scores, winners, stop times, critical k."""
    prediction = group.get("prediction", {})
    return {
        "names": group["names"],
        "n_choices": group["n_choices"],
        "parameters": group["parameters"],
        "log_likelihood_per_choice": group["log_likelihood_per_choice"],
        "baseline": [
            {
                "n_agents": b["n_agents"],
                "runs": b["observed"]["runs"],
                "winners_observed": b["observed"]["winners"],
                "winner_share_predicted": b["predicted"]["winner_share"],
                "stop_rounds_observed": b["observed"]["stop_rounds"],
                "stop_rounds_predicted": b["predicted"]["stop_rounds"],
            }
            for b in prediction.get("baseline", [])
        ],
        "critical_k": [
            {
                "n_agents": s["n_agents"],
                "incumbent": s["incumbent"],
                "pushed": s["pushed"],
                "observed": s["observed"]["critical_k"],
                "predicted": s["predicted"]["critical_k"],
            }
            for s in prediction.get("tipping", [])
        ],
    }


def _headline(model: str, group: dict) -> str:
    scores = group["log_likelihood_per_choice"]
    held_out = ", ".join(f"{name} {score['held_out']:.4f}" for name, score in scores.items())
    lines = [f"{model} {','.join(group['names'])}: held-out LL/choice {held_out}"]
    for b in group.get("prediction", {}).get("baseline", []):
        lines.append(
            f"  N={b['n_agents']} stop rounds observed {b['observed']['stop_rounds']['mean']:.1f}, predicted "
            f"{b['predicted']['stop_rounds']['mean'] or float('nan'):.1f}; winners observed {b['observed']['winners']}"
        )
    for s in group.get("prediction", {}).get("tipping", []):
        lines.append(
            f"  N={s['n_agents']} {s['incumbent']} -> {s['pushed']}: critical k observed {s['observed']['critical_k']},"
            f" predicted {s['predicted']['critical_k']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
