"""Memory-window coordination games: the LLM naming-game protocol and Centola et al.'s best-response model.

LLM protocol (Ashery, Aiello & Baronchelli, Sci. Adv. 11 eadu9368, 2025): N agents, W names. Each agent remembers
its last H interactions as (own choice, partner's choice, payoff). In an interaction both agents choose a name at
the same time, each from its own memory; the same name is a success (payoff ``payoffs[0]``, default +100, to
both), else a failure (``payoffs[1]``, default -50); both memories are updated (``update="both"``). Memories start
empty, or prepared with H x (X, X, +100) (``initial="prepared"``, X = ``prepared_name``). A run stops once the last
3N interactions all succeeded (``stop="successes"``); committed agents, converted from the N, always answer Y
(``committed_name``).

Best-response model (Centola, Becker, Brackbill & Baronchelli, Science 360:1116, 2018): each agent remembers its
partners' last M plays and plays the most frequent name, ties at random (``jaxconv.policies.BestResponse``); only
the hearer updates its memory (``update="hearer"``). ``best_response_game`` builds it.

Drift (``drift=Drift(sd, rounds)``, off by default): moods of a run that last a few rounds. In population round t
(interaction index // N) every non-committed agent draws from its policy's distribution tilted by ``exp(sd * z_b)``
(``jaxconv.policies.tilt``), ``z_b ~ N(0, I_W)`` drawn once per block ``b = t // rounds`` of each run and shared by
its agents: shared, time-local shocks to the names' appeal (the LLM runs' choices agree more within a run and a few
rounds than the memories explain; :mod:`jaxconv.estimate.drift` fits sd and rounds to logs).

How an agent chooses is a policy (``jaxconv.policies``); who meets whom is the schedule on the graph (speaker =
first agent of a pair, hearer = second). Memories are ``(N, H)`` arrays, most recent entry first (a shift
register), -1 marking empty slots. The payoff of a remembered interaction follows from it (success iff own ==
partner), so it is not stored; the policy sees it in its ``MemoryView``. The committed agents are those of
rank < ``n_committed``: rank = agent index (``placement="first"``: agents 0..k-1) or a uniformly random permutation
drawn per replica in ``init`` (``placement="random"``, for non-complete graphs). They ignore their memory, which
never changes.

Definitions (all exact integer bookkeeping, checked after every step; a step is one interaction for the
``pairs`` schedule and one round for ``matching``):

- consensus on c: every non-committed agent's memory is full and all its own and partner entries are c, and c is
  the committed name if there are committed agents. Absorbing under best response; ``consensus_time`` is the
  first interaction count at which it holds (0 for a prepared population without committed agents).
- stop time: the interaction count at which the last ``stop_window`` (default 3N) interactions had all succeeded,
  for the first time (the paper's stop rule; the window is included, as in the published stop times).
- ``stop``: which event ends a run: "successes" (the stop time), "consensus", or None (run the full length, as the
  paper's committed-minority runs). An ended run is frozen: its state no longer changes, so fixed-length
  ensembles hold it at its final values.
- winner: the majority name among both choices of the final ``stop_window`` interactions (ties: lower name).
- flip: ``pushed_agents`` = non-committed agents whose latest choice is the committed name; ``flipped`` when they
  are at least ``FLIP_THRESHOLD`` (0.95) of the non-committed agents. Records also hold the per-window choice
  counts of the non-committed agents, from which the paper's criterion (:mod:`jaxconv.criteria`: converged
  runs padded with share 1, mean over runs, last 3 rounds summing to >= 2.849) is computed.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.choosers import Choice, Chooser, Sample, agree, as_weights, mix, name_value
from jaxconv.criteria import FLIP_THRESHOLD
from jaxconv.games.base import Game, check_choice, check_int, is_traced
from jaxconv.games.naming import committed_count
from jaxconv.policies import BestResponse, MemoryView, Policy, tilt
from jaxconv.schedules import Schedule, schedule_from_name
from jaxconv.topology import Graph, complete


class Drift(eqx.Module):
    """Shared time-local shocks of a run's choices (module docstring): ``sd`` of the shock on each name's logit,
    redrawn every ``rounds`` population rounds."""

    sd: jax.Array
    rounds: int = eqx.field(static=True)

    def __init__(self, sd, rounds: int = 4):
        check_int("drift rounds", rounds, low=1)
        if not is_traced(sd) and not (np.ndim(sd) == 0 and 0 <= float(sd) < np.inf):
            raise ValueError(f"drift sd must be a finite number >= 0, got {sd!r}")
        self.sd = jnp.asarray(sd, jnp.float32)
        self.rounds = rounds

    def shift(self, key: jax.Array, interaction: jax.Array, n_agents: int, n_names: int) -> jax.Array:
        """``(W,)`` shock on the logits at ``interaction`` (index in the run) of a run whose shocks come from
        ``key``: one standard normal draw per block of ``rounds * n_agents`` interactions, times ``sd``."""
        block = interaction // (self.rounds * n_agents)
        return self.sd * jax.random.normal(jax.random.fold_in(key, block), (n_names,))


class MemoryState(eqx.Module):
    """State of one population. Memories ``(N, H)`` most recent first; counters int32 scalars."""

    own: jax.Array  # (N, H) int32 own choices, -1 = empty slot
    partner: jax.Array  # (N, H) int32 partners' choices
    committed: jax.Array  # (N,) bool
    last_choice: jax.Array  # (N,) int32 latest choice of each agent, -1 before its first
    recent: jax.Array  # (stop_window, 2) int32 both choices of the last stop_window interactions, -1 = none yet
    entries: jax.Array  # (W,) int32 own + partner entries of each name in non-committed memories
    choices: jax.Array  # (W,) int32 choices of all agents since the last record
    free_choices: jax.Array  # (W,) int32 choices of non-committed agents since the last record
    interactions: jax.Array  # interactions so far
    successes: jax.Array  # successful interactions so far
    streak: jax.Array  # consecutive successes up to now
    stop_time: jax.Array  # first time the last stop_window interactions all succeeded, -1 until then
    consensus_time: jax.Array  # first time of consensus, -1 until then
    drift_key: jax.Array | None = None  # the run's key of its drift shocks (None without drift)


class Memory(NamedTuple):
    """Memories, most recent entry first: own and partner names as int32 ``(..., H)`` (-1 = empty slot) or as
    weight rows ``(..., H, W)`` (a zero row = empty slot)."""

    own: jax.Array
    partner: jax.Array


class Interaction(NamedTuple):
    """What the interactions of a step did (``MemoryGame.interact``): the agents' ``memories`` after it, the
    ``names`` they answered ``(2P,)`` (or ``(2P, W)``), ``success`` ``(P,)`` per pair, which agents ``remembers``
    ``(2P,)``, the ``log_prob`` of the sampled choices (a scalar) and each agent's own ``choices`` (before a
    committed agent's name replaces its choice)."""

    memories: Memory
    names: jax.Array
    success: jax.Array
    remembers: jax.Array
    log_prob: jax.Array
    choices: Choice


class MemoryGame(Game):
    """A memory-window coordination game on a graph. Sizes and variants are static; payoffs, ``n_committed``,
    the names and the policy's parameters are arrays, so sweeping them does not recompile."""

    n_agents: int = eqx.field(static=True)
    n_names: int = eqx.field(static=True)
    memory: int = eqx.field(static=True)
    update: str = eqx.field(static=True)
    initial: str = eqx.field(static=True)
    placement: str = eqx.field(static=True)
    stop: str | None = eqx.field(static=True)
    stop_window: int = eqx.field(static=True)
    policy: Policy
    drift: Drift | None
    payoffs: jax.Array  # (2,) float32: success, failure
    n_committed: jax.Array
    committed_name: jax.Array
    prepared_name: jax.Array

    def __init__(
        self,
        n_agents: int,
        n_names: int = 2,
        memory: int = 5,
        *,
        policy: Policy | None = None,
        update: str = "both",
        payoffs=(100.0, -50.0),
        initial: str = "empty",
        prepared_name: int = 0,
        committed: int = 0,
        committed_fraction: float | None = None,
        committed_name: int = 1,
        placement: str = "first",
        stop: str | None = "successes",
        stop_window: int | None = None,
        schedule: Schedule | str = "pairs",
        graph: Graph | None = None,
        drift: Drift | None = None,
    ):
        check_int("n_agents", n_agents, low=2)
        check_int("n_names (W)", n_names, low=2)
        check_int("memory (H)", memory, low=1)
        check_choice("update", update, ("both", "hearer"))
        check_choice("initial", initial, ("empty", "prepared"))
        check_choice("placement", placement, ("first", "random"))
        check_choice("stop", stop, ("successes", "consensus", None))
        if committed_fraction is not None:
            committed = committed_count(n_agents, committed_fraction, "converted")
        check_int("committed", committed, low=0)
        stop_window = 3 * n_agents if stop_window is None else stop_window
        self.n_agents = n_agents
        self.n_names = n_names
        self.memory = memory
        self.update = update
        self.initial = initial
        self.placement = placement
        self.stop = stop
        self.stop_window = stop_window
        self.policy = BestResponse() if policy is None else policy
        if drift is not None and not isinstance(drift, Drift):
            raise ValueError(f"drift must be a Drift(sd, rounds) or None, got {drift!r}")
        self.drift = drift
        self.schedule = schedule_from_name(schedule) if isinstance(schedule, str) else schedule
        self.graph = complete(n_agents) if graph is None else graph
        self.payoffs = jnp.asarray(payoffs, jnp.float32)
        self.n_committed = jnp.asarray(committed, jnp.int32)
        self.committed_name = jnp.asarray(committed_name, jnp.int32)
        self.prepared_name = jnp.asarray(prepared_name, jnp.int32)
        if self.graph.n_nodes != n_agents:
            raise ValueError(f"graph has {self.graph.n_nodes} nodes but the game has n_agents={n_agents}")
        self.schedule.check(self.graph)
        check_int("stop_window", stop_window, low=self.interactions_per_step)
        if not is_traced(payoffs) and (np.shape(payoffs) != (2,) or not np.all(np.isfinite(payoffs))):
            raise ValueError(f"payoffs must be two finite numbers (success, failure), got {payoffs!r}")
        for name, value in (
            ("n_committed", committed),
            ("committed_name", committed_name),
            ("prepared_name", prepared_name),
        ):
            if not is_traced(value):
                self.check_value(name, value)
        if not is_traced((self.policy, payoffs)):
            self.policy.check(n_names, memory, payoffs=np.asarray(payoffs, np.float32))

    def check_value(self, name: str, value) -> None:
        """Validate a (swept) value of an array parameter, ``policy.<field>`` included (each value goes through the
        policy's own ``check``); ValueError naming it."""
        if name.startswith("policy."):
            field = name.removeprefix("policy.")
            for one in np.asarray(value):
                policy = eqx.tree_at(lambda p: getattr(p, field), self.policy, jnp.asarray(one))
                policy.check(self.n_names, self.memory, payoffs=self.payoffs)
            return
        value = np.asarray(value)
        if name == "payoffs" and (value.shape[-1:] != (2,) or not np.all(np.isfinite(value))):
            raise ValueError(f"payoffs must be pairs of finite numbers (success, failure), got {value.tolist()}")
        if name == "payoffs":
            for one in value.reshape(-1, 2):
                self.policy.check(self.n_names, self.memory, payoffs=one)
        if name == "n_committed" and (np.any(value < 0) or np.any(value >= self.n_agents)):
            raise ValueError(f"committed must be in [0, n_agents={self.n_agents}), got {value.tolist()}")
        if name in ("committed_name", "prepared_name") and (np.any(value < 0) or np.any(value >= self.n_names)):
            raise ValueError(f"{name} must be in [0, W={self.n_names}), got {value.tolist()}")

    # ----- the simulator's state ------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> MemoryState:
        """Empty or prepared memories; ``key`` places the committed agents when ``placement="random"`` (and draws
        the run's drift key, with drift)."""
        n, h = self.n_agents, self.memory
        drift_key = None
        if self.drift is not None:
            key, drift_key = jax.random.split(key)
        rank = jnp.arange(n) if self.placement == "first" else jax.random.permutation(key, n)
        committed = rank < self.n_committed
        prepared = self.initial == "prepared"
        names = jnp.full((n, h), jnp.where(prepared, self.prepared_name, -1), jnp.int32)
        last_choice = jnp.where(committed, self.committed_name, names[:, 0])
        zero, zeros = jnp.int32(0), jnp.zeros(self.n_names, jnp.int32)
        entries = jnp.sum(jnp.where(committed[:, None, None], 0, 2 * _one_hot(names, self.n_names)), axis=(0, 1))
        return MemoryState(
            own=names,
            partner=names,
            committed=committed,
            last_choice=last_choice,
            recent=jnp.full((self.stop_window, 2), -1, jnp.int32),
            entries=entries,
            choices=zeros,
            free_choices=zeros,
            interactions=zero,
            successes=zero,
            streak=zero,
            stop_time=jnp.int32(-1),
            consensus_time=jnp.where(self.at_consensus(entries), zero, -1),
            drift_key=drift_key,
        )

    # ----- the rule ---------------------------------------------------------------------------------------------
    def interact(
        self, chooser: Chooser, memories: Memory, committed: jax.Array, u: jax.Array, shift: jax.Array | None = None
    ) -> Interaction:
        """The interactions of one step, P pairs: agent i of the first P speaks to agent P + i.

        Both agents of a pair choose a name at the same time, each from its own memory (under the drift's
        ``shift`` on the logits, when given); committed agents always answer the committed name. The same name is a
        success. Each agent remembers (own choice, partner's choice), both agents or the hearer only, never a
        committed agent.

        ``memories``: the 2P agents' memories, names as int32 ``(2P, H)`` or weight rows ``(2P, H, W)`` (the
        representation of ``chooser``); ``committed`` ``(2P,)`` bool or float weights; ``u`` ``(2P, k)`` uniforms,
        ``k = chooser.uniforms(W)``; ``shift`` ``(W,)`` or None."""
        n_pairs = committed.shape[0] // 2

        def choose(memory, u):
            probabilities = self.policy.probabilities(self.view(memory))
            return chooser.choose(probabilities if shift is None else tilt(probabilities, shift), u)

        chosen = jax.vmap(choose)(memories, u)
        committed_name = name_value(self.committed_name, self.n_names, chooser.hard)
        names = mix(committed, committed_name, chosen.value)
        partner_names = jnp.roll(names, n_pairs, axis=0)
        success = agree(names[:n_pairs], names[n_pairs:])
        is_hearer = jnp.arange(2 * n_pairs) >= n_pairs
        remembers = mix(committed, False, is_hearer | (self.update == "both"))
        pushed = Memory(_push(memories.own, names), _push(memories.partner, partner_names))
        return Interaction(
            memories=jax.tree.map(lambda new, old: mix(remembers, new, old), pushed, memories),
            names=names,
            success=success,
            remembers=remembers,
            log_prob=jnp.sum(mix(committed, 0.0, chosen.log_prob)),
            choices=chosen,
        )

    def shift(self, drift_key: jax.Array | None, interaction: jax.Array) -> jax.Array | None:
        """The drift's ``(W,)`` shock at ``interaction`` of the run whose drift key is ``drift_key`` (None without
        drift)."""
        if self.drift is None:
            return None
        return self.drift.shift(drift_key, interaction, self.n_agents, self.n_names)

    def view(self, memory: Memory) -> MemoryView:
        """What a policy sees of one agent's memory (``(H,)`` names or ``(H, W)`` weight rows): the payoff of
        each remembered interaction is ``payoffs[0]`` if it succeeded (own == partner), else ``payoffs[1]``."""
        own, partner = as_weights(memory.own, self.n_names), as_weights(memory.partner, self.n_names)
        succeeded = agree(own, partner)
        filled = own.sum(axis=-1)
        payoff = succeeded * self.payoffs[0] + (filled - succeeded) * self.payoffs[1]
        return MemoryView(own, partner, payoff, filled)

    # ----- the simulator: the rule with sampled choices, and exact bookkeeping ------------------------------------
    def advance(self, state: MemoryState, words: jax.Array) -> MemoryState:
        """One step of the schedule from ``(words_per_step,) uint32`` random words. The interactions of a run that
        has ended are dropped, so its state no longer changes."""
        speakers, hearers, uniforms = self.schedule.draw(self.graph, words)
        n_pairs = speakers.shape[0]
        agents = jnp.concatenate([speakers, hearers])  # (2P,): every speaker, then every hearer
        committed = state.committed[agents]
        before = Memory(state.own[agents], state.partner[agents])
        shift = self.shift(state.drift_key, state.interactions)
        step = self.interact(Sample(), before, committed, uniforms.T.reshape(-1, 1), shift)
        chosen, partner_chosen = step.names, jnp.roll(step.names, n_pairs)

        running = ~self.is_done(state)
        writes = running & step.remembers
        rows = jnp.where(running, agents, self.n_agents)  # out of range: the write is dropped
        gained = _one_hot(chosen, self.n_names) + _one_hot(partner_chosen, self.n_names)
        lost = _one_hot(before.own[:, -1], self.n_names) + _one_hot(before.partner[:, -1], self.n_names)
        entries = state.entries + jnp.sum(jnp.where(writes[:, None], gained - lost, 0), axis=0)

        # counters, the latest choices and the window of recent choices
        interactions = state.interactions + jnp.where(running, n_pairs, 0)
        failures = ~step.success  # the streak restarts after the last failure of the step
        streak = jnp.where(failures.any(), jnp.argmax(failures[::-1]), state.streak + n_pairs).astype(jnp.int32)
        streak = jnp.where(running, streak, state.streak)
        slots = jnp.where(running, (state.interactions + jnp.arange(n_pairs)) % self.stop_window, self.stop_window)
        counted = _one_hot(jnp.where(running, chosen, -1), self.n_names)
        return MemoryState(
            own=state.own.at[rows].set(step.memories.own, mode="drop"),
            partner=state.partner.at[rows].set(step.memories.partner, mode="drop"),
            committed=state.committed,
            last_choice=state.last_choice.at[rows].set(chosen, mode="drop"),
            recent=state.recent.at[slots].set(chosen.reshape(2, n_pairs).T, mode="drop"),
            entries=entries,
            choices=state.choices + counted.sum(axis=0),
            free_choices=state.free_choices + jnp.where(committed[:, None], 0, counted).sum(axis=0),
            interactions=interactions,
            successes=state.successes + jnp.sum(step.success & running, dtype=jnp.int32),
            streak=streak,
            stop_time=_first(state.stop_time, streak >= self.stop_window, interactions),
            consensus_time=_first(state.consensus_time, self.at_consensus(entries), interactions),
            drift_key=state.drift_key,
        )

    def at_consensus(self, entries: jax.Array) -> jax.Array:
        """Whether the non-committed memories, with ``entries`` per name, are full of one name (the committed
        one if there are committed agents)."""
        full = entries == 2 * self.memory * (self.n_agents - self.n_committed)
        allowed = (self.n_committed == 0) | (jnp.arange(self.n_names) == self.committed_name)
        return jnp.any(full & allowed)

    # ----- observation --------------------------------------------------------------------------------------
    def record(self, state: MemoryState) -> tuple[MemoryState, dict]:
        """Counters and the choice counts of the window since the last record (then reset)."""
        observation = {
            "interactions": state.interactions,
            "successes": state.successes,
            "streak": state.streak,
            "choices": state.choices,
            "free_choices": state.free_choices,
            "pushed_agents": self.pushed_agents(state),
        }
        zeros = jnp.zeros(self.n_names, jnp.int32)
        return eqx.tree_at(lambda s: (s.choices, s.free_choices), state, (zeros, zeros)), observation

    def pushed_agents(self, state: MemoryState) -> jax.Array:
        """Non-committed agents whose latest choice is the committed name (int32)."""
        return jnp.sum((state.last_choice == self.committed_name) & ~state.committed, dtype=jnp.int32)

    def is_done(self, state: MemoryState) -> jax.Array:
        """The run has ended under the ``stop`` rule (never when ``stop`` is None)."""
        if self.stop == "successes":
            return state.stop_time >= 0
        if self.stop == "consensus":
            return state.consensus_time >= 0
        return jnp.bool_(False)

    def summarize(self, state: MemoryState) -> dict:
        """Per-replica results of a run."""
        counts = jnp.sum(_one_hot(state.recent, self.n_names), axis=(0, 1))
        pushed = self.pushed_agents(state)
        return {
            "interactions": state.interactions,
            "successes": state.successes,
            "streak": state.streak,
            "stop_time": state.stop_time,
            "consensus_time": state.consensus_time,
            "winner": jnp.where(counts.sum() > 0, jnp.argmax(counts), -1),
            "pushed_agents": pushed,
            "flipped": pushed >= FLIP_THRESHOLD * (self.n_agents - self.n_committed),
        }


def best_response_game(
    n_agents: int,
    memory: int,
    committed_fraction: float = 0.0,
    *,
    n_names: int = 2,
    payoff_weight: float | None = None,
    schedule: Schedule | str = "pairs",
    graph: Graph | None = None,
    placement: str = "first",
    stop: str | None = None,
) -> MemoryGame:
    """Centola et al. (2018): every agent starts with M plays of name 0 in memory; a committed share
    ``committed_fraction`` of the N (rounded) always plays name 1; agents play the most frequent name among their
    partners' last M plays (ties at random); only the hearer remembers. Runs the full length by default."""
    return MemoryGame(
        n_agents,
        n_names,
        memory,
        policy=BestResponse(payoff_weight),
        update="hearer",
        initial="prepared",
        prepared_name=0,
        committed_fraction=committed_fraction,
        committed_name=1,
        placement=placement,
        stop=stop,
        schedule=schedule,
        graph=graph,
    )


def _push(rows: jax.Array, entry: jax.Array) -> jax.Array:
    """Shift ``(A, H)`` (or ``(A, H, W)``) memories by one and put ``(A,)`` (or ``(A, W)``) new entries first."""
    return jnp.concatenate([entry[:, None].astype(rows.dtype), rows[:, :-1]], axis=1)


def _one_hot(names: jax.Array, n_names: int) -> jax.Array:
    """int32 one-hot; -1 (empty) gives a zero row."""
    return jax.nn.one_hot(names, n_names, dtype=jnp.int32)


def _first(time: jax.Array, happens: jax.Array, now: jax.Array) -> jax.Array:
    """Latch the first time an event happens."""
    return jnp.where((time < 0) & happens, now, time)


__all__ = ["Interaction", "Memory", "MemoryGame", "MemoryState", "best_response_game"]
