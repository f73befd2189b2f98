"""Exact conflict-free blocks of random sequential pairs: the naming game with word slots, many interactions at once.

The random draws of interaction t (speaker, hearer, word choice, collapse coin: four independent uint32 words) are a
function of ``(key, t)`` only (:func:`draws`, Threefry in counter mode), so the sequence of interactions is fixed
whatever way it is grouped. Interactions that touch disjoint agents commute. Each iteration of a while loop takes
the next B candidates t .. t+B-1, finds the first j >= 1 whose speaker or hearer already takes part in t .. t+j-1,
applies t .. t+j-1 at once (vectorised reads and writes of the slot rows) and goes on at t+j. Interaction t+j is
never dropped (it opens the next block), so the state after any number of blocks is exactly that of the
one-at-a-time process over the same draws, whatever B. With uniform pairs among N agents the first conflict comes
after about 0.63 sqrt(N) interactions (P(j > x) ~ exp(-2 x^2 / N)); the default B = 2/3 sqrt(N)
(``naming.default_block_size``) applies ~0.51 sqrt(N).

Counters are exact (interaction counts are ``jaxconv.counts.Count``s, exact beyond 2^31): the size changes of the
block's interactions are summed in sequence order (cumulative sums), so ``total_words``, ``n_single``,
``peak_words``/``peak_time`` and ``single_since`` are those of the sequential process.
Consensus is checked at the end of each block (only when every agent holds one word) and dated at ``single_since``
(inventories cannot change while every agent holds the same single word).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.counts import Count
from jaxconv.games.naming import RESERVED_NAMES, SLOTS_HEADER, NamingState, _uniform_index
from jaxconv.random_words import take_int, to_unit

DRAWS = 4  # uint32 words per interaction: speaker, hearer, word choice, collapse coin
SEARCH_WIDTH = 64  # slots of a row compared at once by the membership search
CONSENSUS_CHUNK = 4096  # agents compared at once by the consensus check


def draws(key: jax.Array, start, count: int) -> jax.Array:
    """``(count, 4) uint32``: the draws of interactions ``start .. start+count-1`` (``start`` a ``Count`` or an
    int). Interaction t's four words are Threefry-2x32 of the counters (t mod 2^32, 2 h) and (t mod 2^32, 2 h + 1),
    h = t // 2^32, under the replica's key (``jax.random``'s default generator in counter mode), so they depend on
    ``(key, t)`` only, not on how interactions are grouped."""
    key_words = jax.random.key_data(key)
    if key_words.shape != (2,):
        raise ValueError(f"conflict-free blocks need a threefry key (2 uint32 words), got key data {key_words.shape}")
    start = start if isinstance(start, Count) else Count.of(start)
    t, h = start.plus(jnp.arange(count, dtype=jnp.int32)).uint32_words()
    first, second = threefry2x32(key_words, t, 2 * h), threefry2x32(key_words, t, 2 * h + 1)
    return jnp.stack([*first, *second], axis=1)


def threefry2x32(key_words: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 block cipher (20 rounds; Salmon, Moraes, Dror & Shaw, SC 2011) of the uint32 counter pairs
    ``(x0, x1)`` under the key ``(2,) uint32``, written out so that XLA fuses it into one loop (``jax.random``
    lowers it on CPU as a rolled loop of five iterations, whose per-operation overhead dominates small batches).
    Equal to ``jax.extend.random.threefry2x32_p`` (tests/test_blocks.py)."""
    k0, k1 = key_words[0], key_words[1]
    schedule = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    x0, x1 = x0 + schedule[0], x1 + schedule[1]
    for block in range(5):
        for r in rotations[block % 2]:
            x0 = x0 + x1
            x1 = x0 ^ ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r)))
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def pairs(game, words: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Speakers, hearers ``(B,) int32`` and the uniforms of the word choice and of the collapse ``(B,) float32``
    from ``(B, 4)`` draws: the speaker uniform among the agents, the hearer uniform among its neighbours."""
    speakers, _ = take_int(words[:, 0], game.n_population)
    hearers, _ = game.graph.partner(speakers, words[:, 1])
    return speakers, hearers, to_unit(words[:, 2]), to_unit(words[:, 3])


def first_conflict(stamps, previous, speakers, hearers) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Position of the first candidate that shares an agent with an earlier one (B if none), then the stamps and
    the agents to reset next time.

    ``stamps`` is ``(N,) int32``, B everywhere except at the agents ``previous`` ``(2B,)`` of the last call: those
    are reset to B, the earliest position touching each agent of this block is scattered in (scatter-min) and read
    back for both agents of every candidate (O(B) work; resetting at the next call, before the writes, rather than
    after the reads keeps XLA from copying the (N,) array)."""
    size = speakers.shape[0]
    positions = jnp.arange(size, dtype=jnp.int32)
    agents = jnp.concatenate([speakers, hearers])
    stamps = stamps.at[previous].set(size).at[agents].min(jnp.concatenate([positions, positions]))
    earlier = jnp.minimum(stamps[speakers], stamps[hearers]) < positions
    return jnp.min(jnp.where(earlier, positions, size)), stamps, agents


def knows(inventories: jax.Array, hearers, sizes, words, active) -> jax.Array:
    """``(B,) bool``: whether each active hearer holds its word, reading ``SEARCH_WIDTH`` slots of every row at a
    time and only as far as the largest inventory still unresolved (O(size) work, not O(K))."""
    capacity = inventories.shape[1] - SLOTS_HEADER
    width = math.gcd(capacity, SEARCH_WIDTH)  # pieces tile the K slots: a piece never runs past the row
    offsets = jnp.arange(width, dtype=jnp.int32)

    def unresolved(carry):
        start, found = carry
        return jnp.any(active & ~found & (start < sizes))

    def search(carry):
        start, found = carry
        searching = active & ~found & (start < sizes)
        rows = jnp.where(searching, hearers, 0)  # rows already resolved read row 0 (cached) instead
        piece = jax.vmap(lambda row: jax.lax.dynamic_slice(inventories, (row, SLOTS_HEADER + start), (1, width))[0])
        hits = (piece(rows) == words[:, None]) & ((start + offsets)[None, :] < sizes[:, None])
        return start + width, found | (searching & (jnp.sum(hits, axis=1, dtype=jnp.int32) > 0))

    return jax.lax.while_loop(unresolved, search, (jnp.int32(0), jnp.zeros(hearers.shape, bool)))[1]


def all_same_word(inventories: jax.Array, needed: jax.Array) -> jax.Array:
    """Whether every agent's first slot holds agent 0's (checked only if ``needed``, chunk by chunk, stopping at
    the first difference; under ``vmap`` no chunk is read while no replica needs it)."""
    n = inventories.shape[0]
    chunk = min(n, CONSENSUS_CHUNK)

    def more(carry):
        start, same = carry
        return needed & same & (start < n)

    def compare(carry):
        start, same = carry
        rows = jax.lax.dynamic_slice(inventories, (jnp.minimum(start, n - chunk), SLOTS_HEADER), (chunk, 1))
        return start + chunk, same & jnp.all(rows == inventories[0, SLOTS_HEADER])

    return needed & jax.lax.while_loop(more, compare, (jnp.int32(0), jnp.bool_(True)))[1]


def apply_block(game, key: jax.Array, state: NamingState, stamps, previous, end: Count, block_size: int):
    """The next conflict-free prefix of the candidates ``state.interactions ..`` (at most up to ``end``; none once
    the run is over), applied: returns ``(state, stamps, agents)`` (``first_conflict``'s stamps and agents to reset
    next time).

    A hearer that would need more than K words ends the prefix before its interaction and sets the overflow flag:
    the state is then exactly the process's before that interaction, so a run can go on from it with more slots
    (``NamingGame.widened``)."""
    t = state.interactions
    speakers, hearers, u_word, u_coin = pairs(game, draws(key, t, block_size))
    j, stamps, touched = first_conflict(stamps, previous, speakers, hearers)
    j = jnp.where(running(state, end), end.capped_minus(t, j), 0)
    positions = jnp.arange(block_size, dtype=jnp.int32)

    inventories = state.inventories
    capacity, n = game.capacity, game.n_population
    size_s, size_h = inventories[speakers, 0], inventories[hearers, 0]
    empty = size_s == 0
    known = inventories[speakers, SLOTS_HEADER + _uniform_index(u_word, size_s)]
    new = RESERVED_NAMES + speakers if game.vocabulary == "open" else _uniform_index(u_word, game.vocabulary)
    word = jnp.where(empty, new, known)
    candidate = positions < j
    success = candidate & knows(inventories, hearers, size_h, word, candidate)
    collapse = success & (u_coin < game.beta)
    # a failure appends the word at slot size_h: the first hearer already full ends the prefix (overflow)
    hearer_changes = (hearers >= game.n_committed) & (collapse | ~success)
    overflows = candidate & hearer_changes & ~collapse & (size_h >= capacity)
    j = jnp.minimum(j, jnp.min(jnp.where(overflows, positions, block_size)))
    active = positions < j
    success = success & active

    # speaker: {word} after a collapse, or after inventing/drawing it into an empty inventory ("keeps")
    speaker_writes = active & (speakers >= game.n_committed) & (collapse | (empty & (game.empty_speaker == "keeps")))
    # hearer: {word} after a collapse, or appended after a failure
    hearer_writes = active & hearer_changes
    hearer_slot = jnp.where(collapse, 0, size_h)
    new_s = jnp.where(speaker_writes, 1, size_s)
    new_h = jnp.where(hearer_writes, jnp.where(collapse, 1, size_h + 1), size_h)

    out = n  # a row past the end: the write is dropped
    rows_s, rows_h = jnp.where(speaker_writes, speakers, out), jnp.where(hearer_writes, hearers, out)
    rows = jnp.concatenate([rows_s, rows_s, rows_h, rows_h])  # each agent: its size, then one slot
    size_column = jnp.zeros_like(rows_s)
    columns = jnp.concatenate([size_column, size_column + SLOTS_HEADER, size_column, SLOTS_HEADER + hearer_slot])
    inventories = inventories.at[rows, columns].set(jnp.concatenate([new_s, word, new_h, word]), mode="drop")

    # counters in sequence order: cumulative sums of each interaction's changes (zero past j)
    words_after = state.total_words + jnp.cumsum(new_s - size_s + new_h - size_h)
    single_change = (new_s == 1).astype(jnp.int32) - (size_s == 1) + (new_h == 1) - (size_h == 1)
    single_after = state.n_single + jnp.cumsum(single_change)
    peak = jnp.max(words_after)
    new_peak = peak > state.peak_words
    all_single = single_after[-1] == n
    last_mixed = jnp.max(jnp.where(active & (single_after != n), positions, -1))  # last one not all single
    since_before = Count.where(state.single_since.known, state.single_since, t.plus(1))
    single_since = Count.where(
        all_single, Count.where(last_mixed >= 0, t.plus(last_mixed + 2), since_before), Count.never()
    )
    consensus = all_same_word(inventories, all_single & ~state.consensus_time.known)
    state = NamingState(
        inventories=inventories,
        interactions=t.plus(j),
        successes=state.successes.plus(jnp.sum(success, dtype=jnp.int32)),
        total_words=words_after[-1],
        n_single=single_after[-1],
        single_since=single_since,
        peak_words=jnp.where(new_peak, peak, state.peak_words),
        peak_time=Count.where(new_peak, t.plus(jnp.argmax(words_after).astype(jnp.int32) + 1), state.peak_time),
        consensus_time=Count.where(consensus, single_since, state.consensus_time),
        overflow=state.overflow | jnp.any(overflows),
    )
    return state, stamps, touched


def running(state: NamingState, end: Count) -> jax.Array:
    """Whether a run goes on: fewer than ``end`` interactions, no overflow, no consensus yet."""
    return state.interactions.below(end) & ~state.overflow & ~state.consensus_time.known


def advance_to(game, key: jax.Array, state: NamingState, end, *, stop_at_consensus: bool) -> NamingState:
    """Blocks from ``state.interactions`` until ``end`` interactions (a ``Count`` or an int), an overflow, or
    consensus. After consensus every interaction is a success that changes nothing, so unless
    ``stop_at_consensus`` the interactions up to ``end`` are counted (as successes) without being simulated."""
    end = end if isinstance(end, Count) else Count.of(end)
    block_size = game.block_size
    stamps = jnp.full((game.n_population,), block_size, jnp.int32)
    touched = jnp.zeros(2 * block_size, jnp.int32)
    # Blocks run in groups of ~N / B between checks of the stop rule (blocks after the stop change nothing): under
    # vmap a while loop selects its whole carry, inventories included, at every iteration, so the check is made
    # ~0.75 N interactions apart rather than after every block.
    group = max(1, game.n_population // block_size)

    def blocks(carry):
        return jax.lax.fori_loop(0, group, lambda _, c: apply_block(game, key, *c, end, block_size), carry)

    state = jax.lax.while_loop(lambda carry: running(carry[0], end), blocks, (state, stamps, touched))[0]
    if stop_at_consensus:
        return state
    skip = state.consensus_time.known & ~state.overflow
    skipped = Count.where(skip, end.minus(state.interactions), Count.of(0))
    counts = (state.interactions.plus(skipped), state.successes.plus(skipped))
    return eqx.tree_at(lambda s: (s.interactions, s.successes), state, counts)


__all__ = ["advance_to", "apply_block", "draws", "first_conflict", "knows", "pairs"]
