"""Committed minorities tip a convention: the binary-agreement naming game of Xie et al.

Xie, Sreenivasan, Korniss, Zhang, Lim & Szymanski, PRE 84 011130 (2011): names A and B, every agent starts with
{A}; a fraction p of agents is committed to B and never changes. Mean field: the population switches to B iff
p > p_c = 0.0979; below, it stays near A for a time exponential in N. Here: the probability that every uncommitted
agent holds only B after T population rounds, against p, for several N (one compiled program per N: p is swept).
Also REFERENCE.md's table: k committed agents ADDED to N=24, 1000 interactions (sim, 4000 runs, SE <= .008):
k=1 .014, 2 .18, 3 .59, 4 .87, 5 .98, 6 .997.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save
from tqdm import tqdm

from jaxconv.engine import ensemble, sweep
from jaxconv.games.naming import NamingGame

P_CRITICAL = 0.0979
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
        added[k] = {"P_all_B": p, "se": float(np.sqrt(p * (1 - p) / added_runs)), "reference": reference}
    print("added to N=24:", added)

    crossing = {n: _crossing(c["p"], c["P_flip"]) for n, c in curves.items()}
    print("p at which P(flip) crosses 1/2:", crossing)
    numbers = {
        "source": "Xie et al., PRE 84 011130 (2011); REFERENCE.md",
        "p_critical_mean_field": P_CRITICAL,
        "rounds": rounds,
        "replicas_per_point": replicas,
        "converted": {str(n): c for n, c in curves.items()},
        "p_half_flip_by_N": crossing,
        "added_to_24": added,
    }

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for n, c in curves.items():
        left.plot(c["p"], c["P_flip"], "o-", ms=3, label=f"N={n}")
    left.axvline(P_CRITICAL, color="k", ls="--", label="$p_c$ = 0.098 (mean field)")
    left.set(
        xlabel="committed fraction p",
        ylabel=f"P(all hold B after {rounds} rounds)",
        title="Converted committed minority",
    )
    left.legend(fontsize=8)
    ks = list(added)
    right.errorbar(ks, [added[k]["P_all_B"] for k in ks], [2 * added[k]["se"] for k in ks], fmt="o", label="jaxconv")
    right.plot(ks, [added[k]["reference"] for k in ks], "kx", label="REFERENCE.md")
    right.set(
        xlabel="committed agents added to N=24", ylabel="P(all uncommitted hold only B)", title="1000 interactions"
    )
    right.legend()
    save(args.out, "committed_minority", numbers, figure)


def _crossing(p, probability):
    """Linear interpolation of the p where the flip probability first reaches 1/2."""
    for (p0, y0), (p1, y1) in zip(zip(p, probability), zip(p[1:], probability[1:])):
        if y0 < 0.5 <= y1:
            return p0 + (0.5 - y0) * (p1 - p0) / (y1 - y0)
    return None


if __name__ == "__main__":
    main()
