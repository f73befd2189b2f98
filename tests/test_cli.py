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
        (["sweep", "best-response"], ["--vary NAME=V1,V2,...", "(default: 0.25)", "--out FILE, --replicas-out FILE"]),
        (["simulate", "naming-game"], ["--graph GRAPH", "(default: complete)", "--checkpoint DIR", "--no-progress"]),
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


# ----- shared options of the simulating commands -----------------------------------------------------------------
def _json(capsys, *argv):
    status, out, err = _run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def _csv(path) -> dict:
    """A --replicas-out CSV as columns of numbers (text columns as strings)."""
    import csv

    import numpy as np

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {}
    for name in rows[0]:
        cells = [row[name] for row in rows]
        try:
            columns[name] = np.array([float(cell) for cell in cells])
        except ValueError:
            columns[name] = np.array(cells)
    return columns


TIMINGS = ("interactions_per_second", "compile_seconds", "run_seconds", "checkpoint", "replicas_out")


def _outcomes(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMINGS}


NAMING = ["simulate", "naming-game", "--agents", "8", "--replicas", "16", "--steps", "160", "--seed", "5"]
MEMORY = ["simulate", "memory-game", "--agents", "6", "--memory", "2", "--replicas", "16", "--rounds", "8"]


def test_replicas_out_round_trip_and_standard_errors(capsys, tmp_path):
    """--replicas-out writes the engine's per-replica summaries (CSV and NPZ hold the same numbers); the JSON's
    means and standard errors are those of these rows; the JSON carries seed, parameters and version."""
    import jax
    import numpy as np

    import jaxconv
    from jaxconv import NamingGame, ensemble, topology

    argv = [*NAMING, "--graph", "ring", "--graph-param", "k=4", "--committed", "2", "--committed-mode", "converted"]
    result = _json(capsys, *argv, "--replicas-out", str(tmp_path / "r.csv"))
    assert _json(capsys, *argv, "--replicas-out", str(tmp_path / "r.npz"))["consensus_fraction"] is not None
    table, arrays = _csv(tmp_path / "r.csv"), np.load(tmp_path / "r.npz")
    game = NamingGame(8, committed=2, committed_mode="converted", graph=topology.ring(8, 4))
    direct = ensemble(jax.random.key(5), game, 16, 160, 8).summary
    assert list(table) == ["replica", "seed", *sorted(direct)] and set(arrays.files) == set(table)
    for name, values in direct.items():
        np.testing.assert_array_equal(table[name], np.asarray(values, float), err_msg=name)
        np.testing.assert_array_equal(arrays[name], values, err_msg=name)
    np.testing.assert_array_equal(table["replica"], np.arange(16))
    assert set(table["seed"]) == {5.0}

    reached = table["consensus_time"][table["consensus_time"] >= 0]
    assert len(reached) >= 2
    assert result["consensus_time_mean"] == pytest.approx(reached.mean())
    assert result["consensus_time_mean_se"] == pytest.approx(reached.std(ddof=1) / np.sqrt(len(reached)))
    flips = table["committed_flip"]
    assert result["committed_flip_fraction_se"] == pytest.approx(flips.std(ddof=1) / 4)
    assert len(result["success_rate_by_round_se"]) == len(result["success_rate_by_round"]) == 20
    means = [k for k in result if k.endswith(("_mean", "_fraction", "_by_round")) and k != "consensus_time"]
    assert means and all(f"{k}_se" in result for k in means), means
    assert result["graph"] == {"kind": "ring", "n_nodes": 8, "mean_degree": 4.0}
    assert result["seed"] == 5 and result["version"] == jaxconv.__version__
    parameters = result["parameters"]
    assert parameters["agents"] == 8 and parameters["graph_param"] == ["k=4"] and parameters["seed"] == 5
    assert "devices" not in parameters and "replicas_out" not in parameters  # execution, not parameters


@pytest.mark.parametrize("game", ["memory-game", "best-response"])
def test_memory_games_json_and_replicas_out(capsys, tmp_path, game):
    import numpy as np

    argv = ["simulate", game, "--agents", "6", "--memory", "2", "--replicas", "16", "--rounds", "8", "--seed", "2"]
    result = _json(capsys, *argv, "--replicas-out", str(tmp_path / "r.csv"))
    table = _csv(tmp_path / "r.csv")
    assert len(table["replica"]) == 16 and {"stop_time", "winner", "flipped", "consensus_time"} <= set(table)
    stopped = table["stop_time"] >= 0
    assert result["stopped_fraction"] == pytest.approx(stopped.mean())
    assert result["stopped_fraction_se"] == pytest.approx(stopped.std(ddof=1) / 4)
    assert result["winner_counts"] == {str(w): int(np.sum(stopped & (table["winner"] == w))) for w in (0, 1)}
    for key in ("consensus_fraction", "stop_time_mean_rounds", "success_rate_by_round", "running_fraction_by_round"):
        assert f"{key}_se" in result
    if game == "best-response":
        assert result["flip_fraction_se"] == pytest.approx(table["flipped"].std(ddof=1) / 4)
        assert len(result["pushed_share_by_round_se"]) == len(result["pushed_share_by_round"])
    assert result["seed"] == 2 and result["parameters"]["memory"] == 2


def test_winner_counts_count_stopped_runs_only(capsys):
    """Two rounds are fewer than the 3N interactions the stop rule needs: no run stops, so no run has won,
    although every run has a final majority."""
    result = _json(capsys, "simulate", "best-response", "--agents", "6", "--replicas", "8", "--rounds", "2")
    assert result["stopped_fraction"] == 0.0 and result["stop_time_mean_rounds"] is None
    assert result["winner_counts"] == {"0": 0, "1": 0}
    assert sum(result["final_majority_counts"].values()) == 8


def test_graph_for_every_game_equals_the_api(capsys, tmp_path):
    import jax
    import numpy as np

    from jaxconv import MemoryGame, ensemble, topology

    for graph in (["--graph", "watts-strogatz", "--graph-param", "p=0.2"], ["--graph", "ws", "--graph-param", "4"]):
        result = _json(capsys, *MEMORY, "--seed", "3", *graph, "--replicas-out", str(tmp_path / "m.npz"))
        assert result["graph"]["kind"] == "watts_strogatz" or result["graph"]["kind"] == "ws", result["graph"]
        p = 0.2 if "p=0.2" in graph else 0.1
        game = MemoryGame(6, 2, 2, graph=topology.watts_strogatz(6, 4, p, seed=3))
        direct = ensemble(jax.random.key(3), game, 16, 48, 6).summary
        saved = np.load(tmp_path / "m.npz")
        for name, values in direct.items():
            np.testing.assert_array_equal(saved[name], values, err_msg=name)


@pytest.mark.parametrize(
    "flags, named",
    [
        (["naming-game", "--graph", "moon"], "'moon'"),
        (["naming-game", "--graph", "ring", "--graph-param", "q=3"], "'q=3'"),
        (["naming-game", "--graph", "ring", "--graph-param", "k=3"], "k=3"),
        (["naming-game", "--graph", "lattice", "--agents", "10"], "10"),
        (["naming-game", "--graph", "er", "--graph-param", "mean_degree=x"], "'mean_degree=x'"),
        (["naming-game", "--graph", "ring", "--committed", "2"], "committed_mode='added'"),
        (["memory-game", "--graph", "barabasi-albert", "--graph-param", "m=30"], "m=30"),
        (["best-response", "--graph", "regular", "--graph-param", "d=3", "--agents", "7"], "d"),
        (["memory-game", "--replicas-out", "table.txt"], "table.txt"),
        (["memory-game", "--chunk-size", "0"], "chunk-size"),
        (["best-response", "--num-processes", "2"], "--coordinator"),
    ],
)
def test_bad_options_are_one_line_errors_before_running(capsys, monkeypatch, flags, named):
    from jaxconv import engine

    def refuse(*args, **kwargs):
        raise AssertionError("ran")

    monkeypatch.setattr(engine, "timed_ensemble", refuse)
    monkeypatch.setattr(engine, "ensemble", refuse)
    status, out, err = _run(capsys, "simulate", *flags, "--replicas", "2")
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert named in err and err.startswith("jaxconv: error: ")


def test_checkpoint_resume(capsys, tmp_path):
    """A rerun with the same arguments reuses every finished chunk and gives the same results (and those of a run
    without checkpoints); another seed is another run: nothing reused; a corrupt chunk is refused by name."""
    argv = [*MEMORY, "--committed", "1", "--checkpoint", str(tmp_path / "ck"), "--chunk-size", "8"]
    first = _json(capsys, *argv)
    assert first["checkpoint"] == {
        "directory": str(tmp_path / "ck"),
        "chunks": 2,
        "chunks_reused": 0,
        "chunks_computed": 2,
    }
    files = sorted((tmp_path / "ck").glob("chunk-*.npz"))
    assert len(files) == 2 and first["compile_seconds"] is None
    again = _json(capsys, *argv)
    assert again["checkpoint"]["chunks_reused"] == 2 and again["checkpoint"]["chunks_computed"] == 0
    assert _outcomes(again) == _outcomes(first)
    assert sorted((tmp_path / "ck").glob("chunk-*.npz")) == files
    plain = _json(capsys, *MEMORY, "--committed", "1")
    assert _outcomes(plain) == _outcomes(first)
    other = _json(capsys, *argv, "--seed", "9")
    assert other["checkpoint"]["chunks_reused"] == 0 and len(list((tmp_path / "ck").glob("chunk-*.npz"))) == 4
    files[0].write_bytes(b"not a zip")
    status, out, err = _run(capsys, *argv)
    assert status == 2 and err.count("\n") == 1 and files[0].name in err


def test_progress_bar_goes_to_stderr(capsys, monkeypatch):
    import sys

    argv = [*MEMORY, "--rounds", "2", "--json"]
    status, out, err = _run(capsys, *argv, "--progress", "--chunk-size", "8")
    assert status == 0 and "replica chunks" in err and "2/2" in err
    assert json.loads(out)["replicas"] == 16
    status, out, err = _run(capsys, *argv, "--no-progress", "--chunk-size", "8")
    assert status == 0 and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # by default: a bar on a terminal, unless --json
    status, out, err = _run(capsys, *argv[:-1], "--chunk-size", "8")
    assert status == 0 and "replica chunks" in err and "replicas: 16" in out
    status, out, err = _run(capsys, *argv, "--chunk-size", "8")
    assert status == 0 and err == ""


# ----- sweep -----------------------------------------------------------------------------------------------------
def test_sweep_table_equals_direct_runs(capsys, tmp_path):
    """Every grid point's rows equal `simulate` with those options and the same seed, for a static option
    (--agents: one program each) crossed with an array parameter (--beta: one vmapped engine.sweep)."""
    import numpy as np

    table_path = tmp_path / "table.csv"
    argv = ["sweep", "naming-game", "--steps", "120", "--replicas", "8", "--seed", "4", "--vocabulary", "3"]
    result = _json(capsys, *argv, "--vary", "agents=6,8", "--vary", "beta=0.25,1", "--out", str(table_path))
    assert result["grid_points"] == 4 and result["rows"] == 32 and result["table"] == str(table_path)
    assert result["static_combinations"] == 2 and result["vectorized_sweeps"] == 2
    assert result["vary"] == {"agents": [6, 8], "beta": [0.25, 1.0]}
    assert [p["point"] for p in result["points"]] == [
        {"agents": 6, "beta": 0.25},
        {"agents": 6, "beta": 1.0},
        {"agents": 8, "beta": 0.25},
        {"agents": 8, "beta": 1.0},
    ]
    table = _csv(table_path)
    assert list(table)[:4] == ["agents", "beta", "replica", "seed"] and len(table["replica"]) == 32
    for point in result["points"][1:3]:  # one point of each static combination, beta from its sweep
        agents, beta = point["point"]["agents"], point["point"]["beta"]
        direct_path = tmp_path / "direct.csv"
        simulate = ["simulate", *argv[1:], "--agents", str(agents), "--beta", str(beta)]
        direct = _json(capsys, *simulate, "--replicas-out", str(direct_path))
        rows = (table["agents"] == agents) & (table["beta"] == beta)
        for name, values in _csv(direct_path).items():
            np.testing.assert_array_equal(table[name][rows], values, err_msg=name)
        for key in ("consensus_fraction", "consensus_fraction_se", "consensus_time_mean", "max_total_words_mean_se"):
            assert point[key] == direct[key], key


def test_sweep_memory_game_static_and_array_options(capsys, tmp_path):
    import numpy as np

    argv = ["sweep", "best-response", "--agents", "6", "--rounds", "6", "--replicas", "8", "--seed", "1"]
    argv += ["--vary", "graph=complete,ring", "--vary", "committed-fraction=0.2,0.5"]
    result = _json(capsys, *argv, "--out", str(tmp_path / "t.npz"))
    assert result["grid_points"] == 4 and result["static_combinations"] == 2 and result["vectorized_sweeps"] == 2
    table = np.load(tmp_path / "t.npz")
    assert table["graph"].shape == (32,) and set(table["graph"]) == {"complete", "ring"}
    rows = (table["committed_fraction"] == 0.5) & (table["graph"] == "ring")
    direct_path = tmp_path / "d.npz"
    simulate = ["simulate", *argv[1:10], "--committed-fraction", "0.5", "--graph", "ring"]
    direct = _json(capsys, *simulate, "--replicas-out", str(direct_path))
    with np.load(direct_path) as saved:
        for name in saved.files:
            np.testing.assert_array_equal(table[name][rows], saved[name], err_msg=name)
    point = next(p for p in result["points"] if p["point"] == {"graph": "ring", "committed_fraction": 0.5})
    assert point["flip_fraction"] == direct["flip_fraction"] and point["winner_counts"] == direct["winner_counts"]
    checkpoint = ["--checkpoint", str(tmp_path / "ck"), "--chunk-size", "8"]
    first = _json(capsys, *argv, *checkpoint, "--out", str(tmp_path / "first.npz"))
    again = _json(capsys, *argv, *checkpoint, "--out", str(tmp_path / "again.npz"))
    assert first["checkpoint"]["chunks"] == 2 and first["checkpoint"]["chunks_computed"] == 2  # one per group
    assert again["checkpoint"]["chunks_reused"] == 2 and again["points"] == first["points"] == result["points"]
    with np.load(tmp_path / "first.npz") as one, np.load(tmp_path / "again.npz") as two:
        for name in table.files:
            np.testing.assert_array_equal(one[name], table[name], err_msg=name)
            np.testing.assert_array_equal(two[name], table[name], err_msg=name)


@pytest.mark.parametrize(
    "vary, named",
    [
        ("speed=1,2", "'speed'"),
        ("replicas=2,4", "'replicas'"),
        ("beta=0.5,x", "'x'"),
        ("beta=0.5,2", "2"),
        ("beta", "'beta'"),
        ("agents=", "'agents='"),
        ("graph=ring,moon", "'moon'"),
    ],
)
def test_sweep_bad_vary_is_a_one_line_error(capsys, monkeypatch, vary, named):
    from jaxconv import engine

    def refuse(*args, **kwargs):
        raise AssertionError("ran")

    monkeypatch.setattr(engine, "sweep", refuse)
    monkeypatch.setattr(engine, "ensemble", refuse)
    status, out, err = _run(capsys, "sweep", "naming-game", "--agents", "6", "--vary", vary)
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert named in err and err.startswith("jaxconv: error: ")


def test_sweep_of_an_option_with_several_values_is_refused(capsys):
    status, _, err = _run(capsys, "sweep", "memory-game", "--vary", "payoffs=1,2")
    assert status == 2 and "several values" in err and err.count("\n") == 1


def _keys(value, skip=("parameters", "point", "vary")) -> set[str]:
    """Keys of a JSON object and of its nested objects, except names (``"0"``, ``"1"``) and the keys inside
    ``skip`` (option names, documented by --help)."""
    keys = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.isdigit():
                keys.add(key)
            if key not in skip:
                keys |= _keys(item, skip)
    elif isinstance(value, list):
        for item in value[:1]:
            keys |= _keys(item, skip)
    return keys


def test_docs_cli_page_explains_every_key(capsys, tmp_path):
    """docs/cli.md names every key of the simulating commands' JSON (a key ``X_se`` through its ``X``)."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert "Command line: cli.md" in (Path(__file__).resolve().parents[1] / "mkdocs.yml").read_text()
    check = ["--checkpoint", str(tmp_path / "ck"), "--replicas-out", str(tmp_path / "r.csv")]
    commands = [
        [*NAMING, "--committed", "1", "--replicas", "1", *check],
        [*MEMORY, "--committed", "1", *check],
        ["sweep", "memory-game", "--agents", "6", "--rounds", "3", "--replicas", "2", "--vary", "memory=1,2", *check],
    ]
    for argv in commands:
        keys = _keys(_json(capsys, *argv))
        missing = sorted(k for k in keys if f"`{k.removesuffix('_se')}`" not in page)
        assert not missing, (argv[:2], missing)


def test_naming_game_stepping_is_reported_and_blocks_equal_any_block_size(capsys):
    """Slot inventories step in conflict-free blocks by default (the path says so); the block size does not change
    a trajectory (the blocks apply the same interaction sequence)."""
    argv = ["simulate", "naming-game", "--agents", "64", "--inventory", "slots", "--replicas", "1"]
    argv += ["--steps", "20000", "--until-consensus"]
    default = _json(capsys, *argv)
    assert default["stepping"] == "blocks" and "conflict-free blocks" in default["path"]
    other = _json(capsys, *argv, "--block-size", "3")
    assert other["consensus_time"] == default["consensus_time"] > 0
    sequential = _json(capsys, *argv, "--stepping", "sequential")
    assert sequential["stepping"] == "sequential" and "one step at a time" in sequential["path"]
    status, _, err = _run(capsys, *argv, "--stepping", "blocks", "--schedule", "matching", "--json")
    assert status == 2 and "stepping='blocks'" in err and len(err.strip().splitlines()) == 1
