"""Policies of the memory games: against the pure-Python reference, tie rule, limits, sampling, errors, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv.policies import BestResponse, LookupTable, Policy, SoftmaxSurrogate, Uniform, memory_view, sample
from tests.reference_memory import policy_probabilities

PAYOFFS = (100.0, -50.0)


def _memory(rng, n_names, memory, fill):
    """Random memory arrays (most recent first, -1 = empty) and the published dict (oldest first)."""
    own = np.full(memory, -1)
    partner = np.full(memory, -1)
    own[:fill], partner[:fill] = rng.integers(0, n_names, fill), rng.integers(0, n_names, fill)
    payoff = np.where(own == partner, *PAYOFFS) * (own >= 0)
    player = {
        "my_history": own[:fill][::-1].tolist(),
        "partner_history": partner[:fill][::-1].tolist(),
        "outcome": payoff[:fill][::-1].tolist(),
    }
    return memory_view(jnp.asarray(own), jnp.asarray(partner), jnp.asarray(payoff, jnp.float32), fill, n_names), player


def _policies(rng, n_names, memory):
    """(jaxconv policy, reference spec) pairs with random parameters."""
    softmax = dict(
        bias=rng.normal(size=n_names).tolist(),
        win_stay=1.5,
        lose_shift=0.7,
        copy_partner=-0.4,
        own_weight=0.3,
        partner_weight=0.8,
        recency=0.6,
        temperature=0.8,
    )
    depth = min(memory, 2)
    table = rng.dirichlet(np.ones(n_names), size=(n_names + 1,) * (2 * depth))
    return [
        (Uniform(), {"kind": "uniform"}),
        (BestResponse(), {"kind": "best-response"}),
        (BestResponse(payoff_weight=0.01), {"kind": "best-response", "payoff_weight": 0.01}),
        (SoftmaxSurrogate(**softmax), {"kind": "softmax", **softmax}),
        (LookupTable(table), {"kind": "lookup", "table": table.tolist(), "depth": depth}),
    ]


@pytest.mark.parametrize("n_names, memory", [(2, 1), (3, 3), (4, 5)])
def test_policies_agree_with_reference(n_names, memory):
    rng = np.random.default_rng(n_names * 10 + memory)
    for policy, spec in _policies(rng, n_names, memory):
        logits = jax.jit(lambda view, policy=policy: policy.logits(view))
        for _ in range(25):
            view, player = _memory(rng, n_names, memory, int(rng.integers(0, memory + 1)))
            expected = policy_probabilities(player, memory, n_names, spec)
            np.testing.assert_allclose(np.exp(logits(view)), expected, atol=2e-6, err_msg=spec["kind"])


def test_best_response_ties_are_uniform_and_empty_memory_is_uniform():
    view = memory_view(jnp.array([0, 1, 2, 2]), jnp.array([0, 1, 1, 0]), jnp.zeros(4), 4, 3)
    np.testing.assert_allclose(np.exp(BestResponse().logits(view)), [0.5, 0.5, 0.0])
    empty = memory_view(jnp.full(4, -1), jnp.full(4, -1), jnp.zeros(4), 0, 3)
    np.testing.assert_allclose(np.exp(BestResponse().logits(empty)), [1 / 3] * 3, rtol=1e-6)


def test_best_response_payoff_weight_breaks_the_tie():
    view = memory_view(jnp.array([0, 1]), jnp.array([0, 1]), jnp.array([100.0, 100.0]), 2, 2)
    mixed = memory_view(jnp.array([0, 0]), jnp.array([0, 1]), jnp.array([100.0, -50.0]), 2, 2)
    np.testing.assert_allclose(np.exp(BestResponse(0.01).logits(view)), [0.5, 0.5])
    np.testing.assert_allclose(np.exp(BestResponse(0.01).logits(mixed)), [1.0, 0.0])  # 1 + 0.5 against 1


def test_best_response_is_the_limit_of_its_softmax():
    view = memory_view(jnp.array([0, 1, 2, 2, 1]), jnp.array([2, 1, 1, 2, 0]), jnp.zeros(5), 5, 3)
    exact = np.exp(BestResponse().logits(view))
    for sharpness, tolerance in ((1.0, 0.3), (10.0, 1e-4), (50.0, 1e-6)):
        soft = np.exp(BestResponse(sharpness=sharpness).logits(view))
        assert np.abs(soft - exact).max() < tolerance
    np.testing.assert_allclose(np.exp(BestResponse(sharpness=1.0).logits(view)), jax.nn.softmax(jnp.array([1, 2, 2])))


def test_softmax_surrogate_terms():
    won = memory_view(jnp.array([1, 0]), jnp.array([1, 0]), jnp.array([100.0, 100.0]), 2, 3)
    lost = memory_view(jnp.array([1, 0]), jnp.array([2, 0]), jnp.array([-50.0, 100.0]), 2, 3)
    zeros = np.zeros(3)

    def probabilities(view, **weights):
        return np.exp(np.asarray(SoftmaxSurrogate(zeros, **weights).logits(view)))

    np.testing.assert_allclose(probabilities(won, win_stay=2.0), jax.nn.softmax(jnp.array([0.0, 2.0, 0.0])), rtol=1e-6)
    np.testing.assert_allclose(probabilities(lost, win_stay=2.0), [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(
        probabilities(lost, lose_shift=1.0), jax.nn.softmax(jnp.array([0.0, 0.0, 1.0])), rtol=1e-6
    )
    np.testing.assert_allclose(
        probabilities(won, copy_partner=1.0), jax.nn.softmax(jnp.array([0.0, 1.0, 0.0])), rtol=1e-6
    )
    decayed = probabilities(lost, own_weight=1.0, recency=0.5, temperature=2.0)
    np.testing.assert_allclose(decayed, jax.nn.softmax(jnp.array([0.5, 1.0, 0.0]) / 2.0), rtol=1e-6)
    biased = np.exp(np.asarray(SoftmaxSurrogate(np.array([0.0, math.log(3.0), 0.0])).logits(won)))
    np.testing.assert_allclose(biased, [0.2, 0.6, 0.2], rtol=1e-6)


def test_lookup_table_reads_the_last_interactions():
    table = np.zeros((3, 3, 2))
    table[..., 0] = 1.0
    table[0, 1] = [0.25, 0.75]  # own 0, partner 1
    table[2, 2] = [0.4, 0.6]  # empty memory
    policy = LookupTable(table)
    assert policy.depth == 1
    recent = memory_view(jnp.array([0, 1]), jnp.array([1, 1]), jnp.zeros(2), 2, 2)
    empty = memory_view(jnp.array([-1, -1]), jnp.array([-1, -1]), jnp.zeros(2), 0, 2)
    np.testing.assert_allclose(np.exp(policy.logits(recent)), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(np.exp(policy.logits(empty)), [0.4, 0.6], rtol=1e-6)
    np.testing.assert_allclose(np.exp(LookupTable([0.3, 0.7]).logits(recent)), [0.3, 0.7], rtol=1e-6)


@pytest.mark.parametrize(
    "policy, message",
    [
        (LookupTable(np.full((3, 2), 0.5)), r"got shape \(3, 2\)"),
        (LookupTable(np.full((3, 3, 3), 1 / 3)), r"got shape \(3, 3, 3\)"),
        (LookupTable(np.full((4, 4, 2), 0.5)), r"got shape \(4, 4, 2\)"),
        (LookupTable(np.full((3,) * 6 + (2,), 0.5)), "H=2"),
        (LookupTable(np.full((3, 3, 2), 0.6)), "sum"),
        (SoftmaxSurrogate(np.zeros(3)), r"shape \(3,\)"),
        (SoftmaxSurrogate(np.zeros(2), temperature=0.0), "temperature"),
        (SoftmaxSurrogate(np.zeros(2), recency=-1.0), "recency"),
        (BestResponse(sharpness=0.0), "sharpness"),
        (BestResponse(payoff_weight=float("nan")), "payoff_weight"),
    ],
)
def test_bad_parameters_name_the_value(policy, message):
    with pytest.raises(ValueError, match=message) as error:
        policy.check(2, 2)
    assert "\n" not in str(error.value)


def test_inverse_cdf_sampling():
    """On a fine grid of uniforms every name is drawn in proportion to its probability; names of probability 0
    are never drawn, not even for u just below 1."""
    p = jnp.array([0.0, 0.2, 0.0, 0.5, 0.3, 0.0])
    grid = (jnp.arange(10_000) + 0.5) / 10_000
    drawn = jax.vmap(sample, in_axes=(None, 0))(p, grid)
    assert drawn.dtype == jnp.int32
    np.testing.assert_allclose(np.bincount(drawn, minlength=6) / 10_000, p, atol=2e-4)
    edges = jnp.array([0.0, 0.2 - 2**-24, 0.2, 1 - 2**-24])
    np.testing.assert_array_equal(jax.vmap(sample, in_axes=(None, 0))(p, edges), [1, 1, 3, 4])
    unnormalised = jax.vmap(sample, in_axes=(None, 0))(10 * p, grid)  # weights need not sum to 1
    np.testing.assert_array_equal(unnormalised, drawn)


def test_probabilities_and_logits_agree():
    """Each policy writes its rule once and inherits the other form: exp(logits) == probabilities."""
    view = memory_view(
        jnp.array([0, 1, 2, 2, 1]), jnp.array([2, 1, 1, 2, 0]), jnp.array([100.0, -50, -50, 100, -50]), 4, 3
    )
    table = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 4))
    policies = [
        Uniform(),
        BestResponse(),
        BestResponse(payoff_weight=0.01, sharpness=2.0),
        SoftmaxSurrogate(np.array([0.1, 0.0, -0.3]), win_stay=1.0, partner_weight=0.5, recency=0.7),
        LookupTable(table),
    ]
    for policy in policies:
        probabilities = np.asarray(policy.probabilities(view))
        np.testing.assert_allclose(np.exp(policy.logits(view)), probabilities, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-6)


def test_a_policy_must_define_its_rule():
    with pytest.raises(TypeError, match="Silent must define logits"):

        class Silent(Policy):
            pass


def test_logits_are_differentiable_in_the_parameters():
    view = memory_view(jnp.array([0, 1, 1]), jnp.array([1, 1, 0]), jnp.array([-50.0, 100.0, -50.0]), 3, 2)
    policies = [
        SoftmaxSurrogate(np.zeros(2), win_stay=1.0, lose_shift=1.0, partner_weight=0.5),
        BestResponse(payoff_weight=0.01, sharpness=3.0),
        LookupTable(np.full((3, 3, 2), 0.5)),
    ]
    for policy in policies:
        grads = jax.grad(lambda p: p.logits(view)[1])(policy)
        leaves = jax.tree.leaves(grads)
        assert leaves and all(np.isfinite(leaf).all() for leaf in leaves)
        assert any(np.abs(leaf).sum() > 0 for leaf in leaves), type(policy).__name__
