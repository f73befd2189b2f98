"""Finite-N tipping thresholds of the binary naming game: score-function stochastic Newton vs a brute-force sweep.

Xie et al. (PRE 84 011130, 2011): names A and B, N agents prepared on A, committed agents (converted from the N)
hold B. Each of the N agents is committed independently with probability p (K ~ Binomial(N, p)); P(flip | p) = the
probability that every uncommitted agent holds only B after a fixed horizon of T rounds, a binomial mixture of
P(flip | k); p_c(N) is where it crosses 1/2 (``jaxconv.estimate.tipping``).

For each N: the sweep (16 values of p over [0, 0.5], a bracket chosen without knowing p_c, ``--replicas`` per
value, p_c from a logistic-in-k binomial-mixture fit) and then the gradient method started at p = 0.2 and run until
its standard error reaches the sweep's. Reported: both thresholds with standard errors and the simulated
interactions each needed, and their ratio. Mean field: p_c = 0.0979.
"""

import time

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save
from matplotlib.ticker import NullFormatter

from jaxconv.estimate.tipping import threshold_by_gradient, threshold_by_sweep
from jaxconv.games.naming import NamingGame

P_MEAN_FIELD = 0.0979
A, B = 0, 1


def binary_game(n_agents):
    return NamingGame(
        n_agents, vocabulary=2, committed_mode="converted", committed_name=B, initial="prepared", prepared_name=A
    )


def extra(parser):
    parser.add_argument("--rounds", type=int, default=100, help="horizon T in rounds of N interactions (default 100)")
    parser.add_argument("--replicas", type=int, default=256, help="sweep: replicas per value of p (default 256)")


def main():
    args = arguments(__doc__, extra)
    sizes = [50, 100, 200] if args.quick else [50, 100, 200, 500, 1000]
    grid = np.linspace(0.0, 0.5, 16)
    rows = {}
    for index, n in enumerate(sizes):
        game, steps = binary_game(n), args.rounds * n
        key = jax.random.fold_in(jax.random.key(args.seed), index)
        start = time.perf_counter()
        sweep = threshold_by_sweep(jax.random.fold_in(key, 0), game, steps, grid=grid, n_replicas=args.replicas)
        sweep_seconds = time.perf_counter() - start
        target = sweep["p_c_se"]
        start = time.perf_counter()
        gradient = threshold_by_gradient(jax.random.fold_in(key, 1), game, steps, p0=0.2, target_se=target)
        gradient_seconds = time.perf_counter() - start
        rows[n] = {
            "sweep": sweep | {"seconds": sweep_seconds},
            "gradient": gradient | {"seconds": gradient_seconds},
            "interactions_ratio": gradient["simulated_interactions"] / sweep["simulated_interactions"],
            "difference_z": (gradient["p_c"] - sweep["p_c"]) / np.hypot(gradient["p_c_se"], sweep["p_c_se"]),
        }
        print(
            f"N={n:5d}  sweep p_c={sweep['p_c']:.4f}+-{sweep['p_c_se']:.4f} ({sweep['simulated_interactions']:.3g}"
            f" int.{', grid-limited' if sweep['resolution_limited'] else ''})  gradient p_c={gradient['p_c']:.4f}"
            f"+-{gradient['p_c_se']:.4f} ({gradient['simulated_interactions']:.3g} int., {gradient['iterations']} it.)"
            f"  ratio {rows[n]['interactions_ratio']:.3f}  z {rows[n]['difference_z']:+.2f}",
            flush=True,
        )

    table = [
        {
            "N": n,
            "sweep_p_c": r["sweep"]["p_c"],
            "sweep_p_c_se": r["sweep"]["p_c_se"],
            "sweep_resolution_limited": r["sweep"]["resolution_limited"],
            "sweep_interactions": r["sweep"]["simulated_interactions"],
            "gradient_p_c": r["gradient"]["p_c"],
            "gradient_p_c_se": r["gradient"]["p_c_se"],
            "gradient_interactions": r["gradient"]["simulated_interactions"],
            "gradient_iterations": r["gradient"]["iterations"],
            "gradient_converged": r["gradient"]["converged"],
            "interactions_ratio": r["interactions_ratio"],
            "difference_z": r["difference_z"],
        }
        for n, r in rows.items()
    ]
    numbers = {
        "source": "Xie et al., PRE 84 011130 (2011); jaxconv.estimate.tipping",
        "p_critical_mean_field": P_MEAN_FIELD,
        "rounds": args.rounds,
        "grid": grid.tolist(),
        "sweep_replicas_per_point": args.replicas,
        "gradient_start": 0.2,
        "table": table,
        "runs": {str(n): _without_covariances(r) for n, r in rows.items()},
    }

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for color, (n, r) in zip(colors, rows.items()):
        s, g = r["sweep"], r["gradient"]
        left.errorbar(
            s["grid"],
            s["P_flip"],
            2 * np.asarray(s["P_flip_se"]),
            fmt="o-",
            ms=3,
            color=color,
            capsize=2,
            label=f"N={n}",
        )
        left.plot(s["p_c"], 0.5, "s", ms=7, mfc="white", color=color)
        left.plot(g["p_c"], 0.5, "*", ms=10, color=color)
    left.plot([], [], "s", mfc="white", color="gray", label="$p_c$ sweep (mixture fit)")
    left.plot([], [], "*", ms=10, color="gray", label="$p_c$ gradient (stochastic Newton)")
    left.axvline(P_MEAN_FIELD, color="k", ls="--", lw=1, label="mean field $p_c$ = 0.0979")
    left.axhline(0.5, color="gray", lw=0.5)
    left.set(
        xlabel="committed probability p (each agent committed w.p. p)",
        ylabel=f"P(all uncommitted hold only B after {args.rounds} rounds)",
        title="Flip probability on the sweep's grid (±2 SE)",
        xlim=(0, 0.25),
    )
    left.legend(fontsize=7, loc="lower right")

    ns = np.array(sizes, float)
    for method, marker, shift in (("sweep", "s", 0.96), ("gradient", "*", 1.04)):
        middle.errorbar(
            ns * shift,
            [rows[n][method]["p_c"] for n in sizes],
            [2 * rows[n][method]["p_c_se"] for n in sizes],
            fmt=marker,
            ms=7,
            capsize=3,
            label=f"{method} ±2 SE",
        )
    middle.axhline(P_MEAN_FIELD, color="k", ls="--", lw=1, label="mean field 0.0979")
    middle.set_xscale("log")
    middle.set_xticks(ns, [str(n) for n in sizes])
    middle.xaxis.set_minor_formatter(NullFormatter())
    middle.set(
        xlabel="N (agents)", ylabel="$p_c(N)$: P(flip | p) = 1/2", title=f"Thresholds, horizon {args.rounds} rounds"
    )
    middle.legend(fontsize=8)

    width = 0.38
    x = np.arange(len(sizes))
    right.bar(x - width / 2, [rows[n]["sweep"]["simulated_interactions"] for n in sizes], width, label="sweep")
    right.bar(
        x + width / 2,
        [rows[n]["gradient"]["simulated_interactions"] for n in sizes],
        width,
        label="gradient, to the sweep's SE",
    )
    for i, n in enumerate(sizes):
        right.annotate(
            f"×{rows[n]['interactions_ratio']:.2f}",
            (i + width / 2, rows[n]["gradient"]["simulated_interactions"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    right.set_yscale("log")
    right.set_xticks(x, [str(n) for n in sizes])
    right.set(
        xlabel="N (agents)",
        ylabel="simulated interactions (replicas × T × N)",
        title="Cost at equal precision (label: gradient / sweep)",
    )
    right.legend(fontsize=8)
    figure.tight_layout()
    save(args.out, "tipping_gradients", numbers, figure)


def _without_covariances(run: dict) -> dict:
    out = {}
    for method in ("sweep", "gradient"):
        out[method] = {k: v for k, v in run[method].items() if k != "history"}
    out["gradient"]["history"] = [
        {
            k: v
            for k, v in step.items()
            if k in ("iteration", "p", "batch_replicas", "replicas", "P_flip", "p_c", "p_c_se", "step")
        }
        for step in run["gradient"]["history"]
    ]
    out["interactions_ratio"] = run["interactions_ratio"]
    out["difference_z"] = run["difference_z"]
    return out


if __name__ == "__main__":
    main()
