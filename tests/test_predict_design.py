"""The observed design replayed (jaxconv.estimate.predict): the stop rule's window and the run budgets read from the
logs, the replayed critical mass against its exact law given the per-run flip probabilities, and the collective
fit's simulated stop times and success per round against the simulator's."""

import jax
import numpy as np
import pytest

from jaxconv.data import load_logs
from jaxconv.data.logs import Run
from jaxconv.data.summary import critical_masses, final_streak, stop_window, success_by_round
from jaxconv.data.synthetic import dumps, game_file_name, simulate_run, softmax_agent
from jaxconv.estimate.collective import simulated_outcomes, targets_of
from jaxconv.estimate.predict import (
    flips_check,
    observed_design,
    predict_baseline,
    predict_experiments,
    predict_tipping,
    stop_check,
    targets_summary,
    winner_check,
)
from jaxconv.policies import SoftmaxSurrogate
from tests.stats import Z_LIMIT, assert_means_agree

NAMES = ["Q", "M"]
N_AGENTS, MEMORY, PAYOFFS = 8, 3, (-50, 100)
POLICY = SoftmaxSurrogate([0.0, 0.0], win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8)


def _run(success) -> Run:
    success = np.asarray(success, bool)
    t = len(success)
    answers = np.where(success[:, None], "Q", np.array([["Q", "M"]] * t))
    return Run(0, np.tile([1, 2], (t, 1)), answers, success, None, None)


def test_final_streak_and_the_stop_window_the_runs_were_played_under():
    n = 4
    assert final_streak(_run([1, 0, 1, 1])) == 2 and final_streak(_run([1, 1, 1])) == 3
    assert final_streak(_run([1, 1, 0])) == 0
    stopped = [_run([0] * k + [1] * 6) for k in (1, 3, 5)]  # three runs that stopped after 6 successes
    assert stop_window(stopped, n) == 6
    cut = _run([1, 0, 1, 1, 1, 1, 1])  # a fourth run cut on a streak of 5
    assert stop_window([*stopped, cut], n) == 6  # the commonest streak
    assert stop_window([_run([1] * 20), _run([1] * 9)], n) == 3 * n  # no failure: no evidence of a stop rule
    assert stop_window([_run([0, 1, 1])], n) == 3 * n  # streaks shorter than N are no evidence either
    np.testing.assert_allclose(success_by_round(_run([1, 0, 1, 1, 1, 1]), 4, 3), [0.75, 1.0, 1.0])


def _committed_file(folder, rng, k, runs, max_interactions, window=None):
    agent = softmax_agent({}, win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8, memory=MEMORY)
    sizes = {"n_agents": N_AGENTS, "memory": MEMORY}
    stored = {
        r: simulate_run(rng, names=NAMES, policy=agent, committed=k, initial=0, max_interactions=max_interactions,
                        stop_window=window, **sizes)
        for r in range(runs)
    }  # fmt: skip
    name = game_file_name("synth", "committed", NAMES, committed=k, max_interactions=max_interactions, **sizes)
    (folder / name).write_bytes(dumps(stored))


def test_observed_design_reads_each_runs_budget_and_stop_rule(tmp_path):
    rng = np.random.default_rng(0)
    _committed_file(tmp_path, rng, 1, 3, 5 * N_AGENTS)  # too few committed to converge: cut at 40 interactions
    _committed_file(tmp_path, rng, 4, 4, 400 * N_AGENTS, window=2 * N_AGENTS)  # every run stops, after 16 successes
    logs = load_logs(tmp_path).files
    (series,) = critical_masses(logs)
    design = observed_design(logs, series)
    assert design[1] == [(5 * N_AGENTS, 3 * N_AGENTS)] * 3
    assert design[4] == [(30 * N_AGENTS, 2 * N_AGENTS)] * 4  # the budget is unknown: the 30 rounds that count
    assert observed_design(logs, series, horizon_rounds=3)[1] == [(3 * N_AGENTS, 3 * N_AGENTS)] * 3


def test_replayed_critical_mass_follows_its_exact_law_given_per_run_flips():
    """Two runs per k with a budget of 8 rounds: past round 8 the population curve holds only the padding of the
    converged runs, so a k flips iff one of its two runs converged within the budget, and the replayed critical
    mass is k_j with probability prod_{i<j} (1 - p_i)^2 (1 - (1 - p_j)^2), p from independent replicas."""
    ks, budget, window = [2, 3, 4], 8 * N_AGENTS, 3 * N_AGENTS
    design = {k: [(budget, window)] * 2 for k in ks}
    experiments, replicas = 3000, 6000
    replays = predict_experiments(POLICY, N_AGENTS, 2, MEMORY, PAYOFFS, 0, 1, design, experiments, jax.random.key(0))
    replayed = replays.critical_k.ravel()
    runs = predict_tipping(POLICY, N_AGENTS, 2, MEMORY, PAYOFFS, 0, 1, ks, replicas, jax.random.key(1), 8)
    p = runs["run_flip_fraction"]
    assert 0.02 < p[0] and p[-1] < 0.95, p
    # the replays' per-run flip probability under the design is the same quantity, from other replicas
    se = np.sqrt(p * (1 - p) / (2 * experiments) + p * (1 - p) / replicas)
    assert np.all(np.abs(replays.p_flip[0] - p) < Z_LIMIT * se), (replays.p_flip, p)
    none_before, law, outcomes = 1.0, [], []
    for j, k in enumerate(ks):
        law.append(none_before * (1 - (1 - p[j]) ** 2))
        none_before *= (1 - p[j]) ** 2
        outcomes.append(np.mean(replayed == k))
    law.append(none_before)
    outcomes.append(np.mean(np.isinf(replayed)))
    for q, observed in zip(law, outcomes, strict=True):
        # the law's own error from the estimated p (delta method, generous) plus the replays' binomial error
        se = np.sqrt(q * (1 - q) / experiments + 4 * q * (1 - q) / replicas)
        assert abs(observed - q) < Z_LIMIT * se, (observed, q, p)


def test_flips_check_p_value_is_the_exact_binomial_tail():
    """One k, one parameter draw: the p-value is P(G(X) >= G(f)) for X ~ Binomial(n, p), summed exactly here."""
    from math import comb, log

    n, p, samples = 10, 0.3, 40_000

    def deviance(x):
        terms = [(x, n * p), (n - x, n * (1 - p))]
        return 2 * sum(a * log(a / b) for a, b in terms if a > 0)

    for observed in (3, 6, 7, 10):
        at_least = [x for x in range(n + 1) if deviance(x) >= deviance(observed) - 1e-9]
        exact = sum(comb(n, x) * p**x * (1 - p) ** (n - x) for x in at_least)
        check = flips_check([4], [observed], [n], [[p]], 10**6, np.random.default_rng(observed), samples)
        se = np.sqrt(exact * (1 - exact) / samples)  # plus the estimate's +1 / (samples + 1)
        assert abs(check["p_value"] - exact) < Z_LIMIT * se + 1 / (samples + 1), (observed, exact)
        assert check["largest_gap_k"] == 4 and abs(check["deviance"] - deviance(observed)) < 1e-3
    assert flips_check([4], [10], [n], [[p]], 10**6, np.random.default_rng(0))["consistent"] is False  # p = 6e-6


def test_flips_check_is_calibrated_under_the_prediction_and_integrates_over_draws():
    """Counts drawn from the predictive (a draw, then binomials) give p-values below 0.05 about 5% of the time
    (the test's discreteness makes it conservative); a k whose flips are far from every draw is the largest gap."""
    rng = np.random.default_rng(0)
    ks, runs = [1, 2, 4, 8], np.array([10, 10, 4, 2])
    p_flip = np.array([[0.05, 0.2, 0.5, 0.9], [0.1, 0.4, 0.7, 0.95]])  # two parameter draws
    repeats, small = 400, 0
    for _ in range(repeats):
        flips = rng.binomial(runs, p_flip[rng.integers(2)])
        small += flips_check(ks, flips, runs, p_flip, 1000, rng, 2000)["p_value"] < 0.05
    assert small / repeats < 0.05 + Z_LIMIT * np.sqrt(0.05 * 0.95 / repeats), small
    check = flips_check(ks, [9, 2, 2, 2], runs, p_flip, 1000, rng)
    assert not check["consistent"] and check["largest_gap_k"] == 1


def test_stop_check_p_value_and_target_chance_are_the_exact_laws_of_the_mean_of_n_runs():
    """One draw whose runs stop after 2, 4 or 10 rounds (equally likely; NaN, a run that did not stop, left out):
    the mean of n = 2 runs takes 9 equally likely pairs, so the p-value of an observed mean and the chance that the
    predictive mean (16/3) is within 15% of an experiment's mean are exact sums over them."""
    from itertools import product

    pool, samples = np.array([2.0, 4.0, 10.0, np.nan]), 40_000
    predicted = 16 / 3
    pair_means = np.array([np.mean(pair) for pair in product(pool[:3], repeat=2)])
    chance = np.mean(np.abs(pair_means - predicted) <= 0.15 * pair_means)  # 4/9: the pairs of mean 4 or 6
    for observed in ([4.0, 4.0], [3.0, 3.5], [10.0, 10.0]):
        exact = np.mean(np.abs(pair_means - predicted) >= abs(np.mean(observed) - predicted) - 1e-9)
        check = stop_check([pool], np.array(observed), np.random.default_rng(1), samples)
        for value, truth in ((check["p_value"], exact), (check["target_chance"], chance)):
            se = np.sqrt(truth * (1 - truth) / samples)
            assert abs(value - truth) < Z_LIMIT * se + 1 / (samples + 1), (observed, value, truth)
    assert stop_check([np.array([np.nan])], np.array([3.0]), np.random.default_rng(0))["p_value"] is None


def test_stop_check_is_calibrated_under_the_predictive_with_two_draws():
    """Observed runs drawn from the predictive itself (a parameter draw, then n runs) give p < 0.05 in about 5%
    of experiments; a mean far out in the tail gets the smallest p-value."""
    rng = np.random.default_rng(0)
    draws = [rng.gamma(4.0, 3.0, 500), rng.gamma(6.0, 3.0, 500)]  # two parameter draws of different means
    repeats, small = 400, 0
    for _ in range(repeats):
        observed = rng.choice(draws[rng.integers(2)], size=5)
        small += stop_check(draws, observed, rng, 2000)["p_value"] < 0.05
    assert small / repeats < 0.05 + Z_LIMIT * np.sqrt(0.05 * 0.95 / repeats), small
    assert stop_check(draws, np.full(5, 200.0), rng, 2000)["p_value"] == 1 / 2001


def test_winner_check_is_the_exact_coverage_of_the_binomial_interval():
    """Two names: the chance that a predicted share p lies inside the observed 95% interval of n runs is the
    binomial sum of the counts whose Clopper-Pearson interval covers p; with three names, every name's at once."""
    from math import comb

    from jaxconv.estimate.predict import binomial_interval

    samples = 40_000
    for runs, p in ((5, 0.3), (40, 0.97), (12, 0.5)):
        exact = sum(
            comb(runs, c) * p**c * (1 - p) ** (runs - c)
            for c in range(runs + 1)
            if binomial_interval(c, runs)[0] <= p <= binomial_interval(c, runs)[1]
            and binomial_interval(runs - c, runs)[0] <= 1 - p <= binomial_interval(runs - c, runs)[1]
        )
        chance = winner_check(np.array([p, 1 - p]), runs, np.random.default_rng(runs), samples)["target_chance"]
        assert abs(chance - exact) < Z_LIMIT * np.sqrt(exact * (1 - exact) / samples) + 1e-4, (runs, p, chance, exact)
    three = winner_check(np.array([0.2, 0.3, 0.5]), 10, np.random.default_rng(0), samples)["target_chance"]
    two = winner_check(np.array([0.2, 0.8]), 10, np.random.default_rng(0), samples)["target_chance"]
    assert 0.5 < three < 1 and 0.5 < two < 1
    assert winner_check(np.zeros(2), 10, np.random.default_rng(0))["target_chance"] is None  # no run had a winner


def test_targets_summary_counts_the_targets_met_and_expected():
    targets = [
        {"stop_met": True, "stop_target_chance": 0.5, "winner_met": False, "winner_target_chance": 0.9},
        {"critical_met": True, "target_chance": 0.25},
    ]
    assert targets_summary(targets) == {"met": 2, "of": 3, "expected_if_true": 1.65}
    targets[1]["target_chance"] = None  # a result written before the chances: no expectation
    assert targets_summary(targets)["expected_if_true"] is None


@pytest.mark.parametrize("window", [2 * N_AGENTS, 3 * N_AGENTS])
def test_collective_fits_stop_times_and_success_per_round_match_the_simulator(tmp_path, window):
    """The collective fit's differentiable runs (``simulated_outcomes``) against ``predict_baseline`` (the
    engine's stop rule with the same window) and against the success per round of runs stored by the numpy agent
    of jaxconv.data.synthetic under the same policy (read back as targets)."""
    rng = np.random.default_rng(1)
    agent = softmax_agent({}, win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8, memory=MEMORY)
    stored = {
        r: simulate_run(rng, names=NAMES, policy=agent, n_agents=N_AGENTS, memory=MEMORY, stop_window=window,
                        max_interactions=200 * N_AGENTS)
        for r in range(300)
    }  # fmt: skip
    (tmp_path / game_file_name("synth", "game", NAMES, n_agents=N_AGENTS, memory=MEMORY)).write_bytes(dumps(stored))
    (target,) = targets_of(load_logs(tmp_path).files, tuple(NAMES))
    assert target.stop_window == window and target.n_runs == 300
    replicas = 2000
    simulated = jax.jit(lambda key: simulated_outcomes(key, POLICY, target, 2, MEMORY, PAYOFFS, replicas))(
        jax.random.key(2)
    )
    stops = np.asarray(simulated["stop"])
    horizon = target.horizon_rounds  # a replica not stopped by then counts at the horizon, in both
    engine = predict_baseline(
        POLICY, N_AGENTS, 2, MEMORY, PAYOFFS, replicas, jax.random.key(3), max_rounds=horizon, stop_window=window
    )["stop_rounds"]
    assert np.mean(stops < horizon) > 0.9
    assert_means_agree(stops, np.nan_to_num(engine, nan=horizon), f"stop time, window {window}")
    success = np.asarray(simulated["success"])
    for r, (mean, se) in enumerate(zip(target.success, target.success_se, strict=True)):
        combined = np.hypot(se, success[:, r].std() / np.sqrt(replicas))
        assert abs(success[:, r].mean() - mean) < Z_LIMIT * combined, (r, success[:, r].mean(), mean)
    below = [np.mean(stops <= q) for q in target.stop_quartiles]
    for value, observed, se in zip(below, target.stop_below, target.stop_below_se, strict=True):
        assert abs(value - observed) < Z_LIMIT * np.hypot(se, np.sqrt(value * (1 - value) / replicas))


def _baseline_logs(folder, runs=60, seed=5):
    from jaxconv.data.synthetic import softmax_agent as agent_of

    agent = agent_of({}, win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8, memory=MEMORY)
    rng = np.random.default_rng(seed)
    stored = {
        r: simulate_run(rng, names=NAMES, policy=agent, n_agents=N_AGENTS, memory=MEMORY, max_interactions=400)
        for r in range(runs)
    }
    (folder / game_file_name("synth", "game", NAMES, n_agents=N_AGENTS, memory=MEMORY)).write_bytes(dumps(stored))
    return load_logs(folder).files


def test_held_out_outcomes_accept_the_true_policy_and_reject_a_biased_one(tmp_path):
    from jaxconv.data import tidy_dataset
    from jaxconv.estimate.likelihood import choice_data
    from jaxconv.estimate.predict import held_out_outcomes

    logs = _baseline_logs(tmp_path)
    data = choice_data(tidy_dataset(logs), NAMES, MEMORY)
    fold = np.arange(data.n_runs) % 3
    true = held_out_outcomes([POLICY] * 3, fold, data, logs, 1000, jax.random.key(0))
    (row,) = true["by_n"]
    assert row["held_out_runs"] == data.n_runs and true["consistent"], true
    biased = SoftmaxSurrogate([0.0, 2.0], win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8)
    wrong = held_out_outcomes([POLICY, biased, biased], fold, data, logs, 1000, jax.random.key(0))
    assert not wrong["consistent"] and wrong["by_n"][0]["winner_share"]["M"]["z"] > 2.5, wrong


def test_auto_selection_skips_families_whose_held_out_outcomes_are_inconsistent(tmp_path):
    from jaxconv.data import tidy_dataset
    from jaxconv.estimate.fit import FAMILIES, fit_choices
    from jaxconv.estimate.likelihood import choice_data

    data = choice_data(tidy_dataset(_baseline_logs(tmp_path, runs=12)), NAMES, MEMORY)
    plain = fit_choices(data, "auto", bootstrap=0, folds=2)
    best = plain.report["policy"]
    softmax_families = [name for name in FAMILIES if name.startswith("softmax")]  # checked in this order
    seen = []

    def check(policies, fold):  # marks the family of the best held-out likelihood as inconsistent
        seen.append((len(policies), fold.shape))
        return {"consistent": len(seen) - 1 != softmax_families.index(best)}

    checked = fit_choices(data, "auto", bootstrap=0, folds=2, held_out_outcomes=check)
    scores = checked.report["log_likelihood_per_choice"]
    assert checked.report["policy"] != best and not scores[best]["held_out_outcomes"]["consistent"]
    others = [n for n in scores if n.startswith("softmax") and n != best]
    assert checked.report["policy"] == max(others, key=lambda n: scores[n]["held_out"])
    assert seen == [(2, (data.n_runs,))] * len(others + [best])
