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
from _common import arguments, save
from tqdm import tqdm

from jaxconv.engine import sweep
from jaxconv.games.naming import NamingGame


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
        }
        print(n, curves[n]["consensus_fraction"])
    numbers = {
        "source": "Baronchelli, Dall'Asta, Barrat & Loreto, PRE 76 051102 (2007)",
        "beta_critical_mean_field": 1 / 3,
        "rounds": rounds,
        "replicas_per_point": replicas,
        "by_N": {str(n): c for n, c in curves.items()},
    }
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for n, c in curves.items():
        left.plot(c["beta"], c["consensus_fraction"], "o-", ms=3, label=f"N={n}")
        right.plot(c["beta"], c["words_per_agent_at_end"], "o-", ms=3, label=f"N={n}")
    for axis in (left, right):
        axis.axvline(1 / 3, color="k", ls="--", label="1/3 (mean field)")
        axis.set_xlabel("beta")
        axis.legend(fontsize=8)
    left.set(ylabel=f"fraction at consensus after {rounds} rounds", title="Two names, empty start")
    right.set(ylabel="words per agent at the end", title="Mixed state below 1/3")
    save(args.out, "beta_transition", numbers, figure)


if __name__ == "__main__":
    main()
