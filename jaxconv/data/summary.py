"""Summaries of LLM naming-game logs, with the definitions that reproduce the published counts.

- winner of a run: the majority name among the answers of the final 3N interactions (ties: earlier in the
  file's name list).
- stop time in population rounds: the run's number of interactions / N. The runs stop once the last 3N
  interactions all succeeded, so this counts that final window too; it is the definition giving the published
  means (W=10: Llama-3.1 12.9, Claude 9.8; W=2: 13.3, 7.5). Without the window, (T - 3N)/N, they are 3 lower.
- flip of a committed-minority file: the paper's criterion, written once in :mod:`jaxconv.criteria` (per run, from
  its ``converged_index``, the share of the pushed name among the non-committed agents' answers per population
  round; runs whose last 3 rounds sum to >= 2.849 padded with rounds of share 1 to the longest run + 30 rounds;
  mean over the runs that have each round, first 30 rounds; flipped if the last 3 rounds of that curve sum to
  >= 2.849, a mean of 0.9497, not "each of the last 3 rounds >= 0.95").
- critical mass: the smallest committed k (among the files of one model, N, H, payoffs, incumbent and pushed
  name; the ``evolved_from`` file counts as k = 0) whose file flips.
- model: files of one model written with and without its size (``llama31_...`` and ``llama31_70b_...``) are one
  model (:func:`model_names`).
"""

import re
from dataclasses import asdict

import numpy as np

from jaxconv.criteria import (  # noqa: F401  (re-exported: the constants' historical home)
    DEFINITION as FLIP_DEFINITION,
)
from jaxconv.criteria import (
    HORIZON_ROUNDS,
    flip_outcome_of_curves,
    population_curve,
    round_shares,
    stack,
)
from jaxconv.data.logs import LogCollection, LogFile, Run, load_logs


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


def success_by_round(run, n_agents: int, rounds: int) -> np.ndarray:
    """``(rounds,)`` share of successful interactions in each of the first population rounds of a logged run; a
    round after the run's stop counts as all successes (the stop rule's window was)."""
    success = np.asarray(run.success, float)
    out = np.ones(rounds)
    for r in range(rounds):
        played = success[r * n_agents : (r + 1) * n_agents]
        if len(played):
            out[r] = played.mean()
    return out


def final_streak(run: Run) -> int:
    """Successes in a row at the end of ``run``."""
    failures = np.flatnonzero(~np.asarray(run.success, bool))
    return run.n_interactions - 1 - int(failures[-1]) if len(failures) else run.n_interactions


def stop_window(runs: list[Run], n_agents: int) -> int:
    """The window W of the stop rule these runs were played under (a run stops as soon as its last W interactions
    all succeeded, so a stopped run ends on a streak of exactly W): the commonest final success streak of at least
    N interactions among the runs that had a failure (ties: the shortest); 3N, the protocol's rule, when there is
    none. The published files are not all played with 3N: at N = 48 some stop after 72 successes (3 x 24), others
    after 144."""
    streaks = [final_streak(run) for run in runs if n_agents <= final_streak(run) < run.n_interactions]
    if not streaks:
        return 3 * n_agents
    values, counts = np.unique(streaks, return_counts=True)
    return int(values[np.argmax(counts)])


def pushed_share_by_round(run: Run, pushed: str, n_agents: int) -> np.ndarray:
    """(R,) share of ``pushed`` among the non-committed agents' answers in each population round (the trailing
    incomplete one included), counted from the run's ``converged_index`` (0 when absent)."""
    free = ~np.isin(run.players, list(run.committed_agents))
    start = run.converged_index if run.converged_index and run.converged_index < run.n_interactions else 0
    return round_shares(run.answers == pushed, free, n_agents, start)


def mean_pushed_share(runs: list[Run], pushed: str, n_agents: int, horizon_rounds: int | None) -> np.ndarray:
    """(R,) population curve of the paper's criterion (:func:`jaxconv.criteria.population_curve`) of ``runs``:
    converged runs padded with share 1, mean over the runs that have each round, first ``horizon_rounds`` rounds
    (None: all). Runs without a complete round are left out."""
    if horizon_rounds is not None and horizon_rounds < 1:
        raise ValueError(f"horizon_rounds must be a positive number of rounds or None, got {horizon_rounds}")
    curves = [c for c in (pushed_share_by_round(r, pushed, n_agents) for r in runs) if len(c)]
    return population_curve(*stack(curves), horizon_rounds)


def model_names(models) -> dict[str, str]:
    """Canonical model of each model name: a name with a size suffix (``llama31_70b``) is its base name
    (``llama31``) when that base name is among ``models`` too, or when it is the only sized name of that base."""
    models = {m for m in models if m}
    out = {m: m for m in models}
    for m in models:
        match = re.fullmatch(r"(.+?)[_-](\d+(?:\.\d+)?[bBmM])", m)
        if match:
            base = match.group(1)
            sized = [x for x in models if re.fullmatch(re.escape(base) + r"[_-]\d+(?:\.\d+)?[bBmM]", x)]
            if base in models or len(sized) == 1:
                out[m] = base
    return out


def _pushed_name(log: LogFile) -> str | None:
    if log.meta.pushed:
        return log.meta.pushed
    committed_to = {r.committed_to for r in log.runs if r.committed_to}
    return committed_to.pop() if len(committed_to) == 1 else None


def flip_outcome(runs: list[Run], pushed: str, n_agents: int, horizon_rounds: int | None = HORIZON_ROUNDS) -> dict:
    """Whether the non-committed agents adopted ``pushed`` by the paper's criterion (:mod:`jaxconv.criteria`):
    the population curve, its last 3 rounds and their sum, and the share of runs that flipped on their own."""
    if horizon_rounds is not None and horizon_rounds < 1:
        raise ValueError(f"horizon_rounds must be a positive number of rounds or None, got {horizon_rounds}")
    curves = [c for c in (pushed_share_by_round(r, pushed, n_agents) for r in runs) if len(c)]
    return (
        {"pushed": pushed}
        | flip_outcome_of_curves(*stack(curves), horizon_rounds)
        | {"horizon_rounds": horizon_rounds}
        | {"runs_without_a_full_round": sum(r.n_interactions < n_agents for r in runs)}
    )


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
    out["stop_window"] = stop_window(log.runs, n)
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
    canonical = model_names(log.meta.model for log in logs)
    for log in logs:
        meta = log.meta
        if meta.kind not in ("committed", "evolved") or meta.committed is None or not log.runs or not log.n_agents:
            continue
        pushed = _pushed_name(log)
        if pushed is None:
            continue
        key = (canonical.get(meta.model, meta.model), log.n_agents, meta.memory, meta.payoffs, meta.incumbent, pushed)
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
    "flip": FLIP_DEFINITION,
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
