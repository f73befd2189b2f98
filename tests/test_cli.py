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


def test_version_and_bare_command(capsys):
    import jaxconv

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jaxconv {jaxconv.__version__}"
    status, out, err = _run(capsys)
    assert status == 0 and err == ""
    assert out.startswith("usage: jaxconv") and "simulate" in out and "tipping" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["bogus"], "jaxconv: error: argument COMMAND: invalid choice: 'bogus'"),
        (["simulate", "naming-game", "--agents", "x"], "jaxconv: error: simulate naming-game: argument --agents"),
        (["tipping", "best-response", "--memory", "x"], "jaxconv: error: tipping best-response: argument --memory"),
        (["data", "fetch", "--to"], "jaxconv: error: data fetch: argument --to"),
    ],
)
def test_errors_have_one_prefix(capsys, argv, expected):
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(expected), err
    assert err.count("jaxconv") == 1 or "jaxconv data fetch" in err


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["simulate", "naming-game"], ["--replicas REPLICAS   independent runs (default: 256)", "(default: open)"]),
        (["simulate", "memory-game"], ["(default: best-response)", "(default: 256)", "(default: (100.0, -50.0))"]),
        (["simulate", "best-response"], ["(default: 0.25)", "--out FILE"]),
        (["fit"], ["(default: softmax)", "(default: 10000)", "(default: the fetched logs"]),
        (["tipping", "binary-naming-game"], ["(default: gradient)", "(default: 0.003)", "--out FILE"]),
        (["data", "summary"], ["(default: the fetched logs)", "--out FILE"]),
        (["data", "fetch"], ["(default: all four", "(default: pinned commit)"]),
    ],
)
def test_help_shows_defaults(capsys, argv, shown):
    assert main([*argv, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in shown:
        assert " ".join(text.split()) in out, (text, out)


def test_out_writes_the_json(capsys, tmp_path):
    argv = ["simulate", "naming-game", "--agents", "6", "--replicas", "2", "--steps", "60"]
    target = tmp_path / "result.json"
    status, out, err = _run(capsys, *argv, "--out", str(target))
    assert status == 0, err
    written = json.loads(target.read_text())
    assert written["agents"] == 6 and "consensus_fraction" in written
    assert "consensus_fraction: " in out  # the text summary still goes to stdout
    status, out, _ = _run(capsys, *argv, "--json", "--out", str(target))
    assert status == 0 and json.loads(out).keys() == json.loads(target.read_text()).keys()


def test_out_in_a_missing_folder_fails_before_running(capsys, tmp_path, monkeypatch):
    from jaxconv import engine

    def refuse(*args, **kwargs):
        raise AssertionError("ran")

    monkeypatch.setattr(engine, "timed_ensemble", refuse)
    target = tmp_path / "missing" / "result.json"
    status, out, err = _run(capsys, "simulate", "memory-game", "--out", str(target))
    assert status == 2 and err.count("\n") == 1 and "no such folder" in err
    assert not target.exists()
