"""Summaries of LLM naming-game logs, with the definitions that reproduce the published counts.

- winner of a run: the majority name among the answers of the final 3N interactions (ties: earlier in the
  file's name list).
- stop time in population rounds: the run's number of interactions / N. The runs stop once the last 3N
  interactions all succeeded, so this counts that final window too; it is the definition giving the published
  means (W=10: Llama-3.1 12.9, Claude 9.8; W=2: 13.3, 7.5). Without the window, (T - 3N)/N, they are 3 lower.
- flip of a committed-minority file: per population round (N consecutive interactions; a trailing incomplete
  round is dropped) the share of the pushed name among the answers of the non-committed agents; the mean over
  runs, each run held at its last round's share after it stopped, over the first ``horizon_rounds`` rounds;
  flipped when each of the last 3 rounds of that mean is >= 0.95.
- critical mass: the smallest committed k (among the files of one model, N, H, payoffs, incumbent and pushed
  name; the ``evolved_from`` file counts as k = 0) whose file flips.

``horizon_rounds`` defaults to 30: the README's critical masses (Claude 5/24 both ways; Llama-3.1 10/24
against M, 0 against Q) are reproduced by every horizon from 25 to 30 rounds and by none without a horizon,
since all six Claude runs with k = 4 against M do flip eventually, the last after 33 rounds.
"""

from dataclasses import asdict

import numpy as np

from jaxconv.data.logs import LogCollection, LogFile, Run, load_logs

FLIP_THRESHOLD = 0.95
FLIP_LAST_ROUNDS = 3
HORIZON_ROUNDS = 30


def run_winner(run: Run, n_agents: int, names: list[str]) -> str:
    """The majority name among both answers of the final 3N interactions of ``run``."""
    final = run.answers[-3 * n_agents :].ravel()
    counts = [int(np.sum(final == name)) for name in names]
    return names[int(np.argmax(counts))]


def stop_time_rounds(run: Run, n_agents: int) -> float:
    """Interactions of ``run`` / N."""
    return run.n_interactions / n_agents


def has_converged(run: Run, n_agents: int) -> bool:
    """Whether the final 3N interactions all succeeded (the experiment's stopping rule)."""
    return run.n_interactions >= 3 * n_agents and bool(run.success[-3 * n_agents :].all())


def pushed_share_by_round(run: Run, pushed: str, n_agents: int) -> np.ndarray:
    """(R,) share of ``pushed`` among the non-committed agents' answers in each complete population round."""
    n_rounds = run.n_interactions // n_agents
    shape = (n_rounds, n_agents * 2)
    free = ~np.isin(run.players[: n_rounds * n_agents], list(run.committed_agents)).reshape(shape)
    is_pushed = (run.answers[: n_rounds * n_agents] == pushed).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (is_pushed & free).sum(axis=1) / free.sum(axis=1)


def mean_pushed_share(runs: list[Run], pushed: str, n_agents: int, horizon_rounds: int | None) -> np.ndarray:
    """(R,) mean over ``runs`` of :func:`pushed_share_by_round`, each run held at its last value once it
    stopped; R = ``horizon_rounds``, or the longest run's rounds when None. Runs without a complete round are
    left out."""
    if horizon_rounds is not None and horizon_rounds < 1:
        raise ValueError(f"horizon_rounds must be a positive number of rounds or None, got {horizon_rounds}")
    curves = [c for c in (pushed_share_by_round(r, pushed, n_agents) for r in runs) if len(c)]
    if not curves:
        return np.array([])
    length = horizon_rounds or max(len(c) for c in curves)
    held = [np.concatenate([c, np.full(max(0, length - len(c)), c[-1])])[:length] for c in curves]
    return np.nanmean(np.stack(held), axis=0)


def _pushed_name(log: LogFile) -> str | None:
    if log.meta.pushed:
        return log.meta.pushed
    committed_to = {r.committed_to for r in log.runs if r.committed_to}
    return committed_to.pop() if len(committed_to) == 1 else None


def flip_outcome(runs: list[Run], pushed: str, n_agents: int, horizon_rounds: int | None = HORIZON_ROUNDS) -> dict:
    """Whether the non-committed agents adopted ``pushed`` (module docstring); mean share by round."""
    curve = mean_pushed_share(runs, pushed, n_agents, horizon_rounds)
    last = curve[-FLIP_LAST_ROUNDS:]
    return {
        "pushed": pushed,
        "flipped": bool(len(last) and np.all(last >= FLIP_THRESHOLD)),
        "last_rounds_share": [round(float(x), 4) for x in last],
        "mean_share_by_round": [round(float(x), 4) for x in curve],
        "horizon_rounds": horizon_rounds,
        "runs_without_a_full_round": sum(r.n_interactions < n_agents for r in runs),
    }


def _single_prompt_summary(log: LogFile) -> dict:
    test = log.single
    answers = np.array(test.answers)
    counts = {name: int(np.sum(answers == name)) for name in log.names}
    n = len(test.answers)
    out = {
        "memory_own": test.own,
        "memory_partner": test.partner,
        "memory_payoff": test.payoff,
        "n": n,
        "counts": counts,
        "p": {name: count / n for name, count in counts.items()} if n else {},
        "test": None,
        "p_test": None,
    }
    if not test.own and n:
        out["test"] = "individual_bias"
    elif len(test.own) == 1 == len(test.partner) and n:
        own, partner = test.own[0], test.partner[0]
        out["test"] = "win_stay" if own == partner else "lose_shift"
        out["p_test"] = counts.get(partner, 0) / n  # stay on own (= partner's) name, or shift to the partner's
    return out


def summarize_file(log: LogFile, horizon_rounds: int | None = HORIZON_ROUNDS) -> dict:
    """JSON-ready summary of one file: metadata, runs, winners, stop times, flip or single-prompt answers."""
    notes = list(log.notes)
    out = {"metadata": log.meta.to_dict(), "names": log.names, "n_agents": log.n_agents, "notes": notes}
    if log.single is not None:
        out["single_prompt"] = _single_prompt_summary(log)
        return out
    out["n_runs"] = len(log.runs)
    if not log.runs or not log.n_agents:
        return out
    n = log.n_agents
    winners = [run_winner(r, n, log.names) for r in log.runs]
    stop = [stop_time_rounds(r, n) for r in log.runs]
    out["winners"] = {name: winners.count(name) for name in log.names}
    out["n_converged"] = sum(has_converged(r, n) for r in log.runs)
    out["stop_time_rounds"] = stop
    out["stop_time_rounds_mean"] = float(np.mean(stop))
    if log.meta.kind in ("committed", "evolved"):
        pushed = _pushed_name(log)
        if pushed is None:
            notes.append("no pushed name (file name or 'committed_to'): flip not computed")
        else:
            out["flip"] = {"k": log.meta.committed, "incumbent": log.meta.incumbent} | flip_outcome(
                log.runs, pushed, n, horizon_rounds
            )
    return out


def critical_masses(logs: list[LogFile], horizon_rounds: int | None = HORIZON_ROUNDS) -> list[dict]:
    """Per series (model, N, H, payoffs, incumbent, pushed; variant swap/inject): the flip per committed k and
    the smallest k that flips. An ``evolved_from`` file joins its series as k = 0."""
    series: dict[tuple, dict[int, list[LogFile]]] = {}
    for log in logs:
        meta = log.meta
        if meta.kind not in ("committed", "evolved") or meta.committed is None or not log.runs or not log.n_agents:
            continue
        pushed = _pushed_name(log)
        if pushed is None:
            continue
        key = (meta.model, log.n_agents, meta.memory, meta.payoffs, meta.incumbent, pushed)
        series.setdefault(key, {}).setdefault(meta.committed, []).append(log)
    out = []
    for (model, n, memory, payoffs, incumbent, pushed), by_k in series.items():
        variants = {log.meta.variant for logs_k in by_k.values() for log in logs_k} - {None}
        flipped = {}
        for k in sorted(by_k):
            runs = [run for log in by_k[k] for run in log.runs]
            flipped[k] = flip_outcome(runs, pushed, n, horizon_rounds)["flipped"]
        critical = next((k for k in sorted(flipped) if flipped[k]), None)
        out.append(
            {
                "model": model,
                "variant": "/".join(sorted(variants)) or None,
                "n_agents": n,
                "memory": memory,
                "payoffs": list(payoffs) if payoffs else None,
                "incumbent": incumbent,
                "pushed": pushed,
                "files": sorted(log.name for logs_k in by_k.values() for log in logs_k),
                "flipped": {str(k): v for k, v in flipped.items()},
                "critical_k": critical,
                "critical_mass": None if critical is None else f"{critical}/{n}",
                "critical_fraction": None if critical is None else critical / n,
                "all_larger_k_flip": critical is not None and all(v for k, v in flipped.items() if k >= critical),
                "horizon_rounds": horizon_rounds,
            }
        )
    return out


DEFINITIONS = {
    "winner": "majority name among the answers of the final 3N interactions",
    "stop_time_rounds": "interactions of the run / N (the final 3N all-success window included)",
    "flip": (
        "mean over runs of the non-committed agents' share of the pushed name per population round (runs "
        "held at their last round once stopped; first horizon_rounds rounds); flipped if each of the last 3 "
        ">= 0.95"
    ),
    "critical_mass": "smallest committed k whose file flips (evolved_from file = k 0), as k/N",
}


def summarize(collection: LogCollection, horizon_rounds: int | None = HORIZON_ROUNDS) -> dict:
    """JSON-serialisable summary of a LogCollection: per file, the critical masses, the skipped list."""
    return {
        "source": collection.source,
        "files": {log.name: summarize_file(log, horizon_rounds) for log in collection.files},
        "critical_mass": critical_masses(collection.files, horizon_rounds),
        "skipped": [asdict(s) for s in collection.skipped],
        "definitions": DEFINITIONS,
    }


def summary_text(summary: dict) -> str:
    """A readable version of a :func:`summarize` result: one line per file, the critical masses, the skips."""
    lines = [f"source: {summary['source']}"]
    for name, out in summary["files"].items():
        parts = [out["metadata"]["kind"]]
        if "n_runs" in out:
            parts.append(f"{out['n_runs']} runs")
        if out.get("winners"):
            parts.append("winners " + " ".join(f"{k}:{v}" for k, v in out["winners"].items() if v))
        if "stop_time_rounds_mean" in out:
            parts.append(f"stop {out['stop_time_rounds_mean']:.1f} rounds")
        if "flip" in out:
            flip = out["flip"]
            parts.append(f"k={flip['k']} {'flipped' if flip['flipped'] else 'not flipped'} to {flip['pushed']}")
        if "single_prompt" in out:
            test = out["single_prompt"]
            parts.append(f"n={test['n']} " + " ".join(f"P({k})={v:.3f}" for k, v in test["p"].items()))
        lines.append(f"{name}: {', '.join(parts)}")
    for series in summary["critical_mass"]:
        flipped = [k for k, v in series["flipped"].items() if v]
        lines.append(
            f"critical mass {series['model']} N={series['n_agents']} {series['incumbent']} -> {series['pushed']}: "
            f"{series['critical_mass'] or 'not reached'} (k tested {', '.join(series['flipped'])}; "
            f"flipped {', '.join(flipped) or 'none'})"
        )
    lines.append(f"skipped: {len(summary['skipped'])}")
    for skip in summary["skipped"]:
        where = skip["file"] if skip["run"] is None else f"{skip['file']} run {skip['run']}"
        lines.append(f"  {where}: {skip['reason']}")
    return "\n".join(lines)


def summarize_path(path, *, horizon_rounds: int | None = HORIZON_ROUNDS, strict: bool = False) -> dict:
    """Load ``path`` (zip, folder or pickle) with :func:`load_logs` and :func:`summarize` it."""
    return summarize(load_logs(path, strict=strict), horizon_rounds)
