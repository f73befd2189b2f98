"""Committed minorities tip a convention: the binary-agreement naming game of Xie et al.

Xie, Sreenivasan, Korniss, Zhang, Lim & Szymanski, PRE 84 011130 (2011): names A and B, every agent starts with
{A}; a fraction p of agents is committed to B and never changes. Mean field: the population switches to B iff
p > p_c = 0.0979; below, it stays near A for a time exponential in N. Here: the probability that every uncommitted
agent holds only B after T population rounds, against p, for several N (one compiled program per N: p is swept).
Also k committed agents ADDED to N=24, 1000 interactions, against a reference simulation of Xie et al.'s rules
(a slow obviously-correct implementation, 4000 runs, SE <= .008): k=1 .014, 2 .18, 3 .59, 4 .87, 5 .98, 6 .997.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, binomial_se, crossing_interval, plot_shares, row, save
from tqdm import tqdm

from jaxconv.engine import ensemble, sweep
from jaxconv.games.naming import NamingGame

P_CRITICAL = 0.0979
XIE = "Xie et al., PRE 84 011130 (2011), mean-field analysis"
XIE_SIMULATED = "reference simulation of the rules of Xie et al., PRE 84 011130 (2011), 4000 runs"
REFERENCE_RUNS = 4000
ADDED_REFERENCE = {1: 0.014, 2: 0.18, 3: 0.59, 4: 0.87, 5: 0.98, 6: 0.997}
A, B = 0, 1


def binary_game(n_agents, committed, mode):
    return NamingGame(
        n_agents,
        vocabulary=2,
        committed=committed,
        committed_mode=mode,
        committed_name=B,
        initial="prepared",
        prepared_name=A,
    )


def main():
    args = arguments(__doc__)
    key = jax.random.key(args.seed)
    sizes = [50, 100, 200] if args.quick else [50, 100, 200, 400, 800]
    replicas = 64 if args.quick else 400
    rounds = 100
    fractions = np.round(np.arange(0.04, 0.165, 0.01), 3)

    curves = {}
    for n in tqdm(sizes, desc="N (sweep over p)"):
        counts = np.round(fractions * n).astype(int)
        game = binary_game(n, 1, "converted")
        result = sweep(key, game, {"n_committed": jnp.asarray(counts)}, replicas, rounds * n, rounds * n)
        curves[n] = {
            "p": (counts / n).tolist(),
            "P_flip": result.summary["committed_flip"].mean(axis=1).tolist(),
            "median_flip_rounds": [
                float(np.median(t[t >= 0]) / n) if (t >= 0).any() else None for t in result.summary["consensus_time"]
            ],
        }

    added_runs = 1000 if args.quick else 4000
    added = {}
    for k, reference in ADDED_REFERENCE.items():
        summary = ensemble(key, binary_game(24, k, "added"), added_runs, 1000, 1000).summary
        p = float(summary["committed_flip"].mean())
        added[k] = {"P_all_B": p, "se": binomial_se(p, added_runs), "reference": reference}
    print("added to N=24:", added)

    crossings = {
        n: crossing_interval(c["p"], np.asarray(c["P_flip"]) * replicas, replicas, seed=args.seed)
        for n, c in curves.items()
    }
    print("p at which P(flip) crosses 1/2 (95% interval):", crossings)
    largest = sizes[-1]
    p_half, interval = crossings[largest]
    reproduced = [
        row(
            f"P(all uncommitted hold only B) after 1000 interactions, k={k} committed added to N=24",
            a["reference"],
            XIE_SIMULATED,
            a["P_all_B"],
            a["se"],
            published_se=binomial_se(a["reference"], REFERENCE_RUNS),
        )
        for k, a in added.items()
    ]
    reproduced.append(
        row(
            f"critical fraction p_c: P(flip within {rounds} rounds) = 1/2 at N={largest} (committed converted)",
            P_CRITICAL,
            XIE,
            p_half,
            interval=interval,
            note="finite N and horizon: approaches the mean-field p_c as N grows",
        )
    )
    numbers = {
        "source": "Xie et al., PRE 84 011130 (2011)",
        "p_critical_mean_field": P_CRITICAL,
        "rounds": rounds,
        "replicas_per_point": replicas,
        "converted": {str(n): c for n, c in curves.items()},
        "p_half_flip_by_N (value, 95% interval)": {str(n): c for n, c in crossings.items()},
        "added_to_24": added,
    }

    figure, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.4))
    for n, c in curves.items():
        plot_shares(left, c["p"], c["P_flip"], replicas, fmt="o-", ms=3, label=f"N={n}")
    left.axvline(P_CRITICAL, color="k", ls="--", label="mean-field $p_c$ = 0.0979")
    left.set(
        xlabel="committed fraction p",
        ylabel=f"P(all hold only B after {rounds} population rounds)",
        title=f"Committed converted from N agents ({replicas} runs per point)",
    )
    left.legend(fontsize=8, loc="lower right")
    ks = list(added)
    plot_shares(right, ks, [added[k]["P_all_B"] for k in ks], added_runs, fmt="o", label=f"jaxconv ({added_runs} runs)")
    right.plot(ks, [added[k]["reference"] for k in ks], "kx", ms=8, label="reference simulation (4000 runs)")
    right.set(
        xlabel="committed agents k added to N=24",
        ylabel="P(all uncommitted hold only B)",
        title="Committed added to N=24, after 1000 interactions",
    )
    right.legend(loc="lower right")
    figure.suptitle("Committed minorities tip a convention (Xie et al. 2011); bars: 95% intervals", fontsize=11)
    save(args.out, "committed_minority", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
