"""Tipping thresholds: score-function gradients against finite differences and an exact binomial mixture, the
gradient method against the sweep, argument checks, determinism. One small game (N=20, 20 rounds) compiled once."""

import argparse
import json
import math

import jax
import numpy as np
import pytest
from scipy.optimize import brentq

from jaxconv.cli import tipping as cli_tipping
from jaxconv.estimate import tipping
from jaxconv.games.naming import NamingGame

N = 20
STEPS = 20 * N  # 20 rounds
Z = 4.5  # as tests/stats.py: a correct implementation essentially never fails, a wrong one does by far


def binary_game(n=N, mode="converted"):
    return NamingGame(n, vocabulary=2, committed_mode=mode, initial="prepared", prepared_name=0, committed_name=1)


@pytest.fixture(scope="module")
def flip_by_count():
    """P(flip | k) for k = 0..N, 512 replicas per k, and its standard errors."""
    replicas = 512
    counts = np.repeat(np.arange(N + 1), replicas)
    flips = tipping.simulate_counts(jax.random.key(11), binary_game(), STEPS, counts).reshape(N + 1, replicas)
    mean = flips.mean(axis=1)
    return mean, np.sqrt(mean * (1 - mean) / replicas)


# ----- the relaxation -----------------------------------------------------------------------------------------
def test_binomial_counts_are_binomial_and_coupled():
    uniforms = np.random.default_rng(0).random(20_000)
    low = tipping.binomial_counts(uniforms, 30, 0.2)
    high = tipping.binomial_counts(uniforms, 30, 0.25)
    assert abs(low.mean() - 6.0) < Z * math.sqrt(30 * 0.2 * 0.8 / len(uniforms))
    assert abs(low.var() - 4.8) < 0.3
    assert np.all(high >= low)  # same uniforms: monotone coupling (common random numbers)
    assert np.all(tipping.binomial_counts(uniforms, 30, 0.0) == 0)
    assert np.all(tipping.binomial_counts(uniforms, 30, 1.0) == 30)


def test_binomial_mixture_derivative():
    curve = 1 / (1 + np.exp(-(np.arange(N + 1) - 4.3)))
    p, h = np.array([0.1, 0.2, 0.35]), 1e-6
    value, derivative = tipping.binomial_mixture(curve, p)
    numeric = (tipping.binomial_mixture(curve, p + h)[0] - tipping.binomial_mixture(curve, p - h)[0]) / (2 * h)
    np.testing.assert_allclose(derivative, numeric, rtol=1e-6)
    assert np.all(np.diff(value) > 0)


def test_pooled_statistics_unbiased_on_synthetic_flips():
    """Importance-weighted pooling of batches at other p, control variate and baseline: averages over many synthetic
    data sets (f ~ Bernoulli(P(flip | K))) match the exact mixture and derivative."""
    curve = 1 / (1 + np.exp(-1.5 * (np.arange(N + 1) - 3.5)))
    rng = np.random.default_rng(1)
    batches = [(0.3, 32), (0.1, 64), (0.17, 160)]
    values, gradients, value_ses, gradient_ses = [], [], [], []
    for _ in range(400):
        counts = np.concatenate([tipping.binomial_counts(rng.random(r), N, q) for q, r in batches])
        flips = rng.random(len(counts)) < curve[counts]
        s = tipping.score_statistics(flips, counts, N, 0.15, batches)
        values.append(s["P_flip"])
        gradients.append(s["gradient"])
        value_ses.append(s["P_flip_se"])
        gradient_ses.append(s["gradient_se"])
    exact_value, exact_gradient = tipping.binomial_mixture(curve, 0.15)
    assert abs(np.mean(values) - exact_value) < Z * np.std(values) / math.sqrt(len(values))
    assert abs(np.mean(gradients) - exact_gradient) < Z * np.std(gradients) / math.sqrt(len(gradients))
    # the reported standard errors describe the spread of the estimates
    assert 0.8 < np.mean(value_ses) / np.std(values) < 1.25
    assert 0.8 < np.mean(gradient_ses) / np.std(gradients) < 1.25


# ----- gradients of the simulated flip probability ------------------------------------------------------------
def test_score_gradient_matches_finite_differences():
    """Central differences with common random numbers: the same key at p +- h gives the same uniforms (K coupled by
    the inverse CDF) and the same simulation keys."""
    game, key, p, h, replicas = binary_game(), jax.random.key(3), 0.15, 0.02, 2048
    at = tipping.run_at_probability(key, game, STEPS, p, replicas)
    up = tipping.run_at_probability(key, game, STEPS, p + h, replicas)
    down = tipping.run_at_probability(key, game, STEPS, p - h, replicas)
    assert np.all(up["counts"] >= at["counts"]) and np.all(at["counts"] >= down["counts"])
    differences = (up["flips"].astype(float) - down["flips"]) / (2 * h)
    fd, fd_se = differences.mean(), differences.std(ddof=1) / math.sqrt(replicas)
    assert at["gradient"] > 1.0  # the flip probability rises steeply here
    assert abs(at["gradient"] - fd) < Z * math.hypot(at["gradient_se"], fd_se), (at["gradient"], fd)


def test_score_gradient_matches_exact_mixture(flip_by_count):
    """dP/dp = sum_k dBinom(k; N, p)/dp P(flip | k), with P(flip | k) from many replicas per k."""
    mean, se = flip_by_count
    for p in (0.1, 0.16):
        run = tipping.run_at_probability(jax.random.key(5), binary_game(), STEPS, p, 2048)
        value, derivative = tipping.binomial_mixture(mean, p)
        k = np.arange(N + 1)
        dpmf = N * (tipping.stats.binom.pmf(k - 1, N - 1, p) - tipping.stats.binom.pmf(k, N - 1, p))
        exact_se = math.sqrt(np.sum((dpmf * se) ** 2))
        assert abs(run["gradient"] - derivative) < Z * math.hypot(run["gradient_se"], exact_se), (p, run, derivative)
        assert abs(run["P_flip"] - value) < Z * math.hypot(run["P_flip_se"], 0.01)


# ----- thresholds ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def thresholds():
    game = binary_game()
    sweep = tipping.threshold_by_sweep(jax.random.key(21), game, STEPS, n_replicas=128)
    gradient = tipping.threshold_by_gradient(jax.random.key(22), game, STEPS, target_se=sweep["p_c_se"])
    return sweep, gradient


def test_gradient_and_sweep_thresholds_agree(thresholds, flip_by_count):
    sweep, gradient = thresholds
    assert sweep["bracketed"] and not sweep["resolution_limited"]
    assert gradient["converged"] and gradient["p_c_se"] <= sweep["p_c_se"]
    combined = math.hypot(sweep["p_c_se"], gradient["p_c_se"])
    assert abs(sweep["p_c"] - gradient["p_c"]) < 3 * combined, (sweep["p_c"], gradient["p_c"], combined)
    # both estimate the crossing of the binomial mixture of P(flip | k)
    mean, _ = flip_by_count
    exact = brentq(lambda p: tipping.binomial_mixture(mean, p)[0] - 0.5, 0.01, 0.5)
    for result in thresholds:
        assert abs(result["p_c"] - exact) < Z * math.hypot(result["p_c_se"], 0.003), (result["method"], exact)
        low, high = result["p_c_interval"]
        assert low < result["p_c"] < high
    assert gradient["simulated_interactions"] < sweep["simulated_interactions"]
    assert gradient["simulated_interactions"] == sum(s["batch_replicas"] for s in gradient["history"]) * STEPS


def test_same_seed_same_result(thresholds):
    _, gradient = thresholds
    again = tipping.threshold_by_gradient(jax.random.key(22), binary_game(), STEPS, target_se=gradient["target_se"])
    assert again["p_c"] == gradient["p_c"] and again["p_c_se"] == gradient["p_c_se"]
    assert again["simulated_interactions"] == gradient["simulated_interactions"]
    first = tipping.run_at_probability(jax.random.key(4), binary_game(), STEPS, 0.15, 64)
    second = tipping.run_at_probability(jax.random.key(4), binary_game(), STEPS, 0.15, 64)
    np.testing.assert_array_equal(first["flips"], second["flips"])
    np.testing.assert_array_equal(first["counts"], second["counts"])


def test_sweep_linear_fit_and_resolution_limit():
    game = binary_game()
    linear = tipping.threshold_by_sweep(jax.random.key(21), game, STEPS, n_replicas=128, fit="linear")
    assert linear["fit"] == "linear" and math.isfinite(linear["p_c_se"]) and linear["p_c"] == linear["p_c_linear"]
    # a grid far coarser than the transition cannot resolve it: standard error = spacing / sqrt(12)
    coarse = tipping.threshold_by_sweep(jax.random.key(1), game, STEPS, grid=[0.0, 0.5], n_replicas=64)
    assert coarse["resolution_limited"] and coarse["p_c_se"] == pytest.approx(0.5 / math.sqrt(12))
    # a grid that does not straddle 1/2
    below = tipping.threshold_by_sweep(jax.random.key(1), game, STEPS, grid=[0.0, 0.01], n_replicas=64)
    assert not below["bracketed"] and math.isnan(below["p_c"])


# ----- argument checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda g: tipping.run_at_probability(jax.random.key(0), g, STEPS, 0.0, 8), "p must be"),
        (lambda g: tipping.run_at_probability(jax.random.key(0), g, STEPS, 1.2, 8), "p must be"),
        (lambda g: tipping.run_at_probability(jax.random.key(0), g, STEPS, 0.2, 1), "n_replicas"),
        (lambda g: tipping.run_at_probability(jax.random.key(0), g, 0, 0.2, 8), "n_steps"),
        (lambda g: tipping.threshold_by_gradient(jax.random.key(0), g, STEPS, target_se=0), "target_se"),
        (lambda g: tipping.threshold_by_gradient(jax.random.key(0), g, STEPS, p0=1.0), "p must be"),
        (lambda g: tipping.threshold_by_gradient(jax.random.key(0), g, STEPS, max_step=2.0), "max_step"),
        (lambda g: tipping.threshold_by_gradient(jax.random.key(0), g, STEPS, initial_replicas=1), "initial_replicas"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), g, STEPS, grid=[0.3, 0.1]), "grid"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), g, STEPS, grid=[0.1, 1.5]), "grid"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), g, STEPS, fit="cubic"), "unknown fit"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), g, STEPS, confidence=1.5), "confidence"),
        (lambda g: tipping.simulate_counts(jax.random.key(0), g, STEPS, [1, 30]), "committed counts"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), binary_game(mode="added"), STEPS), "converted"),
        (lambda g: tipping.threshold_by_sweep(jax.random.key(0), object(), STEPS), "NamingGame or a MemoryGame"),
    ],
)
def test_argument_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(binary_game())


# ----- command line -------------------------------------------------------------------------------------------
def _cli(*argv):
    parser = argparse.ArgumentParser()
    cli_tipping.add_parser(parser.add_subparsers(dest="command"))
    return cli_tipping.run(parser.parse_args(["tipping", *argv]))


def test_cli_gradient_and_sweep():
    common = ("binary-naming-game", "--agents", str(N), "--rounds", "20", "--seed", "3")
    gradient = _cli(*common, "--method", "gradient", "--target-se", "0.01", "--json")
    sweep = _cli(*common, "--method", "sweep", "--replicas", "64", "--json")
    for result in (gradient, sweep):
        for key in ("p_c", "p_c_se", "p_c_interval", "simulated_interactions", "method", "agents", "rounds", "seed"):
            assert key in result, key
        assert result["agents"] == N and result["rounds"] == 20 and result["seed"] == 3
        assert 0.05 < result["p_c"] < 0.3
    assert gradient["method"] == "gradient" and sweep["method"] == "sweep"
    assert sweep["simulated_interactions"] == 16 * 64 * STEPS
    assert _cli(*common, "--method", "gradient", "--target-se", "0.01")["p_c"] == gradient["p_c"]
    assert "p_c =" in cli_tipping.text(gradient)


def test_cli_best_response():
    result = _cli("best-response", "--agents", "12", "--memory", "4", "--rounds", "10", "--method", "gradient",
                  "--target-se", "0.02", "--json")  # fmt: skip
    assert result["memory"] == 4 and result["model"] == "best-response"
    assert 0.0 < result["p_c"] < 0.6 and result["converged"]


def test_cli_errors():
    with pytest.raises(ValueError, match="unknown method"):
        _cli("binary-naming-game", "--method", "newton")
    with pytest.raises(ValueError, match="agents"):
        _cli("binary-naming-game", "--agents", "1")
    with pytest.raises(ValueError, match="--grid"):
        _cli("binary-naming-game", "--method", "sweep", "--grid", "0.4", "0.1")
    with pytest.raises(ValueError, match="sensitivity-batches"):
        _cli("binary-naming-game", "--sensitivity-batches", "1")


def test_cli_meanfield():
    result = _cli("binary-naming-game", "--method", "meanfield", "--json")
    assert result["p_c"] == pytest.approx(0.0979, abs=1e-4)
    assert result["sensitivities"]["beta"] == pytest.approx(0.062, abs=2e-3)
    json.dumps(result)
    # Centola et al.'s best response, M = 4: mean field 1/9 (q = p + (1 - p) f(q), jaxconv.meanfield)
    assert _cli("best-response", "--memory", "4", "--method", "meanfield")["p_c"] == pytest.approx(1 / 9, abs=1e-3)


FIT = {
    "models": {
        "model-a": {
            "groups": [
                {
                    "policy": "softmax",
                    "names": ["X", "Y"],
                    "memory": 3,
                    "parameters": {
                        "bias": {"X": {"estimate": 0.1}, "Y": {"estimate": -0.1}},
                        "win_stay": {"estimate": 2.0},
                        "lose_shift": {"estimate": 1.0},
                        "own_weight": {"estimate": 0.5},
                        "partner_weight": {"estimate": 2.0},
                        "recency": {"estimate": 0.6},
                    },
                    "fixed": {"temperature": 1.0, "copy_partner": 0.0},
                }
            ]
        }
    }
}


def test_cli_fitted(tmp_path):
    """Thresholds of a fitted policy in both directions, in mean field and at finite N, with sensitivities."""
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(FIT))
    meanfield = _cli("fitted", str(path), "--method", "meanfield", "--json")["thresholds"]
    assert [(row["incumbent"], row["pushed"]) for row in meanfield] == [("X", "Y"), ("Y", "X")]
    # the bias favours X: pushing Y against X needs more committed agents than the reverse
    assert 0 < meanfield[1]["p_c"] < meanfield[0]["p_c"] < 0.5
    assert meanfield[0]["sensitivities"]["policy.bias"][1] < 0 < meanfield[0]["sensitivities"]["policy.bias"][0]
    finite = _cli("fitted", str(path), "--agents", "12", "--rounds", "10", "--target-se", "0.02",
                  "--sensitivity-batches", "4", "--llm", "model-a", "--json")["thresholds"]  # fmt: skip
    for row in finite:
        assert 0 < row["p_c"] < 0.6 and set(row["sensitivities"]) >= {"policy.bias", "policy.partner_weight"}
    assert "Y against X" in cli_tipping.text({"thresholds": meanfield})
    with pytest.raises(ValueError, match="not in"):
        _cli("fitted", str(path), "--llm", "other")
    path.write_text("{}")
    with pytest.raises(ValueError, match="not the JSON of"):
        _cli("fitted", str(path))


def test_sensitivity_matches_the_exact_threshold():
    """dp_c/dbeta of the binary naming game at N=5 (each agent committed with probability p) against the exact
    derivative of the exact threshold: P(flip | p, beta) from the enumerated chain, the implicit function theorem."""
    from jaxconv.exact import binomial_committed_expectation

    n, steps, beta = 5, 15, 0.7

    def exact_flip(p, beta):
        return binomial_committed_expectation(p, n, steps, "committed_flip", beta=beta, lump=True)

    p_c = brentq(lambda p: float(exact_flip(p, beta)) - 0.5, 0.01, 0.99, xtol=1e-10)
    by_p, by_beta = jax.grad(exact_flip, argnums=(0, 1))(p_c, beta)
    exact = -by_beta / by_p
    game = NamingGame(n, vocabulary=2, beta=beta, committed_mode="converted", initial="prepared")
    result = tipping.threshold_sensitivities(jax.random.key(5), game, steps, p_c, n_batches=16, replicas_per_batch=512)
    estimate, se = result["sensitivities"]["beta"], result["sensitivities_se"]["beta"]
    assert abs(estimate - exact) < Z * se, (estimate, se, exact)
    assert abs(result["dP_dp"] - by_p) < Z * result["dP_dp_se"]
