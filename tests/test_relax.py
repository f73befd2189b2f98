"""Differentiable evaluations (jaxconv.relax) and their gradient estimators, checked against the exact Markov chain
of tiny systems (jaxconv.exact): values and derivatives of E[observable] with respect to policy weights,
beta and the committed probability. Unbiased estimators must agree within sampling error; biased ones are only
checked where they are exact (the forward pass of straight-through choices, one expected step)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import Drift, MemoryGame, NamingGame, SoftmaxSurrogate, ensemble, exact, relax
from jaxconv.choosers import Expected, GumbelSoftmax, Sample, ScoreFunction, mix
from jaxconv.games.memory import Memory
from tests.stats import Z_LIMIT, assert_means_agree

N_AGENTS, MEMORY, STEPS = 3, 2, 6


def softmax_agent(theta):
    """A two-name surrogate whose (bias of name 1, win-stay) are ``theta``."""
    return SoftmaxSurrogate(jnp.stack([0.0, theta[0]]), win_stay=theta[1], partner_weight=0.5)


def memory_game(theta, **options):
    return MemoryGame(N_AGENTS, 2, MEMORY, policy=softmax_agent(theta), stop=None, **options)


def exact_memory(theta, observable):
    return exact.memory_chain_expectation(softmax_agent(theta), N_AGENTS, MEMORY, STEPS, observable, lump=True)


def final(name):
    return lambda observations: observations[name][-1]


def batches(estimate, key, n_batches):
    """Mean and standard error over independent batches of ``estimate(key) -> array``."""
    values = jax.vmap(estimate)(jax.random.split(key, n_batches))
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(n_batches)


def assert_within_sampling_error(mean, se, exact, label):
    mean, se, exact = map(np.asarray, (mean, se, exact))
    z = np.abs(mean - exact) / np.maximum(se, 1e-9)
    assert np.all(z < Z_LIMIT), f"{label}: estimate {mean} +- {se} vs exact {exact} (z = {z})"


@pytest.mark.parametrize("observable", ["committed_share", "success_rate"])
def test_hard_run_matches_the_exact_chain(observable):
    theta = jnp.array([0.4, 1.5])
    oracle = {"committed_share": "pushed_share", "success_rate": "success_rate"}[observable]
    exact = exact_memory(theta, oracle)

    def estimate(key):
        return relax.expectation(key, memory_game(theta), Sample(), final(observable), 512, STEPS, STEPS)[0]

    mean, se = batches(estimate, jax.random.key(0), 16)
    assert_within_sampling_error(mean, se, exact, observable)


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.4, 1.5), (-1.0, 3.0)])
def test_score_function_gradient_is_unbiased(theta):
    theta = jnp.array(theta)
    exact = jax.grad(exact_memory)(theta, "pushed_share")

    def estimate(key):
        return jax.grad(
            lambda t: relax.expectation(
                key, memory_game(t), ScoreFunction(), final("committed_share"), 512, STEPS, STEPS
            )[0]
        )(theta)

    mean, se = batches(estimate, jax.random.key(1), 16)
    assert_within_sampling_error(mean, se, exact, f"d pushed share / d theta at {theta}")


def test_score_function_gradient_of_the_success_rate_is_unbiased():
    theta = jnp.array([0.4, 1.5])
    exact = jax.grad(exact_memory)(theta, "success_rate")

    def estimate(key):
        return jax.grad(
            lambda t: relax.expectation(key, memory_game(t), ScoreFunction(), final("success_rate"), 512, STEPS, STEPS)[
                0
            ]
        )(theta)

    mean, se = batches(estimate, jax.random.key(2), 16)
    assert_within_sampling_error(mean, se, exact, "d success rate / d theta")


def test_score_function_gradient_in_the_drift_sd_is_unbiased():
    """The shock of a block tilts every choice by exp(sd z); with one block covering the whole run it moves name
    1's logit by sd (z1 - z0) ~ N(0, 2 sd^2) for the run, so the exact value is a Gauss-Hermite average of the exact
    chain over that shift, and its derivative in sd is exact too. The score-function estimate reaches sd only
    through the log-probabilities of the tilted choices."""
    theta, sd = jnp.array([0.4, 1.5]), 0.7
    nodes, weights = np.polynomial.hermite_e.hermegauss(24)
    weights = weights / weights.sum()

    def exact_share(sd):
        shifts = [theta + jnp.stack([sd * np.sqrt(2.0) * x, 0.0]) for x in nodes]
        return sum(w * exact_memory(t, "pushed_share") for t, w in zip(shifts, weights, strict=True))

    exact_value, exact_gradient = jax.value_and_grad(exact_share)(sd)
    one_block = Drift(1.0, rounds=STEPS // N_AGENTS)

    def run(key, sd):
        game = memory_game(theta, drift=eqx.tree_at(lambda d: d.sd, one_block, sd))
        return relax.expectation(key, game, ScoreFunction(), final("committed_share"), 512, STEPS, STEPS)[0]

    mean, se = batches(lambda key: run(key, sd), jax.random.key(5), 16)
    assert_within_sampling_error(mean, se, exact_value, "pushed share with drift")
    mean, se = batches(lambda key: jax.grad(run, argnums=1)(key, sd), jax.random.key(6), 16)
    assert_within_sampling_error(mean, se, exact_gradient, "d pushed share / d drift sd")
    assert abs(float(exact_gradient)) > 4 * float(se)  # the check above can tell a wrong sign or a zero


def naming_game(beta):
    return NamingGame(5, vocabulary=2, beta=beta, committed_mode="converted", initial="prepared")


def test_score_function_gradients_in_beta_and_the_committed_probability_are_unbiased():
    beta, p, steps = 0.6, 0.3, 12

    def exact_share(beta, p):
        return exact.binomial_committed_expectation(p, 5, steps, "committed_only_share", beta=beta, lump=True)

    exact_value = exact_share(beta, p)
    exact_gradient = jnp.stack(jax.grad(exact_share, argnums=(0, 1))(beta, p))

    def run(key, beta, p):
        return relax.expectation(
            key,
            naming_game(beta),
            ScoreFunction(),
            final("committed_share"),
            512,
            steps,
            steps,
            committed_probability=p,
        )[0]

    mean, se = batches(lambda key: run(key, beta, p), jax.random.key(3), 16)
    assert_within_sampling_error(mean, se, exact_value, "committed-only share")
    mean, se = batches(lambda key: jnp.stack(jax.grad(run, argnums=(1, 2))(key, beta, p)), jax.random.key(4), 16)
    assert_within_sampling_error(mean, se, exact_gradient, "d share / d (beta, p)")


@pytest.mark.parametrize("game", [memory_game(jnp.array([0.4, 1.5])), naming_game(0.6)], ids=["memory", "naming"])
def test_straight_through_forward_pass_samples_the_same_dynamics(game):
    """The forward values of straight-through Gumbel choices are exact samples (the Gumbel-max trick), so the
    relaxed representation must reproduce the hard dynamics in distribution."""
    options = {} if isinstance(game, MemoryGame) else {"committed_probability": 0.3}

    def shares(chooser, key):
        def one(key):
            return relax.run(key, game, chooser, 12, 12, **options)["committed_share"][-1]

        return jax.vmap(one)(jax.random.split(key, 4000))

    assert_means_agree(shares(GumbelSoftmax(0.5), jax.random.key(5)), shares(Sample(), jax.random.key(6)), "share")


def test_relaxed_run_with_drift_samples_the_simulator():
    """With drift (shared shocks per block of rounds), relax's hard run and the simulator (checked against the
    pure-Python reference in test_memory.py) give the same distribution of the latest answers: the mean share of
    name 1 and its square (drift widens it)."""
    game = MemoryGame(6, 2, 3, policy=softmax_agent(jnp.array([0.4, 1.5])), stop=None, drift=Drift(1.0, rounds=1))
    n, rounds, replicas = 6, 8, 4000
    relaxed = jax.vmap(lambda key: relax.run(key, game, Sample(), n * rounds, n)["committed_share"][-1])(
        jax.random.split(jax.random.key(11), replicas)
    )
    simulated = ensemble(jax.random.key(12), game, replicas, n * rounds, n).observations["pushed_agents"][:, -1] / n
    for power in (1, 2):
        assert_means_agree(np.asarray(relaxed) ** power, np.asarray(simulated) ** power, f"share^{power}")
    plain = eqx.tree_at(lambda g: g.drift, game, None, is_leaf=lambda x: x is None)
    without = ensemble(jax.random.key(13), plain, replicas, n * rounds, n).observations["pushed_agents"][:, -1] / n
    assert np.var(simulated) > 1.5 * np.var(without)  # the check above can tell drift from none


@pytest.mark.parametrize("temperature", [0.1, 1.0, 3.0])
def test_straight_through_forward_values_are_exactly_hard(temperature):
    """Forward values must be exactly 0/1 (a value off by 1e-8 becomes a phantom name whose log has gradient 1e8)."""
    chooser = GumbelSoftmax(temperature)
    u = jax.random.uniform(jax.random.key(10), (2000, 3), minval=1e-30)
    names = jax.vmap(lambda u: chooser.choose(jnp.array([0.3, 0.6, 0.1]), u).value)(u)
    coins = jax.vmap(lambda u: chooser.coin(jnp.float32(0.3), u[:1]).value)(u)
    assert set(np.unique(names).tolist()) == {0.0, 1.0} and set(np.unique(coins).tolist()) == {0.0, 1.0}


def test_straight_through_values_are_one_hot_with_soft_gradients():
    probabilities = jnp.array([0.2, 0.5, 0.3])
    u = jnp.array([0.3, 0.9, 0.6])
    chooser = GumbelSoftmax(0.7)
    value = chooser.choose(probabilities, u).value
    np.testing.assert_array_equal(np.sort(np.asarray(value)), [0.0, 0.0, 1.0])
    jacobian = jax.jacobian(lambda p: chooser.choose(p, u).value)(probabilities)
    soft = jax.jacobian(lambda p: GumbelSoftmax(0.7, straight_through=False).choose(p, u).value)(probabilities)
    np.testing.assert_allclose(jacobian, soft, rtol=1e-6)
    assert np.abs(jacobian).sum() > 0


def test_one_expected_step_is_the_exact_expectation_of_the_next_memories():
    """Memories are multilinear in the two choices, so one step with expected choices gives exactly the expected
    memory rows after one interaction (computed here by enumerating the four outcomes)."""
    game = memory_game(jnp.array([0.4, 1.5]))
    names = Memory(jnp.array([[0, 1], [1, -1]]), jnp.array([[1, 1], [0, -1]]))
    rows = Memory(*(jax.nn.one_hot(x, 2) for x in names))
    no = jnp.array([False, False])
    expected = game.interact(Expected(), rows, no.astype(jnp.float32), jnp.zeros((2, 0))).memories
    p = [game.policy.probabilities(game.view(Memory(names.own[i], names.partner[i]))) for i in range(2)]
    enumerated = jax.tree.map(jnp.zeros_like, rows)
    for a in range(2):
        for b in range(2):
            u = jnp.array([[0.0 if a == 0 else 0.999999], [0.0 if b == 0 else 0.999999]])  # draws names a and b
            outcome = game.interact(Sample(), names, no, u).memories
            weight = p[0][a] * p[1][b]
            enumerated = Memory(*(total + weight * jax.nn.one_hot(x, 2) for total, x in zip(enumerated, outcome)))
    for got, want in zip(expected, enumerated):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_relaxed_naming_rule_is_exact_on_hard_inventories():
    """On 0/1 memberships, with the word and the coin the hard rule drew given as one-hot values, the relaxed rule
    gives the hard rule's inventories and success."""
    game = NamingGame(4, vocabulary=3, beta=0.5, empty_speaker="forgets")
    cases = [([1, 0, 1], [0, 0, 1]), ([0, 1, 0], [1, 0, 0]), ([0, 0, 0], [0, 1, 0]), ([1, 1, 1], [0, 1, 1])]
    for speaker, hearer in cases:
        members = [name for name in range(3) if speaker[name]]
        for u_word in (0.1, 0.5, 0.9):
            word = members[int(u_word * len(members))] if members else int(u_word * 3)
            for u_collapse, collapses in ((0.2, True), (0.7, False)):
                bitsets = [jnp.array([sum(2**i for i in range(3) if inv[i])], jnp.uint32) for inv in (speaker, hearer)]
                hard = game.interact(Sample(), 0, *bitsets, False, False, jnp.array([u_word, u_collapse]))
                weights = [jnp.array(inv, jnp.float32) for inv in (speaker, hearer)]
                soft = game.interact(_Given(word, collapses), 0, *weights, 0.0, 0.0, jnp.zeros(0))
                for hard_inventory, soft_inventory in zip(hard[:2], soft[:2]):
                    hard_members = (hard_inventory[0] >> jnp.arange(3, dtype=jnp.uint32)) & 1
                    np.testing.assert_array_equal(soft_inventory, hard_members.astype(jnp.float32))
                assert float(soft[2]) == float(hard[2])


class _Given(Expected):
    """A relaxed chooser that makes given choices, as one-hot values (a test helper)."""

    word: int = eqx.field(static=True)
    yes: bool = eqx.field(static=True)

    def choose(self, probabilities, u):
        return super().choose(jax.nn.one_hot(self.word, probabilities.shape[0]), u)

    def coin(self, probability, u):
        return super().coin(jnp.float32(self.yes), u)


def test_committed_probability_weights_the_share_by_non_committed_agents():
    committed = jnp.array([1.0, 0.25, 0.0])
    holds = jnp.array([1.0, 1.0, 0.0])
    free = mix(committed, 0.0, 1.0)
    np.testing.assert_allclose(relax._share_of_free(committed, holds), 0.75 / 1.75)
    np.testing.assert_allclose(free, [0.0, 0.75, 1.0])
    assert relax._share_of_free(jnp.array([True, True]), jnp.array([0.0, 0.0])) == 1.0


def test_same_key_same_estimate_and_bad_horizon_refused():
    game = memory_game(jnp.array([0.4, 1.5]))
    first = relax.expectation(jax.random.key(7), game, GumbelSoftmax(0.5), final("committed_share"), 8, 6, 3)
    second = relax.expectation(jax.random.key(7), game, GumbelSoftmax(0.5), final("committed_share"), 8, 6, 3)
    assert first[0] == second[0]
    with pytest.raises(ValueError, match="record_every=4"):
        relax.run(jax.random.key(0), game, Sample(), 6, 4)
    with pytest.raises(ValueError, match="open vocabulary"):
        relax.run(jax.random.key(0), NamingGame(4), Expected(), 4, 4)
    assert eqx.is_array(first[1])


@pytest.mark.parametrize("theta", [0.4, -1.0])
def test_stochastic_derivative_is_unbiased_in_a_policy_weight(theta):
    def build(bias):
        return memory_game(jnp.stack([bias, 1.5])), None

    exact_gradient = jax.grad(lambda b: exact_memory(jnp.stack([b, 1.5]), "pushed_share"))(theta)
    estimate, se = jax.jit(
        lambda key: relax.stochastic_derivative(key, build, theta, final("committed_share"), 4096, STEPS, STEPS)
    )(jax.random.key(8))
    assert_within_sampling_error(estimate, se, exact_gradient, f"stochastic derivative at bias {theta}")


@pytest.mark.parametrize("which", ["beta", "committed probability"])
def test_stochastic_derivative_is_unbiased_for_coins(which):
    beta, p, steps = 0.6, 0.3, 12

    def exact_share(beta, p):
        return exact.binomial_committed_expectation(p, 5, steps, "committed_only_share", beta=beta, lump=True)

    if which == "beta":
        theta, exact_gradient, build = beta, jax.grad(exact_share)(beta, p), lambda b: (naming_game(b), p)
    else:
        theta, exact_gradient = p, jax.grad(exact_share, argnums=1)(beta, p)
        build = lambda q: (naming_game(beta), q)  # noqa: E731
    estimate, se = jax.jit(
        lambda key: relax.stochastic_derivative(key, build, theta, final("committed_share"), 8192, steps, steps)
    )(jax.random.key(9))
    assert_within_sampling_error(estimate, se, exact_gradient, f"stochastic derivative in {which}")


@pytest.mark.parametrize("chooser", [Sample(), GumbelSoftmax(0.5, straight_through=False)], ids=["hard", "relaxed"])
def test_name_shares_sum_to_one_and_contain_the_committed_share(chooser):
    """``name_shares``: each non-committed agent that has played holds one latest name (memory game), so the shares
    sum to at most 1, and to 1 once every agent has played; the committed name's entry is ``committed_share``
    (memory game and finite-pool naming game)."""
    game = MemoryGame(6, 3, 2, policy=SoftmaxSurrogate([0.0, 0.3, -0.3], partner_weight=1.0), committed_name=2)
    observations = relax.run(jax.random.key(3), game, chooser, 60, 6)
    assert observations["name_shares"].shape == (10, 3)
    totals = observations["name_shares"].sum(axis=1)
    assert np.all(totals <= 1 + 1e-6) and totals[-1] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(observations["name_shares"][:, 2], observations["committed_share"], atol=1e-6)
    naming = NamingGame(5, vocabulary=2, beta=0.5, committed_mode="converted", initial="prepared")
    shares = relax.run(jax.random.key(4), naming, chooser, 60, 6)
    np.testing.assert_allclose(shares["name_shares"][:, naming.committed_name], shares["committed_share"], atol=1e-6)
    assert relax.run(jax.random.key(5), NamingGame(4), Sample(), 8, 4)["name_shares"].shape == (2, 0)


def test_answer_counts_of_the_non_committed_agents():
    """``free_answers`` counts the answers of non-committed agents of each interaction (0, 1 or 2; 2 (N - k) / N
    on average), ``committed_answers`` those of them that are the committed name."""
    game = MemoryGame(6, 2, 2, policy=SoftmaxSurrogate([0.0, 0.0], partner_weight=1.0), committed=2)
    observations = jax.vmap(lambda key: relax.run(key, game, Sample(), 40, 1))(jax.random.split(jax.random.key(6), 50))
    free, pushed = np.asarray(observations["free_answers"]), np.asarray(observations["committed_answers"])
    assert set(np.unique(free)) <= {0.0, 1.0, 2.0} and np.all(pushed <= free) and np.all(pushed >= 0)
    samples = free.ravel()
    z = abs(samples.mean() - 2 * 4 / 6) / (samples.std() / np.sqrt(samples.size))
    assert z < Z_LIMIT
    naming = relax.run(jax.random.key(7), NamingGame(4, vocabulary=2), Sample(), 8, 4)
    assert np.all(naming["free_answers"] == 0)


# 300 records: chunks of 15 (or 20) divide them; 257 (a prime): 16 chunks of 16, then a remainder of 1
@pytest.mark.parametrize(("n_steps", "chooser"), [(300, ScoreFunction()), (257, GumbelSoftmax(0.5))])
def test_long_runs_scanned_in_rematerialised_chunks_give_the_plain_scan_values_and_gradients(
    monkeypatch, n_steps, chooser
):
    theta = jnp.array([0.4, 1.5])

    def estimate(theta):
        observations = relax.run(jax.random.key(3), memory_game(theta), chooser, n_steps, 1)
        values = jnp.stack([observations["committed_share"].mean(), observations["success_rate"].mean()])
        return jnp.sum(relax.surrogate(values[None], observations["log_prob"][-1][None], jnp.zeros(2))), values

    def scans_all_records_at_once():  # a fresh function each time: traces are cached per function
        return f"length={n_steps}" in str(jax.make_jaxpr(lambda t: estimate(t)[0])(theta))

    (chunked, chunked_values), chunked_grad = jax.value_and_grad(estimate, has_aux=True)(theta)
    assert not scans_all_records_at_once()
    monkeypatch.setattr(relax, "CHUNKED_FROM", n_steps + 1)
    (plain, plain_values), plain_grad = jax.value_and_grad(estimate, has_aux=True)(theta)
    assert scans_all_records_at_once()
    np.testing.assert_array_equal(chunked_values, plain_values)
    np.testing.assert_allclose(chunked, plain, rtol=1e-6)
    np.testing.assert_allclose(chunked_grad, plain_grad, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(chunked_grad)) and np.any(chunked_grad != 0)
