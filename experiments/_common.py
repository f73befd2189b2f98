"""Shared plumbing of the experiment scripts: arguments, output files, fits."""

import argparse
import json
import math
from pathlib import Path

import numpy as np

from jaxconv.devices import use_cpu_cores


def arguments(description: str, extra=None) -> argparse.Namespace:
    """``--quick`` (small sizes, for CI), ``--seed``, ``--out`` (folder for the PNG and JSON); ``extra(parser)``
    adds a script's own options."""
    use_cpu_cores()
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default results/)")
    return parser.parse_args()


def save(out: Path, name: str, numbers: dict, figure) -> None:
    """Write ``name.json`` and ``name.png`` into ``out`` and say where they are."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(numbers, indent=2, default=_plain))
    figure.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / name}.json and {out / name}.png")


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
