"""The LLM naming-game protocol with model agents: collective bias from nearly unbiased individuals.

Protocol of Ashery, Aiello & Baronchelli (Sci. Adv. 11 eadu9368, 2025): N=24 agents, memory of the last H=5
interactions (own name, partner's name, payoff +100 / -50), both agents of a random pair answer at once, a run
stops when the last 3N interactions all succeeded. Agents here are (a) best responders and (b) a biased softmax
surrogate of an LLM (win-stay, lose-shift, attraction to the partners' names, and a bias b on name "M" that makes
a single agent with empty memory pick M with probability sigmoid(b)). Reported for W=2 and W=10: winner
distribution, success per round, stop time; and how the collective bias (share of runs won by M) grows with the
individual bias (swept: one compiled program).
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import arguments, binomial_se, mean_and_error, plot_shares, row, save

from jaxconv.engine import ensemble, sweep
from jaxconv.games.memory import MemoryGame
from jaxconv.policies import BestResponse, SoftmaxSurrogate

N_AGENTS, MEMORY, MAX_ROUNDS = 24, 5, 200
SOURCE = "Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368 (2025): strong collective bias, P(M) alone .49-.51"
NAMES = {2: ["Q", "M"], 10: ["Q", "M", "X", "Y", "F", "J", "P", "R", "C", "D"]}


def softmax_agent(n_names, p_m_alone):
    """Biased softmax surrogate whose empty-memory choice is M with probability ``p_m_alone`` against any
    other single name."""
    bias = np.zeros(n_names)
    bias[1] = np.log(p_m_alone / (1 - p_m_alone))
    return SoftmaxSurrogate(bias, win_stay=4.0, lose_shift=4.0, partner_weight=1.0)


def main():
    args = arguments(__doc__)
    replicas = 2000 if args.quick else 10000
    key = jax.random.key(args.seed)
    steps = MAX_ROUNDS * N_AGENTS
    numbers = {"source": "Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368 (2025)", "replicas": replicas}
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for n_names, style in ((2, "-"), (10, "--")):
        for label, policy in (("best response", BestResponse()), ("softmax, P(M)=0.51", softmax_agent(n_names, 0.51))):
            game = MemoryGame(N_AGENTS, n_names, MEMORY, policy=policy)
            result = ensemble(key, game, replicas, steps, N_AGENTS)
            stop = result.summary["stop_time"]
            stopped = stop >= 0
            winners = np.bincount(result.summary["winner"][stopped], minlength=n_names)
            # success rate among the interactions played in each round (ended runs play none), and its SE as a
            # ratio of sums over independent runs
            played = np.diff(result.observations["interactions"], axis=1, prepend=0)  # (replicas, rounds)
            successes = np.diff(result.observations["successes"], axis=1, prepend=0)
            total = np.maximum(played.sum(axis=0), 1)
            success = np.where(played.sum(axis=0) > 0, successes.sum(axis=0) / total, np.nan)
            success_se = (successes - success * played).std(axis=0, ddof=1) * np.sqrt(replicas) / total
            numbers[f"W={n_names}, {label}"] = {
                "stopped_fraction": float(stopped.mean()),
                "stop_rounds (mean, se)": mean_and_error(stop[stopped] / N_AGENTS),
                "winner_counts (stopped runs)": dict(zip(NAMES[n_names], winners.tolist())),
                "success_by_round": [None if np.isnan(x) else round(float(x), 4) for x in success[:30]],
            }
            line = axes[0].plot(np.arange(1, 31), success[:30], style, label=f"W={n_names}, {label}")[0]
            axes[0].fill_between(
                np.arange(1, 31),
                np.clip(success[:30] - 1.96 * success_se[:30], 0, 1),
                np.clip(success[:30] + 1.96 * success_se[:30], 0, 1),
                color=line.get_color(),
                alpha=0.25,
                lw=0,
            )
            axes[1].hist(
                stop[stopped] / N_AGENTS,
                bins=np.arange(0, 80, 2),
                histtype="step",
                ls=style,
                label=f"W={n_names}, {label}",
            )
    axes[0].set(
        xlabel="population round (N interactions)",
        ylabel="success rate (runs not yet stopped)",
        title="Success per round (bands: 95%)",
        ylim=(0, 1.02),
    )
    axes[1].set(
        xlabel="stop time (population rounds)",
        ylabel=f"runs (of {replicas}) per 2 rounds",
        title="Stop time: the last 3N interactions succeeded",
    )
    for axis in axes[:2]:
        axis.legend(fontsize=7, loc="lower right" if axis is axes[0] else "upper right")

    individual = np.array([0.5, 0.51, 0.52, 0.54, 0.57, 0.6])
    numbers["collective_vs_individual_bias"] = {}
    swept = replicas // 4
    reproduced = []
    for n_names in (2, 10):
        game = MemoryGame(N_AGENTS, n_names, MEMORY, policy=softmax_agent(n_names, 0.5))
        biases = jnp.stack([softmax_agent(n_names, p).bias for p in individual])
        result = sweep(key, game, {"policy.bias": biases}, swept, steps, steps, until_done=True)
        won_by_m = (result.summary["winner"] == 1).mean(axis=1)
        numbers["collective_vs_individual_bias"][f"W={n_names}"] = {
            "individual_P_M_vs_one_other": individual.tolist(),
            "P_M_wins": won_by_m.tolist(),
        }
        plot_shares(axes[2], individual, won_by_m, swept, fmt="o-", label=f"W={n_names}")
        if n_names == 2:
            at = int(np.flatnonzero(individual == 0.51)[0])
            share, se = float(won_by_m[at]), binomial_se(float(won_by_m[at]), swept)
            reproduced.append(
                row(
                    "collective bias from a weak individual one: share of runs won by M, W=2, agents with "
                    "P(M) = 0.51 alone (softmax surrogate, N=24, H=5)",
                    "well above the individual 0.51",
                    SOURCE,
                    share,
                    se,
                    agree=share - 3 * se > 0.51,
                    note="agree: above 0.51 by 3 SE",
                )
            )
    axes[2].plot([0.5, 0.6], [0.5, 0.6], "k:", label="no amplification (W=2)")
    axes[2].set(
        xlabel="individual P(M) with empty memory (vs one other name)",
        ylabel="share of runs won by M",
        title=f"Collective vs individual bias ({swept} runs/point, 95%)",
    )
    axes[2].legend(fontsize=8, loc="upper left")
    figure.suptitle(
        f"LLM protocol (Ashery et al. 2025) with model agents: N={N_AGENTS}, memory H={MEMORY}, {replicas} runs",
        fontsize=11,
    )
    print({k: v for k, v in numbers.items() if k.startswith("W=")})
    print(numbers["collective_vs_individual_bias"])
    save(args.out, "llm_protocol", numbers, figure, reproduced)


if __name__ == "__main__":
    main()
