"""Summaries: winners, stop times, the flip criterion and critical masses on hand-made runs."""

import json

import numpy as np
import pytest

from jaxconv.data.logs import load_logs
from jaxconv.data.summary import (
    critical_masses,
    flip_outcome,
    has_converged,
    mean_pushed_share,
    model_names,
    pushed_share_by_round,
    run_winner,
    stop_time_rounds,
    summarize_path,
    summary_text,
)
from jaxconv.data.synthetic import dumps, game_file_name, write_fixture_logs

N = 4


def _run(answers, committed=(), players=None):
    """A stored run of N agents; ``answers`` (T, 2) names, players cycle through the pairs (1,2), (3,4)."""
    players = players or [[1, 2] if t % 2 == 0 else [3, 4] for t in range(len(answers))]
    return {
        "tracker": {"players": players, "answers": answers, "outcome": [int(a == b) for a, b in answers]},
        "simulation": {a: {"committed_tag": a in committed} for a in range(1, N + 1)},
        "convergence": {"converged_index": 0, "committed_to": "M"},
    }


def _load(tmp_path, name, runs):
    path = tmp_path / name
    path.write_bytes(dumps(dict(enumerate(runs))))
    return load_logs(path).files[0]


def test_winner_is_the_majority_of_the_final_3n_interactions(tmp_path):
    early = [["Q", "Q"]] * 20
    log = _load(tmp_path, "w.pkl", [_run(early + [["M", "M"]] * 12), _run(early + [["M", "Q"]] * 12)])
    assert log.names == ["Q", "M"]
    assert run_winner(log.runs[0], N, log.names) == "M"
    assert run_winner(log.runs[1], N, log.names) == "Q"  # a tie goes to the earlier name of the list
    assert stop_time_rounds(log.runs[0], N) == 32 / N
    assert has_converged(log.runs[0], N) and not has_converged(log.runs[1], N)


def test_pushed_share_counts_only_non_committed_answers(tmp_path):
    # agent 1 committed; rounds of N = 4 interactions; the trailing incomplete round counts
    answers = [["M", "Q"], ["Q", "Q"], ["M", "M"], ["M", "Q"]] + [["M", "M"]] * 4 + [["M", "M"]] * 2
    log = _load(tmp_path, "s.pkl", [_run(answers, committed={1})])
    share = pushed_share_by_round(log.runs[0], "M", N)
    # round 0, free answers: (Q) (Q Q) (M) (M Q) -> 2 of 6; round 1: 6 of 6; round 2 (half): 3 of 3
    np.testing.assert_allclose(share, [2 / 6, 1.0, 1.0])


def test_converged_runs_are_padded_with_share_one_and_others_are_not(tmp_path):
    converged = _run([["M", "M"]] * 12)  # 3 rounds at 1.0: padded to 4 + 30 rounds of share 1
    long = _run([["Q", "Q"]] * 8 + [["M", "Q"]] * 8)  # 0, 0, 0.5, 0.5: not converged, not padded
    log = _load(tmp_path, "h.pkl", [converged, long])
    np.testing.assert_allclose(mean_pushed_share(log.runs, "M", N, 6), [0.5, 0.5, 0.75, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(mean_pushed_share(log.runs, "M", N, 1), [0.5])
    assert len(mean_pushed_share(log.runs, "M", N, None)) == 4 + 30
    with pytest.raises(ValueError, match="horizon_rounds must be a positive number of rounds or None, got 0"):
        mean_pushed_share(log.runs, "M", N, 0)


def _run_with_shares(counts):
    answers = []
    for m in counts:  # m of the 8 answers of a round are M
        flat = ["M"] * m + ["Q"] * (8 - m)
        answers += [flat[i : i + 2] for i in range(0, 8, 2)]
    return _run(answers)


def test_flip_is_a_sum_of_the_last_three_rounds_of_at_least_2849(tmp_path):
    passing = _load(tmp_path, "p.pkl", [_run_with_shares([0, 8, 8, 8])])
    assert flip_outcome(passing.runs, "M", N, None)["flipped"]
    # one run at 7/8 in its last 3 rounds: 2.625 < 2.849, the other converged and padded with 1
    mixed = _load(tmp_path, "f.pkl", [_run_with_shares([0, 7, 7, 7]), _run_with_shares([8, 8, 8, 8])])
    outcome = flip_outcome(mixed.runs, "M", N, 4)
    assert outcome["last_rounds_share"] == [0.9375, 0.9375, 0.9375]
    assert outcome["last_rounds_sum"] == 2.8125 and not outcome["flipped"]
    # .9375 + 1 + 1 = 2.9375: flipped although one round is below .95
    dip = _load(tmp_path, "g.pkl", [_run_with_shares([8, 7, 8, 8]), _run_with_shares([8, 8, 8, 8])])
    outcome = flip_outcome(dip.runs, "M", N, 4)
    assert min(outcome["last_rounds_share"]) < 0.95 and outcome["flipped"]


def test_a_late_flip_is_outside_the_horizon(tmp_path):
    late = _load(tmp_path, "l.pkl", [_run([["Q", "Q"]] * 4 * 10 + [["M", "M"]] * 4 * 3)])
    assert flip_outcome(late.runs, "M", N, None)["flipped"]
    assert not flip_outcome(late.runs, "M", N, 10)["flipped"]


def test_model_names_merge_a_sized_and_an_unsized_name():
    merged = {"llama31": "llama31", "llama31_70b": "llama31", "claude": "claude"}
    assert model_names(["llama31", "llama31_70b", "claude"]) == merged
    assert model_names(["llama3_70b"]) == {"llama3_70b": "llama3"}
    assert model_names(["m_8b", "m_70b"]) == {"m_8b": "m_8b", "m_70b": "m_70b"}  # two sizes: kept apart


def _series(tmp_path, flips_by_k: dict[int, bool]):
    tmp_path.mkdir(exist_ok=True)
    for k, flips in flips_by_k.items():
        kind = "evolved" if k == 0 else "committed"
        name = game_file_name("m", kind, ["Q", "M"], memory=2, n_agents=N, committed=k)
        pushed = [["M", "M"]] * 16 if flips else [["Q", "Q"]] * 16
        (tmp_path / name).write_bytes(dumps({0: _run(pushed), 1: _run(pushed)}))
    return load_logs(tmp_path).files


def test_critical_mass_is_the_smallest_flipping_k(tmp_path):
    (series,) = critical_masses(_series(tmp_path, {0: False, 1: False, 2: True, 3: True}))
    assert (series["incumbent"], series["pushed"], series["n_agents"]) == ("Q", "M", N)
    assert series["flipped"] == {"0": False, "1": False, "2": True, "3": True}
    assert (series["critical_k"], series["critical_mass"], series["critical_fraction"]) == (2, "2/4", 0.5)
    assert series["all_larger_k_flip"] and len(series["files"]) == 4


def test_no_flip_and_non_monotone_series(tmp_path):
    (none,) = critical_masses(_series(tmp_path / "a", {0: False, 1: False}))
    assert none["critical_k"] is None and none["critical_mass"] is None
    (odd,) = critical_masses(_series(tmp_path / "b", {0: True, 1: False}))
    assert odd["critical_mass"] == "0/4" and not odd["all_larger_k_flip"]


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_fixture_logs(tmp_path_factory.mktemp("logs"), seed=3)


def test_summarize_path_is_json_ready_and_complete(fixture):
    summary = summarize_path(fixture.zip)
    assert json.loads(json.dumps(summary)) == summary
    files = {name.rsplit("/", 1)[-1]: value for name, value in summary["files"].items()}
    assert set(files) == set(fixture.files.values())
    game = files[fixture.files["game"]]
    assert game["metadata"]["kind"] == "game" and game["n_runs"] == 4
    assert sum(game["winners"].values()) == 4 and game["n_converged"] == 4
    assert game["stop_time_rounds_mean"] == pytest.approx(np.mean(game["stop_time_rounds"]))
    committed = files[fixture.files["committed_3"]]
    assert committed["flip"]["k"] == 3 and committed["flip"]["pushed"] == "M"
    assert len(committed["flip"]["mean_share_by_round"]) == 30
    assert summary["critical_mass"][0]["files"] and summary["critical_mass"][0]["horizon_rounds"] == 30
    assert {s["run"] for s in summary["skipped"] if "synth_data/synth_data/" not in s["file"]} == {2, 4}


def test_single_prompt_summaries(fixture):
    files = {n.rsplit("/", 1)[-1]: v for n, v in summarize_path(fixture.folder)["files"].items()}
    lose = files[fixture.files["bias_q_m"]]["single_prompt"]
    assert lose["test"] == "lose_shift" and lose["p_test"] == lose["p"]["M"] and lose["n"] == 100
    stay = files[fixture.files["bias_q_q"]]["single_prompt"]
    assert stay["test"] == "win_stay" and stay["p_test"] == stay["p"]["Q"]
    bias = files[fixture.files["no_memory"]]["single_prompt"]
    assert bias["test"] == "individual_bias" and sum(bias["counts"].values()) == 200
    assert files[fixture.files["meta"]]["metadata"]["kind"] == "meta"


def test_summary_text_has_a_line_per_file_series_and_skip(fixture):
    summary = summarize_path(fixture.zip)
    lines = summary_text(summary).splitlines()
    assert len(lines) == 1 + len(summary["files"]) + len(summary["critical_mass"]) + 1 + len(summary["skipped"])
    assert "critical mass synth N=6 Q -> M: " in summary_text(summary)
    assert any(line.endswith(": empty run") and " run 4" in line for line in lines)


def test_cli_data_summary(fixture, capsys):
    from jaxconv.cli import main

    assert main(["data", "summary", str(fixture.zip), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["critical_mass"][0]["pushed"] == "M"
    assert main(["data", "summary", str(fixture.zip.with_name("absent.zip")), "--json"]) == 2
