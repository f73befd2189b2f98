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
    policy: Policy,
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
) -> dict:
    """Prepared populations on ``incumbent`` with k agents committed to ``pushed``, for each k of ``ks``:
    ``share`` (K, horizon) population curve of the paper's criterion (:mod:`jaxconv.criteria`), ``flipped`` (K,)
    by that criterion, ``run_flip_fraction`` (K,) replicas that converged to the pushed name within the horizon,
    ``flip_fraction`` (K,) replicas whose non-committed agents' latest choices are >= 95% the pushed name at the
    end (the simulator's per-replica ``flipped``)."""
    ks = np.asarray(ks)
    failure, success = payoffs
    share = np.full((len(ks), horizon_rounds), np.nan)
    flipped = np.zeros(len(ks), bool)
    run_flip = np.zeros(len(ks))
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
        )
        values = {"n_committed": jnp.asarray(ks[selected], jnp.int32)}
        chunk = min(replicas, CHUNK // 4)
        result = sweep(key, game, values, replicas, horizon_rounds * n_agents, n_agents, chunk_size=chunk)
        shares, lengths = simulated_shares(
            result.observations["free_choices"], result.observations["interactions"], pushed, n_agents
        )
        for row, index in enumerate(np.flatnonzero(selected)):
            outcome = flip_outcome_of_curves(shares[row], lengths[row], horizon_rounds)
            curve = np.asarray(outcome["mean_share_by_round"])
            share[index, : len(curve)] = curve
            flipped[index] = outcome["flipped"]
            run_flip[index] = outcome["run_flip_fraction"]
        flip_fraction[selected] = result.summary["flipped"].mean(axis=1)
    return {"share": share, "flipped": flipped, "run_flip_fraction": run_flip, "flip_fraction": flip_fraction}


def compare(
    policy: Policy,
    logs: list[LogFile],
    names: tuple[str, ...],
    memory: int,
    payoffs: tuple[int, int],
    replicas: int,
    key: jax.Array,
    horizon_rounds: int = HORIZON_ROUNDS,
    max_rounds: int = MAX_ROUNDS,
) -> dict:
    """Predicted next to observed for the game files ``logs`` (one name set ``names``, memory H, payoffs):
    ``baseline`` per baseline file (winners, stop time) and ``tipping`` per committed-minority series (flip per k,
    critical mass)."""
    index = {name: i for i, name in enumerate(names)}
    baseline = []
    for log in logs:
        if log.meta.kind != "game" or not log.runs or not log.n_agents:
            continue
        key, sub = jax.random.split(key)
        observed = summarize_file(log)
        predicted = predict_baseline(policy, log.n_agents, len(names), memory, payoffs, replicas, sub, max_rounds)
        stops = predicted["stop_rounds"]
        baseline.append(
            {
                "file": log.name,
                "n_agents": log.n_agents,
                "observed": {
                    "runs": observed["n_runs"],
                    "winners": {n: observed["winners"].get(n, 0) for n in names},
                    "stop_rounds": _distribution(np.asarray(observed["stop_time_rounds"])),
                },
                "predicted": {
                    "replicas": replicas,
                    "winners": {n: int(predicted["winners"][i]) for n, i in index.items()},
                    "winner_share": {n: float(predicted["winners"][i] / replicas) for n, i in index.items()},
                    "stopped_fraction": float(np.mean(~np.isnan(stops))),
                    "stop_rounds": _distribution(stops[~np.isnan(stops)]),
                    "max_rounds": max_rounds,
                },
            }
        )
    tipping = []
    for series in critical_masses(logs, horizon_rounds):
        if series["incumbent"] not in index or series["pushed"] not in index or series["memory"] != memory:
            continue
        observed = {int(k): v for k, v in series["flipped"].items()}
        ks = list(range(max(observed) + 1))
        key, sub = jax.random.split(key)
        n = series["n_agents"]
        runs_by_k: dict[int, list] = {}
        for log in logs:
            if log.name in series["files"]:
                runs_by_k.setdefault(log.meta.committed, []).extend(log.runs)
        observed_share = {
            k: flip_outcome(runs, series["pushed"], n, horizon_rounds)["last_rounds_share"]
            for k, runs in sorted(runs_by_k.items())
        }
        inc, push = index[series["incumbent"]], index[series["pushed"]]
        predicted = predict_tipping(
            policy, n, len(names), memory, payoffs, inc, push, ks, replicas, sub, horizon_rounds
        )
        critical = next((k for k in ks if predicted["flipped"][k]), None)
        tipping.append(
            {
                "n_agents": n,
                "incumbent": series["incumbent"],
                "pushed": series["pushed"],
                "files": series["files"],
                "observed": {
                    "flipped": {str(k): v for k, v in observed.items()},
                    "runs": {str(k): len(runs) for k, runs in sorted(runs_by_k.items())},
                    "last_rounds_share": {str(k): v for k, v in observed_share.items()},
                    "critical_k": series["critical_k"],
                    "critical_fraction": series["critical_fraction"],
                },
                "predicted": {
                    "replicas_per_k": replicas,
                    "flipped": {str(k): bool(predicted["flipped"][k]) for k in ks},
                    "last_rounds_share": {
                        str(k): [round(float(x), 4) for x in predicted["share"][k, -FLIP_LAST_ROUNDS:]] for k in ks
                    },
                    "flip_fraction": {str(k): round(float(predicted["flip_fraction"][k]), 4) for k in ks},
                    "critical_k": critical,
                    "critical_fraction": None if critical is None else critical / n,
                },
                "horizon_rounds": horizon_rounds,
            }
        )
    return {"baseline": baseline, "tipping": tipping}


def _distribution(values: np.ndarray) -> dict:
    """Mean and quartiles of stop times in population rounds (None when there are none)."""
    if not len(values):
        return {"n": 0, "mean": None, "quartiles": None}
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "quartiles": np.percentile(values, [25, 50, 75]).tolist(),
    }


__all__ = ["compare", "predict_baseline", "predict_tipping"]
