"""Collective outcomes predicted by a fitted policy, next to what the LLM populations did.

The fitted policy plays the experiment's protocol in :class:`jaxconv.games.memory.MemoryGame` (complete graph of
N agents, random pairs, both agents choose from their own memory of H rounds, payoffs +100/-50 as in the files):

- baseline (empty memories, stop once the last 3N interactions all succeeded): winner distribution and stop time
  in population rounds (interactions / N, the final 3N window included, as :mod:`jaxconv.data.summary` counts it),
  per baseline file, with that file's N.
- committed minority: memories prepared with H rounds of (X, X, +100), k agents converted to committed agents
  answering Y. As in the published runs, k >= 1 runs stop by the rule above, while k = 0 runs (the
  ``evolved_from`` files) run their whole budget (a stable prepared population would otherwise stop after 3N
  interactions). Flip by the paper's criterion, the same code as for the observed runs (:mod:`jaxconv.criteria`:
  per round the share of Y among the non-committed agents' choices, converged runs padded with share 1, mean over
  the runs that have each round, flipped if the last 3 rounds sum to >= 2.849). Two critical masses:

  * ``critical_k``, compared with the observed one: the observed experiment replayed under the fitted policy
    (:func:`predict_experiments`): at each observed k as many runs as were logged, each with the interaction budget
    of the logged run it stands for, the criterion per k, the smallest flipping k; the median over many replays,
    with an interval and the share of replays within one agent of the observed value. The observed critical mass
    is a statistic of its design: with one or two runs per k it is decided by chance, and the criterion pads
    converged runs: when the runs that did not converge had budgets under 27 rounds, the last rounds of the curve
    are the padding of the converged ones, and a k flips as soon as one of its runs converged.
  * ``critical_k_population``: the smallest k from 0 to the largest observed k whose pooled replicas (thousands
    per k, ``HORIZON_ROUNDS`` rounds each) flip: the critical mass of the policy itself, the limit of many runs per k.

  A critical mass met can hide a miss in P(flip) per k, so :func:`flips_check` also asks whether the runs that
  flipped at each observed k are likely under the replays' per-run flip probability (``p_flip_design``); a series
  that fails it is listed in ``not_predicted``.

How sharp a target is depends on how many runs decide it: :func:`stop_check` asks the same of a baseline file's
mean stop time (a p-value of the observed mean of its n runs under the predictive), and both it and the replays
give each target's ``target_chance``, the share of experiments of the logged size drawn from the prediction
itself that would meet the target against that prediction. A target missed where that chance is far below one is
decided by a few runs as much as by the model.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.criteria import FLIP_LAST_ROUNDS, HORIZON_ROUNDS, flip_outcome_of_curves, run_flips, simulated_shares
from jaxconv.data.logs import LogFile
from jaxconv.data.summary import (
    critical_masses,
    final_streak,
    flip_outcome,
    run_winner,
    stop_window,
    success_by_round,
    summarize_file,
)
from jaxconv.engine import ensemble, sweep
from jaxconv.games.memory import Drift, MemoryGame
from jaxconv.policies import Policy

MAX_ROUNDS = 300  # baseline runs not stopped after this many population rounds are reported as not stopped
EXPERIMENTS = 200  # replays of a committed-minority series' observed design (all parameter draws together)
CHUNK = 4096  # replicas per compiled chunk (bounds memory; a chunk's while-loop runs to its slowest replica)


def predict_baseline(
    policy: Policy,
    n_agents: int,
    n_names: int,
    memory: int,
    payoffs: tuple[int, int],
    replicas: int,
    key: jax.Array,
    max_rounds: int = MAX_ROUNDS,
    stop_window: int | None = None,
    drift: Drift | None = None,
) -> dict:
    """Replicas of a population with empty memories run to the stop rule (the last ``stop_window`` interactions,
    default 3N, all succeeded): ``winners`` (W,) counts (majority name of the final window), ``stop_rounds``
    (replicas,) stop time / N (NaN when not stopped). ``drift``: the runs' shared shocks (None: none)."""
    failure, success = payoffs
    game = MemoryGame(
        n_agents, n_names, memory, policy=policy, payoffs=(success, failure), stop="successes",
        stop_window=stop_window, drift=drift,
    )  # fmt: skip
    summary = ensemble(
        key, game, replicas, max_rounds * n_agents, n_agents, until_done=True, chunk_size=min(replicas, CHUNK)
    ).summary
    stopped = summary["stop_time"] >= 0
    return {
        "winners": np.bincount(summary["winner"][summary["winner"] >= 0], minlength=n_names),
        "stop_rounds": np.where(stopped, summary["stop_time"] / n_agents, np.nan),
    }


def _series_runs(
    policy: Policy,
    n_agents,
    n_names,
    memory,
    payoffs,
    incumbent,
    pushed,
    ks,
    replicas,
    n_steps,
    window,
    key,
    chunk,
    drift=None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """``replicas`` runs of prepared populations on ``incumbent`` with k agents committed to ``pushed``, for each k
    of ``ks`` (k >= 1 stop once their last ``window`` interactions all succeeded, k = 0 run the whole budget, as in
    the published runs), each for at most ``n_steps`` interactions: per k, (shares ``(replicas, R)`` per population
    round of the pushed name among the non-committed agents' choices, rounds played ``(replicas,)``), and the
    simulator's per-replica ``flipped`` fraction per k ``(K,)``. ``drift``: the runs' shared shocks."""
    failure, success = payoffs
    record_every = math.gcd(n_steps, n_agents)  # rounds are whole numbers of records, the trailing part too
    runs: list = [None] * len(ks)
    flip_fraction = np.zeros(len(ks))
    for stop, selected in (("successes", ks >= 1), (None, ks == 0)):
        if not selected.any():
            continue
        game = MemoryGame(
            n_agents,
            n_names,
            memory,
            policy=policy,
            payoffs=(success, failure),
            initial="prepared",
            prepared_name=incumbent,
            committed_name=pushed,
            stop=stop,
            stop_window=window,
            drift=drift,
        )
        values = {"n_committed": jnp.asarray(ks[selected], jnp.int32)}
        result = sweep(key, game, values, replicas, n_steps, record_every, chunk_size=min(replicas, chunk))
        shares, lengths = simulated_shares(
            result.observations["free_choices"],
            result.observations["interactions"],
            pushed,
            n_agents,
            n_agents // record_every,
        )
        for row, index in enumerate(np.flatnonzero(selected)):
            runs[index] = (shares[row], lengths[row])
        flip_fraction[selected] = result.summary["flipped"].mean(axis=1)
    return runs, flip_fraction


def predict_tipping(
    policy: Policy | list[Policy],
    n_agents: int,
    n_names: int,
    memory: int,
    payoffs: tuple[int, int],
    incumbent: int,
    pushed: int,
    ks,
    replicas: int,
    key: jax.Array,
    horizon_rounds: int = HORIZON_ROUNDS,
    progress=None,
    stop_window: int | None = None,
    drift: Drift | None = None,
) -> dict:
    """Prepared populations on ``incumbent`` with k agents committed to ``pushed``, for each k of ``ks`` (k >= 1
    stopped once the last ``stop_window`` interactions, default 3N, all succeeded), by the paper's criterion
    (:mod:`jaxconv.criteria`), over all replicas pooled: ``share`` (K, horizon) population curve, ``flipped`` (K,),
    ``run_flip_fraction`` (K,) replicas that converged to the pushed name within the horizon,
    ``flip_fraction`` (K,) the simulator's per-replica ``flipped`` (>= 95% of the latest choices) at the end.
    ``policy`` may be a list of parameter draws: the replicas are split among them and ``by_draw`` holds each
    draw's ``flipped`` (D, K) and ``run_flip_fraction`` (D, K). A draw may itself be a list of policies, a mixture
    (e.g. per-run random effects, :mod:`jaxconv.estimate.random_effects`): its replicas are split among them and
    pooled. ``progress(text)`` is called before each draw's simulations. ``drift``: the runs' shared shocks."""
    policies = list(policy) if isinstance(policy, list | tuple) else [policy]
    ks = np.asarray(ks)
    per_draw = max(replicas // len(policies), 2)
    rows: list[list] = [[] for _ in ks]
    flip_fraction = np.zeros((len(policies), len(ks)))
    by_draw = {
        "flipped": np.zeros((len(policies), len(ks)), bool),
        "run_flip_fraction": np.zeros((len(policies), len(ks))),
    }
    for d, draw in enumerate(policies):
        if progress is not None:
            progress(f"draw {d + 1}/{len(policies)}")
        members = _members(draw)
        per_member = max(per_draw // len(members), 2)
        draw_rows: list[list] = [[] for _ in ks]
        for one in members:
            key, sub = jax.random.split(key)
            runs, fractions = _series_runs(
                one, n_agents, n_names, memory, payoffs, incumbent, pushed, ks, per_member,
                horizon_rounds * n_agents, stop_window, sub, CHUNK // 4, drift,
            )  # fmt: skip
            for index, run in enumerate(runs):
                rows[index].append(run)
                draw_rows[index].append(run)
            flip_fraction[d] += fractions / len(members)
        for index, parts in enumerate(draw_rows):
            outcome = flip_outcome_of_curves(*_pooled(parts), horizon_rounds)
            by_draw["flipped"][d, index] = outcome["flipped"]
            by_draw["run_flip_fraction"][d, index] = outcome["run_flip_fraction"]
    share = np.full((len(ks), horizon_rounds), np.nan)
    flipped = np.zeros(len(ks), bool)
    run_flip = np.zeros(len(ks))
    for index, parts in enumerate(rows):
        outcome = flip_outcome_of_curves(*_pooled(parts), horizon_rounds)
        curve = np.asarray(outcome["mean_share_by_round"])
        share[index, : len(curve)] = curve
        flipped[index] = outcome["flipped"]
        run_flip[index] = outcome["run_flip_fraction"]
    return {
        "share": share,
        "flipped": flipped,
        "run_flip_fraction": run_flip,
        "flip_fraction": flip_fraction.mean(axis=0),
        "by_draw": by_draw,
    }


def observed_design(logs: list[LogFile], series: dict, horizon_rounds: int = HORIZON_ROUNDS) -> dict[int, list]:
    """The design of a committed-minority series (a :func:`jaxconv.data.summary.critical_masses` entry): per
    committed k, ``(budget, window)`` of each of its observed runs: the stop rule's window of its file
    (:func:`jaxconv.data.summary.stop_window`) and its interaction budget, as far as the criterion can see it (at
    most ``horizon_rounds`` rounds). A run that did not end by the stop rule (on a success streak of exactly the
    window) ended at its budget; a run that did had
    the budget of its file's runs that did not (the longest of them, at least its own length), or, when every run
    of the file stopped, an unknown budget of which only the first ``horizon_rounds`` rounds count."""
    n = series["n_agents"]
    visible = horizon_rounds * n
    out: dict[int, list] = {}
    for log in logs:
        if log.name not in series["files"] or not log.runs:
            continue
        window = stop_window(log.runs, n)
        stopped = [final_streak(run) == window for run in log.runs]
        cut = [run.n_interactions for run, s in zip(log.runs, stopped, strict=True) if not s]
        for run, s in zip(log.runs, stopped, strict=True):
            if not s:
                budget = run.n_interactions  # it ended at its budget
            elif cut:
                budget = max(max(cut), run.n_interactions)  # its file's budget, seen on the runs that did not stop
            else:
                budget = visible  # unknown: only the first rounds count
            out.setdefault(log.meta.committed, []).append((min(budget, visible), window))
    return dict(sorted(out.items()))


class Replays(NamedTuple):
    """What :func:`predict_experiments` returns: ``critical_k`` ``(D, experiments)`` of each replay, ``p_flip``
    ``(D, K)`` per-run flip probability at each observed k under its logged design."""

    critical_k: np.ndarray
    p_flip: np.ndarray


def predict_experiments(
    policy: Policy | list[Policy],
    n_agents: int,
    n_names: int,
    memory: int,
    payoffs: tuple[int, int],
    incumbent: int,
    pushed: int,
    design: dict[int, list],
    experiments: int,
    key: jax.Array,
    horizon_rounds: int = HORIZON_ROUNDS,
    drift: Drift | None = None,
) -> Replays:
    """The observed experiment of a committed-minority series replayed ``experiments`` times per parameter draw:
    at every observed k as many simulated runs as were logged, each with the budget and stop rule of the logged run
    it stands for (``design``: k -> ``(budget, window)`` per run, :func:`observed_design`), the paper's criterion
    per k over those runs, and the critical mass of each replayed experiment (the smallest observed k whose runs
    flipped; ``inf`` when none did) -> :class:`Replays`: ``critical_k`` ``(D, experiments)`` and ``p_flip``
    ``(D, len(design))``, the probability that one run of each observed k (in ``sorted(design)`` order) flips by
    its own padded curve (:func:`jaxconv.criteria.run_flips`), its runs' budgets and stop rules mixed as logged.

    With a few runs per k the observed critical mass is a noisy statistic of its design (one run per k flips or not
    by chance, and the runs' budgets decide how the converged runs are padded); this is the same statistic of the
    same design under the fitted policy, to compare like with like. ``drift``: the runs' shared shocks."""
    policies = list(policy) if isinstance(policy, list | tuple) else [policy]
    ks = sorted(design)
    kinds = sorted({run for runs in design.values() for run in runs})  # (budget, window) pairs
    out = np.full((len(policies), experiments), np.inf)
    p_flip = np.zeros((len(policies), len(ks)))
    for d, draw in enumerate(policies):
        members = _members(draw)
        runs_of: dict[tuple, list] = {}  # (k, budget, window) -> [(shares, lengths)] of every member
        for budget, window in kinds:
            at = np.array([k for k in ks if (budget, window) in design[k]])
            per_member = -(-experiments * max(design[k].count((budget, window)) for k in at) // len(members))
            for one in members:
                key, sub = jax.random.split(key)
                runs, _ = _series_runs(
                    one, n_agents, n_names, memory, payoffs, incumbent, pushed, at, per_member, budget, window, sub,
                    CHUNK // 4, drift,
                )  # fmt: skip
                for k, run in zip(at, runs, strict=True):
                    runs_of.setdefault((int(k), budget, window), []).append(run)
        key, sub = jax.random.split(key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(sub)).tolist())
        pooled = {where: _pooled(parts) for where, parts in runs_of.items()}
        flips = {where: run_flips(*rows, horizon_rounds).mean() for where, rows in pooled.items()}
        p_flip[d] = [np.mean([flips[(k, *kind)] for kind in design[k]]) for k in ks]  # kinds weighted as logged
        order = {where: rng.permutation(len(rows[1])) for where, rows in pooled.items()}  # members interleaved
        width = max(rows[0].shape[1] for rows in pooled.values())
        for e in range(experiments):
            for k in ks:
                shares, lengths = [], []
                for kind in kinds:
                    count = design[k].count(kind)
                    if count:
                        rows, played = pooled[(k, *kind)]
                        picked = order[(k, *kind)][e * count : (e + 1) * count]
                        shares.append(np.pad(rows[picked], ((0, 0), (0, width - rows.shape[1])), constant_values=0))
                        lengths.append(played[picked])
                if flip_outcome_of_curves(np.concatenate(shares), np.concatenate(lengths), horizon_rounds)["flipped"]:
                    out[d, e] = k
                    break
    return Replays(out, p_flip)


def _members(draw) -> list:
    """The policies of one parameter draw: itself, or the members of a mixture (a list)."""
    return list(draw) if isinstance(draw, list | tuple) else [draw]


def _pooled(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """(shares, lengths) of several batches of replicas in one array each."""
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _interval(values) -> list[float] | None:
    """2.5 and 97.5 percentiles of per-draw values (None with fewer than 2 draws)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    return np.percentile(values, [2.5, 97.5]).round(4).tolist() if len(values) > 1 else None


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> list[float]:
    """Clopper-Pearson interval of a binomial share."""
    from scipy import stats

    alpha = 1 - level
    low = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    high = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    return [round(float(low), 4), round(float(high), 4)]


def compare(
    policy: Policy | list[Policy],
    logs: list[LogFile],
    names: tuple[str, ...],
    memory: int,
    payoffs: tuple[int, int],
    replicas: int,
    key: jax.Array,
    horizon_rounds: int = HORIZON_ROUNDS,
    max_rounds: int = MAX_ROUNDS,
    progress=None,
    experiments: int = EXPERIMENTS,
    drift: Drift | None = None,
) -> dict:
    """Predicted next to observed for the game files ``logs`` (one name set ``names``, memory H, payoffs):
    ``baseline`` per baseline file (winners, stop time, success per round) and ``tipping`` per committed-minority
    series (flip and P(flip) per k, critical mass), and ``not_predicted`` (file or series, reason).

    ``policy`` may be a list of parameter draws (from the bootstrap or a Laplace approximation): the replicas are
    split among them, the predictions pool all replicas, and each predicted number has an ``interval``, the 2.5-97.5%
    percentiles over the draws (parameter uncertainty and Monte Carlo noise together). A draw may be a list of
    policies, a mixture (per-run random effects): its replicas are split among them and pooled. A series' predicted
    ``critical_k`` is the median over ``experiments`` replays of its observed design (:func:`predict_experiments`);
    ``critical_k_population`` is the smallest k whose pooled replicas flip (many runs per k). ``progress(text)`` is
    called before each simulation. ``drift``: shared shocks of every simulated run (None: none)."""
    policies = list(policy) if isinstance(policy, list | tuple) else [policy]
    per_draw = max(replicas // len(policies), 2)
    check_rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist() + [CHECK_STREAM])
    index = {name: i for i, name in enumerate(names)}
    say = progress or (lambda text: None)
    baseline, not_predicted = [], []
    for log in logs:
        if log.meta.kind != "game":
            continue
        if not log.runs or not log.n_agents:
            not_predicted.append({"file": log.name, "reason": "no runs or unknown N"})
            continue
        say(f"baseline {log.name}")
        observed = summarize_file(log)
        draws = []
        for draw in policies:
            members = _members(draw)
            parts = []
            for one in members:
                key, sub = jax.random.split(key)
                size = per_draw // len(members) + (len(parts) < per_draw % len(members))
                parts.append(
                    predict_baseline(
                        one,
                        log.n_agents,
                        len(names),
                        memory,
                        payoffs,
                        size,
                        sub,
                        max_rounds,
                        observed["stop_window"],
                        drift,
                    )  # fmt: skip
                )
            draws.append(
                {
                    "winners": np.sum([p["winners"] for p in parts], axis=0),
                    "stop_rounds": np.concatenate([p["stop_rounds"] for p in parts]),
                }
            )
        winners = np.sum([d["winners"] for d in draws], axis=0)
        stops = np.concatenate([d["stop_rounds"] for d in draws])
        total = per_draw * len(policies)
        observed_stops = np.asarray(observed["stop_time_rounds"])
        n_runs = observed["n_runs"]
        stopped_fraction = float(np.mean(~np.isnan(stops)))
        if stopped_fraction < 1:
            not_predicted.append(
                {
                    "file": log.name,
                    "reason": f"{1 - stopped_fraction:.1%} of the predicted runs did not stop within {max_rounds} "
                    "rounds: the stop-time mean counts only those that did",
                }
            )
        baseline.append(
            {
                "file": log.name,
                "n_agents": log.n_agents,
                "stop_window": observed["stop_window"],
                "observed": {
                    "runs": n_runs,
                    "winners": {n: observed["winners"].get(n, 0) for n in names},
                    "winner_share": {n: observed["winners"].get(n, 0) / n_runs for n in names},
                    "winner_interval": {n: binomial_interval(observed["winners"].get(n, 0), n_runs) for n in names},
                    "stop_rounds": _distribution(observed_stops) | {"interval": _mean_interval(observed_stops)},
                    "success_by_round": np.mean([success_by_round(run, log.n_agents, 20) for run in log.runs], axis=0)
                    .round(4)
                    .tolist(),
                },
                "predicted": {
                    "replicas": total,
                    "draws": len(policies),
                    "winners": {n: int(winners[i]) for n, i in index.items()},
                    "winner_share": {n: float(winners[i] / total) for n, i in index.items()},
                    "winner_interval": {
                        n: _interval([d["winners"][i] / per_draw for d in draws]) for n, i in index.items()
                    },
                    "stopped_fraction": stopped_fraction,
                    "stop_rounds": _distribution(stops[~np.isnan(stops)])
                    | {"interval": _interval([np.nanmean(d["stop_rounds"]) for d in draws])},
                    "stop_check": stop_check([d["stop_rounds"] for d in draws], observed_stops, check_rng),
                    "winner_check": winner_check(winners / total, n_runs, check_rng),
                    "max_rounds": max_rounds,
                },
            }
        )
    tipping = []
    for series in critical_masses(logs, horizon_rounds):
        where = f"{series['incumbent']} -> {series['pushed']}, N={series['n_agents']}"
        if series["incumbent"] not in index or series["pushed"] not in index or series["memory"] != memory:
            not_predicted.append({"series": where, "reason": f"names or H differ from the fitted {names}, H={memory}"})
            continue
        observed = {int(k): v for k, v in series["flipped"].items()}
        ks = list(range(max(observed) + 1))
        n = series["n_agents"]
        runs_by_k: dict[int, list] = {}
        for log in logs:
            if log.name in series["files"]:
                runs_by_k.setdefault(log.meta.committed, []).extend(log.runs)
        observed_outcome = {
            k: flip_outcome(runs, series["pushed"], n, horizon_rounds) for k, runs in sorted(runs_by_k.items())
        }
        inc, push = index[series["incumbent"]], index[series["pushed"]]
        design = observed_design(logs, series, horizon_rounds)
        windows = [window for k, runs in design.items() if k >= 1 for _, window in runs]
        window = max(set(windows), key=windows.count) if windows else None  # the series' commonest stop rule
        say(f"tipping {where}, k = 0..{ks[-1]}")
        key, sub = jax.random.split(key)
        predicted = predict_tipping(
            policies,
            n,
            len(names),
            memory,
            payoffs,
            inc,
            push,
            ks,
            replicas,
            sub,
            horizon_rounds,
            progress=lambda text, where=where: say(f"tipping {where}: {text}"),
            stop_window=window,
            drift=drift,
        )
        population = next((k for k in ks if predicted["flipped"][k]), None)
        by_draw = [next((k for k in ks if row[k]), np.nan) for row in predicted["by_draw"]["flipped"]]
        say(f"tipping {where}: the observed design replayed {experiments} times")
        key, sub, check_key = jax.random.split(key, 3)
        per_draw_experiments = max(experiments // len(policies), 1)
        replays = predict_experiments(
            policies, n, len(names), memory, payoffs, inc, push, design, per_draw_experiments, sub, horizon_rounds,
            drift,
        )  # fmt: skip
        replayed = replays.critical_k.ravel()
        critical = _median_k(replayed)
        observed_ks = sorted(design)
        flips = np.array([observed_outcome[k]["runs_flipped"] for k in observed_ks])
        logged = np.array([observed_outcome[k]["runs"] for k in observed_ks])
        rng = np.random.default_rng(np.asarray(jax.random.key_data(check_key)).tolist())
        check = flips_check(observed_ks, flips, logged, replays.p_flip, per_draw_experiments * len(policies), rng)
        if not check["consistent"]:
            gap = observed_ks.index(check["largest_gap_k"])
            not_predicted.append(
                {
                    "series": where,
                    "reason": f"the observed flips per k are unlikely under the predicted P(flip) per run "
                    f"(p = {check['p_value']:.2g}); largest gap at k = {check['largest_gap_k']}: {flips[gap]} of "
                    f"{logged[gap]} runs flipped, predicted {replays.p_flip[:, gap].mean():.2f} per run",
                }
            )
        if critical is None and series["critical_k"] is not None:
            not_predicted.append(
                {
                    "series": where,
                    "reason": f"in most replays of the observed design no k flips the predicted population "
                    f"({np.mean(np.isinf(replayed)):.0%}; largest predicted P(flip) per run "
                    f"{predicted['run_flip_fraction'].max():.2f} within {horizon_rounds} rounds)",
                }
            )
        tipping.append(
            {
                "n_agents": n,
                "incumbent": series["incumbent"],
                "pushed": series["pushed"],
                "files": series["files"],
                "observed": {
                    "flipped": {str(k): v for k, v in observed.items()},
                    "runs": {str(k): len(runs) for k, runs in sorted(runs_by_k.items())},
                    "last_rounds_share": {str(k): v["last_rounds_share"] for k, v in observed_outcome.items()},
                    "p_flip": {str(k): v["run_flip_fraction"] for k, v in observed_outcome.items()},
                    "runs_flipped": {str(k): v["runs_flipped"] for k, v in observed_outcome.items()},
                    "critical_k": series["critical_k"],
                    "critical_fraction": series["critical_fraction"],
                },
                "predicted": {
                    "replicas_per_k": per_draw * len(policies),
                    "draws": len(policies),
                    "flipped": {str(k): bool(predicted["flipped"][k]) for k in ks},
                    "last_rounds_share": {
                        str(k): [round(float(x), 4) for x in predicted["share"][k, -FLIP_LAST_ROUNDS:]] for k in ks
                    },
                    "p_flip": {str(k): round(float(predicted["run_flip_fraction"][k]), 4) for k in ks},
                    "p_flip_interval": {str(k): _interval(predicted["by_draw"]["run_flip_fraction"][:, k]) for k in ks},
                    "flip_fraction": {str(k): round(float(predicted["flip_fraction"][k]), 4) for k in ks},
                    "critical_k": critical,
                    "critical_k_interval": _k_interval(replayed),
                    "critical_k_within_one": _within_one(replayed, series["critical_k"]),
                    "critical_k_target_chance": _within_one(replayed, critical),
                    "critical_fraction": None if critical is None else critical / n,
                    "replayed_experiments": len(replayed),
                    "p_flip_design": {str(k): round(float(p), 4) for k, p in zip(observed_ks, replays.p_flip.mean(0))},
                    "p_flip_design_interval": {
                        str(k): _interval(replays.p_flip[:, i]) for i, k in enumerate(observed_ks)
                    },
                    "flips_check": check,
                    "design": {
                        str(k): {
                            "runs": len(runs),
                            "budget_rounds": sorted({round(b / n, 2) for b, _ in runs}),
                            "stop_window": sorted({w for _, w in runs}),
                        }
                        for k, runs in design.items()
                    },
                    "critical_k_population": population,
                    "critical_k_population_interval": _interval(by_draw) if not np.all(np.isnan(by_draw)) else None,
                    "critical_k_population_not_reached_draws": int(np.sum(np.isnan(by_draw))),
                },
                "horizon_rounds": horizon_rounds,
            }
        )
    return {"baseline": baseline, "tipping": tipping, "not_predicted": not_predicted}


FLIPS_ALPHA = 0.01  # observed flips per k with a smaller p-value under the prediction are reported as not predicted
CHECK_SAMPLES = 20_000  # experiments drawn from the predictive to find the p-value of the observed flips


def flips_check(
    ks, flips, runs, p_flip, simulated_runs: int, rng: np.random.Generator, samples: int = CHECK_SAMPLES
) -> dict:
    """Are ``flips`` ``(K,)`` of ``runs`` ``(K,)`` observed runs at each of ``ks`` likely under the predicted
    per-run flip probabilities ``p_flip`` ``(D, K)`` (per parameter draw, :class:`Replays`)?

    The statistic is the deviance of the counts from the predictive mean p,
    G = 2 sum_k [f log(f / n p) + (n - f) log((n - f) / (n (1 - p)))], with p kept half a simulated run away from
    0 and 1 (``simulated_runs``: a lower bound on the simulated runs per k, so the floor errs on the wide side). Its
    p-value is the share of ``samples`` experiments drawn from the predictive (a parameter draw, then independent
    binomial counts per k) whose G is at least the observed one, so at least 1 / (samples + 1). ``consistent`` when
    the p-value is >= ``FLIPS_ALPHA``; ``largest_gap_k`` is the k with the largest share of G."""
    flips, runs, p_flip = np.asarray(flips, float), np.asarray(runs, float), np.asarray(p_flip, float)
    floor = 0.5 / max(simulated_runs, 1)
    mean = np.clip(p_flip.mean(0), floor, 1 - floor)

    def terms(f):
        expected = runs * mean
        return 2 * (_xlog_ratio(f, expected) + _xlog_ratio(runs - f, runs - expected))

    observed = terms(flips)
    drawn = rng.binomial(runs.astype(int), p_flip[rng.integers(len(p_flip), size=samples)])
    p_value = (1 + np.sum(terms(drawn).sum(-1) >= observed.sum() - 1e-9)) / (samples + 1)
    return {
        "deviance": round(float(observed.sum()), 3),
        "p_value": float(p_value),
        "consistent": bool(p_value >= FLIPS_ALPHA),
        "largest_gap_k": int(ks[int(np.argmax(observed))]),
    }


CHECK_STREAM = 1  # the numpy stream of the baseline checks (stop_check, winner_check), apart from the simulations' keys
STOP_TOLERANCE = 0.15  # the target: a predicted stop-time mean within 15% of the observed


def stop_check(
    stops_by_draw: list[np.ndarray],
    observed: np.ndarray,
    rng: np.random.Generator,
    samples: int = CHECK_SAMPLES,
    tolerance: float = STOP_TOLERANCE,
) -> dict:
    """Is the observed mean stop time of its n runs (``observed`` ``(n,)``, rounds) likely under the predictive,
    the simulated stop times of each parameter draw (``stops_by_draw``, NaN for runs that did not stop, left out)?

    ``samples`` experiments of n runs are drawn from the predictive (a parameter draw, then n of its runs). The
    ``p_value`` is the share whose mean is at least as far from the predictive mean as the observed one (two-sided,
    at least 1 / (samples + 1)); ``target_chance`` the share whose mean the predictive mean is within ``tolerance``
    of (relative to that mean, as the target is to the observed): how often the prediction, were it the truth,
    would meet the stop-time target on an experiment of this size. None without observed or predicted stops."""
    pools = [x[~np.isnan(x)] for x in stops_by_draw]
    pools = [x for x in pools if len(x)]
    observed = np.asarray(observed, float)
    if not pools or not len(observed):
        return {"p_value": None, "target_chance": None}
    predicted = np.concatenate(pools).mean()
    per_draw = np.bincount(rng.integers(len(pools), size=samples), minlength=len(pools))
    means = np.concatenate(
        [pool[rng.integers(len(pool), size=(m, len(observed)))].mean(axis=1) for pool, m in zip(pools, per_draw)]
    )
    distance = np.abs(means - predicted)
    p_value = (1 + np.sum(distance >= abs(observed.mean() - predicted) - 1e-9)) / (samples + 1)
    return {
        "p_value": float(p_value),
        "target_chance": round(float(np.mean(distance <= tolerance * means)), 4),
    }


def winner_check(shares: np.ndarray, runs: int, rng: np.random.Generator, samples: int = CHECK_SAMPLES) -> dict:
    """How often the winner target would be met were the predicted ``shares`` ``(W,)`` the truth: the share of
    ``samples`` experiments of ``runs`` runs (multinomial winner counts) in which every predicted share lies inside
    its name's observed 95% binomial interval (:func:`binomial_interval`), as ``target_chance`` (None when no
    predicted run has a winner)."""
    shares = np.asarray(shares, float)
    if not shares.sum() > 0:
        return {"target_chance": None}
    bounds = np.array([binomial_interval(c, runs) for c in range(runs + 1)])  # (runs + 1, 2) by winner count
    counts = rng.multinomial(runs, shares / shares.sum(), size=samples)  # (samples, W)
    inside = (bounds[counts, 0] - 1e-9 <= shares) & (shares <= bounds[counts, 1] + 1e-9)
    return {"target_chance": round(float(np.mean(np.all(inside, axis=1))), 4)}


def _xlog_ratio(x, y):
    """x log(x / y) with 0 log 0 = 0."""
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1) / y), 0.0)


CONSISTENT_Z = 2.5  # held-out outcomes within this many standard errors of the observed count as consistent


def held_out_outcomes(
    policies: list[Policy],
    fold: np.ndarray,
    data,
    logs: list[LogFile],
    replicas: int,
    key: jax.Array,
    max_rounds: int = MAX_ROUNDS,
) -> dict:
    """Held-out collective outcomes of a family fitted per fold: the baseline runs of ``logs`` (files with the
    names of ``data``, a :class:`~jaxconv.estimate.likelihood.ChoiceData`) that fall in fold k (``fold``: per run
    of ``data``) are predicted by ``policies[k]``, fitted without them (``replicas`` runs per fold and N, with each
    file's stop rule). Per N: the observed and predicted mean stop time (rounds) and share of runs won by each
    name, and their z-scores (difference over the standard error of the held-out runs' value and of the
    simulation); ``consistent`` when every |z| <= ``CONSISTENT_Z``. An N with fewer than 2 runs is left out."""
    index = {(data.files[f], int(k)): i for i, (f, k) in enumerate(zip(data.run_file, data.run_key, strict=True))}
    by_n: dict[int, list] = {}
    for log in logs:
        if log.meta.kind == "game" and log.runs and log.n_agents and set(log.names) == set(data.names):
            window = stop_window(log.runs, log.n_agents)
            for run in log.runs:
                if (log.name, run.key) in index:
                    by_n.setdefault(log.n_agents, []).append((run, window, fold[index[(log.name, run.key)]]))
    out, scores = [], []
    for n, runs in sorted(by_n.items()):
        if len(runs) < 2:
            continue
        observed_stop = np.array([run.n_interactions / n for run, _, _ in runs])
        observed_win = np.array([[run_winner(run, n, list(data.names)) == w for w in data.names] for run, _, _ in runs])
        predicted_stop, predicted_win, stop_var = [], [], []
        for k in sorted({f for _, _, f in runs}):
            held = sum(f == k for _, _, f in runs)
            window = max(w for _, w, f in runs if f == k)
            key, sub = jax.random.split(key)
            p = predict_baseline(
                policies[k], n, data.n_names, data.memory, data.payoffs, replicas, sub, max_rounds, window
            )
            stops = np.nan_to_num(p["stop_rounds"], nan=max_rounds)
            predicted_stop += [stops.mean()] * held
            stop_var += [stops.var() / replicas] * held
            predicted_win += [p["winners"] / max(p["winners"].sum(), 1)] * held
        m = len(runs)
        stop = {"observed": observed_stop.mean(), "predicted": np.mean(predicted_stop)}
        stop_se = np.hypot(observed_stop.std(ddof=1) / np.sqrt(m), np.sqrt(np.mean(stop_var)))
        stop["z"] = (stop["predicted"] - stop["observed"]) / stop_se
        share, predicted_share = observed_win.mean(axis=0), np.mean(predicted_win, axis=0)
        share_z = (predicted_share - share) / np.sqrt(np.maximum(share * (1 - share), 0.25 / m) / m)
        winners = {
            name: {"observed": share[j], "predicted": predicted_share[j], "z": share_z[j]}
            for j, name in enumerate(data.names)
        }
        scores += [stop["z"], *share_z]
        rounded = jax.tree.map(lambda x: round(float(x), 4), {"stop_mean": stop, "winner_share": winners})
        out.append({"n_agents": n, "held_out_runs": m} | rounded)
    largest = float(np.max(np.abs(scores), initial=0.0))
    return {"by_n": out, "max_abs_z": round(largest, 3), "consistent": largest <= CONSISTENT_Z}


def _median_k(replayed: np.ndarray) -> int | None:
    """Median critical mass of replayed experiments (``inf``: no k flipped; None when that is the median)."""
    median = np.sort(replayed)[(len(replayed) - 1) // 2]
    return None if np.isinf(median) else int(median)


def _k_interval(replayed: np.ndarray) -> list | None:
    """2.5% and 97.5% order statistics of replayed critical masses (None for "no k flipped")."""
    if len(replayed) < 2:
        return None
    ordered = np.sort(replayed)
    low, high = ordered[int(0.025 * (len(ordered) - 1))], ordered[int(np.ceil(0.975 * (len(ordered) - 1)))]
    return [None if np.isinf(x) else int(x) for x in (low, high)]


def _within_one(replayed: np.ndarray, observed: int | None) -> float:
    """Share of replayed experiments whose critical mass is within one agent of the observed one (or, when no k
    flipped in the observed experiment, in which none flipped either)."""
    hits = np.isinf(replayed) if observed is None else np.abs(replayed - observed) <= 1
    return round(float(np.mean(hits)), 4)


def _mean_interval(values: np.ndarray) -> list[float] | None:
    """Observed mean +- 1.96 standard errors."""
    if len(values) < 2:
        return None
    se = values.std(ddof=1) / np.sqrt(len(values))
    return [round(float(values.mean() - 1.96 * se), 4), round(float(values.mean() + 1.96 * se), 4)]


def _distribution(values: np.ndarray) -> dict:
    """Mean, sd and quartiles of stop times in population rounds (None when there are none)."""
    if not len(values):
        return {"n": 0, "mean": None, "sd": None, "quartiles": None}
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "quartiles": np.percentile(values, [25, 50, 75]).tolist(),
    }


def critical_mass_met(observed: int | None, predicted: int | None) -> bool:
    """Whether a predicted critical mass (committed agents k; None: no k flipped) is within one agent of the
    observed one, or both are None."""
    if observed is None or predicted is None:
        return observed is None and predicted is None
    return abs(observed - predicted) <= 1


def targets_met(prediction: dict, stop_tolerance: float = STOP_TOLERANCE) -> list[dict]:
    """The issue's targets for a :func:`compare` result: per baseline file, the predicted stop-time mean within
    ``stop_tolerance`` of the observed and every predicted winner share inside the observed 95% binomial interval;
    per series, the predicted critical mass within one agent of the observed. Each with how sharp it is: the stop
    time's ``stop_p_value`` and ``stop_target_chance`` (:func:`stop_check`), the winners'
    ``winner_target_chance`` (:func:`winner_check`), the critical mass's
    ``target_chance`` (the share of replays of the observed design within one agent of the predicted critical
    mass) and the series' ``flips_p_value`` (:func:`flips_check`); None in results written without them."""
    out = []
    for base in prediction["baseline"]:
        observed, predicted = base["observed"], base["predicted"]
        stop_o, stop_p = observed["stop_rounds"]["mean"], predicted["stop_rounds"]["mean"]
        error = None if stop_p is None else (stop_p - stop_o) / stop_o
        inside = all(
            low - 1e-9 <= predicted["winner_share"][n] <= high + 1e-9
            for n, (low, high) in observed["winner_interval"].items()
        )
        out.append(
            {
                "condition": f"baseline N={base['n_agents']} {base['file']}",
                "stop_relative_error": None if error is None else round(error, 4),
                "stop_met": error is not None and abs(error) <= stop_tolerance,
                "stop_p_value": predicted.get("stop_check", {}).get("p_value"),
                "stop_target_chance": predicted.get("stop_check", {}).get("target_chance"),
                "winner_met": inside,
                "winner_target_chance": predicted.get("winner_check", {}).get("target_chance"),
            }
        )
    for series in prediction["tipping"]:
        observed, predicted = series["observed"]["critical_k"], series["predicted"]["critical_k"]
        met = critical_mass_met(observed, predicted)
        out.append(
            {
                "condition": f"critical mass N={series['n_agents']} {series['incumbent']} -> {series['pushed']}",
                "observed": observed,
                "predicted": predicted,
                "critical_met": met,
                "target_chance": series["predicted"].get("critical_k_target_chance"),
                "flips_p_value": series["predicted"].get("flips_check", {}).get("p_value"),
            }
        )
    return out


TARGET_KEYS = {"stop_met": "stop_target_chance", "winner_met": "winner_target_chance", "critical_met": "target_chance"}


def targets_summary(targets: list[dict]) -> dict:
    """The targets of :func:`targets_met` counted: ``met`` of ``of``, and ``expected_if_true``, the number a
    prediction that were the truth would meet on experiments of the logged sizes (the sum of the targets' chances;
    None when a target has none)."""
    pairs = [
        (target[met], target.get(chance)) for target in targets for met, chance in TARGET_KEYS.items() if met in target
    ]
    chances = [chance for _, chance in pairs]
    expected = None if None in chances else round(float(sum(chances)), 2)
    return {"met": sum(bool(met) for met, _ in pairs), "of": len(pairs), "expected_if_true": expected}


__all__ = [
    "binomial_interval",
    "compare",
    "critical_mass_met",
    "flips_check",
    "held_out_outcomes",
    "observed_design",
    "predict_baseline",
    "predict_experiments",
    "predict_tipping",
    "stop_check",
    "targets_met",
    "targets_summary",
    "winner_check",
]
