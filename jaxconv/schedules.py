"""Schedules: who meets whom in one step of a game.

A schedule turns uniform random 32-bit words into the pairs that interact in one step, plus two uniforms in
[0, 1) per pair for the game's own choices. Games apply their pairwise rule to every pair of a step; the pairs
of one step are disjoint, so the order within a step does not matter.

- ``RandomPairs``: one interaction per step; speaker uniform among all agents, hearer uniform among the
  speaker's neighbours (the default of the naming-game literature).
- ``RandomMatching``: one round per step; a uniformly random perfect matching of the population (one agent sits
  out when the population is odd), each pair with a random speaker. Complete graph only.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxconv.random_words import take_int, to_unit
from jaxconv.topology import CompleteGraph, Graph


class Pairs(NamedTuple):
    """The interactions of one step: ``speakers``, ``hearers`` int32 ``(P,)`` and ``uniforms`` float32 ``(P, 2)``."""

    speakers: jax.Array
    hearers: jax.Array
    uniforms: jax.Array


class Schedule(eqx.Module):
    """How the pairs of a step are drawn."""

    def pairs_per_step(self, graph: Graph) -> int:
        raise NotImplementedError

    def words_per_step(self, graph: Graph) -> int:
        raise NotImplementedError

    def draw(self, graph: Graph, words: jax.Array) -> Pairs:
        raise NotImplementedError

    def check(self, graph: Graph) -> None:
        """Raise ValueError if this schedule cannot run on ``graph``."""


class RandomPairs(Schedule):
    """Random sequential pairs: speaker uniform among the agents, hearer uniform among its neighbours."""

    def pairs_per_step(self, graph):
        return 1

    def words_per_step(self, graph):
        return 2

    def draw(self, graph, words):
        speaker, u_first = take_int(words[0], graph.n_nodes)
        hearer, u_second = graph.partner(speaker, words[1])
        return Pairs(speaker[None], hearer[None], jnp.stack([u_first, u_second])[None])


class RandomMatching(Schedule):
    """Each step is a round: a uniformly random perfect matching of the agents, random speaker in each pair."""

    def pairs_per_step(self, graph):
        return graph.n_nodes // 2

    def words_per_step(self, graph):
        return graph.n_nodes + 2 * self.pairs_per_step(graph)

    def draw(self, graph, words):
        n, n_pairs = graph.n_nodes, self.pairs_per_step(graph)
        # Sorting by random words gives a uniform permutation (a tie has probability below n^2 / 2^33).
        order = jnp.argsort(words[:n])[: 2 * n_pairs].astype(jnp.int32)
        first, second = order[0::2], order[1::2]
        second_speaks, u_first = take_int(words[n : n + n_pairs], 2)
        u_second = to_unit(words[n + n_pairs :])
        speakers = jnp.where(second_speaks == 1, second, first)
        hearers = jnp.where(second_speaks == 1, first, second)
        return Pairs(speakers, hearers, jnp.stack([u_first, u_second], axis=-1))

    def check(self, graph):
        if not isinstance(graph, CompleteGraph):
            raise ValueError(f"schedule 'matching' needs the complete graph, got {type(graph).__name__}")


SCHEDULES = {"pairs": RandomPairs, "matching": RandomMatching}


def schedule_from_name(name: str) -> Schedule:
    """``'pairs'`` or ``'matching'`` -> a Schedule; any other name is a ValueError naming it."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]()
