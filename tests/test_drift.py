"""Drift fitted to logs (jaxconv.estimate.drift): the marginal likelihood of a block against Gauss-Hermite quadrature,
and recovery of the shocks' sd and block length from logs simulated with drift (and none found without)."""

import jax
import numpy as np
import pytest

from jaxconv.data import load_logs, tidy_dataset
from jaxconv.data.synthetic import dumps, game_file_name, simulate_run, softmax_agent
from jaxconv.estimate.drift import BlockChoices, block_log_likelihood, shared_drift
from jaxconv.estimate.likelihood import choice_data, state_log_probs
from jaxconv.policies import SoftmaxSurrogate

RULE = dict(win_stay=1.0, lose_shift=1.0, partner_weight=1.0, recency=0.5)
AGENT = softmax_agent({"Q": 0.0, "M": 0.3}, memory=3, **RULE)
POLICY = SoftmaxSurrogate([0.0, 0.3], **RULE)


def _data(folder, drift, runs=60, seed=1, stop=False):
    """Choices of ``runs`` logged runs of 8 agents (30 rounds, or until the stop rule with ``stop``)."""
    rng = np.random.default_rng(seed)
    stored = {
        r: simulate_run(
            rng, names=["Q", "M"], n_agents=8, memory=3, max_interactions=30 * 8, policy=AGENT,
            stop_when_converged=stop, drift=drift,
        )
        for r in range(runs)
    }  # fmt: skip
    (folder / game_file_name("synth", "game", ["Q", "M"], n_agents=8, memory=3)).write_bytes(dumps(stored))
    return choice_data(tidy_dataset(load_logs(folder).files), ("Q", "M"), 3)


def test_block_likelihood_matches_quadrature_and_reduces_to_the_policy(tmp_path):
    data = _data(tmp_path, None, runs=2)
    choices = BlockChoices(data, rounds=2)
    log_probs = state_log_probs(POLICY, data.states, 2)
    nodes = jax.random.normal(jax.random.key(0), (20_000, 2))
    ours = np.asarray(block_log_likelihood(log_probs, choices, 0.7, nodes))
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    p = np.exp(np.asarray(log_probs, np.float64))
    for b in range(3):  # Gauss-Hermite over the two shocks, from the block's choices one by one
        in_block = (data.run == choices.block_run[b]) & (data.round // 2 == choices.block_window[b])
        total = 0.0
        for z0, w0 in zip(x, w, strict=True):
            for z1, w1 in zip(x, w, strict=True):
                tilted = p * np.exp(0.7 * np.array([z0, z1]))
                tilted /= tilted.sum(axis=1, keepdims=True)
                total += w0 * w1 * np.prod(tilted[data.state[in_block], data.choice[in_block]])
        assert ours[b] == pytest.approx(np.log(total), abs=0.03)
    plain = block_log_likelihood(log_probs, choices, 0.0, nodes[:2])
    direct = np.asarray(log_probs)[data.state, data.choice].sum()
    assert float(np.sum(plain)) == pytest.approx(direct, rel=1e-5)


def test_sd_and_block_length_are_recovered_and_no_drift_is_found_without_it(tmp_path):
    (tmp_path / "drift").mkdir()
    (tmp_path / "none").mkdir()
    found = shared_drift(POLICY, _data(tmp_path / "drift", (0.8, 2)), rounds=(2, 8), folds=2)
    assert found["selected"] and found["rounds"] == found["best_rounds"] == 2
    assert found["sd"] == pytest.approx(0.8, abs=0.25)
    assert found["by_rounds"][2]["gain_per_choice"]["held_out"] > found["by_rounds"][8]["gain_per_choice"]["held_out"]
    none = shared_drift(POLICY, _data(tmp_path / "none", None), rounds=(2,), folds=2)
    assert none["by_rounds"][2]["sd"] < 0.25
    assert abs(none["by_rounds"][2]["gain_per_choice"]["held_out"]) < 1e-3


def test_bad_settings_name_the_value(tmp_path):
    data = _data(tmp_path, None, runs=3)
    with pytest.raises(ValueError, match="folds"):
        shared_drift(POLICY, data, folds=1)
    with pytest.raises(ValueError, match=r"\[0\]"):
        shared_drift(POLICY, data, rounds=(0,), folds=2)
    with pytest.raises(ValueError, match="at least 5 runs"):
        shared_drift(POLICY, data, folds=5)
    with pytest.raises(ValueError, match="probabilities"):
        simulate_run(np.random.default_rng(0), n_agents=4, names=["Q", "M"], drift=(0.5, 2))


def test_fit_path_keeps_the_drift_of_drifting_logs_and_simulates_it(tmp_path):
    from jaxconv.estimate.pipeline import fit_path

    _data(tmp_path, (0.8, 2))
    options = dict(policy="softmax", bootstrap=2, draws=2, replicas=40, folds=2, collective=True, collective_steps=2)
    (group,) = fit_path(tmp_path, drift=True, fit_drift=True, **options)["models"]["synth"]["groups"]
    assert group["drift"]["selected"] and group["drift"]["rounds"] == 2
    fitted = group["collective_fit"]["drift"]
    assert fitted["rounds"] == 2 and fitted["start_sd"] == group["drift"]["sd"]
    for fit, sd in (("choice_only", group["drift"]["sd"]), ("collective", fitted["sd"])):
        assert f"shared drift, sd {sd:.3g}" in group["prediction"][fit]["parameter_draws"]
        assert group["prediction"][fit]["baseline"][0]["predicted"]["replicas"] == 40


def test_collective_fit_fits_the_drift_sd_with_the_choices_marginal_likelihood(tmp_path):
    """From a start far below the sd of the logs' shocks (0.8), the collective fit's sd rises towards it: the
    choices count by their likelihood marginal over the shocks, and the simulated runs of a larger sd stop sooner,
    as the logged ones did (both push the sd up; a gradient of the wrong sign or none leaves it at the start)."""
    from jaxconv.estimate.collective import fit_collective, targets_of
    from jaxconv.estimate.fit import SOFTMAX, fit_runs
    from jaxconv.games.memory import Drift

    data = _data(tmp_path, (0.8, 2), stop=True)
    start = jax.tree.map(lambda x: x[0], fit_runs(SOFTMAX, data, np.ones(data.n_runs)).raw)
    targets = targets_of(load_logs(tmp_path).files, ("Q", "M"))
    result = fit_collective(
        SOFTMAX, data, start, targets, jax.random.key(0), steps=40, learning_rate=0.1, replicas=32,
        drift=Drift(0.3, 2), fit_drift=True,
    )  # fmt: skip
    assert result.trace[0]["drift_sd"] == pytest.approx(0.3, rel=1e-4)
    start, true = np.log(0.3), np.log(0.8)  # at least a third of the way there on the log scale, overshooting by
    # less than half (an optimiser's end point after 40 noisy steps, not a statistic with a standard error)
    assert start + (true - start) / 3 < np.log(float(result.drift.sd)) < true + np.log(1.5)
    assert result.drift.rounds == 2
    assert result.log_likelihood_drift > result.log_likelihood
    with pytest.raises(ValueError, match="fit_drift needs drift"):
        fit_collective(SOFTMAX, data, start, targets, jax.random.key(0), steps=1, fit_drift=True)
