"""Collective fit: policies that match both the individual choices and the collective outcomes of the LLM runs.

The choice-only fit (:mod:`jaxconv.estimate.fit`) maximises the likelihood of each choice given its memory. A
misspecified policy can do that well and still get the collective outcome wrong: a few rare states (a consensus
memory, an empty memory) carry little weight in the likelihood but decide how long the population takes to agree
and on which name. The collective fit adds the outcomes as targets:

    objective(theta) = - mean log-likelihood of the choices + weight * sum_j (m_j(theta) - o_j)^2 / (2 s_j^2) / n_runs

per choice, where o_j are observed outcomes of the baseline files with their standard errors s_j (run-to-run
sd / sqrt(runs); binomial for shares), and m_j the same outcomes of the policy's own runs: hard simulations of the
protocol (``jaxconv.relax.run`` with the ``ScoreFunction`` chooser over a fixed horizon, recorded every interaction,
so that the stop time, the first time the last W_stop interactions all succeeded, is read exactly; W_stop is the
window the logged runs were played under, :func:`jaxconv.data.summary.stop_window`; runs not stopped by the horizon
count at the horizon). The outcomes, each weighted as one target:

- the mean stop time in population rounds;
- the share of runs won by each name (the name held by most agents at the stop, from ``relax``'s
  ``name_shares``); the W shares sum to one, so each is weighted (W - 1) / W;
- the stop-time distribution: the share of runs stopped by each observed quartile, each weighted 1/3;
- the success per population round over the first ``SUCCESS_ROUNDS`` rounds (a stopped run succeeds), each
  round weighted 1 / rounds.

Their gradients are score-function (REINFORCE) estimates with a leave-one-out baseline (``jaxconv.relax.surrogate``);
the squared error's gradient uses two independent batches of replicas, (m_a - o) * grad m_b, so that it is unbiased.
Optionally (:func:`flip_targets_of`), P(flip) of the committed-minority runs at every observed k of each series (or
only at the k that decide its critical mass) is a target too (:class:`FlipTarget`, simulated by
:func:`simulated_flips`); a series' k share the runs of ``FLIP_KS_PER_SERIES`` targets.
Given parameter draws (``deviations``), m_j is the outcome of the predictive rather than of the point estimate:
the replicas are split over the draws, as in the predictions, which integrate over parameter uncertainty. A stop
time is far from linear in the parameters (a few draws that agree slowly lengthen the mean), so a centre whose
own runs meet a target can have a prediction that does not; fitting the predictive makes what is reported what
was fitted.
With a shared drift (:class:`jaxconv.games.memory.Drift`) and ``fit_drift``, its sd is a parameter too (on the
log scale, its block length held): the choices then count by their likelihood marginal over the shocks
(:func:`jaxconv.estimate.drift.block_log_likelihood`), so that a drift the outcomes ask for is paid for in choice
likelihood, and the simulated runs draw tilted choices whose log-probabilities carry the sd's score-function
gradient. Choices alone identify the sd only weakly in small logs, while a shock shared by a run's agents moves
its stop time and winner a lot.
Optimised by Adam (optax) from the choice-only estimate; the reported estimate is the average of the iterates of
the last third of the steps (Polyak-Ruppert averaging: each step's gradient is a noisy estimate, and the mean of
the iterates around the optimum is less noisy than any one of them). ``weight`` = 1 gives a squared error of one
standard error the weight of half a run's worth of choices; larger weights trade choice likelihood for collective
fit (both are reported).
"""

import dataclasses
from collections import Counter
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxconv.choosers import ScoreFunction
from jaxconv.criteria import FLIP_LAST_ROUNDS, FLIP_SUM, HORIZON_ROUNDS
from jaxconv.data.logs import LogFile
from jaxconv.data.summary import (
    critical_masses,
    flip_outcome,
    run_winner,
    stop_time_rounds,
    stop_window,
    success_by_round,
)
from jaxconv.estimate.drift import BlockChoices, block_log_likelihood, drift_nodes
from jaxconv.estimate.fit import PRIOR_SD, Family
from jaxconv.estimate.likelihood import ChoiceData, choice_counts, mean_log_likelihood, state_log_probs
from jaxconv.estimate.predict import observed_design, predict_baseline
from jaxconv.estimate.random_effects import shifted
from jaxconv.games.memory import Drift, MemoryGame
from jaxconv.relax import run as relaxed_run
from jaxconv.relax import surrogate

STEPS = 60  # Adam steps of a collective fit
LEARNING_RATE = 0.05
REPLICAS = 128  # simulated replicas per batch per target (two batches per step)
FLIP_KS_PER_SERIES = 2  # a series' P(flip) targets share the replicas of this many targets, whatever their number
WEIGHT = 1.0
MAX_HORIZON = 200  # rounds; simulated runs not stopped by the horizon count at the horizon


SUCCESS_ROUNDS = 10  # success per population round is a target over the first rounds (fewer with a short horizon)


@dataclass(frozen=True)
class Target:
    """Observed collective outcomes of the baseline runs of one N: ``stop_mean`` (rounds) and its standard error,
    the horizon of the simulations (rounds), the stop rule's ``stop_window`` (interactions,
    :func:`jaxconv.data.summary.stop_window`), ``win_share`` ``(W,)``, the share of runs won by each name (in the
    order of the fitted names), with its standard errors ``win_se``; the stop-time distribution as the share of
    runs ``stop_below`` stopped by each of the observed quartiles ``stop_quartiles`` (rounds), with standard errors
    ``stop_below_se``; and the mean success per population round ``success`` over the first rounds, a stopped run
    counting as succeeding, with standard errors ``success_se``."""

    n_agents: int
    stop_mean: float
    stop_se: float
    horizon_rounds: int
    n_runs: int
    win_share: tuple[float, ...] = ()
    win_se: tuple[float, ...] = ()
    stop_window: int | None = None
    stop_quartiles: tuple[float, ...] = ()
    stop_below: tuple[float, ...] = ()
    stop_below_se: tuple[float, ...] = ()
    success: tuple[float, ...] = ()
    success_se: tuple[float, ...] = ()


def targets_of(logs: list[LogFile], names: tuple[str, ...]) -> list[Target]:
    """Targets of the baseline (``game``) files of ``logs`` with the names ``names``, one per N (files with the same
    N pooled); a group of fewer than 2 runs gives none."""
    by_n: dict[int, list] = {}
    for log in logs:
        if log.meta.kind == "game" and log.runs and log.n_agents and set(log.names) == set(names):
            by_n.setdefault(log.n_agents, []).extend((log, run) for run in log.runs)
    out = []
    for n, runs in sorted(by_n.items()):
        if len(runs) < 2:
            continue
        stops = np.array([stop_time_rounds(run, n) for _, run in runs])
        se = max(stops.std(ddof=1) / np.sqrt(len(stops)), 0.05 * stops.mean())
        horizon = int(np.clip(np.ceil(max(2.5 * stops.mean(), stops.max() + 5)), 10, MAX_HORIZON))
        winners = [run_winner(run, n, list(log.names)) for log, run in runs]
        win = np.array([np.mean([w == name for w in winners]) for name in names])
        quartiles = np.percentile(stops, [25, 50, 75])
        below = np.array([np.mean(stops <= q) for q in quartiles])
        success = np.array([success_by_round(run, n, min(SUCCESS_ROUNDS, horizon)) for _, run in runs])
        success_se = np.maximum(success.std(axis=0, ddof=1), 0.05) / np.sqrt(len(runs))
        out.append(
            Target(
                n, float(stops.mean()), float(se), horizon, len(runs), tuple(win), tuple(_share_se(win, len(runs))),
                stop_window([run for _, run in runs], n), tuple(quartiles), tuple(below),
                tuple(_share_se(below, len(runs))), tuple(success.mean(axis=0)), tuple(success_se),
            )
        )  # fmt: skip
    return out


def _share_se(share: np.ndarray, n_runs: int) -> np.ndarray:
    """Standard error of a binomial share of ``n_runs`` runs, floored at that of 1 run in 2 x runs (a share of 0
    or 1 is not exact)."""
    return np.sqrt(np.maximum(share * (1 - share), 0.25 / n_runs) / n_runs)


@dataclass(frozen=True)
class FlipTarget:
    """Observed P(flip) at one committed k of a committed-minority series: the share ``p_flip`` of the ``n_runs``
    runs (populations of ``n_agents`` prepared on name index ``incumbent``, k agents committed to ``pushed``) that
    flipped on their own by the paper's criterion (:mod:`jaxconv.criteria`) within ``horizon_rounds``, with its
    binomial standard error ``se``; ``stop_window``: the stop rule of those runs (None: 3N; runs with k = 0, the
    ``evolved_from`` files, play their whole budget); ``budget``: their commonest interaction budget
    (:func:`jaxconv.estimate.predict.observed_design`; None: the horizon)."""

    n_agents: int
    incumbent: int
    pushed: int
    k: int
    p_flip: float
    se: float
    n_runs: int
    horizon_rounds: int = HORIZON_ROUNDS
    stop_window: int | None = None
    budget: int | None = None


FLIP_TARGET_KS = ("all", "deciding")


def flip_targets_of(logs: list[LogFile], names: tuple[str, ...], memory: int, at: str = "all") -> list[FlipTarget]:
    """P(flip) targets of the committed-minority series of ``logs`` with names in ``names`` and memory ``memory``.
    ``at="all"``: at every observed k, k = 0 (the ``evolved_from`` runs) included (the whole P(flip) curve, which a
    met critical mass does not pin down);
    ``at="deciding"``: at the k that decide each series' critical mass, the observed critical k and the largest
    observed k below it (only the largest k when no k flips)."""
    if at not in FLIP_TARGET_KS:
        raise ValueError(f"flip targets must be at one of {list(FLIP_TARGET_KS)} k, got {at!r}")
    out = []
    for series in critical_masses(logs):
        incumbent, pushed = series["incumbent"], series["pushed"]
        if incumbent not in names or pushed not in names or series["memory"] != memory:
            continue
        ks = sorted(int(k) for k in series["flipped"])
        critical = series["critical_k"]
        if at == "all":
            chosen = ks
        else:
            chosen = [k for k in ks if k < critical][-1:] + [critical] if critical is not None else ks[-1:]
        n = series["n_agents"]
        design = observed_design(logs, series)
        for k in chosen:
            runs = [run for log in logs if log.name in series["files"] and log.meta.committed == k for run in log.runs]
            p = flip_outcome(runs, pushed, n, series["horizon_rounds"])["run_flip_fraction"]
            if p is None:
                continue
            se = float(np.sqrt(max(p * (1 - p), 0.25 / len(runs)) / len(runs)))
            indices = names.index(incumbent), names.index(pushed)
            budget, window = max(set(design[k]), key=design[k].count)  # the commonest (budget, stop rule)
            out.append(FlipTarget(n, *indices, k, p, se, len(runs), stop_window=window, budget=budget))
    return out


def simulated_flips(
    key, policy, target: FlipTarget, n_names: int, memory: int, payoffs, replicas: int, committed=None, drift=None
):
    """``(flipped, log_prob)`` ``(replicas,)`` of hard runs of prepared populations with ``target.k`` committed
    agents (``ScoreFunction`` choices), by the paper's per-run criterion (:mod:`jaxconv.criteria`) as the published
    runs met it: a run with k >= 1 stops once its last ``target.stop_window`` interactions all succeeded, one with
    k = 0 (an ``evolved_from`` file) plays its whole budget; its rounds (of N interactions, the trailing incomplete
    one included) end at the stop, at the target's budget or at its horizon;
    it flipped if the share of the pushed name among the non-committed agents' answers sums to >= 2.849 over its
    last 3 rounds (it is then padded with rounds of share 1 up to the horizon). ``committed``: an int32 array that
    replaces ``target.k`` (so that one compiled simulation serves several k under ``vmap``); ``drift``: the runs'
    shared shocks (:class:`jaxconv.games.memory.Drift`, None: none)."""
    failure, success = payoffs
    n = target.n_agents
    game = MemoryGame(
        n,
        n_names,
        memory,
        policy=policy,
        payoffs=(success, failure),
        initial="prepared",
        prepared_name=target.incumbent,
        committed_name=target.pushed,
        committed=target.k,
        stop_window=target.stop_window,
        drift=drift,
    )
    if committed is not None:
        game = eqx.tree_at(lambda g: g.n_committed, game, jnp.asarray(committed, jnp.int32))
    budget = target.horizon_rounds * n if target.budget is None else min(target.budget, target.horizon_rounds * n)
    rounds = -(-budget // n)

    def one(k):
        obs = relaxed_run(k, game, ScoreFunction(), rounds * n, 1)
        stop_index = _stop(obs["success_rate"] > 0.5, game.stop_window)[1]
        index = jnp.where(game.n_committed >= 1, jnp.minimum(stop_index, budget - 1), budget - 1)
        played = jnp.arange(rounds * n) <= index
        free = jnp.sum((obs["free_answers"] * played).reshape(rounds, n), axis=1)
        pushed = jnp.sum((obs["committed_answers"] * played).reshape(rounds, n), axis=1)
        share = pushed / jnp.maximum(free, 1e-9)
        last = index // n  # the run's last round
        in_last = (jnp.arange(rounds) <= last) & (jnp.arange(rounds) > last - FLIP_LAST_ROUNDS)
        flipped = (last >= FLIP_LAST_ROUNDS - 1) & (jnp.sum(jnp.where(in_last, share, 0.0)) >= FLIP_SUM - 1e-6)
        return flipped.astype(jnp.float32), obs["log_prob"][-1]

    return jax.vmap(one)(jax.random.split(key, replicas))


def _stop(success: jax.Array, window: int) -> tuple[jax.Array, jax.Array]:
    """Whether a run of per-interaction ``success`` ``(T,)`` stopped (the last ``window`` interactions all
    succeeded) and the index of its stopping interaction (T - 1 when it did not stop)."""
    t = jnp.arange(success.shape[0])
    last_failure = jax.lax.cummax(jnp.where(success, -1, t))
    done = t - last_failure >= window
    stopped = jnp.any(done)
    return stopped, jnp.where(stopped, jnp.argmax(done), success.shape[0] - 1)


def simulated_outcomes(
    key, policy, target: Target, n_names: int, memory: int, payoffs, replicas: int, first_sd: float = 0.0, drift=None
) -> dict:
    """Outcomes of ``replicas`` hard runs of ``policy`` (``ScoreFunction`` choices, whose log-probability carries
    the score-function gradient), each ``(replicas, ...)``: ``stop`` time in rounds (the first time the last
    ``target.stop_window`` interactions all succeeded, the horizon if never), ``wins`` ``(replicas, W)`` one-hot of
    the name most agents chose last at the stop, ``success`` ``(replicas, len(target.success))`` per population
    round (rounds after the stop count as successes, as for the logged runs), ``log_prob``. ``first_sd`` > 0: each
    replica's first-move bias is moved by ``first_sd * z``, ``z ~ N(0, I_W)`` (per-run random effect,
    :mod:`jaxconv.estimate.random_effects`); ``drift``: the runs' shared shocks (None: none)."""
    failure, success = payoffs
    n = target.n_agents
    game = MemoryGame(
        n, n_names, memory, policy=policy, payoffs=(success, failure), committed_name=1,
        stop_window=target.stop_window, drift=drift,
    )  # fmt: skip
    steps = target.horizon_rounds * n
    rounds = len(target.success)

    def one(k):
        run_game = game
        if first_sd > 0:
            k, effect_key = jax.random.split(k)
            shift = first_sd * jax.random.normal(effect_key, (n_names,))
            run_game = eqx.tree_at(lambda g: g.policy, game, shifted(policy, shift))
        obs = relaxed_run(k, run_game, ScoreFunction(), steps, 1)
        succeeded = obs["success_rate"] > 0.5
        index = _stop(succeeded, game.stop_window)[1]
        played = (jnp.arange(steps) <= index)[: rounds * n].reshape(rounds, n)
        hits = jnp.sum(played & succeeded[: rounds * n].reshape(rounds, n), axis=1)
        count = jnp.sum(played, axis=1)
        return {
            "stop": (index + 1) / n,
            "wins": jax.nn.one_hot(jnp.argmax(obs["name_shares"][index]), n_names),
            "success": jnp.where(count > 0, hits / jnp.maximum(count, 1), 1.0),
            "log_prob": obs["log_prob"][-1],
        }

    return jax.vmap(one)(jax.random.split(key, replicas))


def _over_draws(simulate, key, policies, replicas: int):
    """``simulate(key, policy, replicas)`` for each of the D stacked ``policies`` (leading axis D) with ``replicas``
    // D replicas each (at least 1), pooled: every output with leading axis D * (replicas // D)."""
    n_draws = jax.tree.leaves(policies)[0].shape[0]
    per_draw = max(replicas // n_draws, 1)
    out = jax.vmap(lambda k, p: simulate(k, p, per_draw))(jax.random.split(key, n_draws), policies)
    return jax.tree.map(lambda x: x.reshape((n_draws * per_draw,) + x.shape[2:]), out)


def _outcome_loss(key, policies, targets, n_names, memory, payoffs, replicas, first_sd, drift=None):
    """Unbiased-gradient estimate of sum_j (m_j - o_j)^2 / (2 s_j^2) (two batches) and the estimated m_j, the
    outcomes of ``replicas`` runs split evenly over the D stacked ``policies`` (leading axis D)."""
    total = jnp.float32(0.0)
    estimates = []
    key, flip_key = jax.random.split(key)
    flipped = _simulated_flip_targets(flip_key, policies, targets, n_names, memory, payoffs, replicas, drift)
    for i, target in enumerate(targets):
        key, ka, kb = jax.random.split(key, 3)
        if isinstance(target, FlipTarget):
            (flip_a, lp_a), (flip_b, lp_b) = flipped[i]
            pairs = [(flip_a, flip_b, target.p_flip, target.se, 1.0)]
        else:

            def outcomes(k, policy, r, target=target):
                return simulated_outcomes(k, policy, target, n_names, memory, payoffs, r, first_sd, drift)

            a = _over_draws(outcomes, ka, policies, replicas)
            b = _over_draws(outcomes, kb, policies, replicas)
            lp_a, lp_b = a["log_prob"], b["log_prob"]
            pairs = [(a["stop"], b["stop"], target.stop_mean, target.stop_se, 1.0)]
            shares = (n_names - 1) / n_names  # the W shares sum to one: W - 1 free
            pairs += [
                (a["wins"][:, j], b["wins"][:, j], target.win_share[j], target.win_se[j], shares)
                for j in range(len(target.win_share))
            ]
            # the stop-time distribution and the success curve: one target each, their correlated points shared
            pairs += [
                ((a["stop"] <= q).astype(jnp.float32), (b["stop"] <= q).astype(jnp.float32), p, se,
                 1 / len(target.stop_quartiles))
                for q, p, se in zip(target.stop_quartiles, target.stop_below, target.stop_below_se, strict=True)
            ]  # fmt: skip
            pairs += [
                (
                    a["success"][:, r],
                    b["success"][:, r],
                    target.success[r],
                    target.success_se[r],
                    1 / len(target.success),
                )
                for r in range(len(target.success))
            ]
        for a, b, observed, se, scale in pairs:
            m_a = jnp.mean(surrogate(a, lp_a))
            m_b = jnp.mean(surrogate(b, lp_b))
            error_a, error_b = m_a - observed, m_b - observed
            # value: the product of the two errors (unbiased for (m - o)^2); gradient: both halves, each unbiased
            value = jax.lax.stop_gradient(error_a * error_b)
            gradient_part = jax.lax.stop_gradient(error_a) * m_b + jax.lax.stop_gradient(error_b) * m_a
            total = total + scale * (value + gradient_part - jax.lax.stop_gradient(gradient_part)) / (2 * se**2)
            estimates.append(jax.lax.stop_gradient((m_a + m_b) / 2))
    return total, jnp.stack(estimates)


def _simulated_flip_targets(key, policies, targets, n_names, memory, payoffs, replicas, drift=None) -> dict:
    """Two independent batches ``((flipped, log_prob), (flipped, log_prob))`` of runs for each :class:`FlipTarget`
    of ``targets``, by its index. Targets that differ only in k (same series, budget and stop rule) share one
    simulation, vmapped over their k. A series (N, incumbent, pushed) has at most ``FLIP_KS_PER_SERIES *
    replicas`` runs per batch over its k (``replicas`` per k at most, 1 at least): one with its two deciding k has
    ``replicas`` per k, one with all its ten k a fifth of that, so that fitting the whole P(flip) curve costs about
    what fitting the deciding k does."""
    groups: dict[tuple, list[int]] = {}
    for i, target in enumerate(targets):
        if isinstance(target, FlipTarget):
            design = dataclasses.replace(target, k=0, p_flip=0.0, se=0.0, n_runs=0)  # all but k and the observation
            groups.setdefault(design, []).append(i)
    ks_per_series = Counter((t.n_agents, t.incumbent, t.pushed) for t in targets if isinstance(t, FlipTarget))
    out = {}
    for members in groups.values():
        design = targets[members[0]]
        ks = jnp.array([targets[i].k for i in members], jnp.int32)

        def flips(k, policy, r, design=design, ks=ks):  # -> (r, G) flipped and log-probabilities
            keys = jax.random.split(k, ks.shape[0])
            return jax.vmap(
                lambda c, one: simulated_flips(one, policy, design, n_names, memory, payoffs, r, c, drift),
                out_axes=1,
            )(ks, keys)

        series_ks = ks_per_series[(design.n_agents, design.incumbent, design.pushed)]
        per_k = max(min(replicas, FLIP_KS_PER_SERIES * replicas // series_ks), 1)
        key, ka, kb = jax.random.split(key, 3)
        a, b = _over_draws(flips, ka, policies, per_k), _over_draws(flips, kb, policies, per_k)
        for j, i in enumerate(members):
            out[i] = ((a[0][:, j], a[1][:, j]), (b[0][:, j], b[1][:, j]))
    return out


@dataclass
class CollectiveFit:
    """Result of :func:`fit_collective`: the ``raw`` estimate, its ``policy``, the choice log-likelihood per
    choice before and after (the policy's own, without drift), the trace of the objective and of the simulated
    outcomes, and the ``drift`` the outcomes were simulated with (the fitted one with ``fit_drift``; None: none),
    with the choice log-likelihood per choice marginal over it (``log_likelihood_drift``, None unless fitted)."""

    raw: dict
    policy: object
    log_likelihood_choice_only: float
    log_likelihood: float
    trace: list
    targets: list
    drift: Drift | None = None
    log_likelihood_drift: float | None = None


MIN_DRIFT_SD = 0.05  # a fitted drift starts at least here (its sd is fitted on the log scale)


def _choice_term(family: Family, data: ChoiceData, rounds: int | None):
    """``f(raw, sd)``: the mean log-likelihood per choice of ``family.policy(raw)``; with ``rounds``, the game
    choices' likelihood is the drift's marginal over shocks of sd ``sd`` redrawn every ``rounds`` rounds
    (:func:`jaxconv.estimate.drift.block_log_likelihood`), single-prompt answers keep their plain likelihood."""
    counts, n_names = choice_counts(data), data.n_names
    n_choices = jnp.sum(counts)
    if rounds is None:
        return lambda raw, sd: mean_log_likelihood(state_log_probs(family.policy(raw), data.states, n_names), counts)
    blocks = BlockChoices(data, rounds)
    single_runs = np.zeros(data.n_runs)
    single_runs[data.run[data.round < 0]] = 1.0  # single-prompt answers are runs of their own files
    single_counts = choice_counts(data, single_runs)
    nodes = drift_nodes(jax.random.key(0), n_names)

    def log_likelihood(raw, sd):
        log_probs = state_log_probs(family.policy(raw), data.states, n_names)
        played = jnp.sum(block_log_likelihood(log_probs, blocks, sd, nodes))
        return (played + jnp.sum(jnp.where(single_counts > 0, single_counts * log_probs, 0.0))) / n_choices

    return log_likelihood


def fit_collective(
    family: Family,
    data: ChoiceData,
    start: dict,
    targets: list[Target | FlipTarget],
    key,
    *,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    replicas: int = REPLICAS,
    weight: float = WEIGHT,
    prior_sd: float = PRIOR_SD,
    first_sd: float = 0.0,
    deviations: dict | None = None,
    progress=None,
    drift: Drift | None = None,
    fit_drift: bool = False,
) -> CollectiveFit:
    """Collective fit of ``family`` (module docstring) from ``start`` (the choice-only raw estimate) to ``targets``
    (baseline :class:`Target` and :class:`FlipTarget`, in the order of the trace's ``simulated``). ``progress``:
    a callable taking the step's dict, called after each step (e.g. to advance a progress bar). ``first_sd`` > 0: the
    simulated baseline runs have a per-run random first-move bias of that sd (:mod:`jaxconv.estimate.random_effects`),
    held fixed. ``deviations``: raw offsets with a leading axis D (a pytree like ``start``, its first row zero), the
    parameter draws that predictions integrate over (:func:`jaxconv.estimate.pipeline.parameter_deviations`); the
    simulated outcomes are then those of the predictive, replicas split evenly over the draws ``raw +
    deviations[d]``, so that the fitted centre's prediction integrated over these draws is what meets the targets
    (the point estimate alone can differ: the outcomes are not linear in the parameters). None: the point
    estimate alone. ``drift``: shared shocks of the simulated runs (:class:`jaxconv.games.memory.Drift`), held
    fixed; with ``fit_drift``, its sd is fitted too (from ``drift.sd``, at least ``MIN_DRIFT_SD``; its log has the
    prior of every raw parameter; its block length held): the choices then count by their likelihood marginal over
    the shocks, so that the sd the outcomes ask for is paid for in choice likelihood, and the outcomes'
    score-function gradients reach the sd through the log-probabilities of the tilted choices."""
    if fit_drift and not isinstance(drift, Drift):
        raise ValueError(f"fit_drift needs drift=Drift(start sd, rounds), got drift={drift!r}")
    n_choices = float(data.n_choices)
    n_runs = max(data.n_runs, 1)
    n_names, memory, payoffs = data.n_names, data.memory, data.payoffs
    if deviations is None:
        deviations = jax.tree.map(lambda x: jnp.zeros((1,) + jnp.shape(x)), start)
    plain = _choice_term(family, data, None)
    choice_term = _choice_term(family, data, drift.rounds) if fit_drift else plain

    def drift_of(params):
        if not fit_drift:
            return drift
        return Drift(jnp.exp(params["drift_log_sd"]), drift.rounds)

    def objective(params, key):
        raw = params["policy"]
        prior = sum(jnp.sum(x**2) for x in jax.tree.leaves(params)) / (2 * prior_sd**2 * n_choices)
        policies = jax.vmap(family.policy)(jax.tree.map(lambda r, d: r + d, raw, deviations))
        shocks = drift_of(params)
        outcome, estimates = _outcome_loss(key, policies, targets, n_names, memory, payoffs, replicas, first_sd, shocks)
        ll = choice_term(raw, jnp.float32(0.0) if shocks is None else shocks.sd)
        return -ll + prior + weight * outcome / n_runs, (ll, outcome, estimates)

    optimizer = optax.adam(learning_rate)

    @eqx.filter_jit
    def step(params, opt_state, key):
        (value, aux), grad = jax.value_and_grad(objective, has_aux=True)(params, key)
        updates, opt_state = optimizer.update(grad, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, aux

    params = {"policy": jax.tree.map(jnp.asarray, start)}
    if fit_drift:
        params["drift_log_sd"] = jnp.log(jnp.float32(max(float(drift.sd), MIN_DRIFT_SD)))
    opt_state = optimizer.init(params)
    trace = []
    averaged, n_averaged = None, 0
    for i in range(steps):
        key, sub = jax.random.split(key)
        new_params, opt_state, value, (ll, outcome, estimates) = step(params, opt_state, sub)
        record = {
            "step": i,
            "objective": float(value),
            "log_likelihood": float(ll),
            "outcome_loss": float(outcome),
            "simulated": [round(float(x), 4) for x in estimates],
        }
        if fit_drift:
            record["drift_sd"] = round(float(jnp.exp(params["drift_log_sd"])), 4)
        trace.append(record)
        if progress is not None:
            progress(record)
        params = new_params
        if i >= steps - max(steps // 3, 1):  # average the iterates of the last third
            averaged = params if averaged is None else jax.tree.map(jnp.add, averaged, params)
            n_averaged += 1
    chosen = jax.tree.map(lambda total: total / n_averaged, averaged)
    fitted_drift = drift_of(chosen)
    return CollectiveFit(
        raw=chosen["policy"],
        policy=family.policy(chosen["policy"]),
        log_likelihood_choice_only=float(plain(jax.tree.map(jnp.asarray, start), 0.0)),
        log_likelihood=float(plain(chosen["policy"], 0.0)),
        trace=trace,
        targets=[t.__dict__ for t in targets],
        drift=fitted_drift,
        log_likelihood_drift=float(choice_term(chosen["policy"], fitted_drift.sd)) if fit_drift else None,
    )


def cross_validate(
    family: Family,
    logs: list[LogFile],
    names: tuple[str, ...],
    memory: int,
    key,
    *,
    folds: int = 2,
    by: str = "runs",
    seed: int = 0,
    steps: int = STEPS,
    weight: float = WEIGHT,
    replicas: int = 2000,
) -> list[dict]:
    """Held-out collective outcomes: the baseline runs of ``logs`` (files with exactly the names ``names``) are
    dealt to ``folds`` folds (``by="runs"``), or each baseline file is a fold of its own (``by="files"``: the held-out
    condition, e.g. a population size, is never seen in training); for each fold the choice-only and the collective
    fit use every other run (the committed-minority runs included) and predict the held-out runs' mean stop time and
    the share of runs each name won (``win_share``, per name), next to what those runs did. A fold whose training
    runs leave no baseline target has no collective fit (``collective`` then holds the ``reason``)."""
    import dataclasses

    from jaxconv.data.tidy import tidy_dataset
    from jaxconv.estimate.fit import fit_runs
    from jaxconv.estimate.likelihood import choice_data

    if by not in ("runs", "files"):
        raise ValueError(f"cross-validation is by 'runs' or 'files', got {by!r}")
    rng = np.random.default_rng(seed)
    baseline = [log for log in logs if log.meta.kind == "game" and log.runs and set(log.names) == set(names)]
    if by == "runs":
        fold_of = {(log.name, i): f for log in baseline for i, f in enumerate(rng.permutation(len(log.runs)) % folds)}
    else:
        fold_of = {(log.name, i): f for f, log in enumerate(baseline) for i in range(len(log.runs))}
        folds = len(baseline)
    out = []
    for fold in range(folds):

        def keep(log, held_out, fold=fold):
            if log not in baseline:
                return None if held_out else log
            runs = [r for i, r in enumerate(log.runs) if (fold_of[(log.name, i)] == fold) == held_out]
            return dataclasses.replace(log, runs=runs) if runs else None

        train = [x for x in (keep(log, False) for log in logs) if x is not None]
        test = [x for x in (keep(log, True) for log in baseline) if x is not None]
        data = choice_data(tidy_dataset(train), names, memory)
        choice_only = fit_runs(family, data, np.ones(data.n_runs))
        start = jax.tree.map(lambda x: x[0], choice_only.raw)
        policies = {"choice_only": choice_only.policy(0)}
        targets = targets_of(train, names)
        if targets:
            key, sub = jax.random.split(key)
            policies["collective"] = fit_collective(
                family, data, start, targets, sub, steps=steps, weight=weight
            ).policy
        for held in targets_of(test, names) if len(test) else []:
            row = {"fold": fold, "n_agents": held.n_agents, "held_out_runs": held.n_runs, "observed": held.__dict__}
            if by == "files":
                row["held_out_file"] = test[0].name
            for label, policy in policies.items():
                key, sub = jax.random.split(key)
                p = predict_baseline(
                    policy, held.n_agents, len(names), memory, data.payoffs, replicas, sub, stop_window=held.stop_window
                )
                row[label] = {
                    "stop_mean": float(np.nanmean(p["stop_rounds"])),
                    "win_share": (p["winners"] / max(p["winners"].sum(), 1)).round(4).tolist(),
                }
            if "collective" not in policies:
                row["collective"] = {"reason": "the training runs leave no baseline file with 2 runs or more"}
            out.append(row)
    return out


__all__ = [
    "CollectiveFit",
    "FlipTarget",
    "MIN_DRIFT_SD",
    "Target",
    "cross_validate",
    "fit_collective",
    "flip_targets_of",
    "simulated_flips",
    "simulated_outcomes",
    "targets_of",
]
