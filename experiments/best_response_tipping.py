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
from _common import arguments, crossing_interval, plot_shares, row, save
from tqdm import tqdm

from jaxconv.engine import sweep
from jaxconv.games.memory import best_response_game

MEMORIES = [4, 8, 12, 16]
SOURCE = "Centola, Becker, Brackbill & Baronchelli, Science 360:1116 (2018), model with memory M=12"


def main():
    args = arguments(__doc__)
    replicas = 48 if args.quick else 400
    rounds = 100
    fractions = np.round(np.arange(0.10, 0.401, 0.025), 3)
    numbers = {"source": "Centola et al., Science 360:1116 (2018)", "rounds": rounds, "replicas": replicas}
    reproduced = []
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
    for axis, n in zip(axes, (24, 100)):
        counts = np.unique(np.round(fractions * n).astype(int))
        masses = {}
        for memory in tqdm(MEMORIES, desc=f"N={n}"):
            game = best_response_game(n, memory, committed_fraction=0.2)
            result = sweep(
                jax.random.key(args.seed), game, {"n_committed": jnp.asarray(counts)}, replicas, rounds * n, rounds * n
            )
            p = (counts / n).tolist()
            flips = result.summary["flipped"].sum(axis=1)
            mass, interval = crossing_interval(p, flips, replicas, seed=args.seed)
            masses[memory] = mass
            numbers[f"N={n}, M={memory}"] = {
                "p": p,
                "P_flip": (flips / replicas).tolist(),
                "critical_mass_half (value, 95% interval)": [mass, interval],
            }
            plot_shares(axis, p, flips / replicas, replicas, fmt="o-", ms=3, label=f"M={memory}")
            if memory == 12:
                reproduced.append(
                    row(
                        f"critical mass (P(flip) = 1/2 after {rounds} rounds), M=12, N={n}",
                        "about 0.25",
                        SOURCE,
                        mass,
                        interval=interval,
                        agree=interval is not None and interval[0] <= 0.30 and interval[1] >= 0.20,
                        note="agree: our 95% interval meets 0.20-0.30",
                    )
                )
        ordered = [masses[m] for m in MEMORIES]
        reproduced.append(
            row(
                f"critical mass against memory M = {', '.join(map(str, MEMORIES))} (N={n})",
                "larger for longer memory",
                "Centola, Becker, Brackbill & Baronchelli, Science 360:1116 (2018)",
                ", ".join("none" if m is None else f"{m:.3f}" for m in ordered),
                agree=None not in ordered and all(a < b for a, b in zip(ordered, ordered[1:])),
                note="agree: increasing in M",
            )
        )
        axis.axvline(0.25, color="k", ls="--", lw=1, label="25% (Centola et al., M=12)")
        axis.set(xlabel="committed fraction p", title=f"N={n}: P(flip) after {rounds} population rounds")
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=3)
    axes[0].set_ylabel("P(convention flipped: >= 95% of the others play the committed name)")
    axes[0].yaxis.label.set_fontsize(9)
    figure.suptitle(
        f"Best response with memory M (Centola et al. 2018), {replicas} runs per point, bars: 95% intervals",
        fontsize=10,
    )
    print({k: v["critical_mass_half (value, 95% interval)"] for k, v in numbers.items() if isinstance(v, dict)})
    save(args.out, "best_response_tipping", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
