"""Drift fitted to logs: shared, time-local shocks on the choices of a run (:class:`jaxconv.games.memory.Drift`).

In the LLM logs, choices made from the same memory window agree more within a run, and more when close in time,
than one policy of the memory allows (Llama-3.1: a shared shock per block of a few rounds raises the likelihood by
hundreds of log-units; Claude: by almost none). The drift model: choice c of run r in population round t is drawn
from ``tilt(p(. | memory_c), sd * z)`` (:func:`jaxconv.policies.tilt`), ``z ~ N(0, I_W)`` drawn once per block
``(r, t // rounds)`` and shared by the run's agents. Given the memories, the blocks are independent, so

    log L(sd, rounds) = sum over blocks b of log E_z[ prod_{c in b} tilt(p(. | memory_c), sd z)[choice_c] ]

with the expectation over ``NODES`` fixed standard normal draws of z in antithetic pairs (the same for every block
and every sd: a smooth simulated likelihood). The policy is held at its choice-only estimate and only sd is fitted,
for each block length in ``BLOCK_ROUNDS``; :func:`shared_drift` scores each on held-out runs (folds of runs, the gain
in held-out log-likelihood per choice over sd = 0) and selects the block length with the largest gain when that gain
is at least ``SELECT_Z`` standard errors above 0 (the standard error from the spread of the gain over held-out runs:
a gain of a few log-units that some runs carry and others reverse is not kept).
Single-prompt answers (no run time) are left out.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.estimate.likelihood import ChoiceData, state_log_probs
from jaxconv.policies import Policy, tilt

NODES = 128  # standard normal draws of z per block (64 antithetic pairs)
SELECT_Z = 2.0  # a block length is kept when its held-out gain is at least this many standard errors above 0
BLOCK_ROUNDS = (1, 2, 4, 8)  # block lengths (population rounds) tried
MAX_SD = 3.0  # the sd is searched in [0, MAX_SD]


class BlockChoices:
    """The game choices of ``data`` grouped for the drift likelihood: distinct (block, memory window, name) triples
    with their ``count``; ``block`` indexes the blocks, ``block_run`` and ``block_window`` give each block's run and
    its ``round // rounds``."""

    def __init__(self, data: ChoiceData, rounds: int):
        played = data.round >= 0
        run, window = data.run[played], data.round[played] // rounds
        blocks, block = np.unique(np.stack([run, window], axis=1), axis=0, return_inverse=True)
        triples, count = np.unique(
            np.stack([block.ravel(), data.state[played], data.choice[played]], axis=1), axis=0, return_counts=True
        )
        self.block, self.state, self.choice = (triples[:, i] for i in range(3))
        self.count = count.astype(np.float32)
        self.block_run, self.block_window = blocks[:, 0], blocks[:, 1]
        self.n_blocks = len(blocks)
        self.n_choices = int(played.sum())


def block_log_likelihood(log_probs: jax.Array, choices: BlockChoices, sd, nodes: jax.Array, blocks=None):
    """``(n_blocks,)`` marginal log-likelihood of each block's choices (module docstring) given the ``(S, W)``
    log-probabilities of the policy in each memory window; ``nodes`` ``(M, W)`` standard normal draws. ``blocks``:
    a boolean mask of the blocks to count (the others give 0)."""
    probabilities = jnp.exp(log_probs)
    tilted = jax.vmap(lambda z: jax.vmap(lambda p: tilt(p, sd * z))(probabilities))(nodes)  # (M, S, W)
    chosen = jnp.log(tilted[:, choices.state, choices.choice]) * choices.count  # (M, triples)
    per_block = jax.ops.segment_sum(chosen.T, choices.block, num_segments=choices.n_blocks)  # (n_blocks, M)
    values = jax.scipy.special.logsumexp(per_block, axis=1) - jnp.log(nodes.shape[0])
    return values if blocks is None else jnp.where(blocks, values, 0.0)


def drift_nodes(key: jax.Array, n_names: int, n: int = NODES) -> jax.Array:
    """``(n, W)`` standard normal draws in antithetic pairs (z and -z)."""
    half = jax.random.normal(key, (n // 2, n_names))
    return jnp.concatenate([half, -half])


def fit_sd(log_probs, choices: BlockChoices, nodes, blocks=None) -> float:
    """The sd of largest marginal likelihood over the ``blocks`` (mask; None: all), in [0, ``MAX_SD``]."""
    from scipy.optimize import minimize_scalar

    loss = jax.jit(lambda sd: -jnp.sum(block_log_likelihood(log_probs, choices, sd, nodes, blocks)))
    result = minimize_scalar(lambda sd: float(loss(jnp.float32(sd))), bounds=(0.0, MAX_SD), method="bounded")
    return float(result.x) if float(loss(jnp.float32(result.x))) < float(loss(jnp.float32(0.0))) else 0.0


def shared_drift(policy: Policy, data: ChoiceData, *, rounds=BLOCK_ROUNDS, folds: int = 5, seed: int = 0) -> dict:
    """Fit and score the drift of ``policy`` (held at its estimate) on ``data`` (module docstring). Returns per block
    length (``by_rounds``, keyed by the number of rounds): ``sd``, the train and held-out gains in log-likelihood
    per choice over sd = 0 and ``held_out_z`` (the held-out gain over its standard error across runs); the block
    length of the best held-out gain (``best_rounds``); whether it is ``selected`` (``held_out_z`` >= ``SELECT_Z``),
    with its ``rounds`` and
    ``sd`` (None when none is), ``n_runs``, ``n_choices``, ``nodes`` and ``folds``."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    rounds = tuple(rounds)
    if not rounds or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rounds):
        raise ValueError(f"rounds must be integers >= 1, got {list(rounds)}")
    runs = np.unique(data.run[data.round >= 0])
    if len(runs) < folds:
        raise ValueError(f"need at least {folds} runs with game choices, got {len(runs)}")
    log_probs = state_log_probs(policy, data.states, data.n_names)
    nodes = drift_nodes(jax.random.key(seed), data.n_names)
    fold_of_run = np.full(data.n_runs, -1)
    fold_of_run[runs] = np.random.default_rng(seed).permutation(len(runs)) % folds
    by_rounds = {}
    for length in rounds:
        choices = BlockChoices(data, length)
        sd = fit_sd(log_probs, choices, nodes)
        base = block_log_likelihood(log_probs, choices, 0.0, nodes)
        train = float(jnp.sum(block_log_likelihood(log_probs, choices, sd, nodes) - base))
        run_gain = np.zeros(data.n_runs)  # held-out gain of each run, from the fold that held it out
        for k in range(folds):
            test = jnp.asarray(fold_of_run[choices.block_run] == k)
            fold_sd = fit_sd(log_probs, choices, nodes, ~test)
            gain = block_log_likelihood(log_probs, choices, fold_sd, nodes, test) - jnp.where(test, base, 0.0)
            run_gain += np.bincount(choices.block_run, weights=np.asarray(gain, np.float64), minlength=data.n_runs)
        held_out = float(run_gain[runs].sum())
        se = float(np.sqrt(len(runs)) * run_gain[runs].std(ddof=1))
        by_rounds[length] = {
            "sd": round(sd, 4),
            "gain_per_choice": {
                "train": round(train / choices.n_choices, 6),
                "held_out": round(held_out / choices.n_choices, 6),
            },
            "held_out_z": round(held_out / se, 2) if se > 0 else 0.0,
            "blocks": choices.n_blocks,
        }
    best = max(rounds, key=lambda r: by_rounds[r]["gain_per_choice"]["held_out"])
    chosen = best if by_rounds[best]["held_out_z"] >= SELECT_Z else None
    return {
        "by_rounds": by_rounds,
        "best_rounds": best,
        "selected": chosen is not None,
        "rounds": chosen,
        "sd": None if chosen is None else by_rounds[chosen]["sd"],
        "n_runs": int(len(runs)),
        "n_choices": int(np.sum(data.round >= 0)),
        "nodes": NODES,
        "folds": folds,
    }


__all__ = [
    "BLOCK_ROUNDS",
    "NODES",
    "SELECT_Z",
    "BlockChoices",
    "block_log_likelihood",
    "drift_nodes",
    "fit_sd",
    "shared_drift",
]
