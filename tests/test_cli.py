"""The command line: one JSON object, one-line errors naming the bad value."""

import json

import pytest

from jaxconv.cli import main


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_simulate_naming_game_json(capsys):
    status, out, err = _run(
        capsys,
        "simulate",
        "naming-game",
        "--agents",
        "10",
        "--replicas",
        "16",
        "--steps",
        "300",
        "--seed",
        "1",
        "--vocabulary",
        "2",
        "--committed",
        "2",
        "--initial",
        "prepared",
        "--json",
    )
    assert status == 0, err
    result = json.loads(out)
    for key in (
        "interactions_per_second",
        "compile_seconds",
        "consensus_fraction",
        "consensus_time_mean",
        "max_total_words_mean",
        "success_rate_by_round",
        "committed_flip_fraction",
    ):
        assert key in result
    assert len(result["success_rate_by_round"]) == -(-300 // 12)  # population of 12, rounded up to whole rounds
    assert all(0.0 <= r <= 1.0 for r in result["success_rate_by_round"])
    assert 0.0 <= result["committed_flip_fraction"] <= 1.0
    assert result["interactions_per_second"] > 0


def test_same_seed_same_json(capsys):
    argv = ["simulate", "naming-game", "--agents", "8", "--replicas", "4", "--steps", "80", "--seed", "3", "--json"]
    first, second = json.loads(_run(capsys, *argv)[1]), json.loads(_run(capsys, *argv)[1])
    for key in ("consensus_fraction", "consensus_time_mean", "max_total_words_mean", "success_rate_by_round"):
        assert first[key] == second[key]


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--agents", "1"], "1"),
        (["--vocabulary", "0"], "0"),
        (["--vocabulary", "lots"], "lots"),
        (["--beta", "1.5"], "1.5"),
        (["--committed", "30", "--agents", "20"], "30"),
        (["--steps", "0"], "0"),
        (["--schedule", "ring"], "ring"),
        (["--replicas", "0"], "0"),
    ],
)
def test_bad_input_is_a_one_line_error(capsys, flags, named):
    status, out, err = _run(capsys, "simulate", "naming-game", "--replicas", "2", "--steps", "10", *flags)
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert named in err and "Traceback" not in err
