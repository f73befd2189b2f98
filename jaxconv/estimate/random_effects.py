"""Per-run random effects on the first move: heterogeneity between runs that one shared policy cannot express.

In the LLM logs the share of a name among the first moves (answers from an empty memory) varies between runs more
than binomial sampling allows (Llama-3.1, W=2: per-run P(M | empty) from 0.21 to 0.88). A hierarchical policy gives
each run its own first-move bias, ``first_bias + sd * z_r`` with ``z_r ~ N(0, I_W)`` drawn once per run and shared
by its agents; everything else is the fitted policy. Given the memories, no other choice depends on ``z_r``, so the
rest of the choice likelihood is unchanged and the hierarchical part is the marginal likelihood of each run's first
moves:

    log L(first_bias, sd) = sum_r log E_z[ prod_w p_w(first_bias + sd z)^(n_rw) ]

with ``n_rw`` the run's first moves naming w. The expectation is over ``NODES`` fixed standard normal draws of z
(the same for every run and every value: a smooth simulated likelihood). :func:`first_move_effect` fits ``sd``
(and ``first_bias`` when the policy has one; otherwise the first move uses the shared ``bias``, which the other
choices also inform, and only ``sd`` is fitted) and scores it on held-out runs: folds of runs, the gain per first
move in held-out log-likelihood over ``sd`` = 0; the effect is ``selected`` when that gain is positive.
:func:`run_policies` gives one policy per draw of z, to be mixed in predictions (replicas split among them).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.estimate.likelihood import ChoiceData
from jaxconv.policies import Policy, memory_view

NODES = 256  # standard normal draws of z per evaluation of the marginal likelihood


def first_move_counts(data: ChoiceData) -> np.ndarray:
    """``(n_runs, W)`` number of first moves (empty-memory choices) of each name in each run."""
    empty = np.asarray(data.states.fill)[data.state] == 0
    counts = np.zeros((data.n_runs, data.n_names))
    np.add.at(counts, (data.run[empty], data.choice[empty]), 1.0)
    return counts


def shifted(policy: Policy, shift) -> Policy:
    """``policy`` whose first-move bias (``first_bias``, or ``bias`` when it has none) is moved by ``shift``
    ``(W,)``: the first move of a run with random effect ``shift``."""
    base = policy.bias if policy.first_bias is None else policy.first_bias
    return eqx.tree_at(lambda p: p.first_bias, policy, base + jnp.asarray(shift), is_leaf=lambda x: x is None)


def _empty_log_probs(policy: Policy, first_bias, shifts) -> jax.Array:
    """``(M, W)`` log-probabilities of the first move with ``first_bias + shifts[m]``."""
    n_names = first_bias.shape[0]
    h = 1
    view = memory_view(-jnp.ones(h, jnp.int32), -jnp.ones(h, jnp.int32), jnp.zeros(h), jnp.int32(0), n_names)

    def one(shift):
        moved = eqx.tree_at(lambda p: p.first_bias, policy, first_bias + shift, is_leaf=lambda x: x is None)
        return moved.logits(view)

    return jax.vmap(one)(shifts)


def marginal_log_likelihood(policy: Policy, first_bias, sd, counts, nodes) -> jax.Array:
    """``(n_runs,)`` log of each run's first-move likelihood averaged over the random effect ``sd * nodes[m]``
    (``nodes`` ``(M, W)``; ``counts`` ``(n_runs, W)``)."""
    log_probs = _empty_log_probs(policy, jnp.asarray(first_bias), sd * nodes)  # (M, W)
    per_node = jnp.asarray(counts, jnp.float32) @ log_probs.T  # (n_runs, M)
    return jax.scipy.special.logsumexp(per_node, axis=1) - jnp.log(nodes.shape[0])


def fit_effect(policy: Policy, counts: np.ndarray, nodes, free_first: bool) -> tuple[np.ndarray, float]:
    """Maximum marginal likelihood ``(first_bias (W,), sd)`` of the first moves ``counts`` ``(n_runs, W)``, the
    expectation over ``nodes`` ``(M, W)`` standard normal draws; ``first_bias`` is the policy's own unless
    ``free_first`` (L-BFGS-B from sd = 0.3, sd fitted on the log scale)."""
    from scipy.optimize import minimize

    base = np.asarray(policy.bias if policy.first_bias is None else policy.first_bias, np.float64)

    @jax.jit
    def loss_and_grad(x):
        def loss(x):
            first = x[:-1] if free_first else jnp.asarray(base, jnp.float32)
            return -jnp.sum(marginal_log_likelihood(policy, first, jnp.exp(x[-1]), counts, nodes))

        return jax.value_and_grad(loss)(x)

    start = np.append(base, np.log(0.3)) if free_first else np.array([np.log(0.3)])

    def objective(x):
        value, grad = loss_and_grad(jnp.asarray(x, jnp.float32))
        return float(value), np.asarray(grad, np.float64)

    bounds = [(None, None)] * (len(start) - 1) + [(-8.0, 2.0)]  # sd from 3e-4 to 7.4
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    first = result.x[:-1] if free_first else base
    return first, float(np.exp(result.x[-1]))


def first_move_effect(policy: Policy, data: ChoiceData, *, folds: int = 5, seed: int = 0) -> dict:
    """Fit and score the per-run random first-move bias of ``policy`` (a softmax policy) on ``data`` (module
    docstring). Returns ``sd``, ``first_bias`` (per name), the train and held-out gains in log-likelihood per first
    move over ``sd`` = 0, ``selected`` (held-out gain > 0), ``n_runs`` and ``n_first_moves``."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    counts = first_move_counts(data)
    runs = np.flatnonzero(counts.sum(axis=1) > 0)
    if len(runs) < folds:
        raise ValueError(f"need at least {folds} runs with first moves, got {len(runs)}")
    nodes = jax.random.normal(jax.random.key(seed), (NODES, data.n_names))
    free_first = policy.first_bias is not None

    first, sd = fit_effect(policy, counts[runs], nodes, free_first)
    # held-out: sd = 0 keeps the fitted policy's own first move (fitted on every run, the held-out ones included: this
    # favours sd = 0); the effect refits first_bias and sd without the fold
    fold = np.random.default_rng(seed).permutation(len(runs)) % folds
    held_out = 0.0
    base = np.asarray(policy.bias if policy.first_bias is None else policy.first_bias)
    for k in range(folds):
        train_rows, test_rows = runs[fold != k], runs[fold == k]
        fold_first, fold_sd = fit_effect(policy, counts[train_rows], nodes, free_first)
        with_effect = marginal_log_likelihood(policy, fold_first, fold_sd, counts[test_rows], nodes)
        without = marginal_log_likelihood(policy, base, 0.0, counts[test_rows], nodes)
        held_out += float(jnp.sum(with_effect) - jnp.sum(without))
    n_first = float(counts.sum())
    train = float(
        jnp.sum(marginal_log_likelihood(policy, first, sd, counts[runs], nodes))
        - jnp.sum(marginal_log_likelihood(policy, base, 0.0, counts[runs], nodes))
    )
    return {
        "sd": round(sd, 4),
        "first_bias": dict(zip(data.names, np.round(first, 4).tolist(), strict=True)),
        "first_bias_fitted": free_first,
        "gain_per_first_move": {"train": round(train / n_first, 5), "held_out": round(held_out / n_first, 5)},
        "selected": held_out > 0,
        "n_runs": int(len(runs)),
        "n_first_moves": int(n_first),
        "nodes": NODES,
        "folds": folds,
    }


def run_policies(policy: Policy, sd: float, key: jax.Array, n: int) -> list[Policy]:
    """``n`` policies, one per draw of a run's random effect ``sd * z`` on the first move (``z ~ N(0, I_W)``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, got {sd!r}")
    width = (policy.bias if policy.first_bias is None else policy.first_bias).shape[0]
    z = jax.random.normal(key, (n, width))
    return [shifted(policy, sd * row) for row in z]


__all__ = [
    "NODES",
    "first_move_counts",
    "first_move_effect",
    "fit_effect",
    "marginal_log_likelihood",
    "run_policies",
    "shifted",
]
