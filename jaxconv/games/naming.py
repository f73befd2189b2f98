"""The naming game family: one rule, with parameters.

Minimal naming game (Baronchelli, Felici, Loreto, Caglioti & Steels, J. Stat. Mech. P06014, 2006): a speaker
utters a random word of its inventory (inventing one if it has none); if the hearer knows it both keep only that
word, otherwise the hearer learns it. Parameters give the variants:

- ``vocabulary="open"``: an empty speaker invents a brand-new word. ``vocabulary=W``: it draws one of W names
  uniformly and keeps it (``empty_speaker="keeps"``) or only utters it (``"forgets"``, the baseline of Ashery,
  Aiello & Baronchelli 2025).
- ``beta``: on success the two inventories collapse only with probability beta (Baronchelli, Dall'Asta, Barrat &
  Loreto, PRE 76 051102, 2007).
- ``committed``: agents that hold ``committed_name`` and never change, ``"added"`` to the N agents or
  ``"converted"`` from them (Xie et al., PRE 84 011130, 2011: W=2, committed added, population prepared).

Agents ``0 .. committed-1`` are the committed ones. With an open vocabulary names 0 and 1 are reserved for a
prepared or committed name and agent i's invented word is ``2 + i``: an inventory never becomes empty again, so
each agent invents at most once.

How the simulator holds inventories (``inventory=``): ``"bitsets"`` (``jaxconv.bitset``), one bit per possible
word, N + 2 bits per agent with an open vocabulary, so O(N) memory per agent and O(N / 32) work per interaction,
and never an overflow; or ``"slots"`` (:class:`Slots`), up to K word ids per agent, memory and work bounded by K
(chosen from N, 3 sqrt(N): the largest inventory of the minimal game reaches 1.3-2.1 sqrt(N) for N = 10^4 .. 10^6).
A slot inventory that would exceed K sets the state's ``overflow`` flag (detected exactly, never truncated
silently): the engine continues the affected replicas with 1.5 K (``NamingGame.grown``; in blocks from the state
just before the interaction that overflowed, ``NamingGame.widened``, otherwise from the start).
``"auto"`` takes slots for the open vocabulary from
``SLOTS_FROM`` agents on, bitsets otherwise. Both give the same law (a speaker utters a uniformly chosen known word);
trajectories differ between the two, but a replica's slot trajectory does not depend on K as long as it fits.

How the engine steps it (``stepping=``): ``"sequential"``, one step of the schedule at a time from words drawn in
bulk (``advance``); or ``"blocks"`` (``jaxconv.games.blocks``), random sequential pairs drawn per interaction index
and applied in exact conflict-free blocks of ~0.5 sqrt(N) interactions at once (``advance_to``): the same process,
far fewer sequential operations. ``"auto"`` takes blocks for slot inventories with random sequential pairs (any
graph, vocabulary, beta and committed agents), sequential otherwise (bitsets, or the matching schedule). A block
trajectory does not depend on the block size, the recording interval, K (while it fits) or the number of replicas.
"""

import copy
import math
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import bitset
from jaxconv.choosers import Choice, Chooser, Sample, mix
from jaxconv.counts import LIMIT, Count
from jaxconv.games.base import Game, check_choice, check_int, is_traced
from jaxconv.schedules import RandomPairs, Schedule, schedule_from_name
from jaxconv.topology import Graph, complete

RESERVED_NAMES = 2
SLOTS_FROM = 1024  # "auto" inventories: slots for the open vocabulary from this population size on
SLOTS_HEADER = 4  # a slot row: size, pending slot, pending word, overflow, then the K words
EMPTY_SLOT = -1


class NamingState(eqx.Module):
    """State of one population; word counts are int32 scalars, interaction counts ``jaxconv.counts.Count``s
    (exact beyond 2^31; int64 on the host)."""

    inventories: jax.Array  # (n_population, n_words) uint32 bitsets, or (n_population, 4 + K) int32 slot rows
    interactions: Count  # interactions so far
    successes: Count  # successful interactions so far
    total_words: jax.Array  # sum of inventory sizes, N_w
    n_single: jax.Array  # agents that hold exactly one word
    single_since: Count  # interaction count since which every agent holds one word, -1 if not now
    peak_words: jax.Array  # max of total_words so far
    peak_time: Count  # first interaction count at which peak_words was reached
    consensus_time: Count  # interaction count at which consensus was reached, -1 until seen
    overflow: jax.Array  # a slot inventory needed more than K words (the run must be redone with more slots)


class Exchange(NamedTuple):
    """What one speaker-hearer interaction did: both inventories after it, whether the hearer knew the word, the
    log-probability of the choices and the collapse coin (``NamingGame.interact``)."""

    speaker: jax.Array
    hearer: jax.Array
    success: jax.Array
    log_prob: jax.Array
    collapse: Choice


class NamingGame(Game):
    """A naming game on a graph. Sizes and variants are static; ``beta``, ``n_committed`` (converted mode) and the
    names are arrays, so sweeping them does not recompile."""

    n_agents: int = eqx.field(static=True)
    n_population: int = eqx.field(static=True)
    vocabulary: int | str = eqx.field(static=True)
    empty_speaker: str = eqx.field(static=True)
    committed_mode: str = eqx.field(static=True)
    initial: str = eqx.field(static=True)
    n_bits: int = eqx.field(static=True)
    inventory: str = eqx.field(static=True)
    capacity: int = eqx.field(static=True)
    stepping: str = eqx.field(static=True)
    block_size: int = eqx.field(static=True)
    beta: jax.Array
    n_committed: jax.Array
    committed_name: jax.Array
    prepared_name: jax.Array

    def __init__(
        self,
        n_agents: int,
        *,
        vocabulary: int | str = "open",
        empty_speaker: str = "keeps",
        beta: float = 1.0,
        committed: int = 0,
        committed_fraction: float | None = None,
        committed_mode: str = "added",
        committed_name: int = 1,
        initial: str = "empty",
        prepared_name: int = 0,
        schedule: Schedule | str = "pairs",
        graph: Graph | None = None,
        inventory: str = "auto",
        capacity: int | None = None,
        stepping: str = "auto",
        block_size: int | None = None,
    ):
        check_int("n_agents", n_agents, low=2)
        if vocabulary != "open":
            check_int("vocabulary (number of names W)", vocabulary, low=1)
        check_choice("empty_speaker", empty_speaker, ("keeps", "forgets"))
        check_choice("committed_mode", committed_mode, ("added", "converted"))
        check_choice("initial", initial, ("empty", "prepared"))
        check_choice("inventory", inventory, ("auto", "bitsets", "slots"))
        if capacity is not None:
            check_int("capacity (word slots per agent)", capacity, low=1)
        check_choice("stepping", stepping, ("auto", "sequential", "blocks"))
        if block_size is not None:
            check_int("block_size (candidate interactions per block)", block_size, low=1)
        if vocabulary == "open" and empty_speaker == "forgets":
            raise ValueError("empty_speaker='forgets' needs a finite pool of names; an inventor keeps its new word")
        if jnp.ndim(beta) != 0 or not (is_traced(beta) or 0.0 <= float(beta) <= 1.0):
            shown = f"an array of shape {jnp.shape(beta)}" if jnp.ndim(beta) else beta
            raise ValueError(f"beta must be a number in [0, 1], got {shown}")
        if committed_fraction is not None:
            committed = committed_count(n_agents, committed_fraction, committed_mode)
        check_int("committed", committed, low=0)
        if committed > n_agents:
            raise ValueError(f"committed must be at most n_agents={n_agents}, got {committed}")
        n_names = RESERVED_NAMES if vocabulary == "open" else vocabulary
        for label, name, used in (
            ("committed_name", committed_name, committed > 0),
            ("prepared_name", prepared_name, initial == "prepared"),
        ):
            if used and not 0 <= name < n_names:
                raise ValueError(f"{label} must be in [0, {n_names}), got {name}")

        self.n_agents = n_agents
        self.n_population = n_agents + committed if committed_mode == "added" else n_agents
        self.vocabulary = vocabulary
        self.empty_speaker = empty_speaker
        self.committed_mode = committed_mode
        self.initial = initial
        self.n_bits = RESERVED_NAMES + self.n_population if vocabulary == "open" else vocabulary
        if inventory == "auto":
            large_open = vocabulary == "open" and self.n_population >= SLOTS_FROM
            inventory = "slots" if large_open or stepping == "blocks" else "bitsets"
        self.inventory = inventory
        if inventory == "slots":
            self.capacity = min(capacity or default_capacity(self.n_population), self.n_bits)
        else:
            self.capacity = self.n_bits  # a bitset holds every possible word
        self.schedule = schedule_from_name(schedule) if isinstance(schedule, str) else schedule
        self.graph = complete(self.n_population) if graph is None else graph
        if self.graph.n_nodes != self.n_population:
            raise ValueError(f"graph has {self.graph.n_nodes} nodes but the population has {self.n_population} agents")
        if committed_mode == "added" and committed > 0 and graph is not None:
            raise ValueError("committed_mode='added' needs the complete graph; use 'converted' on other graphs")
        self.schedule.check(self.graph)
        pairs = isinstance(self.schedule, RandomPairs)
        if stepping == "blocks" and not (pairs and inventory == "slots"):
            raise ValueError(
                f"stepping='blocks' needs random sequential pairs (schedule='pairs') and word slots "
                f"(inventory='slots'), got schedule {type(self.schedule).__name__} and inventory={inventory!r}"
            )
        if stepping == "auto":
            stepping = "blocks" if pairs and inventory == "slots" else "sequential"
        self.stepping = stepping
        self.block_size = block_size or default_block_size(self.n_population)
        self.beta = jnp.asarray(beta, jnp.float32)
        self.n_committed = jnp.asarray(committed, jnp.int32)
        self.committed_name = jnp.asarray(committed_name, jnp.int32)
        self.prepared_name = jnp.asarray(prepared_name, jnp.int32)

    def check_value(self, name: str, values) -> None:
        """Validate values of a swept parameter (``jaxconv.sweep``); raises ValueError naming a bad one."""
        if jnp.ndim(values) != 1:
            raise ValueError(f"swept {name} must be one number per value, got shape {jnp.shape(values)}")
        values = list(map(float, values))
        if name == "beta" and not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"beta must be in [0, 1], got {values}")
        if name == "n_committed":
            if self.committed_mode != "converted":
                raise ValueError("sweeping n_committed needs committed_mode='converted' (added agents change N)")
            if not all(0 <= v <= self.n_agents and v == int(v) for v in values):
                raise ValueError(f"n_committed must be integers in [0, {self.n_agents}], got {values}")
        n_names = RESERVED_NAMES if self.vocabulary == "open" else self.vocabulary
        if name in ("committed_name", "prepared_name") and not all(0 <= v < n_names and v == int(v) for v in values):
            raise ValueError(f"{name} must be integers in [0, {n_names}) (the pool of names), got {values}")

    # ----- sizes --------------------------------------------------------------------------------------------
    @property
    def n_words(self) -> int:
        return bitset.n_words(self.n_bits)

    @property
    def max_interactions(self) -> int:
        """Most interactions a run may count: 2^62 - 1 in blocks (``Count``s throughout), 2^31 - 1 one step at a
        time (its steps add to the counts' low words only, as cheap as int32 counters)."""
        return LIMIT - 1 if self.in_blocks else 2**31 - 1

    def state_bytes(self) -> int:
        """Bytes of one replica's state (inventories and counters)."""
        per_agent = 4 * (SLOTS_HEADER + self.capacity if self.inventory == "slots" else self.n_words)
        return self.n_population * per_agent + 4 * (3 + 2 * 5) + 1

    def grown(self) -> "NamingGame":
        """The same game with 1.5 times the word slots per agent (rounded up as ``default_capacity``; at most one
        per possible word, which cannot overflow); the engine continues overflowed replicas with it."""
        if self.inventory != "slots" or self.capacity >= self.n_bits:
            raise ValueError(f"inventories of {self.capacity} words cannot overflow: nothing to grow")
        grown = copy.copy(self)
        object.__setattr__(grown, "capacity", min(_whole_searches(self.capacity + -(-self.capacity // 2)), self.n_bits))
        return grown

    def widened(self, state: NamingState) -> NamingState:
        """A block-run state of this game with fewer slots (one that overflowed: ``blocks.apply_block`` leaves it
        just before the interaction that needed more), as this game's state: slot rows padded to K (batch axes
        allowed), overflow cleared. It equals the state a run with this K from the start has at that point (slots
        past the old K were never written), so the run goes on from it exactly."""
        rows = state.inventories
        extra = SLOTS_HEADER + self.capacity - rows.shape[-1]
        if self.inventory != "slots" or extra < 0:
            raise ValueError(f"cannot widen slot rows of {rows.shape[-1] - SLOTS_HEADER} words to K={self.capacity}")
        rows = jnp.pad(rows, [(0, 0)] * (rows.ndim - 1) + [(0, extra)], constant_values=EMPTY_SLOT)
        rows = rows.at[..., 1].set(self.capacity)  # a stored row's "no pending write"
        return eqx.tree_at(lambda s: (s.inventories, s.overflow), state, (rows, jnp.zeros_like(state.overflow)))

    def overflowed(self, summary: dict) -> np.ndarray | None:
        """Per replica (host arrays of ``summarize``): whether its inventories overflowed (so it must be rerun);
        None for inventories that cannot overflow."""
        return np.asarray(summary["overflow"], bool) if "overflow" in summary else None

    def _slots(self) -> "Slots":
        return Slots(self.capacity, None if self.vocabulary == "open" else self.vocabulary)

    def is_committed(self) -> jax.Array:
        """``(n_population,) bool``: agents 0 .. n_committed-1."""
        return jnp.arange(self.n_population) < self.n_committed

    # ----- dynamics -----------------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> NamingState:
        """Empty (or prepared) inventories; committed agents hold the committed name. ``key`` is unused."""
        del key
        if self.inventory == "slots":
            slots = self._slots()
            start = slots.stored(slots.only(self.prepared_name))
            if self.initial == "empty":
                start = slots.empty_row()
            inventories = jnp.where(self.is_committed()[:, None], slots.stored(slots.only(self.committed_name)), start)
            sizes = inventories[:, 0]
        else:
            start = bitset.singleton(self.prepared_name, self.n_words)
            if self.initial == "empty":
                start = jnp.zeros_like(start)
            committed_words = bitset.singleton(self.committed_name, self.n_words)
            inventories = jnp.where(self.is_committed()[:, None], committed_words, start)
            sizes = jax.vmap(bitset.size)(inventories)
        n_single = jnp.sum(sizes == 1, dtype=jnp.int32)
        zero = Count.of(0)
        return NamingState(
            inventories=inventories,
            interactions=zero,
            successes=zero,
            total_words=sizes.sum(),
            n_single=n_single,
            single_since=Count.where(n_single == self.n_population, zero, Count.never()),
            peak_words=sizes.sum(),
            peak_time=zero,
            consensus_time=Count.never(),
            overflow=jnp.bool_(False),
        )

    # ----- the rule ---------------------------------------------------------------------------------------------
    def interact(
        self, chooser: Chooser, speaker, speaker_words, hearer_words, speaker_committed, hearer_committed, u
    ) -> "Exchange":
        """The rule for one speaker-hearer pair: the speaker utters a word of its inventory (an empty speaker
        invents one, or draws one from the pool); if the hearer knows it, both keep only that word (with
        probability beta), else the hearer learns it. Committed agents never change.

        Inventories are ``(n_words,) uint32`` bitsets (hard choosers) or ``(W,)`` membership weights (others, a
        finite pool only); ``u`` holds the chooser's uniforms for the word, then for the collapse."""
        inventories = self.inventories(chooser)
        n_word_uniforms = chooser.uniforms(inventories.n_options)
        word = inventories.utter(chooser, speaker_words, u[:n_word_uniforms], RESERVED_NAMES + speaker)
        success = inventories.knows(hearer_words, word.value)
        collapse = chooser.coin(self.beta, u[n_word_uniforms:])
        collapses = success * collapse.value
        only_word = inventories.only(word.value)
        keeps_word = inventories.learns_own_word(speaker_words, self.empty_speaker == "keeps")
        speaker_learned = mix(keeps_word, inventories.add(speaker_words, word.value), speaker_words)
        speaker_after = mix(collapses, only_word, speaker_learned)
        hearer_after = mix(collapses, only_word, inventories.add(hearer_words, word.value))
        speaker_after = mix(speaker_committed, speaker_words, speaker_after)
        hearer_after = mix(hearer_committed, hearer_words, hearer_after)
        log_prob = word.log_prob + mix(success, collapse.log_prob, 0.0)  # the coin matters only after a success
        return Exchange(speaker_after, hearer_after, success, log_prob, collapse)

    def inventories(self, chooser: Chooser) -> "Bitsets | Slots | Memberships":
        """How inventories are held for ``chooser``: bitsets or word slots (``self.inventory``) for hard choices,
        membership weights otherwise."""
        if chooser.hard and self.inventory == "slots":
            return self._slots()
        if chooser.hard:
            return Bitsets(self.n_words, None if self.vocabulary == "open" else self.vocabulary)
        if self.vocabulary == "open":
            raise ValueError(
                "relaxed choices need a finite pool of names (vocabulary=W); the open vocabulary is hard-only"
            )
        return Memberships(self.vocabulary)

    def advance(self, state: NamingState, words: jax.Array) -> NamingState:
        """One step of the schedule from ``(words_per_step,) uint32`` random words."""
        speakers, hearers, uniforms = self.schedule.draw(self.graph, words)
        rows = jnp.concatenate([speakers, hearers])  # disjoint within a step: one scatter writes both roles
        # Read the rows once, behind a barrier: otherwise XLA fuses the read into several consumers and copies the
        # whole inventory array before the write below (benchmarks/RESULTS.md, one replica of large N).
        before = jax.lax.optimization_barrier(state.inventories[rows])
        before_s, before_h = before[: speakers.shape[0]], before[speakers.shape[0] :]
        committed_s, committed_h = speakers < self.n_committed, hearers < self.n_committed
        if speakers.shape[0] == 1:  # one pair: no batch axis, so the slot search stops as soon as it can
            exchange = self.interact(
                Sample(), speakers[0], before_s[0], before_h[0], committed_s[0], committed_h[0], uniforms[0]
            )
            exchange = jax.tree.map(lambda x: x[None], exchange)
        else:
            exchange = jax.vmap(partial(self.interact, Sample()))(
                speakers, before_s, before_h, committed_s, committed_h, uniforms
            )
        after_s, after_h, success = exchange.speaker, exchange.hearer, exchange.success
        overflow = state.overflow
        if self.inventory == "slots":
            # a slot row changes in its size and at most one slot: write those (O(1)), not the whole row
            after = jnp.concatenate([after_s, after_h])[:, :SLOTS_HEADER]
            sizes_before, sizes_after = before[:, 0], after[:, 0]
            cells = jnp.stack(
                [jnp.concatenate([rows, rows]), jnp.concatenate([jnp.zeros_like(rows), SLOTS_HEADER + after[:, 1]])],
                axis=1,
            )
            inventories = state.inventories.at[cells[:, 0], cells[:, 1]].set(
                jnp.concatenate([sizes_after, after[:, 2]]), mode="drop", unique_indices=True
            )
            overflow = overflow | jnp.any(after[:, 3] != 0)
        else:
            inventories = state.inventories.at[rows].set(jnp.concatenate([after_s, after_h]), unique_indices=True)
            sizes_before = jax.vmap(bitset.size)(before)
            sizes_after = jax.vmap(bitset.size)(jnp.concatenate([after_s, after_h]))
        total_words = state.total_words + jnp.sum(sizes_after - sizes_before)
        n_single = state.n_single + jnp.sum(sizes_after == 1) - jnp.sum(sizes_before == 1)
        # one step at a time, counts stay below 2^31 (max_interactions): only their low words change
        interactions = state.interactions.low + speakers.shape[0]
        all_single = n_single == self.n_population
        new_peak = total_words > state.peak_words
        since = state.single_since.low
        return NamingState(
            inventories=inventories,
            interactions=Count.of(interactions),
            successes=Count.of(state.successes.low + jnp.sum(success, dtype=jnp.int32)),
            total_words=total_words,
            n_single=n_single,
            single_since=Count.of(jnp.where(all_single, jnp.where(since >= 0, since, interactions), -1)),
            peak_words=jnp.where(new_peak, total_words, state.peak_words),
            peak_time=Count.of(jnp.where(new_peak, interactions, state.peak_time.low)),
            consensus_time=state.consensus_time,
            overflow=overflow,
        )

    def step(self, key: jax.Array, state: NamingState) -> NamingState:
        """One step drawn from ``key`` (the engine draws the words of many steps at once instead)."""
        return self.advance(state, jax.random.bits(key, (self.words_per_step,), jnp.uint32))

    @property
    def in_blocks(self) -> bool:
        """Whether the engine runs this game in conflict-free blocks (:meth:`advance_to`) instead of step by step."""
        return self.stepping == "blocks"

    def advance_to(self, key: jax.Array, state: NamingState, end, *, stop_at_consensus: bool) -> NamingState:
        """Interactions from ``state.interactions`` until ``end`` (or an overflow, or consensus) in exact
        conflict-free blocks; interaction t's draws depend on ``(key, t)`` only (``jaxconv.games.blocks``)."""
        from jaxconv.games import blocks

        return blocks.advance_to(self, key, state, end, stop_at_consensus=stop_at_consensus)

    # ----- observation --------------------------------------------------------------------------------------
    def record(self, state: NamingState) -> tuple[NamingState, dict]:
        """Observe the population; latch the consensus time the first time consensus is seen.

        While every agent holds one word, inventories cannot change (any failure gives the hearer a second word),
        so consensus seen now began at ``single_since``."""
        if self.inventory == "slots":
            held = self._held_names(state)
            distinct = jnp.sum(held != 0, dtype=jnp.int32)
            first = state.inventories[:, SLOTS_HEADER]  # everyone holds one word: the same one? (O(N))
            at_consensus = (state.n_single == self.n_population) & jnp.all(first == first[0])
        else:
            union = jax.lax.reduce(state.inventories, jnp.uint32(0), jax.lax.bitwise_or, (0,))
            distinct = bitset.size(union)
            at_consensus = (state.n_single == self.n_population) & (distinct == 1)
        first_seen = at_consensus & ~state.consensus_time.known
        state = eqx.tree_at(
            lambda s: s.consensus_time, state, Count.where(first_seen, state.single_since, state.consensus_time)
        )
        observation = {
            "interactions": state.interactions,
            "successes": state.successes,
            "total_words": state.total_words,
            "distinct_names": distinct,
            "committed_only_agents": self.committed_only_agents(state),
        }
        if self.vocabulary != "open" and self.inventory == "slots":
            observation["name_holders"] = held
        elif self.vocabulary != "open":
            holds = jax.vmap(bitset.members, in_axes=(0, None))(state.inventories, self.n_bits)
            observation["name_holders"] = jnp.sum(holds, axis=0, dtype=jnp.int32)
        return state, observation

    def _held_names(self, state: NamingState) -> jax.Array:
        """``(n_bits,) int32``: agents holding each word (slot inventories; O(N K) work, O(N) memory)."""
        words = state.inventories[:, SLOTS_HEADER:]
        valid = jnp.arange(self.capacity) < state.inventories[:, :1]
        return jnp.zeros(self.n_bits, jnp.int32).at[jnp.where(valid, words, self.n_bits)].add(1, mode="drop")

    def committed_only_agents(self, state: NamingState) -> jax.Array:
        """Number of uncommitted agents whose inventory is exactly ``{committed_name}`` (an int, so that results
        are bit-identical whatever the batch shape; divide by ``n_population - n_committed`` for a share)."""
        if self.inventory == "slots":
            rows = state.inventories
            only_committed = (rows[:, 0] == 1) & (rows[:, SLOTS_HEADER] == self.committed_name)
        else:
            only_committed = jnp.all(state.inventories == bitset.singleton(self.committed_name, self.n_words), axis=1)
        return jnp.sum(only_committed & ~self.is_committed(), dtype=jnp.int32)

    def is_done(self, state: NamingState) -> jax.Array:
        """Consensus reached (seen at a record; consensus is absorbing), or the inventories overflowed (the run is
        then redone with more slots, so it can stop at once)."""
        return state.consensus_time.known | state.overflow

    def summarize(self, state: NamingState) -> dict:
        """Per-replica results of a run (after its last record)."""
        if self.inventory == "slots":
            winner = state.inventories[0, SLOTS_HEADER]
        else:
            winner = bitset.nth_member(state.inventories[0], jnp.int32(0))
        converted = self.committed_only_agents(state)
        capacity = {}
        if self.inventory == "slots":  # the run is valid only without overflow; capacity: the K it ran with
            capacity = {"overflow": state.overflow, "capacity": jnp.int32(self.capacity)}
        return {
            **capacity,
            "consensus_time": state.consensus_time,
            "winner": jnp.where(state.consensus_time.known, winner, -1),
            "peak_total_words": state.peak_words,
            "peak_time": state.peak_time,
            "interactions": state.interactions,
            "successes": state.successes,
            "committed_only_agents": converted,
            "committed_flip": converted == self.n_population - self.n_committed,
        }


def default_block_size(n_population: int) -> int:
    """Candidate interactions per conflict-free block: 2/3 sqrt(N). The first conflict among uniform pairs comes
    after J ~ 0.63 sqrt(N) interactions (P(J > x) ~ exp(-2 x^2 / N)), so about 40% of the blocks end at B rather
    than at a conflict; a block then applies ~0.51 sqrt(N) interactions for 2/3 sqrt(N) candidates' work, fewer
    wasted candidates than with a larger B (measured at N = 10^5, benchmarks/RESULTS.md)."""
    return max(2, 2 * math.isqrt(n_population) // 3)


def default_capacity(n_population: int) -> int:
    """Word slots per agent for an open vocabulary: 3 sqrt(N) + 16, rounded up to 64s (8s below 64). The largest
    inventory of the minimal naming game reaches ~1.5 sqrt(N) for N = 10^4 .. 10^5 but passed 2 sqrt(N) at
    N = 10^6 (benchmarks/RESULTS.md); a larger inventory overflows and the engine continues with more slots."""
    return _whole_searches(3 * math.isqrt(n_population) + 16)


def _whole_searches(slots: int) -> int:
    """``slots`` rounded up to whole search blocks: 64s (8s below 64)."""
    multiple = SEARCH_BLOCK if slots > SEARCH_BLOCK else 8
    return -(-slots // multiple) * multiple


def committed_count(n_agents: int, fraction: float, mode: str) -> int:
    """Committed agents for a committed share ``fraction`` of the whole population."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"committed_fraction must be in [0, 1), got {fraction}")
    return round(fraction * n_agents) if mode == "converted" else round(fraction * n_agents / (1.0 - fraction))


class Bitsets(NamedTuple):
    """Inventories as ``(n_words,) uint32`` bitsets (``jaxconv.bitset``), chosen from by hard choices: the word
    uttered is uniform among the known ones (the inverse CDF of one uniform)."""

    n_words: int
    pool: int | None  # W names, or None for the open vocabulary

    @property
    def n_options(self) -> int:
        return 1

    def utter(self, chooser: Chooser, inventory, u, invented) -> Choice:
        n_known = bitset.size(inventory)
        new = invented if self.pool is None else _uniform_index(u[0], self.pool)
        known = bitset.nth_member(inventory, _uniform_index(u[0], n_known))
        n_options = jnp.where(n_known > 0, n_known, 1 if self.pool is None else self.pool)
        return Choice(jnp.where(n_known == 0, new, known), -jnp.log(n_options.astype(jnp.float32)), None)

    def knows(self, inventory, word):
        return bitset.contains(inventory, word)

    def only(self, word):
        return bitset.singleton(word, self.n_words)

    def add(self, inventory, word):
        return inventory | self.only(word)

    def learns_own_word(self, inventory, keeps: bool):
        """An empty speaker keeps its new word only if ``keeps``; a speaker that knew words adds nothing new."""
        return (bitset.size(inventory) > 0) | keeps

    def holds_only(self, inventory, word):
        """Whether the inventory is exactly ``{word}``."""
        return jnp.all(inventory == self.only(word))


class Slots(NamedTuple):
    """Inventories as up to ``capacity`` (K) word ids, hard choices only: memory and work per interaction bounded
    by K, not by the number of possible words.

    An inventory is an int32 row ``(4 + K,)``: its size n, a pending write (slot, word), an overflow flag, then the
    K slots, of which the first n hold the words (in the order learned; slots past n are stale). Its words are
    slots ``0 .. n-1`` with the pending write applied. A stored row has no pending write (slot K, out of range);
    the operations read stored rows and return at most one pending write, so that the simulator writes a size and
    one slot per agent (O(1)) instead of a whole row. The word uttered is uniform among the known ones (the slot
    ``floor(u * n)``), the law of ``Bitsets``. Adding a word to a full inventory sets the overflow flag (the word
    is not stored, and the run must be redone with more slots)."""

    capacity: int
    pool: int | None  # W names, or None for the open vocabulary

    @property
    def n_options(self) -> int:
        return 1

    def _word_at(self, inventory, slot):
        return jnp.where(slot == inventory[1], inventory[2], inventory[SLOTS_HEADER + slot])

    def utter(self, chooser: Chooser, inventory, u, invented) -> Choice:
        n_known = inventory[0]
        new = invented if self.pool is None else _uniform_index(u[0], self.pool)
        known = self._word_at(inventory, _uniform_index(u[0], n_known))
        n_options = jnp.where(n_known > 0, n_known, 1 if self.pool is None else self.pool)
        return Choice(jnp.where(n_known == 0, new, known), -jnp.log(n_options.astype(jnp.float32)), None)

    def knows(self, inventory, word):
        """Searched a block of slots at a time, stopping at the word or the inventory's end: O(size) work."""
        size, pending = inventory[0], inventory[1]
        words = inventory[SLOTS_HEADER:]
        width = math.gcd(self.capacity, SEARCH_BLOCK)
        offsets = jnp.arange(width)

        def more(carry):
            start, found = carry
            return (start < size) & ~found

        def search(carry):
            start, _ = carry
            slots = start + offsets
            block = jax.lax.dynamic_slice(words, (start,), (width,))
            return start + width, jnp.any((block == word) & (slots < size) & (slots != pending))

        found = jax.lax.while_loop(more, search, (jnp.int32(0), jnp.bool_(False)))[1]
        return found | ((pending < size) & (inventory[2] == word))

    def only(self, word):
        return self.stored(jnp.asarray(word, jnp.int32), size=1, pending=0)

    def add(self, inventory, word):
        size = inventory[0]
        full = size >= self.capacity
        words = jnp.where(jnp.arange(self.capacity) == inventory[1], inventory[2], inventory[SLOTS_HEADER:])
        header = jnp.stack(
            [
                jnp.minimum(size + 1, self.capacity),
                jnp.where(full, self.capacity, size),
                jnp.asarray(word, jnp.int32),
                (full | (inventory[3] != 0)).astype(jnp.int32),
            ]
        )
        return jnp.where(self.knows(inventory, word), inventory, jnp.concatenate([header, words]))

    def learns_own_word(self, inventory, keeps: bool):
        """An empty speaker keeps its new word only if ``keeps``; a speaker that knew words adds nothing new."""
        return (inventory[0] > 0) | keeps

    def holds_only(self, inventory, word):
        """Whether the inventory is exactly ``{word}``."""
        return (inventory[0] == 1) & (self._word_at(inventory, 0) == word)

    # ----- rows as stored in a state -------------------------------------------------------------------------
    def empty_row(self):
        return jnp.concatenate(
            [jnp.array([0, self.capacity, 0, 0], jnp.int32), jnp.full(self.capacity, EMPTY_SLOT, jnp.int32)]
        )

    def stored(self, word, size=None, pending=None):
        """The stored row of ``{word}`` (``size``/``pending`` given: the same inventory as a pending write), or
        with ``word`` a row, that row with its pending write applied."""
        word = jnp.asarray(word, jnp.int32)
        if word.ndim == 0:
            row = self.empty_row().at[SLOTS_HEADER].set(word).at[0].set(1)
            if pending is not None:
                row = row.at[1].set(pending).at[2].set(word).at[0].set(size)
            return row
        words = jnp.where(jnp.arange(self.capacity) == word[1], word[2], word[SLOTS_HEADER:])
        return jnp.concatenate([jnp.stack([word[0], jnp.int32(self.capacity), jnp.int32(0), word[3]]), words])

    def members(self, inventory, n_bits: int):
        """Membership mask ``(n_bits,) bool`` of an inventory."""
        row = self.stored(inventory)
        valid = jnp.arange(self.capacity) < row[0]
        return jnp.zeros(n_bits, bool).at[jnp.where(valid, row[SLOTS_HEADER:], n_bits)].set(True, mode="drop")


SEARCH_BLOCK = 64  # slots compared at once by Slots.knows


class Memberships(NamedTuple):
    """Inventories of a pool of W names as ``(W,)`` weights in [0, 1], membership of each name (0/1 for a hard
    state). A speaker utters each name it knows with probability weight / total; it is empty with weight
    ``prod(1 - weight)`` and then draws from the pool. Exact for 0/1 weights."""

    pool: int

    @property
    def n_options(self) -> int:
        return self.pool

    def utter(self, chooser: Chooser, inventory, u, invented) -> Choice:
        del invented  # a finite pool: an empty speaker draws a name
        empty = self.empty(inventory)
        known = inventory / jnp.maximum(inventory.sum(), 1e-30)
        return chooser.choose((1.0 - empty) * known + empty / self.pool, u)

    def knows(self, inventory, word):
        return jnp.sum(inventory * word)

    def only(self, word):
        return word

    def add(self, inventory, word):
        return inventory + word - inventory * word

    def learns_own_word(self, inventory, keeps: bool):
        return 1.0 if keeps else 1.0 - self.empty(inventory)

    def holds_only(self, inventory, word):
        """Weight of the inventory being exactly ``{word}`` (memberships taken as independent)."""
        return jnp.prod(word * inventory + (1.0 - word) * (1.0 - inventory))

    @staticmethod
    def empty(inventory):
        return jnp.prod(1.0 - inventory)


def _uniform_index(u: jax.Array, n) -> jax.Array:
    """``floor(u * n)`` for u uniform in [0, 1), kept below n against float rounding."""
    return jnp.minimum((u * n).astype(jnp.int32), jnp.maximum(n, 1) - 1)


__all__ = [
    "Bitsets",
    "Exchange",
    "Memberships",
    "NamingGame",
    "NamingState",
    "Slots",
    "committed_count",
    "default_block_size",
    "default_capacity",
]
