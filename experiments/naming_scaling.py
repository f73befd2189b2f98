"""Minimal naming game on the complete graph: the peak of total words N_w^max and its time t_max grow as N^1.5.

Baronchelli, Felici, Loreto, Caglioti & Steels, J. Stat. Mech. P06014 (2006). Reference values (REFERENCE.md,
simulated): t_max ~ 0.60 N^1.5, N_w^max ~ 0.33 N^1.5; t_conv / N^1.5 = 2.51 (N=100), 1.81 (400), 1.46 (1600).
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, loglog_slope, mean_and_error, save
from tqdm import tqdm

from jaxconv.engine import ensemble
from jaxconv.games.naming import NamingGame


def main():
    args = arguments(__doc__)
    sizes = [50, 100, 200, 400] if args.quick else [100, 200, 400, 800, 1600, 3200, 6400]
    replicas = 16 if args.quick else 64
    rows, t_max, n_max, t_conv = [], [], [], []
    for n in tqdm(sizes, desc="N"):
        budget = int(6 * n**1.5) // n * n + n  # whole rounds, beyond the slowest consensus seen at these sizes
        result = ensemble(jax.random.key(args.seed), NamingGame(n), replicas, budget, n, until_done=True)
        summary = result.summary
        reached = summary["consensus_time"] >= 0
        t_max.append(summary["peak_time"].astype(float))
        n_max.append(summary["peak_total_words"].astype(float))
        t_conv.append(summary["consensus_time"][reached].astype(float))
        rows.append(
            {
                "N": n,
                "replicas": replicas,
                "consensus_fraction": float(reached.mean()),
                "t_max_over_N1.5": mean_and_error(t_max[-1] / n**1.5),
                "Nw_max_over_N1.5": mean_and_error(n_max[-1] / n**1.5),
                "t_conv_over_N1.5": mean_and_error(t_conv[-1] / n**1.5),
            }
        )
        print(rows[-1])
    exponents = {name: loglog_slope(sizes, data) for name, data in (("t_max", t_max), ("Nw_max", n_max))}
    exponents["t_conv"] = loglog_slope(sizes, t_conv)
    numbers = {
        "source": "Baronchelli et al., J. Stat. Mech. P06014 (2006)",
        "expected_exponent": 1.5,
        "fitted_exponents (value, bootstrap se)": exponents,
        "per_N": rows,
    }
    print("exponents:", exponents)

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, data, label in (
        (axes[0], t_max, "$t_{max}$"),
        (axes[0], t_conv, "$t_{conv}$"),
        (axes[1], n_max, "$N_w^{max}$"),
    ):
        axis.errorbar(sizes, [d.mean() for d in data], [d.std() for d in data], fmt="o-", label=label)
    for axis in axes:
        axis.plot(sizes, 0.5 * np.array(sizes) ** 1.5, "k--", label="$\\propto N^{1.5}$")
        axis.set(xscale="log", yscale="log", xlabel="N agents")
        axis.legend()
    axes[0].set_ylabel("interactions")
    axes[1].set_ylabel("total words at the peak")
    figure.suptitle(
        f"Naming game, complete graph: exponents t_max {exponents['t_max'][0]:.2f}, "
        f"N_w^max {exponents['Nw_max'][0]:.2f}"
    )
    save(args.out, "naming_scaling", numbers, figure)


if __name__ == "__main__":
    main()
