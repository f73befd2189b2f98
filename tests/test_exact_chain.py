"""The exact Markov-chain oracle (jaxconv.exact): stochastic transitions, agreement with Monte Carlo of the
hard simulator, exact gradients against finite differences, and cases computed by hand."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import exact as ec
from jaxconv.engine import ensemble
from jaxconv.games.memory import MemoryGame
from jaxconv.games.naming import NamingGame
from jaxconv.policies import BestResponse, LookupTable, SoftmaxSurrogate, Uniform
from tests.stats import assert_means_agree, assert_proportion

SOFTMAX = dict(win_stay=1.5, lose_shift=1.0, partner_weight=0.5, recency=0.5)
BIAS = [0.3, -0.2]
LOOKUP = [[[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]], [[0.2, 0.8], [0.02, 0.98], [0.5, 0.5]], [[0.7, 0.3]] * 3]

MEMORY_CASES = [
    ("both empty", SoftmaxSurrogate(BIAS, **SOFTMAX), dict(n_agents=3, memory=2)),
    ("both empty lumped", SoftmaxSurrogate(BIAS, **SOFTMAX), dict(n_agents=3, memory=2, lump=True)),
    ("hearer committed", BestResponse(0.01), dict(n_agents=3, memory=2, update="hearer", committed=1)),
    (
        "prepared committed lookup",
        LookupTable(LOOKUP),
        dict(n_agents=4, memory=1, initial="prepared", committed=1, committed_name=1),
    ),
    ("uniform N=4 lumped", Uniform(), dict(n_agents=4, memory=1, update="hearer", lump=True)),
]
NAMING_CASES = [
    ("prepared committed", dict(n_agents=5, committed=1)),
    ("prepared committed lumped", dict(n_agents=6, committed=2, lump=True)),
    ("empty keeps", dict(n_agents=4, initial="empty")),
    ("empty forgets committed", dict(n_agents=4, initial="empty", empty_speaker="forgets", committed=1)),
]
MEMORY_OPTIONS = ("update", "committed", "committed_name", "initial", "prepared_name")


def _memory_kwargs(config):
    return {k: v for k, v in config.items() if k in MEMORY_OPTIONS}


# ----- (a) the chains are stochastic ----------------------------------------------------------------------------
@pytest.mark.parametrize("label, policy, config", MEMORY_CASES, ids=[c[0] for c in MEMORY_CASES])
def test_memory_transitions_sum_to_one(label, policy, config):
    chain = ec.memory_chain(**config)
    prob = ec.memory_transition_probabilities(chain, policy, committed_name=config.get("committed_name", 1))
    out = np.asarray(jax.ops.segment_sum(prob, chain.src, num_segments=chain.n_states))
    assert np.all(np.asarray(prob) >= 0), label
    np.testing.assert_allclose(out, 1.0, atol=1e-5, err_msg=label)
    assert np.all(np.bincount(chain.src, minlength=chain.n_states) > 0), label  # every state has moves


@pytest.mark.parametrize("label, config", NAMING_CASES, ids=[c[0] for c in NAMING_CASES])
def test_naming_transitions_sum_to_one(label, config):
    chain = ec.naming_chain(**config)
    for beta in (0.0, 0.37, 1.0):
        prob = ec.naming_transition_probabilities(chain, beta)
        out = np.asarray(jax.ops.segment_sum(prob, chain.src, num_segments=chain.n_states))
        assert np.all(np.asarray(prob) >= 0), label
        np.testing.assert_allclose(out, 1.0, atol=1e-6, err_msg=f"{label} beta={beta}")


def test_lumped_chains_equal_labelled_ones():
    """Merging permutations of the non-committed agents is exact for the symmetric observables."""
    policy = SoftmaxSurrogate(BIAS, **SOFTMAX)
    for observable in ("pushed_share", "flip", "success_rate"):
        labelled = ec.memory_chain_expectation(policy, 3, 2, 10, observable)
        lumped = ec.memory_chain_expectation(policy, 3, 2, 10, observable, lump=True)
        np.testing.assert_allclose(lumped, labelled, rtol=1e-5, atol=1e-7, err_msg=observable)
    config = dict(initial="empty", empty_speaker="forgets", committed=1)
    for observable in ("committed_only_share", "committed_flip", "success_rate"):
        labelled = ec.naming_chain_expectation(0.5, 4, 10, observable, **config)
        lumped = ec.naming_chain_expectation(0.5, 4, 10, observable, lump=True, **config)
        np.testing.assert_allclose(lumped, labelled, rtol=1e-5, atol=1e-7, err_msg=observable)
    assert ec.naming_chain(4, lump=True, **config).n_states < ec.naming_chain(4, **config).n_states


# ----- (b) Monte Carlo of the hard simulator ----------------------------------------------------------------------
REPLICAS = 4000


def _check_success_per_interaction(successes, exact, label):
    """``successes``: (replicas, T) cumulative counts after each interaction; ``exact``: (T,)."""
    per_interaction = np.diff(successes, axis=1, prepend=0)
    for t, p in enumerate(np.asarray(exact)):
        assert_proportion(per_interaction[:, t].sum(), len(per_interaction), float(p), f"{label} interaction {t + 1}")


MEMORY_MC = [
    ("softmax both empty", SoftmaxSurrogate(BIAS, **SOFTMAX), dict(n_agents=3, memory=2), 10),
    (
        "best response hearer prepared committed",
        BestResponse(),
        dict(n_agents=3, memory=2, update="hearer", initial="prepared", committed=1),
        12,
    ),
]


@pytest.mark.parametrize("label, policy, config, steps", MEMORY_MC, ids=[c[0] for c in MEMORY_MC])
def test_memory_chain_matches_simulator(label, policy, config, steps):
    options = _memory_kwargs(config)
    game = MemoryGame(config["n_agents"], 2, config["memory"], policy=policy, stop=None, **options)
    result = ensemble(jax.random.key(11), game, REPLICAS, steps, 1)
    args = (policy, config["n_agents"], config["memory"], steps)
    lump = config.get("lump", False)

    _check_success_per_interaction(
        result.observations["successes"], ec.memory_chain_success(*args, lump=lump, **options), label
    )
    free = config["n_agents"] - options.get("committed", 0)
    # an exact value is a reference sample of zero variance
    share = ec.memory_chain_expectation(*args, "pushed_share", lump=lump, **options)
    assert_means_agree(result.summary["pushed_agents"] / free, [float(share)] * 2, f"{label} pushed share")
    flip = ec.memory_chain_expectation(*args, "flip", lump=lump, **options)
    assert_proportion(result.summary["flipped"].sum(), REPLICAS, float(flip), f"{label} flip")
    # the share after every interaction, against the recorded pushed agents
    chain = ec.memory_chain(**config)
    prob = ec.memory_transition_probabilities(chain, policy, committed_name=options.get("committed_name", 1))
    shares = ec.propagate(chain, prob, chain.vector(ec.pushed_share(options.get("committed_name", 1))), steps)[1]
    np.testing.assert_allclose(shares[-1], share, rtol=1e-6)
    for t, exact in enumerate(np.asarray(shares)):
        recorded = result.observations["pushed_agents"][:, t] / free
        assert_means_agree(recorded, [float(exact)] * 2, f"{label} pushed share after {t + 1}")


NAMING_MC = [
    ("prepared committed", 0.6, dict(n_agents=5, committed=1), 14),
    ("empty forgets committed", 0.5, dict(n_agents=4, initial="empty", empty_speaker="forgets", committed=1), 10),
]


@pytest.mark.parametrize("label, beta, config, steps", NAMING_MC, ids=[c[0] for c in NAMING_MC])
def test_naming_chain_matches_simulator(label, beta, config, steps):
    n, committed = config["n_agents"], config.get("committed", 0)
    game = NamingGame(
        n,
        vocabulary=2,
        beta=beta,
        committed=committed,
        committed_mode="converted",
        initial=config.get("initial", "prepared"),
        empty_speaker=config.get("empty_speaker", "keeps"),
    )
    result = ensemble(jax.random.key(12), game, REPLICAS, steps, 1)

    exact = ec.naming_chain_success(beta, n_interactions=steps, **config)
    _check_success_per_interaction(result.observations["successes"], exact, label)
    share = ec.naming_chain_expectation(beta, n_interactions=steps, observable="committed_only_share", **config)
    simulated = result.summary["committed_only_agents"] / (n - committed)
    assert_means_agree(simulated, [float(share)] * 2, f"{label} committed-only share")
    flip = ec.naming_chain_expectation(beta, n_interactions=steps, observable="committed_flip", **config)
    assert_proportion(result.summary["committed_flip"].sum(), REPLICAS, float(flip), f"{label} flip")


# ----- (c) exact gradients against central finite differences (float64) -------------------------------------------
H = 1e-5
DIRECTIONS = np.array([[1.0, -0.5, 0.3, 0.8, -0.6], [-0.2, 0.9, -0.7, 0.1, 0.5]])


def _directional_differences(f, x, direction):
    """Central difference of ``f`` at ``x`` along ``direction`` (float64)."""
    x, direction = np.asarray(x, np.float64), np.asarray(direction, np.float64)
    return (float(f(jnp.asarray(x + H * direction))) - float(f(jnp.asarray(x - H * direction)))) / (2 * H)


def test_memory_gradient_matches_finite_differences():
    """All the policy parameters at once, along two directions; every observable."""
    with jax.enable_x64(True):
        base = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), SoftmaxSurrogate(BIAS, **SOFTMAX))
        theta = np.array([0.3, -0.2, 1.5, 1.0, 0.5])  # bias, win_stay, lose_shift, partner_weight

        def policy(theta):
            fields = lambda p: (p.bias, p.win_stay, p.lose_shift, p.partner_weight)  # noqa: E731
            return eqx.tree_at(fields, base, (theta[:2], theta[2], theta[3], theta[4]))

        for observable in ("pushed_share", "flip", "success_rate"):

            def f(theta, observable=observable):
                return ec.memory_chain_expectation(policy(theta), 3, 2, 8, observable, committed=1)

            gradient = np.asarray(jax.grad(f)(jnp.asarray(theta)))
            assert np.abs(gradient).max() > 1e-3, observable  # a test that can fail
            for direction in DIRECTIONS:
                differences = _directional_differences(f, theta, direction)
                assert abs(gradient @ direction - differences) < 1e-9 + 1e-6 * abs(differences), observable


def test_naming_gradients_match_finite_differences():
    with jax.enable_x64(True):
        for observable in ("committed_only_share", "committed_flip", "success_rate"):

            def f(beta, observable=observable):
                return ec.naming_chain_expectation(beta, 5, 14, observable, committed=1)

            gradient = float(jax.grad(f)(jnp.float64(0.6)))
            assert abs(gradient) > 1e-3, observable
            differences = _directional_differences(lambda x, f=f: f(x[0]), [0.6], [1.0])
            np.testing.assert_allclose(gradient, differences, rtol=1e-6, atol=1e-9, err_msg=observable)

        # the Binomial mixture in p (its chains do not depend on p; their beta-derivatives are checked above)
        def g(p):
            return ec.binomial_committed_expectation(p, 2, 3, "committed_only_share", beta=0.6, initial="empty")

        gradient = float(jax.grad(g)(jnp.float64(0.3)))
        assert abs(gradient) > 1e-3
        differences = _directional_differences(lambda x: g(x[0]), [0.3], [1.0])
        np.testing.assert_allclose(gradient, differences, rtol=1e-6, atol=1e-9)


def test_binomial_mixture_is_the_random_committed_chain():
    """Each of N=3 agents committed independently with probability p: the average over all 2^N committed sets
    (each its own chain, labels as drawn) equals the Binomial mixture over k of the chains with agents 0..k-1
    committed, in value and in d/dp; p = 0 and 1 give the chains without and with every agent committed."""
    p, n, steps, options = 0.3, 3, 8, dict(beta=0.6, initial="empty")
    subsets = list(itertools.product((False, True), repeat=n))
    for observable in ("committed_only_share", "committed_flip", "success_rate"):
        by_set = [
            ec.naming_chain_expectation(0.6, n, steps, observable, committed=tuple(np.flatnonzero(s)), initial="empty")
            for s in subsets
        ]
        sizes = np.array([sum(s) for s in subsets])
        random_set = np.dot(p**sizes * (1 - p) ** (n - sizes), by_set)
        mixture = lambda p, o=observable: ec.binomial_committed_expectation(p, n, steps, o, **options)  # noqa: E731
        np.testing.assert_allclose(mixture(p), random_set, rtol=1e-5, err_msg=observable)
        # d/dp of p^|S| (1-p)^(N-|S|)
        slopes = sizes * p ** np.maximum(sizes - 1, 0) * (1 - p) ** (n - sizes) - (n - sizes) * p**sizes * (
            1 - p
        ) ** np.maximum(n - sizes - 1, 0)
        np.testing.assert_allclose(jax.grad(mixture)(p), np.dot(slopes, by_set), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mixture(0.0), by_set[0], rtol=1e-6, err_msg=observable)
        np.testing.assert_allclose(mixture(1.0), by_set[-1], rtol=1e-6, err_msg=observable)


# ----- (d) cases computed by hand -------------------------------------------------------------------------------
def _softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x))
    return e / e.sum()


def test_two_empty_agents_one_interaction():
    """N=2, H=1, empty memories, bias-only softmax: P(success) = sum_w p_w^2, d/db_j = 2 p_j (p_j - sum_w p_w^2)."""
    bias = np.array([0.4, -0.3])
    p = _softmax(bias)
    success = (p**2).sum()

    def f(bias):
        return ec.memory_chain_expectation(SoftmaxSurrogate(bias), 2, 1, 1, "success_rate")

    np.testing.assert_allclose(f(jnp.asarray(bias)), success, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(f)(jnp.asarray(bias)), 2 * p * (p - success), rtol=1e-5)
    # the pushed share of name 1 after one interaction: each agent chose 1 with probability p_1
    share = ec.memory_chain_expectation(SoftmaxSurrogate(bias), 2, 1, 1, "pushed_share")
    np.testing.assert_allclose(share, p[1], rtol=1e-6)


def test_two_agents_two_interactions_win_stay_lose_shift():
    """N=2, H=1: after the first interaction (a, b) the agents hold (a, b) and (b, a); the second succeeds with
    sum_ab p_a p_b sum_w q(a, b)_w q(b, a)_w, q(own, partner) = softmax(bias + win_stay [own = partner] e_own +
    lose_shift [own != partner] e_partner)."""
    bias, win_stay, lose_shift = np.array([0.2, -0.1]), 1.3, 0.7
    p = _softmax(bias)

    def q(own, partner):
        score = bias.copy()
        score[own if own == partner else partner] += win_stay if own == partner else lose_shift
        return _softmax(score)

    second = sum(p[a] * p[b] * np.dot(q(a, b), q(b, a)) for a in range(2) for b in range(2))
    policy = SoftmaxSurrogate(bias, win_stay=win_stay, lose_shift=lose_shift)
    np.testing.assert_allclose(ec.memory_chain_success(policy, 2, 1, 2), [(p**2).sum(), second], rtol=1e-6)


def test_committed_agent_against_one_empty_agent():
    """N=2, one committed agent answering 1: the first interaction succeeds with p_1."""
    bias = np.array([0.5, -0.5])
    success = ec.memory_chain_success(SoftmaxSurrogate(bias), 2, 1, 1, committed=1)
    np.testing.assert_allclose(success, [_softmax(bias)[1]], rtol=1e-6)


def test_naming_two_agents_by_hand():
    """N=2, agent 0 committed to 1, agent 1 prepared with {0}. Interaction 1 always fails; agent 1 holds {0, 1}
    with probability 1/2 (the committed agent spoke). Interaction 2 then succeeds with 1/2 + 1/2 * 1/2 and
    collapses with beta: P(success of 2) = 3/8, P(flip after 2) = 3 beta / 8."""
    beta = 0.7
    np.testing.assert_allclose(ec.naming_chain_success(beta, 2, 2, committed=1), [0.0, 3 / 8], atol=1e-7)

    def flip(beta):
        return ec.naming_chain_expectation(beta, 2, 2, "committed_flip", committed=1)

    np.testing.assert_allclose(flip(beta), 3 * beta / 8, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(flip)(beta), 3 / 8, rtol=1e-6)
    # each of 2 agents committed with probability p, one interaction: only k = 2 has flipped, E = p^2
    mixture = lambda p: ec.binomial_committed_expectation(p, 2, 1, "committed_flip")  # noqa: E731
    np.testing.assert_allclose(mixture(0.3), 0.09, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(mixture)(0.3), 0.6, rtol=1e-6)
