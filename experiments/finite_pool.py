"""Naming game with a finite pool of W names, N=24: success rate per population round and consensus time.

The minimal model used as the baseline for LLM populations (Ashery, Aiello & Baronchelli, Sci. Adv. 11
eadu9368, 2025). Two variants: the LLM-paper baseline (an empty speaker utters a drawn name but does not keep it)
and the standard one (it keeps it). REFERENCE.md (simulated, 20,000 runs; SE about 0.04 rounds) gives, e.g.,
baseline W=10: success .057/.475/.781/.930/.980 at rounds 1/5/10/15/20 and mean consensus time 13.5 rounds.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, mean_and_error, save

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


def main():
    args = arguments(__doc__)
    replicas = 2000 if args.quick else 20000
    n_rounds = 80
    numbers = {"source": "Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368 (2025); REFERENCE.md", "runs": []}
    figure, axis = plt.subplots(figsize=(6, 4))
    for (variant, names), (reference_success, reference_time) in REFERENCE.items():
        game = NamingGame(N_AGENTS, vocabulary=names, empty_speaker=variant)
        result = ensemble(jax.random.key(args.seed), game, replicas, n_rounds * N_AGENTS, N_AGENTS)
        success = np.diff(result.observations["successes"], axis=1, prepend=0).mean(axis=0) / N_AGENTS
        times = result.summary["consensus_time"]
        reached = times >= 0
        row = {
            "variant": "baseline (forgets)" if variant == "forgets" else "standard (keeps)",
            "W": names,
            "replicas": replicas,
            "consensus_fraction_within_80_rounds": float(reached.mean()),
            "mean_consensus_rounds (mean, se)": mean_and_error(times[reached] / N_AGENTS),
            "reference_mean_consensus_rounds": reference_time,
            "success_at_rounds": {r: round(float(success[r - 1]), 4) for r in ROUNDS},
            "reference_success_at_rounds": dict(zip(ROUNDS, reference_success, strict=True)),
        }
        numbers["runs"].append(row)
        print(row)
        line = axis.plot(np.arange(1, 31), success[:30], label=f"{row['variant']}, W={names}")[0]
        axis.plot(ROUNDS, reference_success, "x", color=line.get_color())
    axis.set(
        xlabel="population round (N interactions)",
        ylabel="success rate",
        title=f"Finite pool naming game, N={N_AGENTS} (x: REFERENCE.md)",
    )
    axis.legend(fontsize=8)
    save(args.out, "finite_pool", numbers, figure)


if __name__ == "__main__":
    main()
