"""Naming game with a finite pool of W names, N=24: success rate per population round and consensus time.

The minimal model used as the baseline for LLM populations (Ashery, Aiello & Baronchelli, Sci. Adv. 11
eadu9368, 2025). Two variants: the LLM-paper baseline (an empty speaker utters a drawn name but does not keep it;
the authors' code) and the standard one (it keeps it). Compared with a reference simulation of these rules (20,000
runs; consensus time SE about 0.04 rounds), e.g. baseline W=10: success .057/.475/.781/.930/.980 at rounds
1/5/10/15/20 and mean consensus time 13.5 rounds.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, mean_and_error, row, save

from jaxconv.engine import ensemble
from jaxconv.games.naming import NamingGame

N_AGENTS = 24
REFERENCE = {  # (variant, W): success at rounds 1, 5, 10, 15, 20 and mean consensus time in rounds
    ("forgets", 10): ([0.057, 0.475, 0.781, 0.930, 0.980], 13.5),
    ("forgets", 2): ([0.227, 0.782, 0.927, 0.979, 0.994], 9.3),
    ("forgets", 26): ([0.029, 0.389, 0.723, 0.907, 0.972], 14.6),
    ("keeps", 10): ([0.112, 0.507, 0.796, 0.934, 0.980], 13.25),
    ("keeps", 2): ([0.332, 0.785, 0.929, 0.980, 0.994], 9.2),
}
ROUNDS = [1, 5, 10, 15, 20]
REFERENCE_RUNS = 20000
REFERENCE_TIME_SE = 0.04
SOURCES = {  # reference simulations of each variant's published rules, 20,000 runs
    "forgets": "reference simulation of the baseline of Ashery, Aiello & Baronchelli, Sci. Adv. (2025), 20,000 runs",
    "keeps": "reference simulation of the naming game of Baronchelli et al. (2006) with W names, 20,000 runs",
}


def main():
    args = arguments(__doc__)
    replicas = 2000 if args.quick else 20000
    n_rounds = 80
    numbers = {"source": "Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368 (2025)", "runs": []}
    reproduced = []
    figure, (curves, times) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    for index, ((variant, names), (reference_success, reference_time)) in enumerate(REFERENCE.items()):
        game = NamingGame(N_AGENTS, vocabulary=names, empty_speaker=variant)
        result = ensemble(jax.random.key(args.seed), game, replicas, n_rounds * N_AGENTS, N_AGENTS)
        per_run = np.diff(result.observations["successes"], axis=1, prepend=0) / N_AGENTS  # (replicas, rounds)
        success = per_run.mean(axis=0)
        success_se = per_run.std(axis=0, ddof=1) / np.sqrt(replicas)
        times_ = result.summary["consensus_time"]
        reached = times_ >= 0
        label = "baseline (forgets)" if variant == "forgets" else "standard (keeps)"
        consensus = mean_and_error(times_[reached] / N_AGENTS)
        row_ = {
            "variant": label,
            "W": names,
            "replicas": replicas,
            "consensus_fraction_within_80_rounds": float(reached.mean()),
            "mean_consensus_rounds (mean, se)": consensus,
            "reference_mean_consensus_rounds": reference_time,
            "success_at_rounds": {r: round(float(success[r - 1]), 4) for r in ROUNDS},
            "success_se_at_rounds": {r: round(float(success_se[r - 1]), 5) for r in ROUNDS},
            "reference_success_at_rounds": dict(zip(ROUNDS, reference_success, strict=True)),
        }
        numbers["runs"].append(row_)
        print(row_)
        setting = f"{label}, W={names}, N={N_AGENTS}"
        reproduced.append(
            row(
                f"mean consensus time (population rounds), {setting}",
                reference_time,
                SOURCES[variant],
                consensus[0],
                consensus[1],
                published_se=REFERENCE_TIME_SE,
            )
        )
        # the reference's SE of a success rate: ours scaled to its 20,000 runs
        reproduced.append(
            row(
                f"success rate in population round 5, {setting}",
                reference_success[1],
                SOURCES[variant],
                float(success[4]),
                float(success_se[4]),
                published_se=float(success_se[4]) * np.sqrt(replicas / REFERENCE_RUNS),
            )
        )
        rounds = np.arange(1, 31)
        line = curves.plot(rounds, success[:30], label=setting.removesuffix(f", N={N_AGENTS}"))[0]
        curves.fill_between(
            rounds, success[:30] - 1.96 * success_se[:30], success[:30] + 1.96 * success_se[:30],
            color=line.get_color(), alpha=0.3, lw=0,
        )  # fmt: skip
        curves.plot(ROUNDS, reference_success, "x", color=line.get_color(), ms=7)
        times.errorbar(index, consensus[0], 1.96 * consensus[1], fmt="o", color=line.get_color(), capsize=3)
        times.plot(index, reference_time, "kx", ms=8)
    curves.plot([], [], "kx", label="reference simulation (20,000 runs)")
    curves.set(
        xlabel="population round (N interactions)",
        ylabel="success rate in the round",
        title=f"Success per round ({replicas} runs; bands: 95% intervals)",
        ylim=(0, 1.02),
    )
    curves.legend(fontsize=8, loc="lower right")
    times.set_xticks(range(len(REFERENCE)))
    times.set_xticklabels([f"{'baseline' if v == 'forgets' else 'standard'}\nW={w}" for v, w in REFERENCE], fontsize=8)
    times.set(ylabel="mean consensus time (population rounds)", title="Consensus time (x: reference; bars: 95%)")
    figure.suptitle(f"Naming game with a finite pool of W names, N={N_AGENTS} (Ashery et al. 2025 baseline)")
    save(args.out, "finite_pool", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
