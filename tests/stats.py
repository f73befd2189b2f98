"""Statistical comparisons with tolerances from the sampling error.

Every check uses a fixed seed, so it is deterministic; the thresholds (|z| < 4.5, KS at alpha = 1e-4) make a
false failure of a correct implementation very unlikely while a wrong rule fails them by a wide margin."""

import math

import numpy as np

Z_LIMIT = 4.5
KS_ALPHA = 1e-4


def assert_means_agree(sample, reference, label=""):
    """Two-sample z-test of equal means."""
    a, b = np.asarray(sample, float), np.asarray(reference, float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    diff = a.mean() - b.mean()
    if se == 0:
        assert diff == 0, f"{label}: {a.mean()} vs {b.mean()} (no variance)"
        return
    assert abs(diff) < Z_LIMIT * se, f"{label}: mean {a.mean():.4g} vs reference {b.mean():.4g} (z = {diff / se:.2f})"


def assert_proportion(successes, trials, p, label=""):
    """Binomial z-test of an observed proportion against a known probability."""
    se = math.sqrt(p * (1 - p) / trials)
    observed = successes / trials
    assert abs(observed - p) < Z_LIMIT * se + 1e-12, f"{label}: {observed:.4g} vs {p:.4g} (se {se:.3g})"


def assert_same_distribution(sample, reference, label=""):
    """Two-sample Kolmogorov-Smirnov test (asymptotic critical value; conservative for discrete data)."""
    a, b = np.sort(np.asarray(sample, float)), np.sort(np.asarray(reference, float))
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    statistic = np.abs(cdf_a - cdf_b).max()
    critical = math.sqrt(-0.5 * math.log(KS_ALPHA / 2)) * math.sqrt((len(a) + len(b)) / (len(a) * len(b)))
    assert statistic < critical, f"{label}: KS statistic {statistic:.4f} >= {critical:.4f}"
