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

Agents ``0 .. committed-1`` are the committed ones. Inventories are bitsets (``jaxconv.bitset``). With an open
vocabulary names 0 and 1 are reserved for a prepared or committed name and agent i's invented word is ``2 + i``:
an inventory never becomes empty again, so each agent invents at most once and the bitset can never overflow.
"""

from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxconv import bitset
from jaxconv.choosers import Choice, Chooser, Sample, mix
from jaxconv.games.base import Game, check_choice, check_int, is_traced
from jaxconv.schedules import Schedule, schedule_from_name
from jaxconv.topology import Graph, complete

RESERVED_NAMES = 2


class NamingState(eqx.Module):
    """State of one population; counters are int32 scalars."""

    inventories: jax.Array  # (n_population, n_words) uint32 bitsets
    interactions: jax.Array  # interactions so far
    successes: jax.Array  # successful interactions so far
    total_words: jax.Array  # sum of inventory sizes, N_w
    n_single: jax.Array  # agents that hold exactly one word
    single_since: jax.Array  # interaction count since which every agent holds one word, -1 if not now
    peak_words: jax.Array  # max of total_words so far
    peak_time: jax.Array  # first interaction count at which peak_words was reached
    consensus_time: jax.Array  # interaction count at which consensus was reached, -1 until seen


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
    ):
        check_int("n_agents", n_agents, low=2)
        if vocabulary != "open":
            check_int("vocabulary (number of names W)", vocabulary, low=1)
        check_choice("empty_speaker", empty_speaker, ("keeps", "forgets"))
        check_choice("committed_mode", committed_mode, ("added", "converted"))
        check_choice("initial", initial, ("empty", "prepared"))
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
        self.schedule = schedule_from_name(schedule) if isinstance(schedule, str) else schedule
        self.graph = complete(self.n_population) if graph is None else graph
        if self.graph.n_nodes != self.n_population:
            raise ValueError(f"graph has {self.graph.n_nodes} nodes but the population has {self.n_population} agents")
        if committed_mode == "added" and committed > 0 and graph is not None:
            raise ValueError("committed_mode='added' needs the complete graph; use 'converted' on other graphs")
        self.schedule.check(self.graph)
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

    def is_committed(self) -> jax.Array:
        """``(n_population,) bool``: agents 0 .. n_committed-1."""
        return jnp.arange(self.n_population) < self.n_committed

    # ----- dynamics -----------------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> NamingState:
        """Empty (or prepared) inventories; committed agents hold the committed name. ``key`` is unused."""
        del key
        start = bitset.singleton(self.prepared_name, self.n_words)
        if self.initial == "empty":
            start = jnp.zeros_like(start)
        committed_words = bitset.singleton(self.committed_name, self.n_words)
        inventories = jnp.where(self.is_committed()[:, None], committed_words, start)
        sizes = jax.vmap(bitset.size)(inventories)
        n_single = jnp.sum(sizes == 1, dtype=jnp.int32)
        zero = jnp.int32(0)
        return NamingState(
            inventories=inventories,
            interactions=zero,
            successes=zero,
            total_words=sizes.sum(),
            n_single=n_single,
            single_since=jnp.where(n_single == self.n_population, zero, -1),
            peak_words=sizes.sum(),
            peak_time=zero,
            consensus_time=jnp.int32(-1),
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

    def inventories(self, chooser: Chooser) -> "Bitsets | Memberships":
        """How inventories are held for ``chooser``: bitsets for hard choices, membership weights otherwise."""
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
        exchange = jax.vmap(partial(self.interact, Sample()))(
            speakers, before_s, before_h, speakers < self.n_committed, hearers < self.n_committed, uniforms
        )
        after_s, after_h, success = exchange.speaker, exchange.hearer, exchange.success
        inventories = state.inventories.at[rows].set(jnp.concatenate([after_s, after_h]), unique_indices=True)

        sizes_before = jax.vmap(bitset.size)(before)
        sizes_after = jax.vmap(bitset.size)(jnp.concatenate([after_s, after_h]))
        total_words = state.total_words + jnp.sum(sizes_after - sizes_before)
        n_single = state.n_single + jnp.sum(sizes_after == 1) - jnp.sum(sizes_before == 1)
        interactions = state.interactions + speakers.shape[0]
        all_single = n_single == self.n_population
        new_peak = total_words > state.peak_words
        return NamingState(
            inventories=inventories,
            interactions=interactions,
            successes=state.successes + jnp.sum(success, dtype=jnp.int32),
            total_words=total_words,
            n_single=n_single,
            single_since=jnp.where(
                all_single, jnp.where(state.single_since >= 0, state.single_since, interactions), -1
            ),
            peak_words=jnp.where(new_peak, total_words, state.peak_words),
            peak_time=jnp.where(new_peak, interactions, state.peak_time),
            consensus_time=state.consensus_time,
        )

    def step(self, key: jax.Array, state: NamingState) -> NamingState:
        """One step drawn from ``key`` (the engine draws the words of many steps at once instead)."""
        return self.advance(state, jax.random.bits(key, (self.words_per_step,), jnp.uint32))

    # ----- observation --------------------------------------------------------------------------------------
    def record(self, state: NamingState) -> tuple[NamingState, dict]:
        """Observe the population; latch the consensus time the first time consensus is seen.

        While every agent holds one word, inventories cannot change (any failure gives the hearer a second word),
        so consensus seen now began at ``single_since``."""
        union = jax.lax.reduce(state.inventories, jnp.uint32(0), jax.lax.bitwise_or, (0,))
        distinct = bitset.size(union)
        at_consensus = (state.n_single == self.n_population) & (distinct == 1)
        first_seen = at_consensus & (state.consensus_time < 0)
        state = eqx.tree_at(
            lambda s: s.consensus_time, state, jnp.where(first_seen, state.single_since, state.consensus_time)
        )
        observation = {
            "interactions": state.interactions,
            "successes": state.successes,
            "total_words": state.total_words,
            "distinct_names": distinct,
            "committed_only_agents": self.committed_only_agents(state),
        }
        if self.vocabulary != "open":
            holds = jax.vmap(bitset.members, in_axes=(0, None))(state.inventories, self.n_bits)
            observation["name_holders"] = jnp.sum(holds, axis=0, dtype=jnp.int32)
        return state, observation

    def committed_only_agents(self, state: NamingState) -> jax.Array:
        """Number of uncommitted agents whose inventory is exactly ``{committed_name}`` (an int, so that results
        are bit-identical whatever the batch shape; divide by ``n_population - n_committed`` for a share)."""
        only_committed = jnp.all(state.inventories == bitset.singleton(self.committed_name, self.n_words), axis=1)
        return jnp.sum(only_committed & ~self.is_committed(), dtype=jnp.int32)

    def is_done(self, state: NamingState) -> jax.Array:
        """Consensus reached (seen at a record); consensus is absorbing."""
        return state.consensus_time >= 0

    def summarize(self, state: NamingState) -> dict:
        """Per-replica results of a run (after its last record)."""
        winner = bitset.nth_member(state.inventories[0], jnp.int32(0))
        converted = self.committed_only_agents(state)
        return {
            "consensus_time": state.consensus_time,
            "winner": jnp.where(state.consensus_time >= 0, winner, -1),
            "peak_total_words": state.peak_words,
            "peak_time": state.peak_time,
            "interactions": state.interactions,
            "successes": state.successes,
            "committed_only_agents": converted,
            "committed_flip": converted == self.n_population - self.n_committed,
        }


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


__all__ = ["Bitsets", "Exchange", "Memberships", "NamingGame", "NamingState", "committed_count"]
