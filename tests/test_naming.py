"""The naming game against the pure-Python reference, exact small cases and invariants."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxconv import bitset
from jaxconv.engine import ensemble, simulate
from jaxconv.games.naming import NamingGame
from tests.reference import naming_game_run
from tests.stats import assert_means_agree, assert_proportion, assert_same_distribution

# (label, game keyword arguments shared by jaxconv and the reference, n_agents, interactions)
VARIANTS = [
    ("open", dict(), 8, 400),
    ("open, two-word bitsets", dict(), 40, 1600),
    ("pool keeps", dict(vocabulary=3), 8, 300),
    ("pool forgets", dict(vocabulary=3, empty_speaker="forgets"), 8, 300),
    ("beta", dict(beta=0.5), 6, 400),
    ("xie added", dict(vocabulary=2, committed=2, committed_mode="added", initial="prepared"), 10, 240),
    ("converted", dict(committed=3, committed_mode="converted"), 10, 400),
    ("matching", dict(schedule="matching"), 8, 400),
]
N_JAX, N_REFERENCE = 4000, 1500


def _jaxconv(kwargs, n_agents, n_interactions, seed=0):
    game = NamingGame(n_agents, **kwargs)
    per_step = game.interactions_per_step
    return game, ensemble(jax.random.key(seed), game, N_JAX, n_interactions // per_step, 1)


def _reference(kwargs, n_agents, n_interactions, seed=1):
    rng = random.Random(seed)
    return [naming_game_run(rng, n_agents, n_interactions, **kwargs) for _ in range(N_REFERENCE)]


@pytest.fixture(scope="module", params=VARIANTS, ids=[v[0] for v in VARIANTS])
def variant(request):
    label, kwargs, n_agents, n_interactions = request.param
    game, result = _jaxconv(kwargs, n_agents, n_interactions)
    return label, game, result, _reference(kwargs, n_agents, n_interactions)


def test_consensus_time_distribution(variant):
    label, game, result, runs = variant
    ours = result.summary["consensus_time"]
    theirs = np.array([-1 if r["consensus_time"] is None else r["consensus_time"] for r in runs])
    assert_proportion((theirs >= 0).sum(), len(theirs), (ours >= 0).mean(), f"{label} consensus reached")
    if (ours >= 0).mean() > 0.5:
        assert_same_distribution(ours[ours >= 0], theirs[theirs >= 0], f"{label} consensus time")
        assert_means_agree(ours[ours >= 0], theirs[theirs >= 0], f"{label} consensus time")


def test_success_curve_and_words(variant):
    label, game, result, runs = variant
    observations = result.observations
    ours_t = observations["interactions"][0]
    theirs_t = runs[0]["interactions"]
    for checkpoint in (len(ours_t) // 8, len(ours_t) // 3, len(ours_t) - 1):
        t = int(ours_t[checkpoint])
        index = theirs_t.index(t)
        for name in ("successes", "total_words", "distinct_names"):
            assert_means_agree(observations[name][:, checkpoint], [r[name][index] for r in runs], f"{label} {name}@{t}")
    assert_means_agree(result.summary["peak_total_words"], [r["peak_total_words"] for r in runs], f"{label} N_w peak")
    assert_means_agree(result.summary["peak_time"], [r["peak_time"] for r in runs], f"{label} t_max")
    if game.n_committed > 0:
        ours = result.summary["committed_only_agents"] / (game.n_population - game.n_committed)
        theirs = [r["committed_only_share"][-1] for r in runs]
        assert_means_agree(ours, theirs, f"{label} committed-only share")


def test_two_agents_open_vocabulary_exact():
    """N=2: the first speaker invents a word and the hearer learns it (consensus at t=1); all later ones succeed."""
    game = NamingGame(2)
    keys = jax.random.split(jax.random.key(3), 64)
    state, obs = jax.vmap(lambda k: simulate(k, game, 6, 1))(keys)
    np.testing.assert_array_equal(obs["successes"], np.tile([0, 1, 2, 3, 4, 5], (64, 1)))
    np.testing.assert_array_equal(obs["total_words"], 2)
    np.testing.assert_array_equal(state.consensus_time, 1)
    np.testing.assert_array_equal(state.peak_time, 1)


def test_one_name_forgetting_speaker_exact():
    """W=1, N=2, empty speakers forget: consensus at exactly 2; the 2nd interaction succeeds with p = 1/2."""
    game = NamingGame(2, vocabulary=1, empty_speaker="forgets")
    keys = jax.random.split(jax.random.key(4), 4000)
    state, obs = jax.vmap(lambda k: simulate(k, game, 4, 1))(keys)
    np.testing.assert_array_equal(state.consensus_time, 2)
    np.testing.assert_array_equal(obs["successes"][:, 0], 0)
    assert_proportion(obs["successes"][:, 1].sum(), 4000, 0.5, "second interaction succeeds")


def test_prepared_population_is_at_consensus_from_the_start():
    game = NamingGame(5, vocabulary=4, initial="prepared", prepared_name=3)
    state, obs = simulate(jax.random.key(0), game, 10, 5)
    assert int(state.consensus_time) == 0
    assert int(game.summarize(state)["winner"]) == 3
    np.testing.assert_array_equal(obs["successes"], [5, 10])


def _trajectory(game, key, n_steps):
    """Every state of a run (small sizes only)."""
    state = game.init(key)
    words = jax.random.bits(key, (n_steps, game.words_per_step), jnp.uint32)

    def step(state, w):
        state = game.advance(state, w)
        return state, state

    return jax.jit(lambda s, w: jax.lax.scan(step, s, w)[1])(state, words)


@settings(max_examples=12, deadline=None)
@given(
    n_agents=st.integers(2, 7),
    vocabulary=st.sampled_from(["open", 1, 2, 5]),
    forgets=st.booleans(),
    beta=st.sampled_from([0.0, 0.4, 1.0]),
    committed=st.integers(0, 3),
    mode=st.sampled_from(["added", "converted"]),
    schedule=st.sampled_from(["pairs", "matching"]),
    seed=st.integers(0, 2**16),
)
def test_invariants(n_agents, vocabulary, forgets, beta, committed, mode, schedule, seed):
    """Counters match a recount, committed agents never change, only real words are held, consensus absorbs."""
    committed = min(committed, n_agents)
    empty_speaker = "forgets" if forgets and vocabulary != "open" else "keeps"
    n_names = 2 if vocabulary == "open" else vocabulary
    game = NamingGame(
        n_agents,
        vocabulary=vocabulary,
        empty_speaker=empty_speaker,
        beta=beta,
        committed=committed,
        committed_mode=mode,
        committed_name=n_names - 1,
        schedule=schedule,
    )
    states = _trajectory(game, jax.random.key(seed), 120)
    inventories = np.asarray(states.inventories)
    sizes = np.asarray(jax.vmap(jax.vmap(bitset.size))(states.inventories))
    np.testing.assert_array_equal(states.total_words, sizes.sum(axis=1))
    np.testing.assert_array_equal(states.n_single, (sizes == 1).sum(axis=1))
    held = np.asarray(jax.vmap(jax.vmap(lambda inv: bitset.members(inv, 32 * game.n_words)))(states.inventories))
    assert not held[:, :, game.n_bits :].any(), "a word outside the vocabulary is held"
    start = game.init(jax.random.key(0))
    initial = np.asarray(start.inventories)
    np.testing.assert_array_equal(
        inventories[:, :committed], np.broadcast_to(initial[:committed], inventories[:, :committed].shape)
    )
    np.testing.assert_array_equal(
        states.peak_words, np.maximum.accumulate(np.maximum(sizes.sum(axis=1), int(start.total_words)))
    )
    all_inventories = np.concatenate([initial[None], inventories])
    all_sizes = np.concatenate([np.asarray(jax.vmap(bitset.size)(start.inventories))[None], sizes])
    at_consensus = (all_sizes == 1).all(axis=1) & (all_inventories == all_inventories[:, :1]).all(axis=(1, 2))
    if at_consensus.any():
        first = int(np.argmax(at_consensus))
        assert at_consensus[first:].all(), "consensus is not absorbing"
        times = np.concatenate([[0], np.asarray(states.interactions)])
        assert int(states.single_since[-1]) == times[first]


def test_same_key_same_result_and_chunking():
    game = NamingGame(12, vocabulary=4)
    a = ensemble(jax.random.key(7), game, 20, 300, 30)
    b = ensemble(jax.random.key(7), game, 20, 300, 30, chunk_size=3)
    for name in a.summary:
        np.testing.assert_array_equal(a.summary[name], b.summary[name])
    for name in a.observations:
        np.testing.assert_array_equal(a.observations[name], b.observations[name])
    one = simulate(jax.random.split(jax.random.key(7), 20)[5], game, 300, 30)[0]
    assert int(one.consensus_time) == int(a.summary["consensus_time"][5])


def test_until_done_freezes_finished_replicas():
    """Stopping at consensus gives the same per-replica results as the fixed-length run."""
    game = NamingGame(10)
    fixed = ensemble(jax.random.key(2), game, 40, 3000, 10)
    stopped = ensemble(jax.random.key(2), game, 40, 3000, 10, until_done=True)
    assert stopped.observations is None
    reached = fixed.summary["consensus_time"] >= 0
    assert reached.all()
    for name in ("consensus_time", "winner", "peak_total_words", "peak_time"):
        np.testing.assert_array_equal(stopped.summary[name], fixed.summary[name])
    assert (stopped.summary["interactions"] < fixed.summary["interactions"]).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_agents=1), "n_agents"),
        (dict(n_agents=10, vocabulary=0), "got 0"),
        (dict(n_agents=10, beta=1.5), "1.5"),
        (dict(n_agents=10, beta=-0.1), "-0.1"),
        (dict(n_agents=10, committed=11), "11"),
        (dict(n_agents=10, committed_fraction=1.2), "1.2"),
        (dict(n_agents=10, schedule="ring"), "'ring'"),
        (dict(n_agents=10, committed_mode="stolen"), "'stolen'"),
        (dict(n_agents=10, empty_speaker="forgets"), "forgets"),
        (dict(n_agents=10, vocabulary=3, committed=1, committed_name=3), "committed_name"),
    ],
)
def test_bad_parameters_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NamingGame(**kwargs)
