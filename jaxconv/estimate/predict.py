"""Collective outcomes predicted by a fitted policy, next to what the LLM populations did.

The fitted policy plays the experiment's protocol in :class:`jaxconv.games.memory.MemoryGame` (complete graph of
N agents, random pairs, both agents choose from their own memory of H rounds, payoffs +100/-50 as in the files):

- baseline (empty memories, stop once the last 3N interactions all succeeded): winner distribution and stop time
  in population rounds (interactions / N, the final 3N window included, as :mod:`jaxconv.data.summary` counts it),
  per baseline file, with that file's N.
- committed minority: memories prepared with H rounds of (X, X, +100), k agents converted to committed agents
  answering Y, for every k from 0 to the largest k of the observed series, for ``HORIZON_ROUNDS`` population
  rounds; flip by the paper's criterion, the same code as for the observed runs (:mod:`jaxconv.criteria`: per
  round the share of Y among the non-committed agents' choices, converged replicas padded with share 1, mean over
  the replicas that have each round, flipped if the last 3 rounds sum to >= 2.849); critical mass = smallest
  flipping k. As in the published runs, k >= 1 runs
  stop by the rule above, while k = 0 runs (the ``evolved_from`` files) run the whole horizon (a stable prepared
  population would otherwise stop after 3N interactions).
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxconv.criteria import FLIP_LAST_ROUNDS, HORIZON_ROUNDS, flip_outcome_of_curves, simulated_shares
from jaxconv.data.logs import LogFile
from jaxconv.data.summary import critical_masses, flip_outcome, summarize_file
from jaxconv.engine import ensemble, sweep
from jaxconv.games.memory import MemoryGame
from jaxconv.policies import Policy

MAX_ROUNDS = 300  # baseline runs not stopped after this many population rounds are reported as not stopped
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
) -> dict:
    """Replicas of a population with empty memories run to the stop rule: ``winners`` (W,) counts (majority name
    of the final 3N interactions), ``stop_rounds`` (replicas,) stop time / N (NaN when not stopped)."""
    failure, success = payoffs
    game = MemoryGame(n_agents, n_names, memory, policy=policy, payoffs=(success, failure), stop="successes")
    summary = ensemble(
        key, game, replicas, max_rounds * n_agents, n_agents, until_done=True, chunk_size=min(replicas, CHUNK)
    ).summary
    stopped = summary["stop_time"] >= 0
    return {
        "winners": np.bincount(summary["winner"][summary["winner"] >= 0], minlength=n_names),
        "stop_rounds": np.where(stopped, summary["stop_time"] / n_agents, np.nan),
    }


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
) -> dict:
    """Prepared populations on ``incumbent`` with k agents committed to ``pushed``, for each k of ``ks``, by the
    paper's criterion (:mod:`jaxconv.criteria`), over all replicas pooled: ``share`` (K, horizon) population curve,
    ``flipped`` (K,), ``run_flip_fraction`` (K,) replicas that converged to the pushed name within the horizon,
    ``flip_fraction`` (K,) the simulator's per-replica ``flipped`` (>= 95% of the latest choices) at the end.
    ``policy`` may be a list of parameter draws: the replicas are split among them and ``by_draw`` holds each
    draw's ``flipped`` (D, K) and ``run_flip_fraction`` (D, K). A draw may itself be a list of policies, a mixture
    (e.g. per-run random effects, :mod:`jaxconv.estimate.random_effects`): its replicas are split among them and
    pooled. ``progress(text)`` is called before each draw's simulations."""
    policies = list(policy) if isinstance(policy, list | tuple) else [policy]
    ks = np.asarray(ks)
    failure, success = payoffs
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
            for stop, selected in (("successes", ks >= 1), (None, ks == 0)):
                if not selected.any():
                    continue
                game = MemoryGame(
                    n_agents,
                    n_names,
                    memory,
                    policy=one,
                    payoffs=(success, failure),
                    initial="prepared",
                    prepared_name=incumbent,
                    committed_name=pushed,
                    stop=stop,
                )
                values = {"n_committed": jnp.asarray(ks[selected], jnp.int32)}
                chunk = min(per_member, CHUNK // 4)
                result = sweep(sub, game, values, per_member, horizon_rounds * n_agents, n_agents, chunk_size=chunk)
                shares, lengths = simulated_shares(
                    result.observations["free_choices"], result.observations["interactions"], pushed, n_agents
                )
                for row, index in enumerate(np.flatnonzero(selected)):
                    rows[index].append((shares[row], lengths[row]))
                    draw_rows[index].append((shares[row], lengths[row]))
                flip_fraction[d, selected] += result.summary["flipped"].mean(axis=1) / len(members)
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


def _success_by_round(runs, n_agents: int, rounds: int) -> list[float]:
    """Observed mean success per population round, a stopped run counting as succeeding."""
    curves = []
    for run in runs:
        per = [run.success[r * n_agents : (r + 1) * n_agents] for r in range(rounds)]
        curves.append([float(x.mean()) if len(x) else 1.0 for x in per])
    return np.mean(curves, axis=0).round(4).tolist()


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
) -> dict:
    """Predicted next to observed for the game files ``logs`` (one name set ``names``, memory H, payoffs):
    ``baseline`` per baseline file (winners, stop time, success per round) and ``tipping`` per committed-minority
    series (flip and P(flip) per k, critical mass), and ``not_predicted`` (file or series, reason).

    ``policy`` may be a list of parameter draws (from the bootstrap or a Laplace approximation): the replicas are
    split among them, the predictions pool all replicas, and each predicted number has an ``interval``, the 2.5-97.5%
    percentiles over the draws (parameter uncertainty and Monte Carlo noise together). A draw may be a list of
    policies, a mixture (per-run random effects): its replicas are split among them and pooled. ``progress(text)``
    is called before each simulation."""
    policies = list(policy) if isinstance(policy, list | tuple) else [policy]
    per_draw = max(replicas // len(policies), 2)
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
                parts.append(predict_baseline(one, log.n_agents, len(names), memory, payoffs, size, sub, max_rounds))
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
                "observed": {
                    "runs": n_runs,
                    "winners": {n: observed["winners"].get(n, 0) for n in names},
                    "winner_share": {n: observed["winners"].get(n, 0) / n_runs for n in names},
                    "winner_interval": {n: binomial_interval(observed["winners"].get(n, 0), n_runs) for n in names},
                    "stop_rounds": _distribution(observed_stops) | {"interval": _mean_interval(observed_stops)},
                    "success_by_round": _success_by_round(log.runs, log.n_agents, 20),
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
        )
        critical = next((k for k in ks if predicted["flipped"][k]), None)
        by_draw = [next((k for k in ks if row[k]), np.nan) for row in predicted["by_draw"]["flipped"]]
        if critical is None and series["critical_k"] is not None:
            not_predicted.append(
                {
                    "series": where,
                    "reason": f"no k up to {ks[-1]} flips the predicted population within {horizon_rounds} rounds "
                    f"(largest predicted P(flip) {predicted['run_flip_fraction'].max():.2f})",
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
                    "critical_k_interval": _interval(by_draw) if not np.all(np.isnan(by_draw)) else None,
                    "critical_k_not_reached_draws": int(np.sum(np.isnan(by_draw))),
                    "critical_fraction": None if critical is None else critical / n,
                },
                "horizon_rounds": horizon_rounds,
            }
        )
    return {"baseline": baseline, "tipping": tipping, "not_predicted": not_predicted}


def _mean_interval(values: np.ndarray) -> list[float] | None:
    """Observed mean +- 1.96 standard errors."""
    if len(values) < 2:
        return None
    se = values.std(ddof=1) / np.sqrt(len(values))
    return [round(float(values.mean() - 1.96 * se), 4), round(float(values.mean() + 1.96 * se), 4)]


def _distribution(values: np.ndarray) -> dict:
    """Mean and quartiles of stop times in population rounds (None when there are none)."""
    if not len(values):
        return {"n": 0, "mean": None, "quartiles": None}
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "quartiles": np.percentile(values, [25, 50, 75]).tolist(),
    }


def critical_mass_met(observed: int | None, predicted: int | None) -> bool:
    """Whether a predicted critical mass (committed agents k; None: no k flipped) is within one agent of the
    observed one, or both are None."""
    if observed is None or predicted is None:
        return observed is None and predicted is None
    return abs(observed - predicted) <= 1


def targets_met(prediction: dict, stop_tolerance: float = 0.15) -> list[dict]:
    """The issue's targets for a :func:`compare` result: per baseline file, the predicted stop-time mean within
    ``stop_tolerance`` of the observed and every predicted winner share inside the observed 95% binomial interval;
    per series, the predicted critical mass within one agent of the observed."""
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
                "winner_met": inside,
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
            }
        )
    return out


__all__ = ["binomial_interval", "compare", "critical_mass_met", "predict_baseline", "predict_tipping", "targets_met"]
