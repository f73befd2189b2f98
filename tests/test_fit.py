"""Fitting policies to LLM logs: likelihood against a pure-Python reference, gradients, parameter recovery, held-out
scores, predictions, the ``fit`` command (synthetic logs in the published schema; the real logs when present)."""

import argparse
import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv.cli import fit as cli_fit
from jaxconv.data import load_logs, tidy_dataset
from jaxconv.data.synthetic import dumps, game_file_name, simulate_run, softmax_agent
from jaxconv.estimate import (
    choice_data,
    choice_log_probs,
    compare,
    fit_choices,
    log_likelihood,
    lookup_table,
    predict_baseline,
)
from jaxconv.estimate.fit import SOFTMAX, round_dependence, run_dispersion, window_table_probabilities
from jaxconv.estimate.pipeline import fit_path, window_table_reference
from jaxconv.policies import SoftmaxSurrogate
from tests.reference_memory import policy_probabilities
from tests.stats import Z_LIMIT, assert_means_agree, assert_proportion

NAMES = ["Q", "M"]
N_AGENTS, MEMORY, K = 10, 5, 3
TRUE = {
    "bias": [-0.2, 0.2],
    "win_stay": 1.5,
    "lose_shift": 1.0,
    "own_weight": 0.5,
    "partner_weight": 0.8,
    "recency": 0.5,
}
REFERENCE = {"kind": "softmax", **TRUE}


def true_policy() -> SoftmaxSurrogate:
    return SoftmaxSurrogate(jnp.asarray(TRUE["bias"]), **{k: v for k, v in TRUE.items() if k != "bias"})


def reference_choice(own, partner, payoff, names, rng):
    """The true softmax policy for ``jaxconv.data.synthetic``: the bias belongs to a name, whatever the file's
    order of names."""
    player = {
        "my_history": [NAMES.index(n) for n in own],
        "partner_history": [NAMES.index(n) for n in partner],
        "outcome": payoff,
    }
    return NAMES[rng.choice(len(NAMES), p=policy_probabilities(player, MEMORY, len(NAMES), REFERENCE))]


def _write(folder, name, runs):
    (folder / name).write_bytes(dumps(runs))


@pytest.fixture(scope="module")
def logs_folder(tmp_path_factory):
    """A baseline file (names Q, M; 150 runs) and a committed-minority file listing the names as M, Q (incumbent M,
    3 agents committed to Q; 30 runs of at most 30 rounds), simulated with the true policy."""
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("logs")
    sizes = {"n_agents": N_AGENTS, "memory": MEMORY}
    simulate = {"policy": reference_choice, **sizes}
    baseline = {r: simulate_run(rng, names=NAMES, max_interactions=200 * N_AGENTS, **simulate) for r in range(150)}
    _write(folder, game_file_name("synth", "game", NAMES, **sizes), baseline)
    swap = ["M", "Q"]
    committed = {
        r: simulate_run(rng, names=swap, committed=K, initial=0, max_interactions=30 * N_AGENTS, **simulate)
        for r in range(30)
    }
    _write(folder, game_file_name("synth", "committed", swap, committed=K, **sizes), committed)
    return folder


@pytest.fixture(scope="module")
def logs(logs_folder):
    return load_logs(logs_folder)


@pytest.fixture(scope="module")
def data(logs):
    return choice_data(tidy_dataset(logs), NAMES)


@pytest.fixture(scope="module")
def fitted(data):
    return fit_choices(data, bootstrap=12, seed=1)


def _reference_log_probs(log, policy: dict) -> list[float]:
    """Log-probability of every non-committed choice of every run of ``log``, in order, from histories kept the
    way the published code keeps them (prepared rounds first in a committed-minority file)."""
    code = {name: NAMES.index(name) for name in log.names}
    out = []
    for run in log.runs:
        prepared = [code[log.meta.incumbent]] * MEMORY if log.meta.incumbent else []
        history = {
            a: {"my_history": list(prepared), "partner_history": list(prepared), "outcome": [100] * len(prepared)}
            for a in range(1, N_AGENTS + 1)
        }
        for (p1, p2), (a1, a2) in zip(run.players.tolist(), run.answers.tolist(), strict=True):
            for me, mine in ((p1, a1), (p2, a2)):
                if me not in run.committed_agents:
                    out.append(math.log(policy_probabilities(history[me], MEMORY, len(NAMES), policy)[code[mine]]))
            payoff = 100 if a1 == a2 else -50
            for me, mine, theirs in ((p1, a1, a2), (p2, a2, a1)):
                history[me]["my_history"].append(code[mine])
                history[me]["partner_history"].append(code[theirs])
                history[me]["outcome"].append(payoff)
    return out


def test_likelihood_matches_a_pure_python_reference(logs, data):
    jaxconv_log_probs = np.asarray(choice_log_probs(true_policy(), data))
    reference = [
        p
        for log in sorted(logs.files, key=lambda f: data.files.index(f.name))
        for p in _reference_log_probs(log, REFERENCE)
    ]
    assert len(reference) == data.n_choices
    np.testing.assert_allclose(jaxconv_log_probs, reference, rtol=1e-5, atol=1e-5)
    assert float(log_likelihood(true_policy(), data)) == pytest.approx(np.mean(reference), abs=1e-5)


def test_lookup_table_matches_the_reference_lookup(logs, data):
    table = lookup_table(data, depth=2, smoothing=0.5)
    policy = {"kind": "lookup", "depth": 2, "table": np.asarray(table.table).tolist()}
    reference = [
        p
        for log in sorted(logs.files, key=lambda f: data.files.index(f.name))
        for p in _reference_log_probs(log, policy)
    ]
    np.testing.assert_allclose(np.asarray(choice_log_probs(table, data)), reference, rtol=1e-5, atol=1e-5)


def test_gradient_matches_finite_differences(data):
    raw = {
        "bias": jnp.asarray([0.3, -0.1]),
        "win_stay": jnp.float32(0.7),
        "lose_shift": jnp.float32(-0.4),
        "own_weight": jnp.float32(0.2),
        "partner_weight": jnp.float32(1.1),
        "recency_logit": jnp.float32(0.5),
    }

    def mean_log_likelihood(r):
        return log_likelihood(SOFTMAX.policy(r), data)

    gradient = jax.grad(mean_log_likelihood)(raw)
    step = 1e-2
    for name, value in raw.items():
        for i in np.ndindex(value.shape):
            up = raw | {name: value.at[i].add(step)}
            down = raw | {name: value.at[i].add(-step)}
            numeric = (float(mean_log_likelihood(up)) - float(mean_log_likelihood(down))) / (2 * step)
            assert float(gradient[name][i]) == pytest.approx(numeric, abs=2e-4), name


def test_parameters_recovered_within_the_bootstrap_spread(fitted):
    parameters = fitted.report["parameters"]
    checks = [(f"bias[{n}]", parameters["bias"][n], TRUE["bias"][i]) for i, n in enumerate(NAMES)]
    checks += [(name, parameters[name], TRUE[name]) for name in TRUE if name != "bias"]
    for label, stats, truth in checks:
        assert stats["identified"], label
        assert 0 < stats["sd"] < 0.3, (label, stats)
        assert abs(stats["estimate"] - truth) < 3 * stats["sd"], (label, stats, truth)
        assert stats["sd"] / 3 < stats["laplace_sd"] < 3 * stats["sd"], (label, stats)
    assert fitted.report["bootstrap"] == {"resamples": 12, "converged": 12}


def test_held_out_likelihood_ranks_the_policies(fitted, data):
    scores = fitted.report["log_likelihood_per_choice"]
    truth = float(log_likelihood(true_policy(), data))
    assert scores["uniform"]["held_out"] == pytest.approx(-math.log(2))
    assert truth > scores["uniform"]["held_out"] + 0.1
    assert scores["softmax"]["held_out"] == pytest.approx(truth, abs=0.01)
    for other in ("uniform", "best-response", "lookup_depth_1", "lookup_depth_2"):
        assert scores["softmax"]["held_out"] > scores[other]["held_out"], other
    assert scores["softmax"]["train"] >= scores["softmax"]["held_out"]
    assert all(score.get("converged", True) for score in scores.values())


def test_held_out_over_files_leaves_each_file_out(fitted, data):
    """Leave one file out: the lookup table of the other file scores each file's choices (exact, by hand), and the
    true policy's likelihood carries over from the baseline to the committed-minority condition and back."""
    scores = fitted.report["log_likelihood_per_choice"]
    assert fitted.report["file_folds"] == len(data.files) == 2
    total = 0.0
    for f in range(2):
        table = lookup_table(data, 1, run_weights=(data.run_file != f).astype(float))
        held = np.isin(data.run, np.flatnonzero(data.run_file == f))
        total += float(np.asarray(choice_log_probs(table, data))[held].sum())
    assert scores["lookup_depth_1"]["held_out_files"] == pytest.approx(total / data.n_choices, rel=1e-5)
    assert scores["uniform"]["held_out_files"] == pytest.approx(-math.log(2))
    truth = float(log_likelihood(true_policy(), data))
    assert scores["softmax"]["held_out_files"] == pytest.approx(truth, abs=0.02)
    assert scores["softmax"]["held_out_files"] <= scores["softmax"]["train"]


def test_round_of_each_choice_is_its_interaction_index_over_n(logs, data):
    """``data.round`` is the population round of each choice: its interaction index in the run over N (every agent of
    the committed-minority file counted), checked choice by choice against the logs, in the order of the data."""
    expected = {}
    for log in logs.files:
        for run in log.runs:
            for t, (p1, p2) in enumerate(run.players.tolist()):
                chosen = [a for a in (p1, p2) if a not in run.committed_agents]
                expected.setdefault((log.name, run.key), []).extend([t // N_AGENTS] * len(chosen))
    for r in range(data.n_runs):
        observed = data.round[data.run == r].tolist()
        assert observed == expected[(data.files[data.run_file[r]], data.run_key[r])]


def test_round_dependence_window_table_is_the_full_depth_lookup(data):
    """The window table of the round-dependence check is P(name | whole window), i.e. the depth-H lookup table
    (payoffs and fill follow from the names of a game window): its held-out score equals that table's, computed by
    hand; the logs were simulated without round dependence, so the finer tables score worse."""
    fold = np.arange(data.n_runs) % 3
    report = round_dependence(data, fold)
    total = 0.0
    for k in range(3):
        table = lookup_table(data, MEMORY, run_weights=(fold != k).astype(float))
        total += float(np.asarray(choice_log_probs(table, data))[fold[data.run] == k].sum())
    assert report["held_out"]["window"] == pytest.approx(total / data.n_choices, rel=1e-5)
    assert not report["detected"] and report["gain"] < 0
    assert set(report["round_bin_edges"]) == {"2", "4"}


def test_round_dependence_is_detected_when_choices_change_with_the_round(data):
    """Choices redrawn so that name 1 has probability 0.2 before the median round and 0.8 from it on, whatever the
    window: the round-binned tables gain up to ln 2 - H(0.2) = 0.19 nats per choice (less where a window occurs in
    one half only) and the check detects it."""
    rng = np.random.default_rng(3)
    late = data.round >= np.median(data.round)
    choice = (rng.random(data.n_choices) < np.where(late, 0.8, 0.2)).astype(np.int32)
    report = round_dependence(dataclasses.replace(data, choice=choice), np.arange(data.n_runs) % 3)
    assert report["detected"] and 0.05 < report["gain"] < math.log(2) + 0.2 * math.log(0.2) + 0.8 * math.log(0.8)


def test_run_dispersion_matches_a_per_run_computation_and_is_one_for_the_true_policy(data, fitted):
    """W = 2: the statistic of a run is z^2, z = (choices of name 1 - expected) / sd, computed here run by run; under
    the policy that simulated the logs its mean is 1 within the chi-square standard error; the fit reports it."""
    p = np.exp(np.asarray(choice_log_probs(true_policy(), data)))  # probability of each observed choice
    p_one = np.where(data.choice == 1, p, 1 - p)
    z_squared = []
    for r in range(data.n_runs):
        mine = data.run == r
        variance = np.sum(p_one[mine] * (1 - p_one[mine]))
        if variance >= 1.0:
            z_squared.append(np.sum((data.choice[mine] == 1) - p_one[mine]) ** 2 / variance)
    report = run_dispersion(np.stack([1 - p_one, p_one], axis=1), data)
    assert report["runs"] == len(z_squared) and report["se"] == pytest.approx(math.sqrt(2 / len(z_squared)))
    assert report["dispersion"] == pytest.approx(np.mean(z_squared), rel=1e-6)
    assert abs(report["dispersion"] - 1) < Z_LIMIT * report["se"]
    assert sum(f["runs"] for f in report["per_file"].values()) == report["runs"]
    reported = fitted.report["run_dispersion"]
    assert abs(reported["policy"]["dispersion"] - 1) < Z_LIMIT * reported["policy"]["se"]


def test_run_dispersion_detects_runs_that_differ(data):
    """Choices redrawn with a per-run probability of name 1 (0.2 or 0.8, whatever the window): neither one shared
    probability nor the window table of the same runs can follow the runs, and the dispersion is far above 1. With
    W = 3 names drawn from the given probabilities it is 1 within the standard error (the pseudo-inverse path)."""
    rng = np.random.default_rng(5)
    per_run = np.where(np.arange(data.n_runs) % 2 == 0, 0.2, 0.8)
    choice = (rng.random(data.n_choices) < per_run[data.run]).astype(np.int32)
    differing = dataclasses.replace(data, choice=choice)
    table, seen = window_table_probabilities(differing)
    assert np.all(table[seen == 1].max(axis=1) == pytest.approx(2 / 3))  # (1 + 1) / (1 + 2): smoothing 1
    for probabilities, counted in ((np.full((data.n_choices, 2), 0.5), None), (table, seen >= 20)):
        report = run_dispersion(probabilities, differing, choices=counted)
        assert report["dispersion"] > 1 + 10 * Z_LIMIT * report["se"]
    three = rng.dirichlet(np.ones(3), size=data.n_choices)
    drawn = (rng.random(data.n_choices)[:, None] > np.cumsum(three, axis=1)).sum(axis=1).astype(np.int32)
    report = run_dispersion(three, dataclasses.replace(data, names=("A", "B", "C"), choice=drawn))
    assert abs(report["dispersion"] - 1) < Z_LIMIT * report["se"]


def test_window_table_reference_predicts_logs_of_a_one_round_memory_agent(tmp_path):
    """Agents that look at their last round only (win-stay, lose-shift, a bias): the depth-1 window table is their
    policy up to estimation noise, so the model-free reference must reproduce the logged stop times within the
    sampling error of both samples; a depth beyond H is refused with the reason."""
    rng = np.random.default_rng(11)
    agent = softmax_agent({"Q": -0.3, "M": 0.3}, win_stay=3.0, lose_shift=1.5, memory=MEMORY)
    runs = {
        r: simulate_run(rng, n_agents=8, names=NAMES, memory=MEMORY, max_interactions=400 * 8, policy=agent)
        for r in range(60)
    }
    _write(tmp_path, game_file_name("onestep", "game", NAMES, n_agents=8, memory=MEMORY), runs)
    logs = load_logs(tmp_path).files
    data = choice_data(tidy_dataset(logs), NAMES)
    table = window_table_reference(data, logs, 1, 600, jax.random.key(0))
    assert table["simulated"] and table["depth"] == 1 and len(table["targets"]) == 1
    (base,) = table["baseline"]
    assert base["predicted"]["stopped_fraction"] == 1.0
    observed = [len(run["tracker"]["outcome"]) / 8 for run in runs.values()]
    predicted = base["predicted"]["stop_rounds"]
    assert base["observed"]["stop_rounds"]["mean"] == pytest.approx(np.mean(observed))
    se = math.sqrt(np.var(observed, ddof=1) / len(observed) + predicted["sd"] ** 2 / predicted["n"])
    assert abs(predicted["mean"] - np.mean(observed)) < Z_LIMIT * se
    too_deep = window_table_reference(data, logs, MEMORY + 1, 10, jax.random.key(0))
    assert not too_deep["simulated"] and f"exceeds H={MEMORY}" in too_deep["reason"]


def test_predicted_outcomes_of_the_true_policy_match_the_simulated_logs(logs, data):
    """The logs were simulated with the true policy by jaxconv.data.synthetic: MemoryGame replicas of it must
    reproduce their winners and stop times within the sampling error."""
    replicas = 512
    out = compare(true_policy(), logs.files, data.names, data.memory, data.payoffs, replicas, jax.random.key(3))
    json.dumps(out)
    (baseline,) = out["baseline"]
    observed, predicted = baseline["observed"], baseline["predicted"]
    assert sum(predicted["winners"].values()) == replicas
    assert predicted["stopped_fraction"] == 1.0
    assert_proportion(observed["winners"]["M"], observed["runs"], predicted["winner_share"]["M"], "P(M wins)")
    observed_stops = [run.n_interactions / N_AGENTS for run in logs.file(baseline["file"]).runs]
    assert observed["stop_rounds"]["mean"] == pytest.approx(np.mean(observed_stops))
    simulated = predict_baseline(true_policy(), N_AGENTS, 2, MEMORY, data.payoffs, replicas, jax.random.key(4))
    assert_means_agree(observed_stops, simulated["stop_rounds"], "stop time")
    (tipping,) = out["tipping"]
    assert (tipping["incumbent"], tipping["pushed"], tipping["n_agents"]) == ("M", "Q", N_AGENTS)
    assert set(tipping["predicted"]["flipped"]) == {str(k) for k in range(K + 1)}
    assert tipping["predicted"]["flipped"]["0"] is False
    assert tipping["observed"]["flipped"] == {str(K): tipping["predicted"]["flipped"][str(K)]}
    assert tipping["observed"]["runs"] == {str(K): 30} and tipping["predicted"]["flips_check"]["consistent"]


def test_flips_the_policy_cannot_produce_are_not_predicted(logs, data):
    """29 of the 30 logged runs at k = K flipped; a policy that clings to the incumbent M almost never flips, so its
    critical mass may be "none", and the series is listed as not predicted, with the gap at k = K."""
    import equinox as eqx

    clinging = eqx.tree_at(lambda p: p.bias, true_policy(), jnp.array([-4.0, 4.0]))
    out = compare(clinging, logs.files, data.names, data.memory, data.payoffs, 100, jax.random.key(6))
    (tipping,) = out["tipping"]
    assert tipping["observed"]["runs_flipped"] == {str(K): 29}
    check = tipping["predicted"]["flips_check"]
    assert not check["consistent"] and check["largest_gap_k"] == K
    assert tipping["predicted"]["p_flip_design"][str(K)] < 0.2
    (reason,) = [m["reason"] for m in out["not_predicted"] if "unlikely" in m.get("reason", "")]
    assert f"k = {K}: 29 of 30 runs flipped" in reason


def test_a_mixture_draw_pools_its_members(logs, data):
    """A draw given as a list of policies (per-run random effects) splits its replicas among them and pools them:
    two members of which the first plays Q and the second M from an empty memory, without any other term, make
    each name win about half of the runs, with the draw's replicas counted once."""
    import equinox as eqx

    members = [
        eqx.tree_at(lambda p: p.first_bias, true_policy(), jnp.array(b), is_leaf=lambda x: x is None)
        for b in ([6.0, -6.0], [-6.0, 6.0])
    ]
    members = [
        eqx.tree_at(
            lambda p: (p.win_stay, p.lose_shift, p.own_weight, p.partner_weight),
            m,
            tuple(jnp.float32(x) for x in (0.0, 0.0, 3.0, 3.0)),
        )
        for m in members
    ]
    replicas = 400
    out = compare([members], logs.files, data.names, data.memory, data.payoffs, replicas, jax.random.key(5))
    (baseline,) = out["baseline"]
    predicted = baseline["predicted"]
    assert sum(predicted["winners"].values()) == replicas and predicted["draws"] == 1
    assert_proportion(predicted["winners"]["M"], replicas, 0.5, "P(M wins) of the mixture")
    (tipping,) = out["tipping"]
    assert set(tipping["predicted"]["p_flip"]) == {str(k) for k in range(K + 1)}


def test_fit_command(logs_folder):
    parser = argparse.ArgumentParser()
    cli_fit.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fit", str(logs_folder), "--names", "M,Q", "--bootstrap", "2", "--replicas", "0"])
    result = cli_fit.run(args)
    json.dumps(result)
    (group,) = result["models"]["synth"]["groups"]
    assert group["names"] == ["M", "Q"] and group["n_choices"] > 10_000
    assert group["parameters"]["bias"]["M"]["estimate"] > 0  # the name's bias, whatever the order asked
    assert "prediction" not in group
    assert "bias[M]" in cli_fit.text(result)


def test_fit_command_collective_side_by_side(logs_folder, capsys):
    """``--collective``: both fits' predictions with intervals over parameter draws, the targets and the reasons
    for what could not be predicted; ``--train baseline`` fits the baseline runs only and predicts the rest."""
    parser = argparse.ArgumentParser()
    cli_fit.add_parser(parser.add_subparsers(dest="command"))
    options = "--names M,Q --bootstrap 2 --draws 3 --replicas 60 --folds 2 --collective --collective-steps 2 --progress"
    options += " --random-effects --window-table 1 --flip-targets all --drift --fit-drift"
    args = parser.parse_args(["fit", str(logs_folder), *options.split(), "--train", "baseline"])
    result = cli_fit.run(args)
    json.dumps(result)
    (group,) = result["models"]["synth"]["groups"]
    assert group["train"] == "baseline" and group["collective_fit"]["fitted"]
    effect = group["random_effects"]
    assert effect["fitted"] and effect["sd"] >= 0 and isinstance(effect["selected"], bool)
    assert effect["n_runs"] == 150 and effect["n_first_moves"] == 150 * N_AGENTS  # one per agent and run
    assert group["n_runs"] == 150  # the baseline runs only
    drift = group["drift"]  # logs without drift: any shocks found are tiny
    assert drift["fitted"] and set(drift["by_rounds"]) == {1, 2, 4, 8}
    assert all(v["sd"] < 0.3 for v in drift["by_rounds"].values())
    fitted_drift = group["collective_fit"]["drift"]  # --fit-drift: fitted from the best held-out block length
    assert fitted_drift["rounds"] in {1, 2, 4, 8} and fitted_drift["sd"] > 0
    assert f"shared drift, sd {fitted_drift['sd']:.3g}" in group["prediction"]["collective"]["parameter_draws"]
    assert result["settings"]["flip_targets"] == "all"  # none here: no committed run is fitted (--train baseline)
    assert not [t for t in group["collective_fit"]["targets"] if "k" in t]
    for fit in ("choice_only", "collective"):
        prediction = group["prediction"][fit]
        (base,) = prediction["baseline"]
        assert base["predicted"]["draws"] == 3 and len(base["predicted"]["stop_rounds"]["interval"]) == 2
        assert base["observed"]["winner_interval"]["M"][0] <= base["observed"]["winner_share"]["M"]
        (tipping,) = prediction["tipping"]  # predicted although no committed run was fitted
        assert set(tipping["predicted"]["p_flip"]) == {str(k) for k in range(K + 1)}
        check, design = tipping["predicted"]["flips_check"], tipping["predicted"]["design"]
        assert 0 < check["p_value"] <= 1 and check["largest_gap_k"] in {int(k) for k in design}
        assert set(tipping["predicted"]["p_flip_design"]) == set(design) == set(tipping["observed"]["runs_flipped"])
        assert {t["condition"].split()[0] for t in prediction["targets"]} == {"baseline", "critical"}
        for target in prediction["targets"]:  # how sharp each target is
            chances = [
                target[k] for k in ("stop_target_chance", "winner_target_chance", "target_chance") if k in target
            ]
            p_value = target.get("stop_p_value", target.get("flips_p_value"))
            assert chances and all(0 <= c <= 1 for c in chances) and 0 < p_value <= 1, target
        summary = prediction["targets_summary"]  # stop and winners per baseline file, one per series
        assert summary["of"] == 3 and 0 <= summary["met"] <= 3 and 0 <= summary["expected_if_true"] <= 3
        assert isinstance(prediction["not_predicted"], list)
    table = group["window_table"]  # the model-free reference beside both fits
    assert table["simulated"] and table["baseline"][0]["predicted"]["replicas"] == 60
    assert "collective fit" in capsys.readouterr().err  # progress on stderr
    assert "met by the prediction itself in a share" in cli_fit.text(result)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train": "some"}, "train must be one of"),
        ({"draws": 0}, "draws must be an integer >= 1, got 0"),
        ({"names": ["Q", "Z"]}, "'Q,Z'"),
        ({"policy": "lookup"}, "'lookup'"),
        ({"replicas": -1}, "-1"),
        ({"bootstrap": -2}, "-2"),
        ({"folds": 1}, "folds must be an integer >= 2, got 1"),
        ({"drift": True, "fit_drift": True}, "fit_drift needs drift=True and collective=True"),
    ],
)
def test_fit_errors_name_the_bad_value(logs_folder, options, message):
    with pytest.raises(ValueError, match=message):
        fit_path(logs_folder, **({"bootstrap": 0, "replicas": 0} | options))


def test_flip_targets_default_to_every_k():
    """A bare ``--flip-targets`` fits P(flip) at every observed k; ``deciding`` only at the k that decide."""
    from jaxconv.cli.main import build_parser

    parse = build_parser().parse_args
    assert parse(["fit", "--flip-targets"]).flip_targets == "all"
    assert parse(["fit", "--flip-targets", "deciding"]).flip_targets == "deciding"
    assert parse(["fit"]).flip_targets is None


def test_parse_names():
    assert cli_fit.parse_names("Q, M") == ["Q", "M"]
    for bad in ("Q", "Q,,M", "Q,Q"):
        with pytest.raises(ValueError, match=repr(bad)):
            cli_fit.parse_names(bad)


@pytest.mark.data
def test_real_logs_fit(ai_norms_dir):
    result = fit_path(ai_norms_dir / "claude_data.zip", names=["Q", "M"], bootstrap=2, replicas=0)
    (group,) = result["models"]["claude"]["groups"]
    assert group["n_runs"] > 100 and group["names"] == ["Q", "M"]
    scores = group["log_likelihood_per_choice"]
    assert scores["softmax"]["held_out"] > scores["best-response"]["held_out"] > scores["uniform"]["held_out"]
    assert result["models"]["claude"]["tidy_mismatches"] == 0


def test_library_and_experiment_never_import_the_cli():
    """Layering: the estimation modules and experiments/llm_fit.py do not import ``jaxconv.cli``."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [*sorted((root / "jaxconv" / "estimate").glob("*.py")), root / "experiments" / "llm_fit.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m.startswith("jaxconv.cli") for m in modules), f"{path.name} imports {modules}"


def test_critical_mass_met_within_one_agent():
    from jaxconv.estimate.predict import critical_mass_met

    assert critical_mass_met(10, 10) and critical_mass_met(10, 9) and critical_mass_met(10, 11)
    assert not critical_mass_met(10, 12) and not critical_mass_met(14, None) and not critical_mass_met(None, 3)
    assert critical_mass_met(None, None)  # no k flipped, observed or predicted
