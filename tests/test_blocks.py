"""Conflict-free blocks (jaxconv.games.blocks): exactly the one-at-a-time process over the same per-index draws,
whatever the block size; the law of the pure-Python reference; exact overflow; per-replica t under vmap."""

import random

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv.counts import Count, to_host
from jaxconv.engine import ensemble, simulate, simulate_until_done, timed_ensemble
from jaxconv.games import blocks
from jaxconv.games.naming import SLOTS_HEADER, NamingGame
from jaxconv.topology import ring
from tests.reference import naming_game_run
from tests.stats import assert_means_agree, assert_same_distribution

# (label, NamingGame keyword arguments, n_agents, interactions)
EXACT = [
    ("open", dict(), 64, 6000),
    ("beta, converted committed", dict(beta=0.4, committed=5, committed_mode="converted"), 40, 4000),
    ("added committed, prepared", dict(committed=8, initial="prepared"), 24, 3000),
    ("pool forgets", dict(vocabulary=3, empty_speaker="forgets"), 30, 1500),
    ("ring", dict(graph=ring(40)), 40, 3000),
]


def one_at_a_time(game: NamingGame, key, n_interactions: int, first: int = 0) -> dict:
    """Plain Python loop over the same draws as the blocks (``blocks.draws``/``blocks.pairs``), one interaction
    after another, inventories as lists in the order learned; interactions ``first ..`` from the initial state."""
    speakers, hearers, u_word, u_coin = (
        np.asarray(x).tolist() for x in blocks.pairs(game, blocks.draws(key, first, n_interactions))
    )
    committed = int(game.n_committed)
    init = game.init(key)
    rows = np.asarray(init.inventories)
    inventories = [list(row[SLOTS_HEADER : SLOTS_HEADER + row[0]]) for row in rows]
    total = sum(map(len, inventories))
    successes, peak, peak_time, consensus_time, largest = 0, total, 0, None, max(map(len, inventories))
    beta = float(game.beta)
    for t in range(n_interactions):
        s, h = speakers[t], hearers[t]
        speaker = inventories[s]
        if speaker:
            word = speaker[min(int(u_word[t] * len(speaker)), len(speaker) - 1)]
        else:
            word = 2 + s if game.vocabulary == "open" else min(int(u_word[t] * game.vocabulary), game.vocabulary - 1)
            if game.empty_speaker == "keeps" and s >= committed:
                speaker.append(word)
        if word in inventories[h]:
            successes += 1
            if u_coin[t] < beta:
                for agent in (s, h):
                    if agent >= committed:
                        inventories[agent] = [word]
        elif h >= committed:
            inventories[h].append(word)
        total = sum(map(len, inventories))
        largest = max(largest, len(inventories[h]))
        if total > peak:
            peak, peak_time = total, first + t + 1
        if (
            consensus_time is None
            and all(len(inv) == 1 for inv in inventories)
            and len({inv[0] for inv in inventories}) == 1
        ):
            consensus_time = first + t + 1
    return {
        "inventories": inventories,
        "successes": successes,
        "total_words": total,
        "peak_words": peak,
        "peak_time": peak_time,
        "consensus_time": -1 if consensus_time is None else consensus_time,
        "largest": largest,
    }


def _rows(state) -> list[list[int]]:
    rows = np.asarray(state.inventories)
    return [list(row[SLOTS_HEADER : SLOTS_HEADER + row[0]]) for row in rows]


@pytest.mark.parametrize("kwargs, n_agents, n_interactions", [v[1:] for v in EXACT], ids=[v[0] for v in EXACT])
def test_blocks_are_the_one_at_a_time_process(kwargs, n_agents, n_interactions):
    """Every block size (1 = one interaction per block, the default, 2N) gives exactly the plain loop over the
    same per-index draws: inventories slot by slot, and every counter."""
    key = jax.random.key(7)
    expected = None
    for block_size in (1, None, 2 * n_agents):
        game = NamingGame(n_agents, stepping="blocks", block_size=block_size, **kwargs)
        if expected is None:
            expected = one_at_a_time(game, key, n_interactions)
            assert expected["consensus_time"] > 0 or "graph" in kwargs, "the case should reach consensus"
        run = jax.jit(lambda k, g=game: g.advance_to(k, g.init(k), n_interactions, stop_at_consensus=False))
        state = run(key)
        assert _rows(state) == expected["inventories"], block_size
        assert not bool(state.overflow)
        assert int(state.interactions) == n_interactions
        for name in ("successes", "total_words", "peak_words", "peak_time", "consensus_time"):
            assert int(getattr(state, name)) == expected[name], (name, block_size)
        assert int(state.n_single) == sum(len(inv) == 1 for inv in expected["inventories"])


@pytest.mark.parametrize("first", [2**31 - 300, 2**32 - 300, 2**40])
def test_blocks_count_exactly_beyond_int32(first):
    """Interactions counted from 2^31 - 300, 2^32 - 300 (both crossing a word of the counts) and 2^40: the plain
    loop over the draws of those interactions, inventories and every count exact."""
    game = NamingGame(64, stepping="blocks")
    key = jax.random.key(7)
    expected = one_at_a_time(game, key, 900, first=first)
    start = eqx.tree_at(lambda s: (s.interactions, s.peak_time), game.init(key), (Count.of(first), Count.of(first)))
    state = jax.jit(lambda s: game.advance_to(key, s, Count.of(first + 900), stop_at_consensus=False))(start)
    assert _rows(state) == expected["inventories"]
    assert int(state.interactions) == first + 900
    for name in ("successes", "total_words", "peak_words", "peak_time", "consensus_time"):
        assert int(getattr(state, name)) == expected[name], name


def test_draws_of_interactions_beyond_2_to_32():
    """Interaction t >= 2^32 is drawn from the counters (t mod 2^32, 2 (t // 2^32) + 0/1): not a repeat of
    t - 2^32; the grouping of interactions does not matter across 2^31 and 2^32."""
    from jax.extend.random import threefry2x32_p

    key = jax.random.key(3)
    late = np.asarray(blocks.draws(key, 2**32 + 5, 3))
    assert not np.array_equal(late, blocks.draws(key, 5, 3))
    key_words = jax.random.key_data(key)
    t = jnp.asarray([5, 6, 7], jnp.uint32)
    words = [threefry2x32_p.bind(key_words[0], key_words[1], t, jnp.full(3, k, jnp.uint32)) for k in (2, 3)]
    np.testing.assert_array_equal(late, np.stack([*words[0], *words[1]], axis=1))
    for boundary in (2**31, 2**32):
        np.testing.assert_array_equal(blocks.draws(key, boundary - 2, 4)[2:], blocks.draws(key, boundary, 2))


def test_counts_are_exact_beyond_int32():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2**40, 300), rng.integers(0, 2**31, 300)
    a[:4], b[:4] = [0, 2**31 - 1, 2**32 - 1, 2**31], [2**31 - 1, 1, 1, 2**31 - 1]
    count_a, total = Count.of(a), Count.of(a + b)
    np.testing.assert_array_equal(count_a.plus(jnp.asarray(b, jnp.int32)), a + b)
    np.testing.assert_array_equal(count_a.plus(Count.of(b)), a + b)
    np.testing.assert_array_equal(total.minus(count_a), b)
    np.testing.assert_array_equal(count_a.below(total), b > 0)
    np.testing.assert_array_equal(total.capped_minus(count_a, 1000), np.minimum(b, 1000))
    low, high = count_a.uint32_words()
    np.testing.assert_array_equal(low, a % 2**32)
    np.testing.assert_array_equal(high, a >> 32)
    host = to_host({"count": count_a, "never": Count.never((2,)), "other": jnp.int32(3)})
    assert host["count"].dtype == np.int64 and host["never"].tolist() == [-1, -1] and int(host["other"]) == 3
    assert int(Count.of(2**62 - 1)) == 2**62 - 1 and int(Count.of(-1)) == -1
    with pytest.raises(ValueError, match="2\\^62"):
        Count.of(2**62)


def test_records_do_not_change_the_trajectory():
    game = NamingGame(50, stepping="blocks")
    key = jax.random.key(3)
    final = {}
    for record_every in (10, 500, 5000):
        state, observations = jax.jit(lambda k, r=record_every: simulate(k, game, 5000, r))(key)
        final[record_every] = state
        np.testing.assert_array_equal(
            observations["interactions"], record_every * np.arange(1, 5000 // record_every + 1)
        )
    for state in (final[500], final[5000]):
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final[10])):
            np.testing.assert_array_equal(a, b)
    stopped = jax.jit(lambda k: simulate_until_done(k, game, 5000, 50))(key)
    assert int(stopped.consensus_time) == int(final[10].consensus_time) > 0
    assert int(stopped.interactions) < 5000


def test_overflow_is_exact():
    """Capacity = the largest inventory of the run never overflows; one slot less always does."""
    key = jax.random.key(11)
    largest = one_at_a_time(NamingGame(48, stepping="blocks"), key, 3000)["largest"]
    for capacity, overflows in ((largest, False), (largest - 1, True)):
        game = NamingGame(48, stepping="blocks", capacity=capacity)
        state = jax.jit(lambda k, g=game: g.advance_to(k, g.init(k), 3000, stop_at_consensus=False))(key)
        assert bool(state.overflow) == overflows, capacity


def test_replicas_under_vmap_equal_lone_replicas():
    game = NamingGame(60, stepping="blocks")
    key = jax.random.key(2)
    many = ensemble(key, game, 3, 24_000, 60, until_done=True).summary
    for replica, replica_key in enumerate(jax.random.split(key, 3)):
        alone = jax.jit(lambda k: simulate_until_done(k, game, 24_000, 60))(replica_key)
        assert int(many["consensus_time"][replica]) == int(alone.consensus_time) > 0
        assert int(many["peak_time"][replica]) == int(alone.peak_time)


@pytest.mark.parametrize("block_size", [2, 64])
def test_law_of_the_reference(block_size):
    """Consensus time, peak of the total number of words and its time agree in distribution with the pure-Python
    reference (N = 32), for a small and a large block."""
    n, runs = 32, 600
    game = NamingGame(n, stepping="blocks", block_size=block_size)
    ours = ensemble(jax.random.key(block_size), game, runs, 20_000, 20_000, until_done=True).summary
    rng = random.Random(5)
    theirs = [naming_game_run(rng, n, 20_000, stop_at_consensus=True, record_every=20_000) for _ in range(runs)]
    assert (ours["consensus_time"] > 0).all() and all(r["consensus_time"] is not None for r in theirs)
    reference_time = [r["consensus_time"] for r in theirs]
    assert_same_distribution(ours["consensus_time"], reference_time, "consensus time")
    assert_means_agree(ours["consensus_time"], reference_time, "consensus time")
    assert_means_agree(ours["peak_total_words"], [r["peak_total_words"] for r in theirs], "peak total words")
    assert_means_agree(ours["peak_time"], [r["peak_time"] for r in theirs], "peak time")


def test_threefry_is_jax_own():
    """The unrolled Threefry-2x32 of the block draws equals jax.random's primitive."""
    from jax.extend.random import threefry2x32_p

    key_words = jax.random.key_data(jax.random.key(42))
    x0 = jax.random.bits(jax.random.key(1), (1000,), jnp.uint32)
    x1 = jax.random.bits(jax.random.key(2), (1000,), jnp.uint32)
    ours = blocks.threefry2x32(key_words, x0, x1)
    theirs = threefry2x32_p.bind(key_words[0], key_words[1], x0, x1)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_options_are_checked():
    with pytest.raises(ValueError, match="stepping='blocks' needs random sequential pairs"):
        NamingGame(100, stepping="blocks", schedule="matching")
    with pytest.raises(ValueError, match="stepping='blocks' needs .* word slots"):
        NamingGame(100, stepping="blocks", inventory="bitsets")
    with pytest.raises(ValueError, match="block_size"):
        NamingGame(100, block_size=0)
    with pytest.raises(ValueError, match="stepping"):
        NamingGame(100, stepping="parallel")
    assert NamingGame(10**5).in_blocks and not NamingGame(100).in_blocks
    assert not NamingGame(10**5, schedule="matching").in_blocks
    assert NamingGame(100, stepping="blocks").inventory == "slots"
    one, _, _ = timed_ensemble(jax.random.key(0), NamingGame(2000), 1, 2000 * 300, 2000, until_done=True)
    assert one.summary["consensus_time"][0] > 0 and not one.summary["overflow"][0]
