"""The flip criterion of the published figures (Ashery, Aiello & Baronchelli 2025, AI-norms ``plotter.ipynb``),
written once and used for observed and simulated runs alike.

1. Per run: from the run's ``converged_index`` on, the tracker is cut into population rounds of N interactions (a
   trailing incomplete round is a round too: 1000 interactions at N=48 are 21 rounds, the last of 40
   interactions; with it, every k above the critical mass of the N=24 series flips, without it one file of a
   single 86-interaction run at k=22 would not); per round, the share of the pushed (committed) name among the
   answers of the NON-committed agents.
2. A run whose last 3 rounds sum to >= ``FLIP_SUM`` = 2.849 counts as converged: it is padded with rounds of share
   1, up to the longest run's number of rounds plus ``PAD_ROUNDS`` = 30. Other runs are not padded.
3. The population curve is the mean over runs of each round, over the runs that have that round, for the first
   ``HORIZON_ROUNDS`` = 30 rounds (fewer when the runs are shorter).
4. The population flipped if the last 3 values of that curve sum to >= 2.849: a mean of 0.9497, not "each of the
   last 3 rounds >= 0.95" (a curve ending .912, .983, .956 flipped).

The critical mass is the smallest committed k of a series whose population flipped.

A run of its own "flipped" (for P(flip) per k) when its padded curve, cut at the horizon, ends on 3 rounds that sum
to >= 2.849, i.e. when it converged within the horizon.

``FLIP_THRESHOLD`` (0.95) is a different, per-replica quantity the simulator reports (``MemoryGame.summarize``'s
``flipped``: at least 95% of the non-committed agents' latest choices are the pushed name); the games import it from
here, so that no game imports the data layer.
"""

import numpy as np

FLIP_SUM = 2.849  # the last FLIP_LAST_ROUNDS rounds of a curve must sum to at least this
FLIP_LAST_ROUNDS = 3
HORIZON_ROUNDS = 30  # the population curve's first rounds
PAD_ROUNDS = 30  # converged runs are padded to the longest run's rounds plus this
FLIP_THRESHOLD = 0.95  # per-replica indicator of the simulator (module docstring), not the paper's criterion


def ends_converged(curve) -> bool:
    """Whether the last ``FLIP_LAST_ROUNDS`` values of ``curve`` sum to >= ``FLIP_SUM`` (False when shorter)."""
    curve = np.asarray(curve, float)
    return bool(len(curve) >= FLIP_LAST_ROUNDS and curve[-FLIP_LAST_ROUNDS:].sum() >= FLIP_SUM - 1e-9)


def round_shares(pushed, free, n_agents: int, start: int = 0) -> np.ndarray:
    """``(R,)`` share of the pushed name among the free (non-committed) answers per round of ``n_agents``
    interactions from interaction ``start`` on, the trailing incomplete round included. ``pushed``, ``free``:
    ``(T, 2)`` bool per answer (NaN for a round without a free answer)."""
    pushed = np.asarray(pushed, bool)[start:]
    free = np.asarray(free, bool)[start:]
    n_rounds = -(-len(pushed) // n_agents)
    round_of = np.repeat(np.arange(len(pushed)) // n_agents, 2)
    hits = np.bincount(round_of, (pushed & free).ravel(), minlength=n_rounds)
    total = np.bincount(round_of, free.ravel(), minlength=n_rounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / total


def padded(shares: np.ndarray, lengths: np.ndarray, horizon_rounds: int | None = HORIZON_ROUNDS) -> np.ndarray:
    """Runs as rows ``(n, L)`` of per-round shares (``lengths`` rounds each; the rest ignored) -> ``(n, R)`` after
    step 2 of the criterion, NaN where a run has no round; R = longest + ``PAD_ROUNDS``, cut at ``horizon_rounds``."""
    shares = np.asarray(shares, float)
    lengths = np.asarray(lengths, int)
    n, width = shares.shape if shares.ndim == 2 else (0, 0)
    longest = int(lengths.max(initial=0))
    total = longest + PAD_ROUNDS
    if horizon_rounds is not None:
        total = min(total, horizon_rounds)
    out = np.full((n, total), np.nan)
    rounds = np.arange(total)
    have = rounds[None, :] < lengths[:, None]
    out[:, : min(width, total)] = shares[:, : min(width, total)]
    out[~have] = np.nan
    last = (
        np.stack(
            [shares[np.arange(n), np.clip(lengths - 1 - j, 0, max(width - 1, 0))] for j in range(FLIP_LAST_ROUNDS)], 1
        )
        if n and width
        else np.zeros((n, FLIP_LAST_ROUNDS))
    )
    converged = (lengths >= FLIP_LAST_ROUNDS) & (np.nansum(last, axis=1) >= FLIP_SUM - 1e-9)
    out[converged[:, None] & ~have] = 1.0
    return out


def population_curve(shares, lengths, horizon_rounds: int | None = HORIZON_ROUNDS) -> np.ndarray:
    """Steps 2-3: the mean over runs of each round (over the runs that have it) of the padded runs, first
    ``horizon_rounds`` rounds (None: all), dropping trailing rounds that no run has."""
    rows = padded(shares, lengths, horizon_rounds)
    has = ~np.isnan(rows)
    count = has.sum(axis=0)
    curve = np.where(count > 0, np.nansum(rows, axis=0) / np.maximum(count, 1), np.nan)
    keep = np.flatnonzero(count > 0)
    return curve[: keep[-1] + 1] if len(keep) else curve[:0]


def run_flips(shares, lengths, horizon_rounds: int | None = HORIZON_ROUNDS) -> np.ndarray:
    """``(n,)`` bool: each run's padded curve, cut at the horizon, ends converged (module docstring)."""
    rows = padded(shares, lengths, horizon_rounds)
    out = np.zeros(len(rows), bool)
    for i, row in enumerate(rows):
        row = row[~np.isnan(row)]
        out[i] = ends_converged(row)
    return out


def stack(curves: list) -> tuple[np.ndarray, np.ndarray]:
    """A list of ``(R_i,)`` per-run share curves -> (``(n, max R_i)`` NaN-padded rows, ``(n,)`` lengths)."""
    lengths = np.array([len(c) for c in curves], int)
    rows = np.full((len(curves), int(lengths.max(initial=0))), np.nan)
    for i, c in enumerate(curves):
        rows[i, : len(c)] = c
    return rows, lengths


def simulated_shares(
    free_choices, interactions, pushed: int, n_agents: int, records_per_round: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated replicas recorded ``records_per_round`` times per population round -> (``(..., R)`` share of
    ``pushed`` among the non-committed agents' choices per round, ``(...)`` number of rounds played).
    ``free_choices`` ``(..., T, W)``: the non-committed agents' choices since the previous record; ``interactions``
    ``(..., T)``: cumulative interactions. A round is ``records_per_round`` consecutive records (a trailing
    incomplete one included, as for the logged runs); the rounds of a replica are those with an interaction (the one
    it stopped in is its trailing incomplete round)."""
    free = np.asarray(free_choices)
    interactions = np.asarray(interactions)
    records = free.shape[-2]
    rounds = -(-records // records_per_round)
    missing = rounds * records_per_round - records
    free = np.pad(free, [(0, 0)] * (free.ndim - 2) + [(0, missing), (0, 0)])
    free = free.reshape(*free.shape[:-2], rounds, records_per_round, free.shape[-1]).sum(axis=-2)
    share = free[..., pushed] / np.maximum(free.sum(axis=-1), 1)
    lengths = -(-interactions[..., -1] // n_agents)
    return share, lengths


def flip_outcome_of_curves(shares, lengths, horizon_rounds: int | None = HORIZON_ROUNDS) -> dict:
    """The whole criterion on runs given as rows of per-round shares: the population ``curve``, whether it
    ``flipped``, its last 3 rounds and their sum, and the number and share of runs that flipped on their own."""
    curve = population_curve(shares, lengths, horizon_rounds)
    last = curve[-FLIP_LAST_ROUNDS:]
    flips = run_flips(shares, lengths, horizon_rounds)
    return {
        "flipped": ends_converged(curve),
        "last_rounds_share": [round(float(x), 4) for x in last],
        "last_rounds_sum": round(float(last.sum()), 4) if len(last) else None,
        "mean_share_by_round": [round(float(x), 4) for x in curve],
        "run_flip_fraction": float(flips.mean()) if len(lengths) else None,
        "runs": len(lengths),
        "runs_flipped": int(flips.sum()),
    }


DEFINITION = (
    "per run, from its converged_index, the share of the pushed name among the non-committed agents' answers per "
    "round of N interactions; a run whose last 3 rounds sum to >= 2.849 is padded with rounds of share 1 to the "
    "longest run's rounds + 30; the population curve is the mean over the runs that have each round, first 30 "
    "rounds; flipped if its last 3 rounds sum to >= 2.849 (a mean of 0.9497, not each >= 0.95)"
)

__all__ = [
    "DEFINITION",
    "FLIP_LAST_ROUNDS",
    "FLIP_SUM",
    "FLIP_THRESHOLD",
    "HORIZON_ROUNDS",
    "PAD_ROUNDS",
    "ends_converged",
    "flip_outcome_of_curves",
    "padded",
    "population_curve",
    "round_shares",
    "run_flips",
    "simulated_shares",
    "stack",
]
