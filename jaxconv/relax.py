"""Differentiable evaluations of a game: its rule, run with a chooser that relaxes choices, takes expectations, or
keeps the score of sampled ones (``jaxconv.choosers``), over a fixed horizon.

The simulator (``jaxconv.engine``) runs a game's rule with sampled choices and exact integer bookkeeping (stop
rules, frozen finished runs). Here the same rule (``MemoryGame.interact``, ``NamingGame.interact``) runs on a lean
population, in the representation the chooser asks for: names as integers for hard choosers, as weight rows for
relaxed ones (memories ``(N, H, W)``, finite-pool inventories ``(N, W)`` membership weights). Horizons are fixed
(reverse-mode differentiation cannot go through a while loop) and each block of ``record_every`` steps is
rematerialised in the backward pass (``jax.checkpoint``), as is each chunk of about sqrt(records) blocks, so that
reverse-mode memory grows with the square root of the number of records, not with the steps.

A continuous committed fraction: with ``committed_probability=p`` each agent is committed independently with
probability p, drawn with the chooser's ``coin`` (a Bernoulli the score function differentiates, a relaxed
Bernoulli for Gumbel-softmax, weight p for every agent in expectation). The number committed is then
Binomial(N, p), so expectations are the binomial mixture of the integer-k ones; without it the game's own
``n_committed`` (integer, agents ``0..k-1``) is used.

Observations, recorded every ``record_every`` steps, ``(n_records,)`` per replica:

- ``committed_share``: share of the non-committed agents that hold the committed name (memory game: whose latest
  choice is it; naming game: whose inventory is exactly it), weighted by non-commitment when that is relaxed;
- ``name_shares`` ``(n_records, W)``: share of the non-committed agents holding each name (memory game: whose
  latest choice it is; finite-pool naming game: whose inventory is exactly it; ``W`` = 0 for the open vocabulary),
  e.g. the winner of a run without committed agents, ``argmax(o["name_shares"][-1])``;
- ``free_answers``, ``committed_answers``: the number of answers the non-committed agents gave in the block, and
  how many of them were the committed name (memory game; weighted by non-commitment when that is relaxed; 0 for the
  naming game), so that the paper's per-round share of the pushed name (:mod:`jaxconv.criteria`) is their ratio
  with ``record_every`` = N;
- ``success_rate``: mean success of the interactions of the block;
- ``log_prob``: log-probability of all choices up to the record (carries the score-function gradient).

Observables are functions of these, e.g. the share of the committed name after T rounds
``o["committed_share"][-1]``, the success rate of round r ``o["success_rate"][r]`` (``record_every`` = a round),
P(flip) ``o["committed_share"][-1] >= 0.95``, or, without committed agents, whether name 1 wins
``o["committed_share"][-1] > 0.5``. Indicators have no pathwise gradient: the score function and the stochastic
derivative estimate their derivatives, relaxations do not.

``expectation`` turns replicas into an estimate of E[f] whose gradient is the chooser's gradient estimate;
``stochastic_derivative`` estimates d E[f] / d theta with hard choices only.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import bitset
from jaxconv.choosers import Chooser, Sample, agree, mix, name_value
from jaxconv.games.memory import Memory, MemoryGame
from jaxconv.games.naming import NamingGame
from jaxconv.policies import sample


class Population(NamedTuple):
    """The state of one population in a differentiable evaluation.

    ``agents``: memories (``Memory``, memory game) or inventories (naming game), in the chooser's representation;
    ``committed`` ``(N,)`` bool or float weights; ``latest`` ``(N,)`` int32 or ``(N, W)`` latest answer of each agent
    (memory game; unused by the naming game); ``log_prob``: log-probability of the choices so far; memory game with
    drift: ``interactions`` so far and the run's ``drift_key``."""

    agents: Memory | jax.Array
    committed: jax.Array
    latest: jax.Array
    log_prob: jax.Array
    interactions: jax.Array | None = None
    drift_key: jax.Array | None = None


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

    Returns the observations, each ``(n_steps // record_every,)``, ``name_shares`` ``(n_steps // record_every, W)``."""
    return _run(key, game, chooser, n_steps, record_every, committed_probability)[0]


class Draws(NamedTuple):
    """The hard draws of a run at each position of its uniforms (one uniform per choice, ``Sample``'s layout):
    the ``probabilities`` ``(..., W)`` drawn from, the ``uniform`` ``(...)`` and whether the choice was
    ``relevant`` ``(...)`` (a committed agent's answer or a collapse coin after a failure changes nothing)."""

    probabilities: jax.Array
    uniform: jax.Array
    relevant: jax.Array


def _run(key, game, chooser, n_steps, record_every, committed_probability, replace=None):
    """``run``, also returning the ``Draws`` of the committed coins and of every step (None unless the chooser
    draws one uniform per choice). ``replace = (position, value)`` sets one uniform, counted over the committed
    coins' uniforms then the steps' ``(n_steps, P, k)`` ones."""
    if n_steps < 1 or record_every < 1 or n_steps % record_every:
        raise ValueError(f"n_steps={n_steps} must be a positive multiple of record_every={record_every}")
    evaluation = _evaluation(game)
    init_key, committed_key, run_key = jax.random.split(key, 3)
    n_coins = 0 if committed_probability is None else evaluation.n_agents
    coins = _uniforms(committed_key, (n_coins, chooser.uniforms(2)))
    coins = _replaced(coins, jnp.arange(coins.size).reshape(coins.shape), replace)
    population, coin_draws = evaluation.init(init_key, chooser, committed_probability, coins)
    shape = (record_every, game.interactions_per_step, evaluation.uniforms_per_pair(chooser))
    block_size = np.prod(shape, dtype=int)

    @jax.checkpoint
    def block(population, block):
        index, block_key = block
        words_key, uniforms_key = jax.random.split(block_key)
        words = jax.random.bits(words_key, (record_every, game.schedule.words_per_step(game.graph)), jnp.uint32)
        positions = coins.size + index * block_size + jnp.arange(block_size).reshape(shape)
        uniforms = _replaced(_uniforms(uniforms_key, shape), positions, replace)

        def one_step(population, noise):
            return evaluation.step(chooser, population, *noise)

        population, (successes, answers, draws) = jax.lax.scan(one_step, population, (words, uniforms))
        free, pushed = jnp.sum(answers, axis=0)
        observation = {
            "committed_share": evaluation.committed_share(chooser, population),
            "name_shares": evaluation.name_shares(chooser, population),
            "free_answers": free,
            "committed_answers": pushed,
            "success_rate": jnp.mean(successes),
            "log_prob": population.log_prob,
        }
        return population, (observation, draws)

    n_blocks = n_steps // record_every
    blocks = (jnp.arange(n_blocks), jax.random.split(run_key, n_blocks))
    observations, draws = _scan_in_chunks(block, population, blocks, n_blocks)[1]
    return observations, (coin_draws, draws)


CHUNKED_FROM = 256  # records; shorter runs scan their blocks in one level (less to compile, little memory to save)


def _scan_in_chunks(body, carry, xs, length: int):
    """``jax.lax.scan(body, carry, xs)`` (``length`` steps) as a scan over chunks of about sqrt(length) steps, each
    chunk rematerialised in the backward pass (``jax.checkpoint``): reverse mode then keeps about 2 sqrt(length)
    carries instead of ``length`` (a run of 1440 recorded interactions: 76), for one more forward pass. The chunk
    length divides ``length`` where a divisor lies within a factor 2 of sqrt(length); otherwise the remainder is
    scanned after the chunks. The same steps in the same order: the results are those of the plain scan. Runs of
    fewer than ``CHUNKED_FROM`` records are scanned plainly."""
    if length < CHUNKED_FROM:
        return jax.lax.scan(body, carry, xs)
    root = np.sqrt(length)
    divisors = [d for d in range(int(np.ceil(root / 2)), int(2 * root) + 1) if length % d == 0]
    chunk = min(divisors, key=lambda d: abs(np.log(d / root))) if divisors else max(int(root), 1)
    n_chunks, rest = divmod(length, chunk)
    head = jax.tree.map(lambda x: x[: n_chunks * chunk].reshape((n_chunks, chunk) + x.shape[1:]), xs)
    carry, ys = jax.lax.scan(jax.checkpoint(lambda c, x: jax.lax.scan(body, c, x)), carry, head)
    ys = jax.tree.map(lambda y: y.reshape((n_chunks * chunk,) + y.shape[2:]), ys)
    if rest:
        carry, tail = jax.lax.scan(body, carry, jax.tree.map(lambda x: x[n_chunks * chunk :], xs))
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), ys, tail)
    return carry, ys


def _uniforms(key, shape):
    return jax.random.uniform(key, shape, minval=jnp.finfo(jnp.float32).tiny)


def _replaced(uniforms, positions, replace):
    if replace is None:
        return uniforms
    position, value = replace
    return jnp.where(positions == position, value, uniforms)


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


def stochastic_derivative(
    key: jax.Array,
    build: Callable[[jax.Array], tuple],
    theta: jax.Array,
    observable: Callable[[dict], jax.Array],
    n_replicas: int,
    n_steps: int,
    record_every: int,
) -> tuple[jax.Array, jax.Array]:
    """Unbiased estimate of d E[observable] / d theta for a scalar ``theta``, and its standard error, with hard
    choices only: a stochastic derivative of the discrete choices (Arya, Schauer, Schaefer & Rackauckas,
    "Automatic differentiation of programs with discrete randomness", NeurIPS 2022), pruned to one alternative
    path per replica.

    ``build(theta) -> (game, committed_probability or None)``. Every choice is drawn by the inverse CDF of one
    uniform. As theta moves, a boundary of the chosen option's interval moves with the derivative of the CDF; the
    choice then jumps to the neighbouring option at rate ``w = |dF| / p_chosen`` (only towards the option whose
    interval grows). The derivative is the sum over choices of ``w * (f(path with that choice jumped) - f(path))``,
    the rest of the path reusing the same uniforms. Per replica: one run under ``jax.jvp`` gives every choice's
    rate (the tangent of its probabilities); one choice is picked with probability proportional to its rate and
    the run repeated with that uniform moved into the neighbour's interval; the estimate is ``total rate *
    (f(alternative) - f(primal))``."""

    def forward(theta, replica_key):
        game, committed_probability = build(theta)
        observations, draws = _run(replica_key, game, Sample(), n_steps, record_every, committed_probability)
        return observable(observations), _flat(draws)

    def one(replica_key):
        run_key, prune_key = jax.random.split(replica_key)
        (value, draws), (_, tangents) = jax.jvp(
            lambda t: forward(t, run_key), (jnp.asarray(theta, jnp.float32),), (jnp.float32(1.0),)
        )
        rates, targets = _jumps(draws, tangents.probabilities)
        total = rates.sum()
        pick = jax.random.choice(prune_key, rates.size, p=rates.ravel() / jnp.where(total > 0, total, 1.0))
        replace = (pick // 2, targets.ravel()[pick])  # (position, uniform inside the neighbour's interval)
        game, committed_probability = build(theta)
        alternative = _run(run_key, game, Sample(), n_steps, record_every, committed_probability, replace)[0]
        return jnp.where(total > 0, total * (observable(alternative) - value), 0.0)

    estimates = jax.vmap(one)(jax.random.split(key, n_replicas))
    return estimates.mean(), estimates.std(ddof=1) / jnp.sqrt(n_replicas)


def _flat(draws) -> Draws:
    """The committed coins' and the steps' ``Draws`` in one list, in the order of the uniforms' positions, the
    probabilities padded with zeros to a common number of options."""
    parts = [d for d in draws if d is not None]
    width = max(d.probabilities.shape[-1] for d in parts)
    probabilities = [d.probabilities.reshape(-1, d.probabilities.shape[-1]) for d in parts]
    probabilities = [jnp.pad(p, ((0, 0), (0, width - p.shape[-1]))) for p in probabilities]
    return Draws(
        jnp.concatenate(probabilities),
        jnp.concatenate([d.uniform.ravel() for d in parts]),
        jnp.concatenate([d.relevant.ravel() for d in parts]),
    )


def _jumps(draws: Draws, derivatives: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rates ``(M, 2)`` at which each choice jumps up / down to the neighbouring option, and a uniform inside that
    option's interval, from the probabilities ``(M, W)``, their derivatives and the uniforms."""
    cdf = jnp.cumsum(draws.probabilities, axis=-1)
    slope = jnp.cumsum(derivatives, axis=-1)
    chosen = jnp.minimum(jax.vmap(sample)(draws.probabilities, draws.uniform), cdf.shape[-1] - 1)
    below = jnp.concatenate([jnp.zeros_like(cdf[:, :1]), cdf], axis=-1)  # below[j] = F(j - 1)
    at = lambda array, index: jnp.take_along_axis(array, index[:, None], axis=-1)[:, 0]  # noqa: E731
    n_options = cdf.shape[-1]
    p_chosen = at(draws.probabilities, chosen)
    up = jnp.minimum(chosen + 1, n_options - 1)
    down = jnp.maximum(chosen - 1, 0)
    rate_up = jnp.where(
        (chosen < n_options - 1) & (at(draws.probabilities, up) > 0), jnp.maximum(-at(slope, chosen), 0.0), 0.0
    )
    rate_down = jnp.where(chosen > 0, jnp.maximum(at(slope, down), 0.0), 0.0)
    counted = draws.relevant & (p_chosen > 0)
    rates = jnp.stack([rate_up, rate_down], axis=-1) / jnp.where(counted, p_chosen, 1.0)[:, None] * counted[:, None]
    targets = jnp.stack([(at(below, up) + at(cdf, up)) / 2, (at(below, down) + at(cdf, down)) / 2], axis=-1)
    return rates, targets / cdf[:, -1:]


# ----- the two games' populations -----------------------------------------------------------------------------------
def _evaluation(game):
    if isinstance(game, MemoryGame):
        return _MemoryEvaluation(game)
    if isinstance(game, NamingGame):
        return _NamingEvaluation(game)
    raise TypeError(f"no differentiable evaluation for {type(game).__name__}")


def _committed(game, n_agents, chooser, committed_probability, coins):
    """``(N,)`` committed flags or weights, the log-probability of drawing them and their ``Draws`` (one coin per
    agent from ``coins`` ``(N, k)`` uniforms when ``committed_probability`` is given)."""
    if committed_probability is None:
        committed = jnp.arange(n_agents) < game.n_committed
        return (committed if chooser.hard else committed.astype(jnp.float32)), jnp.float32(0.0), None
    probability = jnp.asarray(committed_probability, jnp.float32)
    draws = jax.vmap(lambda u: chooser.coin(probability, u))(coins)
    relevant = jnp.ones(coins.shape[0], bool)
    return draws.value, jnp.sum(draws.log_prob), _draws(chooser, draws.probabilities, coins, relevant)


def _draws(chooser, probabilities, uniforms, relevant):
    """``Draws`` of hard choices made from one uniform each; None for other choosers."""
    if not (chooser.hard and chooser.uniforms(2) == 1):
        return None
    return Draws(probabilities, uniforms.reshape(relevant.shape), relevant)


class _MemoryEvaluation(NamedTuple):
    game: MemoryGame

    @property
    def n_agents(self):
        return self.game.n_agents

    def uniforms_per_pair(self, chooser):
        return 2 * chooser.uniforms(self.game.n_names)

    def init(self, key, chooser, committed_probability, coins):
        game = self.game
        state = game.init(key)
        committed, log_prob, draws = _committed(game, self.n_agents, chooser, committed_probability, coins)
        memories = Memory(state.own, state.partner)
        latest = state.own[:, 0]
        if not chooser.hard:
            memories = Memory(*(jax.nn.one_hot(x, game.n_names) for x in memories))
            latest = jax.nn.one_hot(latest, game.n_names)
        latest = mix(committed, name_value(game.committed_name, game.n_names, chooser.hard), latest)
        return Population(memories, committed, latest, log_prob, jnp.int32(0), state.drift_key), draws

    def step(self, chooser, population, words, uniforms):
        speakers, hearers, _ = self.game.schedule.draw(self.game.graph, words)
        agents = jnp.concatenate([speakers, hearers])
        n_pairs = speakers.shape[0]
        memories = jax.tree.map(lambda x: x[agents], population.agents)
        u = uniforms.reshape(n_pairs, 2, -1).transpose(1, 0, 2).reshape(2 * n_pairs, -1)
        shift = self.game.shift(population.drift_key, population.interactions)
        step = self.game.interact(chooser, memories, population.committed[agents], u, shift)
        after = jax.tree.map(lambda x, new: x.at[agents].set(new), population.agents, step.memories)
        latest = population.latest.at[agents].set(step.names)
        population = population._replace(
            agents=after,
            latest=latest,
            log_prob=population.log_prob + step.log_prob,
            interactions=population.interactions + n_pairs,
        )
        by_pair = lambda x: x.reshape((2, n_pairs) + x.shape[1:]).swapaxes(0, 1)  # noqa: E731  (P, 2, ...)
        relevant = by_pair(~population.committed[agents]) if chooser.hard else None
        draws = _draws(chooser, by_pair(step.choices.probabilities), uniforms, relevant)
        free = mix(population.committed[agents], 0.0, 1.0)
        committed_name = name_value(self.game.committed_name, self.game.n_names, chooser.hard)
        answers = jnp.stack([jnp.sum(free), jnp.sum(free * agree(step.names, committed_name))])
        return population, (jnp.mean(step.success), answers, draws)

    def committed_share(self, chooser, population):
        game = self.game
        holds = agree(population.latest, name_value(game.committed_name, game.n_names, chooser.hard))
        return _share_of_free(population.committed, holds)

    def name_shares(self, chooser, population):
        n_names = self.game.n_names
        return jnp.stack(
            [
                _share_of_free(population.committed, agree(population.latest, name_value(w, n_names, chooser.hard)))
                for w in range(n_names)
            ]
        )


class _NamingEvaluation(NamedTuple):
    game: NamingGame

    @property
    def n_agents(self):
        return self.game.n_population

    def uniforms_per_pair(self, chooser):
        options = self.game.inventories(chooser).n_options
        return chooser.uniforms(options) + chooser.uniforms(2)

    def init(self, key, chooser, committed_probability, coins):
        game = self.game
        if committed_probability is not None and game.committed_mode != "converted":
            raise ValueError("committed_probability needs committed_mode='converted' (the population size is fixed)")
        inventories = game.init(key).inventories
        committed, log_prob, draws = _committed(game, self.n_agents, chooser, committed_probability, coins)
        representation = game.inventories(chooser)
        committed_words = representation.only(name_value(game.committed_name, game.vocabulary, chooser.hard))
        if chooser.hard:
            committed_words = jnp.broadcast_to(committed_words, inventories.shape)
        else:
            inventories = jax.vmap(bitset.members, in_axes=(0, None))(inventories, game.vocabulary) * 1.0
        inventories = mix(committed, committed_words, inventories)
        return Population(inventories, committed, jnp.zeros(()), log_prob), draws

    def step(self, chooser, population, words, uniforms):
        game = self.game
        speakers, hearers, _ = game.schedule.draw(game.graph, words)
        rows = jnp.concatenate([speakers, hearers])
        inventories, committed = population.agents, population.committed
        exchange = jax.vmap(lambda *args: game.interact(chooser, *args))(
            speakers, inventories[speakers], inventories[hearers], committed[speakers], committed[hearers], uniforms
        )
        inventories = inventories.at[rows].set(jnp.concatenate([exchange.speaker, exchange.hearer]))
        log_prob = population.log_prob + jnp.sum(exchange.log_prob)
        population = population._replace(agents=inventories, log_prob=log_prob)
        # the word uttered depends on no parameter; the collapse coin on beta, and only after a success
        coin = exchange.collapse.probabilities
        probabilities = jnp.stack([jnp.zeros_like(coin), coin], axis=1)
        relevant = jnp.stack([jnp.zeros_like(exchange.success, bool), exchange.success != 0], axis=1)
        draws = _draws(chooser, probabilities, uniforms, relevant)
        return population, (jnp.mean(exchange.success), jnp.zeros(2, jnp.float32), draws)

    def committed_share(self, chooser, population):
        game = self.game
        representation = game.inventories(chooser)
        name = name_value(game.committed_name, game.vocabulary if game.vocabulary != "open" else 2, chooser.hard)
        holds = jax.vmap(lambda inventory: representation.holds_only(inventory, name))(population.agents)
        return _share_of_free(population.committed, holds)

    def name_shares(self, chooser, population):
        game = self.game
        if game.vocabulary == "open":
            return jnp.zeros((0,), jnp.float32)
        representation = game.inventories(chooser)
        shares = []
        for w in range(game.vocabulary):
            name = name_value(w, game.vocabulary, chooser.hard)
            holds = jax.vmap(lambda inventory, name=name: representation.holds_only(inventory, name))(population.agents)
            shares.append(_share_of_free(population.committed, holds))
        return jnp.stack(shares)


def _share_of_free(committed, holds):
    """Share of the non-committed agents that hold the committed name; 1 (vacuously) when all are committed."""
    free = mix(committed, 0.0, 1.0)
    total = jnp.sum(free)
    return jnp.where(total > 0, jnp.sum(free * holds) / jnp.where(total > 0, total, 1.0), 1.0)


__all__ = ["Draws", "Population", "expectation", "run", "stochastic_derivative", "surrogate"]
