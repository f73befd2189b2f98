"""Shared plumbing of the experiment scripts: arguments, output files, fits, rows of reproduced quantities.

Every script's JSON holds a list ``"reproduced"`` (written by :func:`save`), one dict per published quantity it
reproduces, which ``jaxconv reproduce`` assembles into its report:

- ``quantity`` (str): what is compared, with its setting (e.g. "P(all B), k=3 committed added to N=24");
- ``published`` (number or str): the published value (a str for a qualitative statement, e.g. "~ N^1.5");
- ``source`` (str): where it is published (paper, and figure/table/section when known);
- ``ours`` (number or str): jaxconv's value;
- ``uncertainty``: ours' standard error (a number), a 95% interval ``[low, high]``, or None;
- ``agree`` (bool or None): whether ours is consistent with the published value (None: cannot be decided);
- ``note`` (str, optional): the rule used to decide, or why a small run cannot agree.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

from jaxconv.devices import use_cpu_cores

QUICK = False  # set by arguments(): rows of a quick run that disagree say it is not conclusive


def arguments(description: str, extra=None) -> argparse.Namespace:
    """``--quick`` (small sizes, for CI), ``--seed``, ``--out`` (folder for the PNG and JSON); ``extra(parser)``
    adds a script's own options."""
    global QUICK
    use_cpu_cores()
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default results/)")
    args = parser.parse_args()
    QUICK = args.quick
    return args


def save(out: Path, name: str, numbers: dict, figure, reproduced: list[dict] | None = None) -> None:
    """Write ``name.json`` (``numbers``, plus ``reproduced``: rows of :func:`row`, else those already in
    ``numbers["reproduced"]``) and ``name.png`` into ``out`` and say where they are."""
    out.mkdir(parents=True, exist_ok=True)
    rows = list(numbers.get("reproduced", []) if reproduced is None else reproduced)
    for entry in rows:
        missing = [key for key in ROW_KEYS if key not in entry]
        if missing:
            raise ValueError(f"reproduced row {entry.get('quantity')!r} lacks {missing}")
    numbers = {**numbers, "reproduced": rows}
    (out / f"{name}.json").write_text(json.dumps(numbers, indent=2, default=_plain))
    figure.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / name}.json and {out / name}.png")


ROW_KEYS = ("quantity", "published", "source", "ours", "uncertainty", "agree")
Z_AGREE = 3.0  # ours agrees with a published value within Z_AGREE combined standard errors


def row(
    quantity: str,
    published,
    source: str,
    ours,
    se: float | None = None,
    *,
    published_se: float = 0.0,
    interval: tuple[float, float] | None = None,
    agree: bool | None = None,
    note: str | None = None,
) -> dict:
    """One reproduced quantity. With ``se`` (ours' standard error) and a numeric ``published`` (its own standard
    error ``published_se`` for a simulated reference), ``agree`` is |ours - published| <= 3 combined SE; with a
    95% ``interval`` instead, whether it holds ``published``. An explicit ``agree`` overrides both."""
    uncertainty = None
    if interval is not None:
        low, high = (float(v) for v in interval)
        uncertainty = [low, high]
        if agree is None and isinstance(published, (int, float)):
            agree = low <= published <= high
    elif se is not None and math.isfinite(se):
        uncertainty = float(se)
        if agree is None and isinstance(published, (int, float)) and isinstance(ours, (int, float)):
            scale = math.hypot(se, published_se)
            agree = bool(abs(ours - published) <= Z_AGREE * scale) if scale > 0 else bool(ours == published)
    entry = {
        "quantity": quantity,
        "published": published,
        "source": source,
        "ours": _plain(ours) if isinstance(ours, np.generic) else ours,
        "uncertainty": uncertainty,
        "agree": None if agree is None else bool(agree),
    }
    if agree is False and QUICK:
        note = "quick run: too small to be conclusive" + (f"; {note}" if note else "")
    if note:
        entry["note"] = note
    return entry


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion ``p`` from ``n`` runs (at least that of one success in ``n``, so that an
    observed 0 or 1 is not given zero uncertainty)."""
    return math.sqrt(max(p * (1 - p), (n - 1) / n**2) / n)


def share_interval(successes, n) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson interval ``(low, high)`` of proportions ``successes / n`` (arrays; always inside [0, 1])."""
    z = 1.959964
    successes, n = np.asarray(successes, float), np.asarray(n, float)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def plot_shares(axis, x, shares, n, **style):
    """Proportions ``shares`` (each from ``n`` runs) against ``x`` with 95% Wilson intervals as error bars."""
    shares = np.asarray(shares, float)
    low, high = share_interval(shares * n, n)
    errors = np.stack([shares - low, high - shares])
    return axis.errorbar(x, shares, errors, capsize=2, **style)


def plain_log_ticks(axis, which: str = "x", ticks=None) -> None:
    """Log axis labelled with plain numbers: major labels at ``ticks`` (default: 1, 2, 5 times powers of 10), no
    minor labels (they collide on short ranges)."""
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

    target = axis.xaxis if which == "x" else axis.yaxis
    target.set_major_locator(LogLocator(subs=(1, 2, 5)) if ticks is None else FixedLocator(list(ticks)))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    target.set_major_formatter(formatter)
    target.set_minor_formatter(NullFormatter())


def crossing_interval(x, successes, n, resamples: int = 400, seed: int = 0) -> tuple[float | None, list | None]:
    """Where the proportion ``successes / n`` against ``x`` (increasing) first reaches 1/2, by linear
    interpolation, and a 95% bootstrap interval (binomial resampling of every point; None when a resample never
    reaches 1/2)."""
    successes = np.asarray(successes, float)
    estimate = crossing(x, successes / n)
    rng = np.random.default_rng(seed)
    samples = [crossing(x, rng.binomial(n, successes / n) / n) for _ in range(resamples)]
    if estimate is None or any(s is None for s in samples):
        return estimate, None
    return estimate, [float(np.quantile(samples, 0.025)), float(np.quantile(samples, 0.975))]


def crossing(x, probability) -> float | None:
    """Linear interpolation of the ``x`` where ``probability`` first reaches 1/2 (None if it never does)."""
    for (x0, y0), (x1, y1) in zip(zip(x, probability), zip(x[1:], probability[1:])):
        if y0 < 0.5 <= y1:
            return float(x0 + (0.5 - y0) * (x1 - x0) / (y1 - y0))
    return None


def loglog_slope(x, y_per_replica) -> tuple[float, float]:
    """Exponent of ``y ~ x^a`` fitted to the means, and its standard error from a bootstrap over replicas."""
    x = np.log(np.asarray(x, float))
    rng = np.random.default_rng(0)

    def slope(samples):
        return np.polyfit(x, np.log([s.mean() for s in samples]), 1)[0]

    boot = [slope([s[rng.integers(0, len(s), len(s))] for s in y_per_replica]) for _ in range(500)]
    return float(slope(y_per_replica)), float(np.std(boot))


def mean_and_error(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
