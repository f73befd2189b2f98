"""Critical mass in the best-response model of Centola, Becker, Brackbill & Baronchelli (Science 360:1116, 2018).

Every agent remembers its partners' last M plays and plays the most frequent name (ties at random); after an
interaction only the hearer updates its memory. The population starts on name 0 (memories full of 0); a committed
fraction p always plays name 1. Reported: the probability that the convention flipped (>= 95% of the
non-committed agents' latest choices are name 1) after T population rounds, against p, for M = 4, 8, 12, 16 at
N = 24 and N = 100. The paper: M = 12 gives a critical mass near 25% (as in their human groups), longer memory a
larger one. p is swept in one compiled program per (N, M).
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, save
from _common import crossing as _crossing
from tqdm import tqdm

from jaxconv.engine import sweep
from jaxconv.games.memory import best_response_game

MEMORIES = [4, 8, 12, 16]


def main():
    args = arguments(__doc__)
    replicas = 48 if args.quick else 400
    rounds = 100
    fractions = np.round(np.arange(0.10, 0.401, 0.025), 3)
    numbers = {"source": "Centola et al., Science 360:1116 (2018)", "rounds": rounds, "replicas": replicas}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, n in zip(axes, (24, 100)):
        counts = np.unique(np.round(fractions * n).astype(int))
        for memory in tqdm(MEMORIES, desc=f"N={n}"):
            game = best_response_game(n, memory, committed_fraction=0.2)
            result = sweep(
                jax.random.key(args.seed), game, {"n_committed": jnp.asarray(counts)}, replicas, rounds * n, rounds * n
            )
            p = (counts / n).tolist()
            flipped = result.summary["flipped"].mean(axis=1).tolist()
            numbers[f"N={n}, M={memory}"] = {"p": p, "P_flip": flipped, "critical_mass_half": _crossing(p, flipped)}
            axis.plot(p, flipped, "o-", ms=3, label=f"M={memory}")
        axis.axvline(0.25, color="k", ls="--", lw=1, label="25%")
        axis.set(xlabel="committed fraction p", title=f"N={n}, {rounds} rounds")
        axis.legend(fontsize=8)
    axes[0].set_ylabel("P(convention flipped)")
    print({k: v["critical_mass_half"] for k, v in numbers.items() if isinstance(v, dict)})
    save(args.out, "best_response_tipping", numbers, figure)


if __name__ == "__main__":
    main()
