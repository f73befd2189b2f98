"""Richer softmax agents and the collective fit: the numpy agent of jaxconv.data.synthetic against the policy,
recovery of the new terms (first-move bias, unanimity, lapse) from logs simulated by jaxconv itself, a bias that
only the collective outcome reveals, per-name winner shares and P(flip) targets, and the per-run random first-move
bias (first moves counted per run, marginal likelihood against a quadrature, recovery of its sd)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv.data import load_logs, tidy_dataset
from jaxconv.data.summary import critical_masses, flip_outcome
from jaxconv.data.synthetic import dumps, game_file_name, simulate_run, softmax_agent
from jaxconv.estimate.collective import (
    FlipTarget,
    cross_validate,
    fit_collective,
    flip_targets_of,
    simulated_flips,
    targets_of,
)
from jaxconv.estimate.fit import FAMILIES, SOFTMAX, fit_choices, fit_runs, laplace_sd
from jaxconv.estimate.likelihood import choice_data
from jaxconv.estimate.predict import predict_baseline, predict_tipping
from jaxconv.estimate.random_effects import fit_effect, marginal_log_likelihood, run_policies, shifted
from jaxconv.policies import SoftmaxSurrogate, memory_view
from tests.stats import Z_LIMIT

NAMES = ["Q", "M"]
N_AGENTS, MEMORY = 8, 3
TRUE = {
    "win_stay": 1.0,
    "lose_shift": 0.5,
    "own_weight": 0.5,
    "partner_weight": 1.0,
    "recency": 0.5,
    "unanimity": 2.0,
    "lapse": 0.05,
}
FIRST = {"Q": -0.8, "M": 0.8}


def _logs(folder, agent, runs, seed, rounds=40, names=NAMES):
    rng = np.random.default_rng(seed)
    sizes = {"n_agents": N_AGENTS, "memory": MEMORY}
    stored = {
        r: simulate_run(rng, names=names, max_interactions=rounds * N_AGENTS, policy=agent, **sizes)
        for r in range(runs)
    }
    (folder / game_file_name("synth", "game", names, **sizes)).write_bytes(dumps(stored))
    return load_logs(folder).files


def test_numpy_agent_matches_the_policy_with_every_optional_term():
    agent = softmax_agent({"Q": 0.1, "M": -0.1}, first_bias=FIRST, memory=MEMORY, **TRUE)
    policy = SoftmaxSurrogate([0.1, -0.1], first_bias=[-0.8, 0.8], **TRUE)
    policy.check(2, MEMORY)
    for own, partner in [([], []), (["Q"], ["M"]), (["M", "M", "M"], ["M", "M", "M"]), (["Q", "M", "M"], ["M"] * 3)]:
        code = [NAMES.index(n) for n in own[::-1]] + [-1] * (MEMORY - len(own))
        other = [NAMES.index(n) for n in partner[::-1]] + [-1] * (MEMORY - len(partner))
        view = memory_view(jnp.array(code), jnp.array(other), jnp.zeros(MEMORY), len(own), 2)
        np.testing.assert_allclose(np.exp(policy.logits(view)), agent.probabilities(own, partner, NAMES), atol=1e-5)
    with pytest.raises(ValueError, match="lapse must be in"):
        SoftmaxSurrogate([0.0, 0.0], lapse=1.0).check(2, MEMORY)
    with pytest.raises(ValueError, match="first_bias must have shape"):
        SoftmaxSurrogate([0.0, 0.0], first_bias=[0.0]).check(2, MEMORY)
    plain = SoftmaxSurrogate([0.1, -0.1])
    assert plain.first_bias is None and plain.unanimity is None and plain.lapse is None


def test_new_terms_are_recovered_and_preferred_on_held_out_choices(tmp_path):
    agent = softmax_agent({"Q": 0.0, "M": 0.0}, first_bias=FIRST, memory=MEMORY, **TRUE)
    logs = _logs(tmp_path, agent, runs=80, seed=1)
    data = choice_data(tidy_dataset(logs), NAMES, MEMORY)
    fitted = fit_choices(data, "auto", bootstrap=0, folds=2)
    scores = fitted.report["log_likelihood_per_choice"]
    richest = "softmax+first+unanimity+lapse"
    assert scores[richest]["held_out"] > scores["softmax"]["held_out"] + 1e-3
    assert fitted.report["policy"] != "softmax"  # a richer family is chosen on held-out choices
    full = fit_runs(FAMILIES[richest], data, np.ones(data.n_runs))
    estimate = {k: np.asarray(v[0]) for k, v in full.parameters().items()}
    assert estimate["first_bias"][1] == pytest.approx(0.8, abs=0.3)
    assert estimate["unanimity"] == pytest.approx(2.0, abs=1.0)
    assert estimate["lapse"] == pytest.approx(0.05, abs=0.03)
    sd = laplace_sd(FAMILIES[richest], data, jax.tree.map(lambda x: x[0], full.raw))
    for name, truth in (("first_bias", 0.8), ("unanimity", 2.0), ("lapse", 0.05)):
        value, spread = np.ravel(estimate[name])[-1], np.ravel(sd[name])[-1]
        assert abs(value - truth) < 4 * spread, (name, value, spread)  # identified: the truth within 4 sd


def test_collective_fit_recovers_a_first_move_bias_the_choice_fit_averages_away(tmp_path):
    """The agents lean slightly to Q once they remember anything, but a first move (empty memory) favours M
    strongly: the early majority decides the winner, so M wins most runs. A plain softmax (one bias for every
    memory) fitted to the choices sees the first moves as a few percent of the data and predicts that Q wins as
    often as M; the collective fit of the same family moves its bias to M and predicts the observed winner share."""
    first = {"Q": -2.0, "M": 2.0}
    agent = softmax_agent({"Q": 0.2, "M": -0.2}, first_bias=first, partner_weight=1.5, memory=MEMORY)
    logs = _logs(tmp_path, agent, runs=60, seed=2, rounds=60)
    data = choice_data(tidy_dataset(logs), NAMES, MEMORY)
    (target,) = targets_of(logs, tuple(NAMES))
    assert target.win_share[1] > 0.6
    choice_only = fit_runs(SOFTMAX, data, np.ones(data.n_runs))
    start = jax.tree.map(lambda x: x[0], choice_only.raw)
    key = jax.random.key(0)
    before = predict_baseline(choice_only.policy(0), N_AGENTS, 2, MEMORY, data.payoffs, 400, key)
    share_before = before["winners"][1] / 400
    assert share_before < target.win_share[1] - 0.15  # the choice-only fit cannot see the first-move bias
    result = fit_collective(SOFTMAX, data, start, [target], jax.random.key(1), steps=40, replicas=64, weight=20.0)
    after = predict_baseline(result.policy, N_AGENTS, 2, MEMORY, data.payoffs, 400, key)
    share_after = after["winners"][1] / 400
    bias_before = float(choice_only.parameters()["bias"][0][1])
    bias_after = float(result.policy.bias[1])
    assert bias_after > bias_before + 0.05
    assert abs(share_after - target.win_share[1]) < abs(share_before - target.win_share[1]) / 2
    assert result.log_likelihood < result.log_likelihood_choice_only  # bought with some choice likelihood


def test_collective_fit_over_parameter_draws_fits_the_predictive_not_the_point(tmp_path):
    """With parameter draws (``deviations``: the centre and the centre with the bias moved by +-0.75 per name) the
    collective fit matches the winner share of the predictive, the runs pooled over the draws. The share is not
    linear in the bias, so a fit of the centre alone (no deviations) leaves the predictive short of the observed
    share; the fit over the draws moves the bias further and meets it."""
    agent = softmax_agent({"Q": 0.2, "M": -0.2}, first_bias={"Q": -2.0, "M": 2.0}, partner_weight=1.5, memory=MEMORY)
    logs = _logs(tmp_path, agent, runs=60, seed=2, rounds=60)
    data = choice_data(tidy_dataset(logs), NAMES, MEMORY)
    (target,) = targets_of(logs, tuple(NAMES))
    start = jax.tree.map(lambda x: x[0], fit_runs(SOFTMAX, data, np.ones(data.n_runs)).raw)
    deviations = jax.tree.map(lambda x: jnp.zeros((3,) + x.shape), start)
    deviations["bias"] = jnp.array([[0.0, 0.0], [-0.75, 0.75], [0.75, -0.75]])
    replicas, key = 600, jax.random.key(0)

    def predictive_m_share(over_draws):
        fit = fit_collective(
            SOFTMAX, data, start, [target], jax.random.key(1), steps=40, replicas=64, weight=20.0,
            deviations=deviations if over_draws else None,
        )  # fmt: skip
        shares = [
            predict_baseline(
                SOFTMAX.policy(jax.tree.map(lambda r, d, i=i: r + d[i], fit.raw, deviations)),
                N_AGENTS, 2, MEMORY, data.payoffs, replicas, jax.random.fold_in(key, i),
            )["winners"][1] / replicas
            for i in range(3)
        ]  # fmt: skip
        return float(np.mean(shares)), float(fit.policy.bias[1])

    (over_draws, bias_over_draws), (centre_only, bias_centre_only) = predictive_m_share(True), predictive_m_share(False)
    observed, se = target.win_share[1], target.win_se[1]
    se_over, se_centre = (np.sqrt(p * (1 - p) / (3 * replicas)) for p in (over_draws, centre_only))
    assert abs(over_draws - observed) < Z_LIMIT * np.hypot(se, se_over), (over_draws, observed)
    assert bias_over_draws > bias_centre_only  # the fit over the draws moves the centre further
    # the centre-only fit's predictive falls short by more than the two predictives' sampling error
    assert observed - centre_only > (observed - over_draws) + Z_LIMIT * np.hypot(se_over, se_centre), (
        centre_only, over_draws, observed,
    )  # fmt: skip


def test_collective_fit_matches_the_winner_share_of_each_of_three_names(tmp_path):
    """W = 3: the per-name winner shares are targets too. A first move favouring X (empty memory) makes X win most
    runs; the choice-only plain softmax spreads the wins over the names, the collective fit raises X's bias and
    predicts X's share, and keeps the shares of Q and M near theirs."""
    names = ["Q", "M", "X"]
    agent = softmax_agent({"X": -0.2}, first_bias={"Q": -1.0, "M": -1.0, "X": 2.0}, partner_weight=1.5, memory=MEMORY)
    logs = _logs(tmp_path, agent, runs=60, seed=3, rounds=60, names=names)
    data = choice_data(tidy_dataset(logs), names, MEMORY)
    (target,) = targets_of(logs, tuple(names))
    assert len(target.win_share) == 3 and sum(target.win_share) == pytest.approx(1.0)
    assert target.win_share[2] > 0.5
    choice_only = fit_runs(SOFTMAX, data, np.ones(data.n_runs))
    start = jax.tree.map(lambda x: x[0], choice_only.raw)
    key = jax.random.key(0)
    before = predict_baseline(choice_only.policy(0), N_AGENTS, 3, MEMORY, data.payoffs, 400, key)["winners"] / 400
    assert before[2] < target.win_share[2] - 0.15
    result = fit_collective(SOFTMAX, data, start, [target], jax.random.key(1), steps=40, replicas=64, weight=20.0)
    after = predict_baseline(result.policy, N_AGENTS, 3, MEMORY, data.payoffs, 400, key)["winners"] / 400
    assert float(result.policy.bias[2]) > float(choice_only.parameters()["bias"][0][2]) + 0.05
    assert abs(after[2] - target.win_share[2]) < abs(before[2] - target.win_share[2]) / 2
    assert np.abs(after - np.array(target.win_share)).max() < np.abs(before - np.array(target.win_share)).max()


def test_cross_validation_over_files_predicts_each_population_size_from_the_other(tmp_path):
    """Two baseline files of one agent, N = 8 and N = 12: with ``by="files"`` each file is held out whole, both fits
    use only the other file, and the choice-only prediction of the held-out size's mean stop time agrees with its
    runs (the agent is in the fitted family)."""
    agent = softmax_agent({"Q": 0.3, "M": -0.3}, partner_weight=1.5, win_stay=1.0, memory=MEMORY)
    rng = np.random.default_rng(5)
    for n in (8, 12):
        runs = {
            r: simulate_run(rng, n_agents=n, memory=MEMORY, names=NAMES, max_interactions=80 * n, policy=agent)
            for r in range(24)
        }
        (tmp_path / game_file_name("synth", "game", NAMES, n_agents=n, memory=MEMORY)).write_bytes(dumps(runs))
    logs = load_logs(tmp_path).files
    key = jax.random.key(4)
    rows = cross_validate(SOFTMAX, logs, tuple(NAMES), MEMORY, key, by="files", steps=1, replicas=300)
    assert sorted(row["n_agents"] for row in rows) == [8, 12]
    for row in rows:
        (held,) = [log for log in logs if log.name == row["held_out_file"]]
        assert held.n_agents == row["n_agents"] and row["held_out_runs"] == len(held.runs) == 24
        stops = np.array([run.n_interactions / held.n_agents for run in held.runs])
        assert row["observed"]["stop_mean"] == pytest.approx(stops.mean())
        predicted = row["choice_only"]["stop_mean"]
        assert abs(predicted - stops.mean()) < Z_LIMIT * stops.std(ddof=1) / np.sqrt(len(stops)), (row, predicted)
        assert set(row["collective"]) == {"stop_mean", "win_share"}
    with pytest.raises(ValueError, match="'file'"):
        cross_validate(SOFTMAX, logs, tuple(NAMES), MEMORY, key, by="file")


@pytest.mark.parametrize("k, pushed_bias", [(2, 0.0), (0, 1.6)])
def test_simulated_flips_follow_the_papers_criterion_like_the_simulator(k, pushed_bias):
    """P(flip) of the collective fit's differentiable runs (k >= 1: stop at 3N successes; k = 0, an evolved_from
    file: the whole budget; per-round answer shares, last 3 rounds >= 2.849) equals the prediction's
    (``predict_tipping``: the simulator and :mod:`jaxconv.criteria`) within sampling error, at a k where it is far
    from 0 and 1 (at k = 0 an agent biased to the pushed name flips the population on its own)."""
    policy = SoftmaxSurrogate([0.0, pushed_bias], win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8)
    target = FlipTarget(N_AGENTS, 0, 1, k, 0.5, 0.1, 10, horizon_rounds=20)
    replicas = 1000
    flips, _ = jax.jit(lambda key: simulated_flips(key, policy, target, 2, MEMORY, (-50, 100), replicas))(
        jax.random.key(0)
    )
    reference = predict_tipping(policy, N_AGENTS, 2, MEMORY, (-50, 100), 0, 1, [k], replicas, jax.random.key(1), 20)
    p, q = float(flips.mean()), float(reference["run_flip_fraction"][0])
    assert 0.2 < q < 0.95
    pooled = (p + q) / 2
    assert abs(p - q) / np.sqrt(pooled * (1 - pooled) * 2 / replicas) < Z_LIMIT, (p, q)


def test_flip_targets_are_the_ks_that_decide_the_critical_mass(tmp_path):
    agent = softmax_agent({}, win_stay=1.0, own_weight=1.0, partner_weight=1.0, recency=0.8, memory=MEMORY)
    rng = np.random.default_rng(4)
    sizes = {"n_agents": N_AGENTS, "memory": MEMORY, "initial": 0, "max_interactions": 20 * N_AGENTS}
    for k in (0, 1, 2, 3):  # k = 0: the evolved_from file
        runs = {r: simulate_run(rng, names=NAMES, policy=agent, committed=k, **sizes) for r in range(6)}
        kind = "evolved" if k == 0 else "committed"
        name = game_file_name("synth", kind, NAMES, committed=k, n_agents=N_AGENTS, memory=MEMORY)
        (tmp_path / name).write_bytes(dumps(runs))
    logs = load_logs(tmp_path).files
    (series,) = critical_masses(logs)
    critical = series["critical_k"]
    assert critical in (2, 3)
    targets = flip_targets_of(logs, tuple(NAMES), MEMORY, at="deciding")
    assert [t.k for t in targets] == [critical - 1, critical]
    for target in targets:
        runs = [run for log in logs if log.meta.committed == target.k for run in log.runs]
        assert target.p_flip == flip_outcome(runs, "M", N_AGENTS)["run_flip_fraction"]
        assert (target.incumbent, target.pushed, target.n_runs) == (0, 1, 6)
    assert flip_targets_of(logs, tuple(NAMES), MEMORY + 1) == []
    every = flip_targets_of(logs, tuple(NAMES), MEMORY)
    assert [t.k for t in every] == [0, 1, 2, 3]
    assert [t.p_flip for t in every if t.k in (critical - 1, critical)] == [t.p_flip for t in targets]
    with pytest.raises(ValueError, match="'most'"):
        flip_targets_of(logs, tuple(NAMES), MEMORY, at="most")


def test_one_simulation_serves_every_k_of_a_series():
    """The committed count given as an array (vmapped over k by the collective fit) runs exactly the game built with
    that k, and the grouped targets of one series are simulated in one call with k in its own column, sharing the
    runs of ``FLIP_KS_PER_SERIES`` targets."""
    from jaxconv.estimate.collective import _simulated_flip_targets

    policy = SoftmaxSurrogate([0.0, 0.0], win_stay=1.0, lose_shift=1.0, partner_weight=1.0)
    design = FlipTarget(N_AGENTS, 0, 1, k=0, p_flip=0.5, se=0.1, n_runs=4, horizon_rounds=12)
    key = jax.random.key(5)
    for k in (0, 2):
        target = FlipTarget(N_AGENTS, 0, 1, k=k, p_flip=0.5, se=0.1, n_runs=4, horizon_rounds=12)
        built = simulated_flips(key, policy, target, 2, MEMORY, (-50, 100), 64)
        given = simulated_flips(key, policy, design, 2, MEMORY, (-50, 100), 64, committed=jnp.int32(k))
        np.testing.assert_array_equal(built[0], given[0])
        np.testing.assert_allclose(built[1], given[1], rtol=1e-6)
    # three k of one series share the runs of two targets, 2 x 150 runs per batch, 100 per k, also when a k has a
    # budget of its own and so a simulation of its own
    targets = [
        FlipTarget(N_AGENTS, 0, 1, k=k, p_flip=0.5, se=0.1, n_runs=4, horizon_rounds=12, budget=budget)
        for k, budget in ((1, None), (3, None), (6, 10 * N_AGENTS))
    ]
    stacked = jax.tree.map(lambda x: x[None], policy)
    out = _simulated_flip_targets(key, stacked, targets, 2, MEMORY, (-50, 100), 150)
    assert set(out) == {0, 1, 2}
    assert {out[i][b][0].shape for i in range(3) for b in (0, 1)} == {(100,)}
    few, many = (float(np.mean(out[i][0][0])) for i in (0, 2))
    assert few < many  # six committed agents of eight flip more runs than one


def test_retarget_carries_shared_names_biases_to_another_name_set():
    from jaxconv.estimate.pipeline import retarget

    policy = SoftmaxSurrogate([-0.5, 0.5], first_bias=[0.2, -0.2], partner_weight=1.0)
    moved = retarget(policy, ("Q", "M"), ("Q", "M", "X", "Y"))
    np.testing.assert_allclose(moved.bias, [-0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(moved.first_bias, [0.2, -0.2, 0.0, 0.0])
    moved.check(4, MEMORY)


# ----- per-run random first-move bias (jaxconv.estimate.random_effects) ----------------------------------------
RE_POLICY = SoftmaxSurrogate([0.0, 0.0], first_bias=[-0.3, 0.3], partner_weight=1.0)


def _quadrature(first_bias, sd, counts, points=40):
    """log E_z prod_w p_w(first_bias + sd z)^n_w by Gauss-Hermite quadrature over the two z (pure numpy)."""
    x, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / w.sum()
    total = 0.0
    for z0, w0 in zip(x, w, strict=True):
        for z1, w1 in zip(x, w, strict=True):
            score = np.asarray(first_bias) + sd * np.array([z0, z1])
            p = np.exp(score - score.max())
            p /= p.sum()
            total += w0 * w1 * np.prod(p ** np.asarray(counts))
    return np.log(total)


def test_marginal_likelihood_matches_quadrature_and_reduces_to_the_policy_without_effect():
    counts = np.array([[6.0, 2.0], [1.0, 7.0], [4.0, 4.0]])
    nodes = jax.random.normal(jax.random.key(0), (20_000, 2))
    values = marginal_log_likelihood(RE_POLICY, jnp.array([-0.3, 0.3]), 0.7, counts, nodes)
    for row, value in zip(counts, np.asarray(values), strict=True):
        assert value == pytest.approx(_quadrature([-0.3, 0.3], 0.7, row), abs=0.02)
    p = np.exp([-0.3, 0.3]) / np.exp([-0.3, 0.3]).sum()
    plain = marginal_log_likelihood(RE_POLICY, jnp.array([-0.3, 0.3]), 0.0, counts, nodes[:4])
    np.testing.assert_allclose(plain, counts @ np.log(p), rtol=1e-5)


@pytest.mark.parametrize("sd", [0.0, 0.8])
def test_sd_is_recovered_from_runs_with_and_without_heterogeneity(sd):
    """400 runs of 24 first moves each, every run with its own first-move bias (-0.3, 0.3) + sd z."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 2)) * sd
    p_m = 1 / (1 + np.exp(-(0.6 + z[:, 1] - z[:, 0])))
    m = rng.binomial(24, p_m)
    counts = np.stack([24 - m, m], axis=1).astype(float)
    nodes = jax.random.normal(jax.random.key(2), (256, 2))
    first, estimate = fit_effect(RE_POLICY, counts, nodes, free_first=True)
    assert estimate == pytest.approx(sd, abs=0.15)
    assert first[1] - first[0] == pytest.approx(0.6, abs=0.15)


def test_run_policies_shift_only_the_first_move():
    policies = run_policies(RE_POLICY, 0.5, jax.random.key(3), 4)
    assert len(policies) == 4
    assert len({float(p.first_bias[1] - p.first_bias[0]) for p in policies}) == 4
    for p in policies:
        np.testing.assert_array_equal(p.bias, RE_POLICY.bias)
    plain = SoftmaxSurrogate([0.2, -0.2])
    np.testing.assert_allclose(shifted(plain, jnp.array([0.1, 0.0])).first_bias, [0.3, -0.2])
    with pytest.raises(ValueError, match="sd must be >= 0, got -1"):
        run_policies(RE_POLICY, -1.0, jax.random.key(0), 2)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        run_policies(RE_POLICY, 0.5, jax.random.key(0), 0)


def test_first_move_counts_are_each_agents_empty_memory_answer(tmp_path):
    from jaxconv.data import load_logs, tidy_dataset
    from jaxconv.data.synthetic import dumps, game_file_name, simulate_run
    from jaxconv.estimate.likelihood import choice_data
    from jaxconv.estimate.random_effects import first_move_counts

    rng = np.random.default_rng(4)
    sizes = {"n_agents": 6, "memory": 3}
    runs = {r: simulate_run(rng, names=["Q", "M"], max_interactions=30 * 6, **sizes) for r in range(3)}
    (tmp_path / game_file_name("synth", "game", ["Q", "M"], **sizes)).write_bytes(dumps(runs))
    data = choice_data(tidy_dataset(load_logs(tmp_path).files), ("Q", "M"), 3)
    counts = first_move_counts(data)
    np.testing.assert_array_equal(counts.sum(axis=1), [6, 6, 6])  # every agent answered once from an empty memory
    for r, run in runs.items():
        first = {}
        for (p1, p2), answers in zip(run["tracker"]["players"], run["tracker"]["answers"], strict=True):
            for agent, answer in zip((p1, p2), answers, strict=True):
                first.setdefault(agent, answer)
        row = data.run_key.tolist().index(r)
        assert counts[row, 1] == sum(a == "M" for a in first.values())
