"""Minimal naming game on the complete graph: the peak of total words N_w^max and its time t_max grow as N^1.5.

Baronchelli, Felici, Loreto, Caglioti & Steels, J. Stat. Mech. P06014 (2006): exponents 1.5. Prefactors from a
reference simulation of their rules (N=100..12800): t_max ~ 0.60 N^1.5, N_w^max ~ 0.33 N^1.5; t_conv / N^1.5 = 2.51
(N=100), 1.81 (400), 1.46 (1600), 1.28 (6400) (a slow drift: the exponent is fitted on t_max and N_w^max).
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, loglog_slope, mean_and_error, plain_log_ticks, row, save
from tqdm import tqdm

from jaxconv.engine import ensemble
from jaxconv.games.naming import NamingGame

PAPER = "Baronchelli et al., J. Stat. Mech. P06014 (2006)"
SIMULATED = "reference simulation of the rules of Baronchelli et al., J. Stat. Mech. P06014 (2006)"
FITTED = "the reference prefactor is fitted over N = 100..12800"
T_CONV_REFERENCE = {100: 2.51, 400: 1.81, 1600: 1.46, 6400: 1.28}  # t_conv / N^1.5


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
    largest = rows[-1]
    reproduced = [
        row(
            f"exponent of t_max (N = {sizes[0]}..{sizes[-1]})", 1.5, PAPER, exponents["t_max"][0], exponents["t_max"][1]
        ),
        row(
            f"exponent of N_w^max (N = {sizes[0]}..{sizes[-1]})",
            1.5,
            PAPER,
            exponents["Nw_max"][0],
            exponents["Nw_max"][1],
        ),
        row(f"t_max / N^1.5 at N={largest['N']}", 0.60, SIMULATED, *largest["t_max_over_N1.5"], note=FITTED),
        row(f"N_w^max / N^1.5 at N={largest['N']}", 0.33, SIMULATED, *largest["Nw_max_over_N1.5"], note=FITTED),
    ]
    for r in rows:
        if r["N"] in T_CONV_REFERENCE:
            reproduced.append(
                row(f"t_conv / N^1.5 at N={r['N']}", T_CONV_REFERENCE[r["N"]], SIMULATED, *r["t_conv_over_N1.5"])
            )

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, data, label in (
        (axes[0], t_max, "$t_{max}$ (peak of $N_w$)"),
        (axes[0], t_conv, "$t_{conv}$ (consensus)"),
        (axes[1], n_max, "$N_w^{max}$"),
    ):
        means = np.array([d.mean() for d in data])
        errors = np.array([d.std(ddof=1) / np.sqrt(len(d)) for d in data])
        axis.errorbar(sizes, means, 1.96 * errors, fmt="o-", capsize=2, label=label)
    axes[0].plot(sizes, 0.60 * np.array(sizes) ** 1.5, "k--", label="$0.60\\,N^{1.5}$ (reference $t_{max}$)")
    axes[1].plot(sizes, 0.33 * np.array(sizes) ** 1.5, "k--", label="$0.33\\,N^{1.5}$ (reference)")
    for axis in axes:
        axis.set(xscale="log", yscale="log", xlabel="N (agents)")
        plain_log_ticks(axis, "x", sizes)
        axis.legend(loc="upper left", fontsize=9)
    axes[0].set(ylabel="time (interactions)", title="Peak and consensus times")
    axes[1].set(ylabel="total words at the peak $N_w^{max}$", title="Peak of the total number of words")
    figure.suptitle(
        f"Naming game, complete graph, {replicas} runs per N (bars: 95% intervals)\nfitted exponents "
        f"t_max {exponents['t_max'][0]:.2f} ± {exponents['t_max'][1]:.2f}, "
        f"N_w^max {exponents['Nw_max'][0]:.2f} ± {exponents['Nw_max'][1]:.2f} (Baronchelli et al. 2006: 1.5)",
        fontsize=10,
    )
    save(args.out, "naming_scaling", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
