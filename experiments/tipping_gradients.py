"""Finite-N tipping thresholds of the binary naming game: score-function stochastic Newton vs a brute-force sweep.

Xie et al. (PRE 84 011130, 2011): names A and B, N agents prepared on A, committed agents (converted from the N)
hold B. Each of the N agents is committed independently with probability p (K ~ Binomial(N, p)); P(flip | p) = the
probability that every uncommitted agent holds only B after a fixed horizon of T rounds, a binomial mixture of
P(flip | k); p_c(N) is where it crosses 1/2 (``jaxconv.estimate.tipping``).

For each N: the sweep (16 values of p over [0, 0.5], a bracket chosen without knowing p_c, ``--replicas`` per
value, p_c from a logistic-in-k binomial-mixture fit) and then the gradient method started at p = 0.2 and run until
its standard error reaches the sweep's. Reported: both thresholds with standard errors and the simulated
interactions each needed, and their ratio. Mean field: p_c = 0.0979.

Second figure (``tipping_sensitivities``): Centola et al.'s best-response model (Science 360:1116, 2018), critical
mass against memory M at N=24 by stochastic Newton steps and in mean field (``jaxconv.meanfield``); and, for an
LLM-like softmax agent with memory H=5, the sensitivities dp_c/dtheta of its critical mass: at finite N by the
implicit function theorem with score-function gradients (``threshold_sensitivities``), checked against central
finite differences of the threshold itself (common random numbers), and in mean field by implicit
differentiation of the fold.
"""

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, row, save
from matplotlib.ticker import NullFormatter

from jaxconv import meanfield
from jaxconv.estimate.tipping import threshold_by_gradient, threshold_by_sweep, threshold_sensitivities
from jaxconv.games.memory import MemoryGame, best_response_game
from jaxconv.games.naming import NamingGame
from jaxconv.policies import SoftmaxSurrogate

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
        shares, half = np.asarray(s["P_flip"]), 2 * np.asarray(s["P_flip_se"])
        left.errorbar(
            s["grid"],
            shares,
            [np.minimum(half, shares), np.minimum(half, 1 - shares)],  # clipped to [0, 1]
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
    mean_field = float(meanfield.binary_naming_threshold()["p_c"])
    numbers["p_critical_mean_field_jaxconv"] = mean_field
    reproduced = [
        row(
            "mean-field critical fraction p_c of the binary naming game (fold of the ODE, jaxconv.meanfield)",
            P_MEAN_FIELD,
            "Xie et al., PRE 84 011130 (2011), mean-field analysis",
            mean_field,
            agree=abs(mean_field - P_MEAN_FIELD) <= 0.00015,
            note="a numerical fold, no sampling error; agree: within 3 half-units of the published last digit",
        )
    ]
    save(args.out, "tipping_gradients", numbers, figure, reproduced)
    sensitivities(args)


SURROGATE = {"win_stay": 1.0, "lose_shift": 2.0, "own_weight": 1.0, "partner_weight": 3.0, "recency": 0.6}
CHECKED = {"partner_weight": 0.5, "recency": 0.1}  # finite-N sensitivities checked by finite differences (step)


def surrogate_game(n_agents, **changes):
    parameters = SURROGATE | changes
    policy = SoftmaxSurrogate(jnp.array([0.05, -0.05]), **parameters)
    return MemoryGame(n_agents, 2, 5, policy=policy, initial="prepared", prepared_name=A, committed_name=B, stop=None)


def sensitivities(args):
    """Best response against memory M; sensitivities of an LLM-like agent's critical mass."""
    n, rounds = 24, 30
    memories = [4, 8] if args.quick else [4, 8, 10, 12]
    target = 0.01 if args.quick else 0.003
    key = jax.random.key(args.seed + 1)
    centola = []
    for index, memory in enumerate(memories):
        game = best_response_game(n, memory)
        finite = threshold_by_gradient(jax.random.fold_in(key, index), game, 100 * n, target_se=target)
        start = time.perf_counter()
        mean_field = float(meanfield.memory_threshold(game)["p_c"])
        centola.append(
            {
                "memory": memory,
                "p_c": finite["p_c"],
                "p_c_se": finite["p_c_se"],
                "simulated_interactions": finite["simulated_interactions"],
                "mean_field_p_c": mean_field,
                "mean_field_seconds": time.perf_counter() - start,
            }
        )
        print(f"best response M={memory:2d}: p_c(N=24, 100 rounds) = {finite['p_c']:.4f} +- {finite['p_c_se']:.4f},"
              f" mean field {mean_field:.4f}", flush=True)  # fmt: skip

    game, steps = surrogate_game(n), rounds * n
    threshold_key = jax.random.fold_in(key, 100)
    finite = threshold_by_gradient(threshold_key, game, steps, target_se=target)
    batches, replicas = (8, 256) if args.quick else (32, 512)
    by_ift = threshold_sensitivities(
        jax.random.fold_in(key, 101), game, steps, finite["p_c"], n_batches=batches, replicas_per_batch=replicas
    )
    mean_field = meanfield.memory_threshold(game)
    differences = {}
    for name, step in CHECKED.items():
        low, high = (
            threshold_by_gradient(
                threshold_key, surrogate_game(n, **{name: SURROGATE[name] + sign * step}), steps, target_se=target
            )  # fmt: skip
            for sign in (-1, 1)
        )
        differences[name] = {
            "value": (high["p_c"] - low["p_c"]) / (2 * step),
            "se": float(np.hypot(high["p_c_se"], low["p_c_se"]) / (2 * step)),
        }
    rows = []
    for name in ("bias", *SURROGATE):
        finite_value = by_ift["sensitivities"][f"policy.{name}"]
        finite_se = by_ift["sensitivities_se"][f"policy.{name}"]
        mean_value = np.asarray(mean_field["sensitivities"][name])
        if name == "bias":  # a shift of name B's bias (name A's is the negative: only differences matter)
            finite_value, finite_se, mean_value = finite_value[1], finite_se[1], mean_value[1]
        rows.append(
            {
                "parameter": "bias[B]" if name == "bias" else name,
                "finite_n": finite_value,
                "finite_n_se": finite_se,
                "finite_differences": differences.get(name, {}).get("value"),
                "finite_differences_se": differences.get(name, {}).get("se"),
                "mean_field": float(mean_value),
            }
        )
        print(f"dp_c/d {rows[-1]['parameter']:15s} N=24: {finite_value:+.4f} +- {finite_se:.4f}"
              f"  mean field: {float(mean_value):+.4f}"
              + (f"  finite differences: {differences[name]['value']:+.4f} +- {differences[name]['se']:.4f}"
                 if name in differences else ""), flush=True)  # fmt: skip
    numbers = {
        "sources": "Centola et al., Science 360:1116 (2018); jaxconv.estimate.tipping, jaxconv.meanfield",
        "best_response": {"agents": n, "rounds": 100, "thresholds": centola},
        "surrogate": {
            "parameters": SURROGATE | {"bias": [0.05, -0.05]},
            "agents": n,
            "rounds": rounds,
            "p_c": finite["p_c"],
            "p_c_se": finite["p_c_se"],
            "mean_field_p_c": float(mean_field["p_c"]),
            "finite_difference_steps": CHECKED,
            "sensitivities": rows,
            "simulated_interactions": finite["simulated_interactions"] + by_ift["simulated_interactions"],
        },
    }

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    left.errorbar(memories, [c["p_c"] for c in centola], [2 * c["p_c_se"] for c in centola], fmt="o-", capsize=3,
                  label="N = 24, 100 rounds: stochastic Newton (±2 SE)")  # fmt: skip
    left.plot(memories, [c["mean_field_p_c"] for c in centola], "s--", label="mean field (fold of the window ODE)")
    left.axhline(0.25, color="gray", lw=0.8, ls=":", label="Centola et al.: about 25% at M = 12")
    left.set(xlabel="memory M (partners' plays remembered)", ylabel="critical mass $p_c$",
             title="Best response: critical mass against memory")  # fmt: skip
    left.legend(fontsize=8)
    x = np.arange(len(rows))
    width = 0.27
    right.bar(x - width, [r["finite_n"] for r in rows], width, yerr=[2 * r["finite_n_se"] for r in rows], capsize=3,
              label="N = 24: implicit function theorem, score function (±2 SE)")  # fmt: skip
    checked = [i for i, r in enumerate(rows) if r["finite_differences"] is not None]
    right.bar(x[checked], [rows[i]["finite_differences"] for i in checked], width,
              yerr=[2 * rows[i]["finite_differences_se"] for i in checked], capsize=3,
              label="N = 24: central finite differences of $p_c$ (±2 SE)")  # fmt: skip
    right.bar(x + width, [r["mean_field"] for r in rows], width, label="mean field: implicit differentiation")
    right.axhline(0, color="k", lw=0.5)
    right.set_xticks(x, [r["parameter"] for r in rows], rotation=20)
    right.set(
        ylabel="$dp_c / d\\theta$", title=f"Sensitivities of an LLM-like agent's critical mass (H=5, {rounds} rounds)"
    )
    right.legend(fontsize=7)
    figure.tight_layout()
    save(args.out, "tipping_sensitivities", numbers, figure)


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
