"""The paper's flip criterion (jaxconv.criteria) on hand-built runs, at the 2.849 boundary."""

import numpy as np

from jaxconv.criteria import (
    ends_converged,
    flip_outcome_of_curves,
    population_curve,
    round_shares,
    run_flips,
    simulated_shares,
    stack,
)


def test_the_boundary_is_a_sum_of_2849():
    assert ends_converged([0.2, 0.95, 0.95, 0.949])  # sum 2.849 exactly
    assert not ends_converged([0.95, 0.95, 0.9489])
    assert ends_converged([0.912, 0.983, 0.956])  # the README's example: a round below .95, flipped
    assert not ends_converged([1.0, 1.0])  # fewer than 3 rounds


def test_population_curve_pads_converged_runs_and_averages_the_runs_that_have_each_round():
    converged = [0.0, 0.95, 0.95, 0.949]  # converged at the boundary: padded with 1 to 5 + 30 rounds
    stuck = [0.0, 0.5, 0.5, 0.5, 0.5]  # not converged: 5 rounds only
    rows, lengths = stack([converged, stuck])
    curve = population_curve(rows, lengths, horizon_rounds=None)
    assert len(curve) == 5 + 30
    np.testing.assert_allclose(curve[:5], [0.0, 0.725, 0.725, 0.7245, 0.75])
    np.testing.assert_allclose(curve[5:], 1.0)  # only the padded run has these rounds
    assert flip_outcome_of_curves(rows, lengths, None)["flipped"]
    out = flip_outcome_of_curves(rows, lengths, 5)
    assert len(out["mean_share_by_round"]) == 5 and not out["flipped"]
    np.testing.assert_array_equal(run_flips(rows, lengths, 30), [True, False])
    # the converged run just below the boundary is not padded
    rows, lengths = stack([[0.0, 0.95, 0.95, 0.9489], stuck])
    assert len(population_curve(rows, lengths, None)) == 5
    assert not flip_outcome_of_curves(rows, lengths, None)["flipped"]


def test_round_shares_start_at_the_converged_index_and_count_free_answers():
    pushed = np.array([[1, 0], [1, 1], [0, 0], [1, 1], [1, 1], [1, 1]], bool)
    free = np.array([[1, 1], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1]], bool)
    np.testing.assert_allclose(round_shares(pushed, free, 2), [2 / 3, 2 / 4, 1.0])
    np.testing.assert_allclose(round_shares(pushed, free, 2, start=1), [1 / 3, 1.0, 1.0])  # trailing half round


def test_simulated_shares_count_the_round_a_replica_stopped_in():
    free = np.array([[[3, 1], [0, 4], [0, 2], [0, 0]]])  # (1 replica, 4 rounds, W=2)
    interactions = np.array([[2, 4, 5, 5]])  # N = 2: the run stopped in round 3
    share, lengths = simulated_shares(free, interactions, pushed=1, n_agents=2)
    np.testing.assert_allclose(share[0, :3], [0.25, 1.0, 1.0])
    assert lengths.tolist() == [3]


def test_simulated_shares_sum_finer_records_into_rounds_with_the_trailing_part():
    # N = 4, a record every 2 interactions, a budget of 10 interactions: rounds of 2 records, the third of one
    free = np.array([[[1, 1], [0, 2], [2, 0], [1, 1], [0, 2]]])
    interactions = np.array([[2, 4, 6, 8, 10]])
    share, lengths = simulated_shares(free, interactions, pushed=1, n_agents=4, records_per_round=2)
    np.testing.assert_allclose(share[0], [3 / 4, 1 / 4, 2 / 2])
    assert lengths.tolist() == [3]
    # recorded once per round, the same replica gives the same shares of its complete rounds
    coarse, _ = simulated_shares(free[:, :4].reshape(1, 2, 2, 2).sum(2), interactions[:, 1:4:2], 1, 4)
    np.testing.assert_allclose(coarse[0], share[0, :2])
