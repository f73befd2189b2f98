"""Mean-field dynamics and tipping points (jaxconv.meanfield) against published values, exact identities, finite
differences and large-N simulations of the same games."""

from math import comb

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import meanfield as mf
from jaxconv.engine import ensemble
from jaxconv.games.memory import MemoryGame, best_response_game
from jaxconv.games.naming import NamingGame
from jaxconv.policies import BestResponse, SoftmaxSurrogate, Uniform
from tests.stats import Z_LIMIT

# a softmax agent for which the prepared convention is bistable at W = 2 names, memory H = 2
SOFTMAX = SoftmaxSurrogate(jnp.zeros(2), win_stay=1.0, lose_shift=1.0, partner_weight=2.0, own_weight=1.0)


def softmax_game(n_agents=24, **kwargs):
    return MemoryGame(n_agents, 2, 2, policy=SOFTMAX, stop=None, **kwargs)


@pytest.fixture(scope="module")
def xie():
    return mf.binary_naming_threshold(1.0)


# ----- naming game ------------------------------------------------------------------------------------------------
def test_xie_threshold_and_saddle_node(xie):
    assert xie["p_c"] == pytest.approx(0.0979, abs=5e-5)  # Xie et al. 2011, mean field from all-A
    model = mf.binary_naming_model(1.0)
    assert float(xie["state"].sum()) == pytest.approx(1 - xie["p_c"], abs=1e-5)
    # a saddle-node: one eigenvalue crosses zero at the fold; below it the A-dominated state is stable
    assert abs(mf.stability(model, xie["state"], xie["p_c"])[0]) < 1e-3
    # just below it the population stays with A, in a stable state; just above it, it flips to B
    rounds = jnp.array([0.0, 400.0])
    below, above = xie["p_c"] - 0.003, xie["p_c"] + 0.003
    stays = mf.integrate(model, model.initial_state(below), below, rounds)[-1]
    flips = mf.integrate(model, model.initial_state(above), above, rounds)[-1]
    assert stays[0] > 0.6 and mf.stability(model, stays, below)[0].real < -1e-3
    assert flips[1] > 0.85


def test_threshold_gradient_in_beta_matches_finite_differences():
    beta, h = 0.9, 0.01
    fold = mf.binary_naming_threshold(beta)
    p_c = fold["p_c_of_beta"]
    assert float(p_c(beta)) == pytest.approx(fold["p_c"], abs=1e-6)
    assert float(jax.grad(p_c)(beta)) == pytest.approx(fold["dp_c_dbeta"])
    finite = (mf.binary_naming_threshold(beta + h)["p_c"] - mf.binary_naming_threshold(beta - h)["p_c"]) / (2 * h)
    assert fold["dp_c_dbeta"] == pytest.approx(finite, rel=2e-3)
    assert fold["dp_c_dbeta"] > 0.05  # collapsing less often lowers the threshold


def test_consensus_stable_iff_beta_above_one_third():
    """Baronchelli et al. 2007: two words, no committed agents, consensus is stable iff beta > 1/3."""
    consensus = jnp.array([1.0, 0.0, 0.0])

    def largest(beta):
        return mf.stability(mf.binary_naming_model(beta), consensus, 0.0)[0].real

    assert largest(0.30) > 0 > largest(0.36)
    low, high = 0.30, 0.36
    for _ in range(20):
        low, high = (low, (low + high) / 2) if largest((low + high) / 2) < 0 else ((low + high) / 2, high)
    assert (low + high) / 2 == pytest.approx(1 / 3, abs=1e-4)


def test_naming_rule_gives_the_expected_pair_changes():
    model = mf.binary_naming_model(1.0)
    changes = np.asarray(eqx.filter_jit(lambda m: m.expected_changes())(model))  # {A}, {B}, {AB}, committed {B}
    assert np.allclose(changes[0, 1], [0, -1, 1])  # A speaks to B: the hearer learns A
    assert np.allclose(changes[2, 2], [1, 1, -2])  # AB to AB: both collapse on the word uttered
    assert np.allclose(changes[2, 3], [0, 0.5, -0.5])  # AB to a committed B: only the speaker changes
    assert np.allclose(changes.sum(axis=-1), 0)  # agents change type, their number does not


# ----- both games: conservation, positivity -----------------------------------------------------------------------
MODELS = {
    "naming beta=0.6": lambda: mf.binary_naming_model(0.6),
    "naming W=3": lambda: mf.NamingMeanField(NamingGame(2, vocabulary=3, beta=0.8, initial="prepared")),
    "memory full": lambda: mf.MemoryMeanField(softmax_game(initial="prepared")),
    "memory partial": lambda: mf.MemoryMeanField(softmax_game(update="hearer")),
}


@pytest.mark.parametrize("name", MODELS)
def test_rhs_conserves_mass_and_keeps_the_simplex(name):
    model = MODELS[name]()
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 8)
    x = rng.dirichlet(np.ones(model.n_types), 8) * (rng.random((8, model.n_types)) < 0.5)
    x = jnp.asarray((1 - p[:, None]) * x / np.maximum(x.sum(axis=1, keepdims=True), 1e-9), jnp.float32)
    velocity = np.asarray(eqx.filter_jit(lambda m, x, p: jax.vmap(m.rhs)(x, p))(model, x, jnp.asarray(p, jnp.float32)))
    assert np.all(np.abs(velocity.sum(axis=1)) < 1e-5)
    assert np.all(velocity[np.asarray(x) == 0] >= -1e-7)  # no flow out of an empty type: x stays >= 0


# ----- against large-N simulations ---------------------------------------------------------------------------------
def assert_agree(simulated, predicted, n_agents, label):
    """Replica means within sampling error plus an O(1/N) allowance."""
    simulated = np.asarray(simulated, float)
    se = simulated.std(axis=0, ddof=1) / np.sqrt(simulated.shape[0])
    gap = np.abs(simulated.mean(axis=0) - predicted)
    assert np.all(gap < Z_LIMIT * se + 3 / n_agents), f"{label}: {simulated.mean(axis=0)} vs {predicted} (se {se})"


def test_naming_mean_field_follows_a_large_simulation():
    n, p, rounds = 2000, 0.06, np.array([2, 4, 6, 8, 10])
    game = NamingGame(
        n, vocabulary=2, committed_fraction=p, committed_mode="converted", initial="prepared", committed_name=1
    )
    runs = ensemble(jax.random.key(0), game, 8, int(rounds[-1]) * n, 2 * n).observations
    n_b = runs["committed_only_agents"] / n
    n_ab = runs["name_holders"][..., 1] / n - p - n_b
    n_a = runs["name_holders"][..., 0] / n - n_ab
    model = mf.binary_naming_model(1.0)
    start = model.initial_state(p)
    predicted = np.stack([np.asarray(mf.integrate(model, start, p, jnp.array([0.0, t])))[-1] for t in rounds])
    assert np.all(predicted >= 0) and np.allclose(predicted.sum(axis=1), 1 - p)
    for column, simulated in enumerate((n_a, n_b, n_ab)):
        assert_agree(simulated, predicted[:, column], n, f"density {column}")


def test_memory_mean_field_follows_a_large_simulation():
    """From empty memories (partially filled windows), 10% committed: the committed name's share of the
    uncommitted agents' choices, round by round."""
    n, p, n_rounds = 2000, 0.1, 8
    game = softmax_game(n, committed_fraction=p)
    runs = ensemble(jax.random.key(1), game, 8, n_rounds * n, n).observations["free_choices"]
    simulated = runs[..., 1] / runs.sum(axis=-1)
    model = mf.MemoryMeanField(game)
    times = jnp.linspace(0, n_rounds, 2 * n_rounds + 1)
    trajectory = mf.integrate(model, model.initial_state(p), p, times)
    assert np.all(np.asarray(trajectory) > -1e-6) and np.allclose(trajectory.sum(axis=1), 1 - p)
    share = np.asarray(trajectory @ model.choice_probabilities()[:, 1])
    per_round = (share[0:-1:2] + 4 * share[1::2] + share[2::2]) / 6 / (1 - p)  # Simpson over each round
    assert_agree(simulated, per_round, n, "committed share of choices")


# ----- memory-game thresholds --------------------------------------------------------------------------------------
MEMORY = 5


def self_consistent_threshold(sharpness):
    """Fold of q = p + (1 - p) f(q) for best response softened at ``sharpness``: at a fixed point the partner
    entries of a window are independent, the committed name with probability q, so f(q) = E[sigmoid(sharpness
    (2k - M))] with k ~ Binomial(M, q) (Centola et al.'s model in mean field, written independently)."""
    q = np.linspace(1e-4, 1 - 1e-4, 400_001)
    f = sum(
        comb(MEMORY, k) * q**k * (1 - q) ** (MEMORY - k) / (1 + np.exp(-sharpness * (2 * k - MEMORY)))
        for k in range(MEMORY + 1)
    )
    return np.max((q - f) / (1 - f))


def soft_best_response_threshold(sharpness):
    game = best_response_game(24, MEMORY)
    return mf.memory_threshold(eqx.tree_at(lambda g: g.policy, game, BestResponse(sharpness=sharpness)))


def test_best_response_threshold_matches_the_self_consistency_equation():
    for sharpness in (2.0, 50.0):  # 50: the exact rule to float precision (M odd: no ties)
        result = soft_best_response_threshold(sharpness)
        assert result["partner_only"] and result["n_types"] == 2**MEMORY
        assert result["p_c"] == pytest.approx(self_consistent_threshold(sharpness), abs=2e-5)


def test_memory_threshold_sensitivity_matches_finite_differences():
    sharpness, h = 2.0, 0.05
    result = soft_best_response_threshold(sharpness)
    gradient = float(result["sensitivities"]["sharpness"])
    p_c = result["p_c_of_policy"]
    assert float(jax.grad(lambda s: p_c(BestResponse(sharpness=s)))(jnp.float32(sharpness))) == pytest.approx(gradient)
    above = soft_best_response_threshold(sharpness + h)["p_c"]
    below = soft_best_response_threshold(sharpness - h)["p_c"]
    assert gradient == pytest.approx((above - below) / (2 * h), rel=0.02)
    independent = (self_consistent_threshold(sharpness + h) - self_consistent_threshold(sharpness - h)) / (2 * h)
    assert gradient == pytest.approx(independent, rel=0.02)


def test_windows_keep_partner_choices_only_when_the_policy_ignores_own_ones():
    def partner_only(policy):
        return mf.MemoryMeanField(MemoryGame(24, 2, 3, policy=policy, initial="prepared")).partner_only

    assert partner_only(BestResponse()) and partner_only(BestResponse(sharpness=2.0)) and partner_only(Uniform())
    assert not partner_only(BestResponse(payoff_weight=0.0))  # reads payoffs, even with weight 0
    assert not partner_only(SoftmaxSurrogate(jnp.zeros(2)))
    # the reduced chain is the exact marginal of the full one
    full = mf.MemoryMeanField(MemoryGame(24, 2, 3, policy=BestResponse(payoff_weight=0.0), initial="prepared"))
    reduced = mf.MemoryMeanField(MemoryGame(24, 2, 3, policy=BestResponse(), initial="prepared"))
    partner_windows = np.asarray(full.partner) @ (2 ** np.arange(2, -1, -1))  # row-major index of partner entries
    marginal = np.eye(reduced.n_types)[partner_windows].T  # (K_reduced, K_full)
    x = jnp.asarray(np.random.default_rng(1).dirichlet(np.ones(full.n_types)) * 0.8, jnp.float32)
    np.testing.assert_allclose(marginal @ full.rhs(x, 0.2), reduced.rhs(marginal @ x, 0.2), atol=1e-6)
