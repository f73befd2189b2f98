"""Naming game on lattices and random graphs: how the convergence time grows with N.

Baronchelli, Dall'Asta, Barrat & Loreto (PRE 73 015102, 2006): t_conv ~ N^3 on a ring (1D) and ~ N^2 on a 2D
lattice (N^(1 + 2/d)). Dall'Asta, Baronchelli, Barrat & Loreto (PRE 74 036105, 2006): t_conv ~ N^1.4 (+- 0.1) on
small-world and random graphs. Here: ring (k=2), periodic square lattice, Erdos-Renyi random graph of mean degree
10, Watts-Strogatz small world (k=4, rewiring p=0.1).
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, loglog_slope, plain_log_ticks, row, save
from tqdm import tqdm

from jaxconv import NamingGame, ensemble, topology


def connected_erdos_renyi(n: int, mean_degree: float, seed: int) -> topology.NeighbourGraph:
    """The first G(n, p) draw, from seed ``seed`` on, without isolated nodes and connected."""
    for attempt in range(seed, seed + 100):
        try:
            return topology.erdos_renyi(n, mean_degree=mean_degree, seed=attempt)
        except ValueError:
            continue
    raise RuntimeError(f"no connected G(n={n}, <k>={mean_degree}) in 100 seeds from {seed}")


LATTICES = "Baronchelli, Dall'Asta, Barrat & Loreto, PRE 73 015102 (2006)"
SMALL_WORLD = "Dall'Asta, Baronchelli, Barrat & Loreto, PRE 74 036105 (2006)"
FAMILIES = {  # name: (graph builder, expected exponent, budget in interactions as a function of N)
    "ring (1D)": (lambda n, seed: topology.ring(n), 3.0, lambda n: 4 * n**3),
    "2D lattice": (lambda n, seed: topology.lattice2d(round(n**0.5)), 2.0, lambda n: 15 * n**2),
    "Erdos-Renyi, <k>=10": (lambda n, seed: connected_erdos_renyi(n, 10.0, seed), 1.4, lambda n: 60 * n**1.5),
    "Watts-Strogatz, k=4, p=0.1": (
        lambda n, seed: topology.watts_strogatz(n, 4, 0.1, seed=seed),
        1.4,
        lambda n: 20 * n**2,
    ),
}
SIZES = {  # (quick: a smoke run, full)
    "ring (1D)": ([16, 32, 64], [25, 50, 100, 200, 400]),
    "2D lattice": ([36, 64, 144], [64, 144, 256, 576, 1024]),
    "Erdos-Renyi, <k>=10": ([100, 200, 400], [100, 200, 400, 800, 1600, 3200, 6400, 12800]),
    "Watts-Strogatz, k=4, p=0.1": ([100, 200, 400], [100, 200, 400, 800, 1600, 3200, 6400]),
}
PUBLISHED = {  # family: (source, published uncertainty of the exponent)
    "ring (1D)": (LATTICES, 0.0),
    "2D lattice": (LATTICES, 0.0),
    "Erdos-Renyi, <k>=10": (SMALL_WORLD, 0.1),
    "Watts-Strogatz, k=4, p=0.1": (SMALL_WORLD, 0.1),
}


def main():
    args = arguments(__doc__)
    replicas = 8 if args.quick else 32
    numbers = {"sources": [LATTICES, SMALL_WORLD]}
    reproduced = []
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for family, (build, expected, budget) in FAMILIES.items():
        sizes = SIZES[family][0 if args.quick else 1]
        times, rows = [], []
        for n in tqdm(sizes, desc=family):
            game = NamingGame(n, graph=build(n, args.seed))
            steps = int(budget(n)) // n * n
            summary = ensemble(jax.random.key(args.seed), game, replicas, steps, n, until_done=True).summary
            reached = summary["consensus_time"] >= 0
            times.append(summary["consensus_time"][reached].astype(float))
            rows.append({"N": n, "consensus_fraction": float(reached.mean()), "t_conv_mean": float(times[-1].mean())})
        slope, error = loglog_slope(sizes, times)
        numbers[family] = {
            "expected_exponent": expected,
            "fitted_exponent": slope,
            "bootstrap_se": error,
            "replicas": replicas,
            "per_N": rows,
        }
        source, published_se = PUBLISHED[family]
        reproduced.append(
            row(
                f"exponent of the convergence time, {family} (N = {sizes[0]}..{sizes[-1]})",
                expected,
                source,
                slope,
                error,
                published_se=published_se,
            )
        )
        print(family, f"exponent {slope:.2f} +- {error:.2f} (expected {expected})", rows)
        means = np.array([t.mean() for t in times])
        errors = 1.96 * np.array([t.std(ddof=1) / np.sqrt(len(t)) for t in times])
        axis.errorbar(
            sizes, means, np.stack([np.minimum(errors, 0.9 * means), errors]), fmt="o-", capsize=2,
            label=f"{family}: {slope:.2f} ± {error:.2f} (published {expected:g})",
        )  # fmt: skip
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="N (agents)",
        ylabel="time to consensus (interactions)",
        title=f"Naming game on networks: t_conv ~ N^a ({replicas} runs per point, bars: 95% intervals)",
    )
    plain_log_ticks(axis, "x")
    axis.title.set_fontsize(10)
    axis.legend(fontsize=8, title="family: fitted a ± SE", title_fontsize=8, loc="upper center",
                bbox_to_anchor=(0.5, -0.14), ncols=1)  # fmt: skip
    save(args.out, "naming_networks", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
