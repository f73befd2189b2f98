"""Differentiable evaluations of a game: its rule, run with a chooser that relaxes choices, takes expectations, or
keeps the score of sampled ones (``jaxconv.choosers``), over a fixed horizon.

The simulator (``jaxconv.engine``) runs a game's rule with sampled choices and exact integer bookkeeping (stop
rules, frozen finished runs). Here the same rule (``MemoryGame.interact``, ``NamingGame.interact``) runs on a lean
population, in the representation the chooser asks for: names as integers for hard choosers, as weight rows for
relaxed ones (memories ``(N, H, W)``, finite-pool inventories ``(N, W)`` membership weights). Horizons are fixed
(reverse-mode differentiation cannot go through a while loop) and each block of ``record_every`` steps is
rematerialised in the backward pass (``jax.checkpoint``), so memory grows with the number of records, not steps.

A continuous committed fraction: with ``committed_probability=p`` each agent is committed independently with
probability p, drawn with the chooser's ``coin`` (a Bernoulli the score function differentiates, a relaxed
Bernoulli for Gumbel-softmax, weight p for every agent in expectation). The number committed is then
Binomial(N, p), so expectations are the binomial mixture of the integer-k ones; without it the game's own
``n_committed`` (integer, agents ``0..k-1``) is used.

Observations, recorded every ``record_every`` steps, ``(n_records,)`` per replica:

- ``committed_share``: share of the non-committed agents that hold the committed name (memory game: whose latest
  choice is it; naming game: whose inventory is exactly it), weighted by non-commitment when that is relaxed;
- ``success_rate``: mean success of the interactions of the block;
- ``log_prob``: log-probability of all choices up to the record (carries the score-function gradient).

``expectation`` turns replicas into an estimate of E[f] whose gradient is the chooser's gradient estimate.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxconv import bitset
from jaxconv.choosers import Chooser, agree, mix, name_value
from jaxconv.games.memory import Memory, MemoryGame
from jaxconv.games.naming import NamingGame


class Population(NamedTuple):
    """The state of one population in a differentiable evaluation.

    ``agents``: memories (``Memory``, memory game) or inventories (naming game), in the chooser's representation;
    ``committed`` ``(N,)`` bool or float weights; ``latest`` ``(N,)`` int32 or ``(N, W)`` latest answer of each agent
    (memory game; unused by the naming game); ``log_prob``: log-probability of the choices so far."""

    agents: Memory | jax.Array
    committed: jax.Array
    latest: jax.Array
    log_prob: jax.Array


def run(
    key: jax.Array,
    game: MemoryGame | NamingGame,
    chooser: Chooser,
    n_steps: int,
    record_every: int,
    *,
    committed_probability: jax.Array | None = None,
) -> dict:
    """One replica for ``n_steps`` steps of the game's schedule, evaluated with ``chooser``.

    Returns the observations, each ``(n_steps // record_every,)``."""
    if n_steps < 1 or record_every < 1 or n_steps % record_every:
        raise ValueError(f"n_steps={n_steps} must be a positive multiple of record_every={record_every}")
    evaluation = _evaluation(game)
    init_key, run_key = jax.random.split(key)
    population = evaluation.init(init_key, chooser, committed_probability)
    n_pairs = game.interactions_per_step

    @jax.checkpoint
    def block(population, block_key):
        words_key, uniforms_key = jax.random.split(block_key)
        words = jax.random.bits(words_key, (record_every, game.schedule.words_per_step(game.graph)), jnp.uint32)
        shape = (record_every, n_pairs, evaluation.uniforms_per_pair(chooser))
        uniforms = jax.random.uniform(uniforms_key, shape, minval=jnp.finfo(jnp.float32).tiny)

        def one_step(population, noise):
            return evaluation.step(chooser, population, *noise)

        population, successes = jax.lax.scan(one_step, population, (words, uniforms))
        observation = {
            "committed_share": evaluation.committed_share(chooser, population),
            "success_rate": jnp.mean(successes),
            "log_prob": population.log_prob,
        }
        return population, observation

    return jax.lax.scan(block, population, jax.random.split(run_key, n_steps // record_every))[1]


def surrogate(values: jax.Array, log_prob: jax.Array, baseline: jax.Array | None = None) -> jax.Array:
    """Per-replica estimates whose value is ``values`` and whose gradient is the pathwise gradient of ``values``
    plus the score-function term ``(values - baseline) * grad log_prob`` (zero unless the chooser keeps scores).
    ``baseline`` must not depend on the replica's own value to keep the estimate unbiased (default: the mean of
    the other replicas, leave-one-out, over the leading axis)."""
    if baseline is None:
        n = values.shape[0]
        baseline = (jnp.sum(values, axis=0) - values) / max(n - 1, 1)
    baseline = jax.lax.stop_gradient(baseline)
    score = log_prob - jax.lax.stop_gradient(log_prob)
    return values + (jax.lax.stop_gradient(values) - baseline) * score


def expectation(
    key: jax.Array,
    game: MemoryGame | NamingGame,
    chooser: Chooser,
    observable: Callable[[dict], jax.Array],
    n_replicas: int,
    n_steps: int,
    record_every: int,
    *,
    committed_probability: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo estimate of E[observable] over ``n_replicas`` replicas (one key each, split from ``key``) and its
    standard error. Differentiate the estimate (``jax.grad``, ``eqx.filter_grad`` for the game's arrays) to get
    the chooser's gradient estimate.

    ``observable`` maps one replica's observations to a scalar, e.g. ``lambda o: o["committed_share"][-1]``; the
    score-function term uses the log-probability at the last record."""

    def one(replica_key):
        observations = run(
            replica_key, game, chooser, n_steps, record_every, committed_probability=committed_probability
        )
        return observable(observations), observations["log_prob"][-1]

    values, log_probs = jax.vmap(one)(jax.random.split(key, n_replicas))
    estimates = surrogate(values, log_probs)
    standard_error = jnp.std(jax.lax.stop_gradient(values)) / jnp.sqrt(n_replicas)
    return jnp.mean(estimates), standard_error


# ----- the two games' populations -----------------------------------------------------------------------------------
def _evaluation(game):
    if isinstance(game, MemoryGame):
        return _MemoryEvaluation(game)
    if isinstance(game, NamingGame):
        return _NamingEvaluation(game)
    raise TypeError(f"no differentiable evaluation for {type(game).__name__}")


def _committed(game, key, chooser, committed_probability, n):
    """``(N,)`` committed flags or weights, and the log-probability of drawing them."""
    if committed_probability is None:
        committed = jnp.arange(n) < game.n_committed
        return (committed if chooser.hard else committed.astype(jnp.float32)), jnp.float32(0.0)
    probability = jnp.asarray(committed_probability, jnp.float32)
    uniforms = jax.random.uniform(key, (n, chooser.uniforms(2)), minval=jnp.finfo(jnp.float32).tiny)
    draws = jax.vmap(lambda u: chooser.coin(probability, u))(uniforms)
    return draws.value, jnp.sum(draws.log_prob)


class _MemoryEvaluation(NamedTuple):
    game: MemoryGame

    def uniforms_per_pair(self, chooser):
        return 2 * chooser.uniforms(self.game.n_names)

    def init(self, key, chooser, committed_probability):
        game = self.game
        state = game.init(key)
        committed, log_prob = _committed(game, key, chooser, committed_probability, game.n_agents)
        memories = Memory(state.own, state.partner)
        latest = state.own[:, 0]
        if not chooser.hard:
            memories = Memory(*(jax.nn.one_hot(x, game.n_names) for x in memories))
            latest = jax.nn.one_hot(latest, game.n_names)
        latest = mix(committed, name_value(game.committed_name, game.n_names, chooser.hard), latest)
        return Population(memories, committed, latest, log_prob)

    def step(self, chooser, population, words, uniforms):
        speakers, hearers, _ = self.game.schedule.draw(self.game.graph, words)
        agents = jnp.concatenate([speakers, hearers])
        n_pairs = speakers.shape[0]
        memories = jax.tree.map(lambda x: x[agents], population.agents)
        u = uniforms.reshape(n_pairs, 2, -1).transpose(1, 0, 2).reshape(2 * n_pairs, -1)
        step = self.game.interact(chooser, memories, population.committed[agents], u)
        after = jax.tree.map(lambda x, new: x.at[agents].set(new), population.agents, step.memories)
        latest = population.latest.at[agents].set(step.names)
        population = Population(after, population.committed, latest, population.log_prob + step.log_prob)
        return population, jnp.mean(step.success)

    def committed_share(self, chooser, population):
        game = self.game
        holds = agree(population.latest, name_value(game.committed_name, game.n_names, chooser.hard))
        return _share_of_free(population.committed, holds)


class _NamingEvaluation(NamedTuple):
    game: NamingGame

    def uniforms_per_pair(self, chooser):
        options = self.game.inventories(chooser).n_options
        return chooser.uniforms(options) + chooser.uniforms(2)

    def init(self, key, chooser, committed_probability):
        game = self.game
        if committed_probability is not None and game.committed_mode != "converted":
            raise ValueError("committed_probability needs committed_mode='converted' (the population size is fixed)")
        inventories = game.init(key).inventories
        committed, log_prob = _committed(game, key, chooser, committed_probability, game.n_population)
        representation = game.inventories(chooser)
        committed_words = representation.only(name_value(game.committed_name, game.vocabulary, chooser.hard))
        if chooser.hard:
            committed_words = jnp.broadcast_to(committed_words, inventories.shape)
        else:
            inventories = jax.vmap(bitset.members, in_axes=(0, None))(inventories, game.vocabulary) * 1.0
        inventories = mix(committed, committed_words, inventories)
        return Population(inventories, committed, jnp.zeros(()), log_prob)

    def step(self, chooser, population, words, uniforms):
        game = self.game
        speakers, hearers, _ = game.schedule.draw(game.graph, words)
        rows = jnp.concatenate([speakers, hearers])
        inventories, committed = population.agents, population.committed
        after_s, after_h, success, log_prob = jax.vmap(lambda *args: game.interact(chooser, *args))(
            speakers, inventories[speakers], inventories[hearers], committed[speakers], committed[hearers], uniforms
        )
        inventories = inventories.at[rows].set(jnp.concatenate([after_s, after_h]))
        population = population._replace(agents=inventories, log_prob=population.log_prob + jnp.sum(log_prob))
        return population, jnp.mean(success)

    def committed_share(self, chooser, population):
        game = self.game
        representation = game.inventories(chooser)
        name = name_value(game.committed_name, game.vocabulary if game.vocabulary != "open" else 2, chooser.hard)
        holds = jax.vmap(lambda inventory: representation.holds_only(inventory, name))(population.agents)
        return _share_of_free(population.committed, holds)


def _share_of_free(committed, holds):
    """Share of the non-committed agents that hold the committed name; 1 (vacuously) when all are committed."""
    free = mix(committed, 0.0, 1.0)
    total = jnp.sum(free)
    return jnp.where(total > 0, jnp.sum(free * holds) / jnp.where(total > 0, total, 1.0), 1.0)


__all__ = ["Population", "expectation", "run", "surrogate"]
