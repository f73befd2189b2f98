"""The beta naming game: on success inventories collapse only with probability beta.

Baronchelli, Dall'Asta, Barrat & Loreto, PRE 76 051102 (2007): in mean field with two words, consensus is stable
iff beta > 1/3; below, both words coexist in a stable mixed state and consensus takes a time exponential in N.
Here two names (W=2), empty start, complete graph: the fraction of runs at consensus after T population rounds and
the words per agent N_w/N at the end, against beta, for several N (beta is swept: one compiled program per N).
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, crossing_interval, plot_shares, row, save
from tqdm import tqdm

from jaxconv.engine import sweep
from jaxconv.games.naming import NamingGame

SOURCE = "Baronchelli, Dall'Asta, Barrat & Loreto, PRE 76 051102 (2007), mean field with two words"


def main():
    args = arguments(__doc__)
    sizes = [32, 64, 128] if args.quick else [32, 64, 128, 256, 512]
    replicas = 32 if args.quick else 128
    rounds = 300 if args.quick else 1000
    betas = np.array([0.1, 0.2, 0.25, 0.28, 0.3, 0.32, 0.34, 0.36, 0.38, 0.4, 0.5, 0.6])
    curves = {}
    for n in tqdm(sizes, desc="N (sweep over beta)"):
        game = NamingGame(n, vocabulary=2)
        result = sweep(jax.random.key(args.seed), game, {"beta": jnp.asarray(betas)}, replicas, rounds * n, rounds * n)
        reached = result.summary["consensus_time"] >= 0
        words = result.observations["total_words"][:, :, -1] / n
        curves[n] = {
            "beta": betas.tolist(),
            "consensus_fraction": reached.mean(axis=1).tolist(),
            "words_per_agent_at_end": words.mean(axis=1).tolist(),
            "words_per_agent_se": (words.std(axis=1, ddof=1) / np.sqrt(replicas)).tolist(),
        }
        print(n, curves[n]["consensus_fraction"])
    largest = curves[sizes[-1]]
    beta_half, interval = crossing_interval(
        betas, np.asarray(largest["consensus_fraction"]) * replicas, replicas, seed=args.seed
    )
    below = int(np.argmin(np.abs(betas - 0.2)))
    reproduced = [
        row(
            f"beta_c: half the runs at consensus after {rounds} rounds, N={sizes[-1]}, two names",
            1 / 3,
            SOURCE,
            beta_half,
            interval=interval,
            note="finite N and horizon: the crossing approaches 1/3 from below as N grows",
        ),
        row(
            f"words per agent after {rounds} rounds at beta={betas[below]}, N={sizes[-1]}",
            "> 1 (both words coexist below 1/3)",
            SOURCE,
            largest["words_per_agent_at_end"][below],
            largest["words_per_agent_se"][below],
            agree=largest["words_per_agent_at_end"][below] - 3 * largest["words_per_agent_se"][below] > 1,
            note="agree: more than 1 by 3 SE",
        ),
    ]
    numbers = {
        "source": "Baronchelli, Dall'Asta, Barrat & Loreto, PRE 76 051102 (2007)",
        "beta_critical_mean_field": 1 / 3,
        "rounds": rounds,
        "replicas_per_point": replicas,
        "by_N": {str(n): c for n, c in curves.items()},
        "beta_half_consensus (value, 95% interval)": [beta_half, interval],
    }
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for n, c in curves.items():
        plot_shares(left, c["beta"], c["consensus_fraction"], replicas, fmt="o-", ms=3, label=f"N={n}")
        right.errorbar(
            c["beta"], c["words_per_agent_at_end"], 1.96 * np.asarray(c["words_per_agent_se"]), fmt="o-", ms=3,
            capsize=2, label=f"N={n}",
        )  # fmt: skip
    for axis in (left, right):
        axis.axvline(1 / 3, color="k", ls="--", label="1/3 (mean field)")
        axis.set_xlabel("beta (probability that a success collapses the inventories)")
    left.legend(fontsize=8, loc="center right")
    right.legend(fontsize=8, loc="upper right")
    left.set(ylabel=f"fraction of runs at consensus after {rounds} rounds", title="Consensus")
    right.set(ylabel=f"words per agent $N_w/N$ after {rounds} rounds", title="Mixed state below 1/3")
    figure.suptitle(
        f"Naming game with two names, empty start, {replicas} runs per point (bars: 95% intervals); "
        "Baronchelli et al. 2007: consensus iff beta > 1/3",
        fontsize=10,
    )
    save(args.out, "beta_transition", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
