"""Exact expectations of tiny memory games and finite-pool naming games, by enumerating their Markov chains: the
oracle that gradient estimators (``jaxconv.relax``) are checked against.

Gradient estimators (straight-through Gumbel, score function, stochastic derivatives, ...) estimate derivatives of
ensemble observables with respect to parameters. This module gives the exact truth for tiny systems: it enumerates
every joint state reachable from the initial one, writes the one-interaction transition as lists
``(from_index, to_index, probability)`` whose probabilities are ``jnp`` expressions of the parameters, propagates
the exact distribution over joint states for T interactions, and returns expectations that ``jax.grad``
differentiates exactly.

It is written from the rules (``jaxconv/games/memory.py``, ``jaxconv/games/naming.py``, ``tests/reference.py``)
with Python tuples; it uses nothing of the simulator except a policy's ``probabilities(view)`` on a
``jaxconv.policies.memory_view`` (the policy is what gets differentiated).

Common setting: complete graph, random sequential pairs: each interaction the speaker is uniform among the N agents
and the hearer uniform among the N-1 others (every ordered pair has probability 1/(N(N-1))). The committed agents
are agents 0..k-1 ("converted" from the N) for ``committed=k``, or those of a tuple ``committed=(i, j, ...)``.

Memory game (LLM protocol): an agent's state is ``MemoryAgent(own, partner, last, committed)``: its last H own and
partner choices (tuples, most recent first, -1 = empty slot), its latest choice (-1 before the first one) and
whether it is committed. Both agents choose at the same time, each from its own memory with the policy's
probabilities (a committed agent always answers ``committed_name``); success iff the names are equal. Update
"both": each non-committed agent of the pair pushes (own choice, partner's choice); "hearer": only the hearer (the
second agent) pushes (its own choice, the speaker's choice). Both latest choices are updated in either case.
Committed agents never change. Initial "empty" (every slot -1) or "prepared" (every slot ``prepared_name``, latest
choice ``prepared_name``; committed agents' latest choice is ``committed_name``).

Naming game with a pool of W names: an agent's state is ``NamingAgent(inventory, committed)``, the inventory a
sorted tuple. The speaker utters a uniform word of its inventory; an empty speaker draws one of the W names
uniformly and keeps it ("keeps") or only utters it ("forgets"). If the hearer holds the word (success) both
inventories collapse to it with probability beta (else nothing changes but an empty keeping speaker's new word);
otherwise the hearer adds it. Committed agents hold ``(committed_name,)`` and never change. Initial "prepared"
(others hold ``(prepared_name,)``) or "empty".

Observables are functions of a joint state (a tuple of agents) to a float, evaluated once per state into a
vector; the ready ones are the factories below, or their names as strings. "success_rate" (the expected share of
successful interactions among the T) is not a function of the state: it is the mean over t of the exact
probability that interaction t succeeds (``*_success``), summed over states and choices.

``lump=True`` merges joint states that differ only by a permutation of the non-committed agents (they are
exchangeable on the complete graph, so the merged chain is exact for observables symmetric in them, as all the
ready ones are); the tests check it against the labelled chain.

Sizes and costs (2 names, empty start, no committed agent unless said; the chain is built in Python once per
configuration and cached; a first evaluation compiles, ~1 s; later ones take milliseconds; measured on 2 shared
CPU cores):

- memory N=2, H=1: 5 states; N=4, H=1, both: 391 (0.3 s)
- memory N=3, H=2, both: 2429 labelled (0.6 s), 476 lumped; hearer with 1 committed: 1793 labelled (0.3 s)
- memory N=4, H=2, both: 109615 labelled states, 5.3M transitions (32 s to build: too big for tests), 5795 lumped
  (4 s); hearer, prepared, 1 committed: 5984 lumped (3 s); hearer, empty: 136265 lumped (90 s, too big)
- naming N=6, empty: 3973 labelled (0.6 s), 77 lumped; prepared with 1 committed: 243 labelled, 21 lumped
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.policies import memory_view

__all__ = [
    "Chain",
    "MemoryAgent",
    "NamingAgent",
    "all_pushed",
    "binomial_committed_expectation",
    "committed_flip",
    "committed_only_share",
    "memory_chain",
    "memory_chain_expectation",
    "memory_chain_success",
    "memory_transition_probabilities",
    "naming_chain",
    "naming_chain_expectation",
    "naming_chain_success",
    "naming_transition_probabilities",
    "propagate",
    "pushed_share",
]


class MemoryAgent(NamedTuple):
    own: tuple  # (H,) own choices, most recent first, -1 = empty
    partner: tuple  # (H,) partners' choices
    last: int  # latest choice, -1 before the first one
    committed: bool


class NamingAgent(NamedTuple):
    inventory: tuple  # sorted names held
    committed: bool


@dataclass(frozen=True, eq=False)
class Chain:
    """A chain's structure, independent of the parameters.

    ``states[0]`` is the initial joint state. Transition e goes from ``src[e]`` to ``dst[e]`` with probability
    ``weight[e] * prod_f factor_vector[factors[e, f]]``: ``weight`` holds the constant part (the pair's
    1/(N(N-1)), a word's 1/|inventory|), ``factors`` index parameter-dependent factors (choice probabilities of
    the memories ``views`` for the memory game, [1, beta, 1 - beta] for the naming game). ``success[e]``: the
    interaction of transition e succeeds."""

    states: tuple
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    factors: np.ndarray
    success: np.ndarray
    views: tuple = ()  # memory game: the distinct (own, partner) memories of non-committed agents

    @property
    def n_states(self) -> int:
        return len(self.states)

    def vector(self, observable: Callable) -> np.ndarray:
        """``observable(state)`` for every state, as a float64 vector."""
        return np.array([float(observable(state)) for state in self.states])


def _canonical(state: tuple) -> tuple:
    """The lumped representative: committed agents in place, the non-committed ones sorted."""
    committed = [agent for agent in state if agent.committed]
    return tuple(committed) + tuple(sorted(agent for agent in state if not agent.committed))


def _enumerate(initial: tuple, moves: Callable, lump: bool) -> tuple:
    """Breadth-first enumeration of the states reachable from ``initial``; ``moves(state)`` lists
    ``(next_state, weight, factors, success)``. Returns the states, the transition arrays and the factors as
    listed."""
    key = _canonical if lump else (lambda state: state)
    initial = key(initial)
    index = {initial: 0}
    states = [initial]
    src, dst, weight, factors, success = [], [], [], [], []
    i = 0
    while i < len(states):
        for after, w, f, ok in moves(states[i]):
            after = key(after)
            if after not in index:
                index[after] = len(states)
                states.append(after)
            src.append(i)
            dst.append(index[after])
            weight.append(w)
            factors.append(f)
            success.append(ok)
        i += 1
    return (
        tuple(states),
        np.array(src, np.int32),
        np.array(dst, np.int32),
        np.array(weight, np.float64),
        factors,
        np.array(success, bool),
    )


def _committed_agents(n_agents: int, committed) -> tuple:
    """Which agents are committed: agents 0..k-1 for an int k, or the agents of a tuple of indices (to check that
    labels do not matter)."""
    if isinstance(committed, tuple):
        if not all(0 <= i < n_agents for i in committed):
            raise ValueError(f"committed agents must be in [0, {n_agents}), got {committed}")
        return tuple(i in committed for i in range(n_agents))
    if not 0 <= committed <= n_agents:
        raise ValueError(f"committed must be in [0, {n_agents}], got {committed}")
    return tuple(i < committed for i in range(n_agents))


def _ordered_pairs(n: int):
    """Every (speaker, hearer) pair with its probability 1/(N(N-1))."""
    for speaker in range(n):
        for hearer in range(n):
            if hearer != speaker:
                yield speaker, hearer, 1.0 / (n * (n - 1))


# ----- memory game -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def memory_chain(
    n_agents: int,
    memory: int,
    *,
    n_names: int = 2,
    update: str = "both",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "empty",
    prepared_name: int = 0,
    lump: bool = False,
) -> Chain:
    """The memory game's chain (see the module docstring). The factors of a transition are the speaker's and the
    hearer's choice probabilities, as indices into the vector of ``_memory_probabilities``: ``view * W + name``
    for a non-committed agent whose memory is ``views[view]``, ``len(views) * W + name`` for a committed one."""
    if update not in ("both", "hearer") or initial not in ("empty", "prepared"):
        raise ValueError(f"bad update {update!r} or initial {initial!r}")
    is_committed = _committed_agents(n_agents, committed)
    if sum(is_committed) == n_agents:
        raise ValueError("the memory game needs at least one non-committed agent")
    start = prepared_name if initial == "prepared" else -1
    first = tuple(
        MemoryAgent((start,) * memory, (start,) * memory, committed_name if c else start, c) for c in is_committed
    )
    views: dict = {}  # (own, partner) -> index, filled while enumerating

    def choices(agent: MemoryAgent):
        """``(name, factor)`` pairs; a factor ``("view", v, name)`` or ``("committed", name)``."""
        if agent.committed:
            return [(committed_name, ("committed", committed_name))]
        v = views.setdefault((agent.own, agent.partner), len(views))
        return [(name, ("view", v, name)) for name in range(n_names)]

    def remember(agent: MemoryAgent, mine: int, theirs: int, writes: bool) -> MemoryAgent:
        if agent.committed:
            return agent
        if not writes:
            return agent._replace(last=mine)
        return MemoryAgent((mine,) + agent.own[:-1], (theirs,) + agent.partner[:-1], mine, False)

    def moves(state: tuple):
        for speaker, hearer, pair in _ordered_pairs(n_agents):
            for said, f_speaker in choices(state[speaker]):
                for heard, f_hearer in choices(state[hearer]):
                    after = list(state)
                    after[speaker] = remember(state[speaker], said, heard, update == "both")
                    after[hearer] = remember(state[hearer], heard, said, True)
                    yield tuple(after), pair, (f_speaker, f_hearer), said == heard

    states, src, dst, weight, symbolic, success = _enumerate(first, moves, lump)
    n_views = len(views)

    def column(factor) -> int:
        if factor[0] == "committed":
            return n_views * n_names + factor[1]
        return factor[1] * n_names + factor[2]

    factors = np.array([[column(f) for f in pair] for pair in symbolic], np.int32)
    ordered_views = tuple(sorted(views, key=views.get))
    return Chain(states, src, dst, weight, factors, success, ordered_views)


def memory_transition_probabilities(
    chain: Chain, policy, *, n_names: int = 2, committed_name: int = 1, payoffs=(100.0, -50.0)
) -> jax.Array:
    """``(E,)`` probability of every transition of a memory chain under ``policy`` (``n_names``,
    ``committed_name`` as given to the chain)."""
    return _memory_probabilities(
        policy, chain.weight, chain.factors, *_view_arrays(chain), n_names, committed_name, payoffs
    )


def _view_arrays(chain: Chain) -> tuple:
    """``(views, H)`` int32 own and partner choices of the chain's memories."""
    own = np.array([own for own, _ in chain.views], np.int32)
    partner = np.array([partner for _, partner in chain.views], np.int32)
    return own, partner


@eqx.filter_jit
def _memory_probabilities(policy, weight, factors, own, partner, n_names, committed_name, payoffs):
    """Transition probabilities ``weight * factor[speaker's choice] * factor[hearer's choice]``, the factors the
    choice probabilities: ``policy.probabilities`` of every memory (rows ``own``, ``partner``; flattened as
    ``view * W + name``), then a committed agent's one-hot ``committed_name``. The view is the simulator's: payoff
    ``payoffs[0]`` for a remembered success (own == partner), else ``payoffs[1]``."""

    def probabilities(own, partner):
        payoff = jnp.where(own == partner, payoffs[0], payoffs[1])
        return policy.probabilities(memory_view(own, partner, payoff, jnp.sum(own >= 0), n_names))

    rows = jax.vmap(probabilities)(jnp.asarray(own), jnp.asarray(partner))  # (views, W)
    vector = jnp.concatenate([rows.reshape(-1), jax.nn.one_hot(committed_name, n_names, dtype=rows.dtype)])
    return jnp.asarray(weight, vector.dtype) * vector[factors[:, 0]] * vector[factors[:, 1]]


@eqx.filter_jit
def _memory_numbers(policy, arrays, observable, n_interactions, n_names, committed_name, payoffs):
    """``memory_transition_probabilities`` then ``propagate``, compiled together (same functions)."""
    weight, factors, own, partner, src, dst, success = arrays
    prob = _memory_probabilities(policy, weight, factors, own, partner, n_names, committed_name, payoffs)
    return _propagate(prob, src, dst, success, jnp.asarray(observable, prob.dtype), n_interactions)


def pushed_share(committed_name: int = 1) -> Callable:
    """Share of the non-committed agents whose latest choice is ``committed_name`` (an agent that has not chosen
    yet does not count); the simulator's ``pushed_agents / (N - k)``."""

    def observable(state):
        free = [agent for agent in state if not agent.committed]
        return sum(agent.last == committed_name for agent in free) / len(free)

    return observable


def all_pushed(committed_name: int = 1) -> Callable:
    """1 if every non-committed agent's latest choice is ``committed_name`` (the flip indicator; the simulator's
    ``flipped`` when N - k <= 19, below its 95% threshold's resolution), else 0."""

    def observable(state):
        return float(all(agent.last == committed_name for agent in state if not agent.committed))

    return observable


MEMORY_OBSERVABLES = {"pushed_share": pushed_share, "flip": all_pushed}


def memory_chain_success(
    policy,
    n_agents: int,
    memory: int,
    n_interactions: int,
    *,
    n_names: int = 2,
    update: str = "both",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "empty",
    prepared_name: int = 0,
    payoffs=(100.0, -50.0),
    lump: bool = False,
) -> jax.Array:
    """``(T,)`` exact probability that interaction t = 1..T succeeds."""
    return _memory_run(policy, n_agents, memory, n_interactions, lambda state: 0.0, locals())[0]


def memory_chain_expectation(
    policy,
    n_agents: int,
    memory: int,
    n_interactions: int,
    observable,
    *,
    n_names: int = 2,
    update: str = "both",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "empty",
    prepared_name: int = 0,
    payoffs=(100.0, -50.0),
    lump: bool = False,
) -> jax.Array:
    """Exact expectation of ``observable`` after ``n_interactions`` interactions: a function of a joint state
    (tuple of ``MemoryAgent``), or "pushed_share", "flip" (for ``committed_name``) or "success_rate" (expected
    share of successful interactions). A jnp scalar, differentiable in the policy's parameters."""
    if observable == "success_rate":
        return jnp.mean(memory_chain_success(**{k: v for k, v in locals().items() if k != "observable"}))
    if isinstance(observable, str):
        observable = MEMORY_OBSERVABLES[observable](committed_name)
    return _memory_run(policy, n_agents, memory, n_interactions, observable, locals())[1][-1]


def _memory_run(policy, n_agents, memory, n_interactions, observable, options):
    chain = memory_chain(
        n_agents,
        memory,
        n_names=options["n_names"],
        update=options["update"],
        committed=options["committed"],
        committed_name=options["committed_name"],
        initial=options["initial"],
        prepared_name=options["prepared_name"],
        lump=options["lump"],
    )
    arrays = (chain.weight, chain.factors, *_view_arrays(chain), chain.src, chain.dst, chain.success)
    return _memory_numbers(
        policy,
        arrays,
        chain.vector(observable),
        n_interactions,
        options["n_names"],
        options["committed_name"],
        options["payoffs"],
    )


# ----- naming game -----------------------------------------------------------------------------------------------
CONSTANT, COLLAPSE, NO_COLLAPSE = 0, 1, 2  # factors of a naming transition: 1, beta, 1 - beta


@lru_cache(maxsize=64)
def naming_chain(
    n_agents: int,
    *,
    vocabulary: int = 2,
    empty_speaker: str = "keeps",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "prepared",
    prepared_name: int = 0,
    lump: bool = False,
) -> Chain:
    """The finite-pool naming game's chain (see the module docstring). A transition's one factor indexes
    ``[1, beta, 1 - beta]``: 1 for a failure, beta for a success's collapse, 1 - beta for its absence."""
    if empty_speaker not in ("keeps", "forgets") or initial not in ("empty", "prepared"):
        raise ValueError(f"bad empty_speaker {empty_speaker!r} or initial {initial!r}")
    start = (prepared_name,) if initial == "prepared" else ()
    first = tuple(
        NamingAgent((committed_name,), True) if c else NamingAgent(start, False)
        for c in _committed_agents(n_agents, committed)
    )

    def holding(agent: NamingAgent, inventory: set) -> NamingAgent:
        return agent if agent.committed else NamingAgent(tuple(sorted(inventory)), False)

    def moves(state: tuple):
        for speaker, hearer, pair in _ordered_pairs(n_agents):
            s, h = state[speaker], state[hearer]
            if s.inventory:
                words = [(word, 1.0 / len(s.inventory)) for word in s.inventory]
                speaker_learns = True
            else:
                words = [(word, 1.0 / vocabulary) for word in range(vocabulary)]
                speaker_learns = empty_speaker == "keeps"
            for word, p_word in words:
                learnt = set(s.inventory) | {word} if speaker_learns else set(s.inventory)
                after = list(state)
                if word in h.inventory:  # success: collapse with probability beta
                    after[speaker], after[hearer] = holding(s, {word}), holding(h, {word})
                    yield tuple(after), pair * p_word, (COLLAPSE,), True
                    after = list(state)
                    after[speaker] = holding(s, learnt)
                    yield tuple(after), pair * p_word, (NO_COLLAPSE,), True
                else:  # failure: the hearer learns the word
                    after[speaker], after[hearer] = holding(s, learnt), holding(h, set(h.inventory) | {word})
                    yield tuple(after), pair * p_word, (CONSTANT,), False

    states, src, dst, weight, factors, success = _enumerate(first, moves, lump)
    return Chain(states, src, dst, weight, np.array(factors, np.int32), success)


def naming_transition_probabilities(chain: Chain, beta) -> jax.Array:
    """``(E,)`` probability of every transition of a naming chain at ``beta``."""
    return _naming_probabilities(jnp.asarray(beta), chain.weight, chain.factors)


def _naming_probabilities(beta, weight, factors):
    if beta.shape != ():
        raise ValueError(f"beta must be a scalar, got shape {beta.shape}")
    vector = jnp.stack([jnp.ones_like(beta), beta, 1.0 - beta])
    return jnp.asarray(weight, vector.dtype) * vector[factors[:, 0]]


def committed_only_share(committed_name: int = 1) -> Callable:
    """Share of the non-committed agents whose inventory is exactly ``(committed_name,)`` (1 when every agent is
    committed: vacuously all of them); the simulator's ``committed_only_agents / (N - k)``."""

    def observable(state):
        free = [agent for agent in state if not agent.committed]
        if not free:
            return 1.0
        return sum(agent.inventory == (committed_name,) for agent in free) / len(free)

    return observable


def committed_flip(committed_name: int = 1) -> Callable:
    """1 if every non-committed agent holds only ``committed_name`` (the simulator's ``committed_flip``)."""

    def observable(state):
        return float(all(agent.inventory == (committed_name,) for agent in state if not agent.committed))

    return observable


NAMING_OBSERVABLES = {"committed_only_share": committed_only_share, "committed_flip": committed_flip}


def naming_chain_success(
    beta,
    n_agents: int,
    n_interactions: int,
    *,
    vocabulary: int = 2,
    empty_speaker: str = "keeps",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "prepared",
    prepared_name: int = 0,
    lump: bool = False,
) -> jax.Array:
    """``(T,)`` exact probability that interaction t = 1..T succeeds, differentiable in ``beta``."""
    return _naming_run(beta, n_agents, n_interactions, lambda state: 0.0, locals())[0]


def naming_chain_expectation(
    beta,
    n_agents: int,
    n_interactions: int,
    observable,
    *,
    vocabulary: int = 2,
    empty_speaker: str = "keeps",
    committed: int | tuple = 0,
    committed_name: int = 1,
    initial: str = "prepared",
    prepared_name: int = 0,
    lump: bool = False,
) -> jax.Array:
    """Exact expectation of ``observable`` after ``n_interactions`` interactions: a function of a joint state
    (tuple of ``NamingAgent``), or "committed_only_share", "committed_flip" (for ``committed_name``) or
    "success_rate". A jnp scalar, differentiable in ``beta``."""
    if observable == "success_rate":
        return jnp.mean(naming_chain_success(**{k: v for k, v in locals().items() if k != "observable"}))
    if isinstance(observable, str):
        observable = NAMING_OBSERVABLES[observable](committed_name)
    return _naming_run(beta, n_agents, n_interactions, observable, locals())[1][-1]


def _naming_run(beta, n_agents, n_interactions, observable, options):
    names = ("vocabulary", "empty_speaker", "committed", "committed_name", "initial", "prepared_name", "lump")
    chain = naming_chain(n_agents, **{name: options[name] for name in names})
    arrays = (chain.weight, chain.factors, chain.src, chain.dst, chain.success)
    return _naming_numbers(jnp.asarray(beta), arrays, chain.vector(observable), n_interactions)


@eqx.filter_jit
def _naming_numbers(beta, arrays, observable, n_interactions):
    """``naming_transition_probabilities`` then ``propagate``, compiled together (same functions)."""
    weight, factors, src, dst, success = arrays
    prob = _naming_probabilities(beta, weight, factors)
    return _propagate(prob, src, dst, success, jnp.asarray(observable, prob.dtype), n_interactions)


def binomial_committed_expectation(p, n_agents: int, n_interactions: int, observable, *, beta=1.0, **options):
    """``sum_k Binom(k; N, p) E[observable | k committed]`` (``naming_chain_expectation``, ``options`` as there),
    differentiable in the continuous committed probability ``p`` (and in ``beta``).

    It is the exact expectation in the game where each of the N agents is committed independently with
    probability p: given that k are committed, the game is the one with agents 0..k-1 committed, since on the
    complete graph with random sequential pairs (and every non-committed agent starting alike) agents' labels do
    not matter. With k = N no agent is left: the shares are vacuously 1 (see ``committed_only_share``)."""
    p = jnp.asarray(p)
    if p.shape != ():
        raise ValueError(f"p must be a scalar, got shape {p.shape}")
    total = 0.0
    for k in range(n_agents + 1):
        mass = math.comb(n_agents, k) * p**k * (1.0 - p) ** (n_agents - k)
        total = total + mass * naming_chain_expectation(
            beta, n_agents, n_interactions, observable, committed=k, **options
        )
    return total


# ----- propagation -----------------------------------------------------------------------------------------------
def propagate(chain: Chain, prob: jax.Array, observable: np.ndarray, n_interactions: int):
    """Exact distribution over the states for t = 1..T interactions, from ``chain.states[0]``.

    Returns ``(success, expectation)``, both ``(T,)``: the probability that interaction t succeeds (the mass that
    flows along successful transitions out of the distribution after t-1 interactions) and the expectation of the
    per-state ``observable`` vector after interaction t."""
    return _propagate(
        prob,
        jnp.asarray(chain.src),
        jnp.asarray(chain.dst),
        jnp.asarray(chain.success),
        jnp.asarray(observable, prob.dtype),
        n_interactions,
    )


@partial(jax.jit, static_argnames="n_interactions")
def _propagate(prob, src, dst, success, observable, n_interactions):
    n_states = observable.shape[0]
    start = jnp.zeros(n_states, prob.dtype).at[0].set(1.0)

    def interaction(distribution, _):
        flow = distribution[src] * prob  # mass along each transition
        after = jax.ops.segment_sum(flow, dst, num_segments=n_states)
        return after, (jnp.sum(jnp.where(success, flow, 0.0)), after @ observable)

    return jax.lax.scan(interaction, start, None, length=n_interactions)[1]
