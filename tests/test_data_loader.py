"""Loading logs from zips, folders and single files: quirks tolerated and reported, bad files isolated."""

import pickle
import shutil
import zipfile

import numpy as np
import pytest

from jaxconv.data.logs import CorruptArchiveError, LogSchemaError, load_logs
from jaxconv.data.safe_pickle import CorruptPickleError, UnsafePickleError
from jaxconv.data.synthetic import dumps, simulate_run, write_fixture_logs, write_zip


def _hostile(marker) -> bytes:
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_fixture_logs(tmp_path_factory.mktemp("logs"), seed=1)


def _run(seed=0, **kwargs):
    return simulate_run(np.random.default_rng(seed), n_agents=4, names=["Q", "M"], memory=2, **kwargs)


def _by_base(collection):
    return {log.name.rsplit("/", 1)[-1]: log for log in collection.files}


def test_zip_with_nested_duplicate_folder_loads_each_file_once(fixture):
    collection = load_logs(fixture.zip)
    with zipfile.ZipFile(fixture.zip) as archive:
        n_members = len(archive.namelist())
    assert n_members == 2 * len(fixture.files)
    assert sorted(_by_base(collection)) == sorted(fixture.files.values())
    duplicates = [s for s in collection.skipped if "duplicate of" in s.reason]
    assert len(duplicates) == len(fixture.files)
    assert all(s.file.startswith("synth_data/synth_data/") and s.run is None for s in duplicates)


def test_zip_and_folder_give_the_same_runs(fixture):
    from_zip, from_folder = _by_base(load_logs(fixture.zip)), _by_base(load_logs(fixture.folder))
    assert from_zip.keys() == from_folder.keys()
    for name, log in from_zip.items():
        other = from_folder[name]
        assert [r.key for r in log.runs] == [r.key for r in other.runs]
        for a, b in zip(log.runs, other.runs, strict=True):
            np.testing.assert_array_equal(a.players, b.players)
            np.testing.assert_array_equal(a.answers, b.answers)


def test_missing_and_empty_runs_are_reported(fixture):
    collection = load_logs(fixture.folder)
    game = collection.file(fixture.files["game"])
    assert [r.key for r in game.runs] == [0, 1, 3, 5]
    reasons = {s.run: s.reason for s in collection.skipped if s.file == game.name}
    assert reasons == {2: "run missing (no such key in the file)", 4: "empty run"}
    assert game.rules is not None


def test_other_tracker_keys_and_absent_rules(fixture):
    log = load_logs(fixture.folder).file(fixture.files["game_w3"])
    assert len(log.runs) == 5 and log.rules is None
    assert "no 'rules' (system prompt) stored" in log.notes
    assert any("'pairs' for 'players'" in note and "'choices' for 'answers'" in note for note in log.notes)
    assert log.names == ["Q", "M", "X"]
    run = log.runs[0]
    assert run.players.shape == run.answers.shape == (run.n_interactions, 2)
    np.testing.assert_array_equal(run.success, run.answers[:, 0] == run.answers[:, 1])


def test_committed_runs_of_different_lengths_and_their_agents(fixture):
    log = load_logs(fixture.folder).file(fixture.files["committed_3"])
    assert len({r.n_interactions for r in log.runs}) > 1
    for run in log.runs:
        assert len(run.committed_agents) == 3
        committed = np.isin(run.players, list(run.committed_agents))
        assert set(run.answers[committed]) == {"M"}
        assert run.committed_to == "M"


def test_single_prompt_and_meta_files(fixture):
    collection = load_logs(fixture.folder)
    test = collection.file(fixture.files["bias_q_m"]).single
    assert (test.own, test.partner, test.payoff, len(test.answers)) == (["Q"], ["M"], [-50], 100)
    meta = collection.file(fixture.files["meta"])
    assert meta.meta.kind == "meta" and not meta.runs and meta.single is None


def test_bias_test_memory_is_checked_against_its_file_name(tmp_path):
    content = {
        "simulation": {"my_history": ["M"], "partner_history": ["M"], "outcome": [100]},
        "tracker": {"answers": ["M"]},
    }
    log = _load_single(tmp_path, "m_bias_test_Q_M.pkl", dumps(content)).files[0]
    assert log.single.own == ["M"] and any("differs from the stored one" in note for note in log.notes)


def test_corrupt_zip_names_the_file(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(CorruptArchiveError, match="broken.zip: not a readable zip archive"):
        load_logs(bad)


def test_truncated_zip_names_the_file(fixture, tmp_path):
    data = fixture.zip.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArchiveError, match="cut.zip"):
        load_logs(cut)


def test_corrupt_zip_member_is_skipped_and_others_load(tmp_path):
    good, bad = dumps({0: _run(0)}), dumps({0: _run(1)})
    path = write_zip(tmp_path / "logs.zip", {"d/good.pkl": good, "d/bad.pkl": bad})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"d/bad.pkl") + len("d/bad.pkl") + 10  # inside bad.pkl's compressed data
    raw[start : start + 20] = bytes(20)
    path.write_bytes(bytes(raw))
    collection = load_logs(path)
    assert [log.name for log in collection.files] == ["d/good.pkl"]
    (skip,) = collection.skipped
    assert skip.file == "d/bad.pkl" and "cannot read zip member" in skip.reason
    with pytest.raises(CorruptArchiveError, match="d/bad.pkl"):
        load_logs(path, strict=True)


def test_hostile_member_is_refused_others_load_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    path = write_zip(tmp_path / "mixed.zip", {"d/evil.pkl": _hostile(marker), "d/good.pkl": dumps({0: _run()})})
    collection = load_logs(path)
    assert [log.name for log in collection.files] == ["d/good.pkl"]
    (skip,) = collection.skipped
    assert skip.file == "d/evil.pkl" and "refused global os.system" in skip.reason
    with pytest.raises(UnsafePickleError, match="d/evil.pkl"):
        load_logs(path, strict=True)
    with pytest.raises(UnsafePickleError, match="evil.pkl: refused global os.system"):
        _load_single(tmp_path, "evil.pkl", _hostile(marker))
    assert not marker.exists()


def _load_single(folder, name, data):
    path = folder / name
    path.write_bytes(data)
    return load_logs(path)


def test_truncated_pickle_in_a_folder_is_skipped(tmp_path):
    whole = dumps({0: _run()})
    (tmp_path / "a_game.pkl").write_bytes(whole)
    (tmp_path / "b_cut.pkl").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "notes.txt").write_text("hello")
    collection = load_logs(tmp_path)
    assert [log.name for log in collection.files] == ["a_game.pkl"]
    reasons = {s.file: s.reason for s in collection.skipped}
    assert reasons == {
        "b_cut.pkl": "truncated pickle (data ended before the STOP opcode)",
        "notes.txt": "not a .pkl file",
    }
    with pytest.raises(CorruptPickleError, match="b_cut.pkl"):
        load_logs(tmp_path, strict=True)
    with pytest.raises(CorruptPickleError, match="cut.pkl: truncated"):
        _load_single(tmp_path, "cut.pkl", whole[:100])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2, 3], "expected a dict of runs, got a list"),
        ({"rules": "r", "other": 1}, "no runs: no integer keys and no tracker"),
        ({}, "no runs"),
    ],
)
def test_wrong_schema_names_the_file(tmp_path, content, message):
    with pytest.raises(LogSchemaError, match=f"^wrong.pkl: {message}"):
        _load_single(tmp_path, "wrong.pkl", pickle.dumps(content))


def test_wrong_schema_in_a_folder_is_skipped(tmp_path):
    (tmp_path / "good.pkl").write_bytes(dumps({0: _run()}))
    (tmp_path / "wrong.pkl").write_bytes(dumps(["not", "logs"]))
    collection = load_logs(tmp_path)
    assert [log.name for log in collection.files] == ["good.pkl"]
    assert [(s.file, s.reason) for s in collection.skipped] == [("wrong.pkl", "expected a dict of runs, got a list")]


def test_bad_runs_are_skipped_with_their_reason(tmp_path):
    short = _run(2)
    short["tracker"]["answers"].pop()
    no_players = _run(3)
    del no_players["tracker"]["players"]
    bad_answer = _run(4)
    bad_answer["tracker"]["answers"][0] = ["Q", None]
    content = {0: _run(1), 1: short, 2: no_players, 3: bad_answer, 4: {"simulation": {}}, 5: "text", 7: None}
    collection = _load_single(tmp_path, "runs.pkl", dumps(content))
    assert [r.key for r in collection.files[0].runs] == [0]
    reasons = {s.run: s.reason for s in collection.skipped}
    assert reasons[1].startswith("tracker lists have different lengths")
    assert reasons[2].startswith("tracker has no players list")
    assert reasons[3] == "answers[0] = ['Q', None] is not a pair of names"
    assert reasons[4].startswith("no tracker dict")
    assert reasons[5] == "run is a str, not a dict"
    assert reasons[6] == "run missing (no such key in the file)"
    assert reasons[7] == "empty run"


def test_string_run_keys_payoff_outcomes_and_a_bare_run(tmp_path):
    run = _run()
    run["tracker"]["outcome"] = [100 if s else -50 for s in run["tracker"]["outcome"]]
    log = _load_single(tmp_path, "strings.pkl", dumps({"0": run})).files[0]
    np.testing.assert_array_equal(log.runs[0].success, log.runs[0].answers[:, 0] == log.runs[0].answers[:, 1])
    bare = _load_single(tmp_path, "bare.pkl", dumps(_run())).files[0]
    assert [r.key for r in bare.runs] == [0]
    assert bare.n_agents == 4 and any("N not in the file name" in note for note in bare.notes)


def test_duplicates_only_when_names_match(tmp_path):
    """Identical content under different names is kept (deterministic answers give identical pickles)."""
    data = dumps({0: _run()})
    nested = tmp_path / "d" / "d"
    nested.mkdir(parents=True)
    (tmp_path / "d" / "a.pkl").write_bytes(data)
    (tmp_path / "d" / "b.pkl").write_bytes(data)
    (nested / "a.pkl").write_bytes(data)
    (nested / "c.pkl").write_bytes(dumps({0: _run(5)}))
    (tmp_path / "d" / "c.pkl").write_bytes(dumps({0: _run(6)}))
    collection = load_logs(tmp_path)
    assert sorted(log.name for log in collection.files) == ["d/a.pkl", "d/b.pkl", "d/c.pkl"]
    assert any("identical content to d/a.pkl" in note for note in collection.file("d/b.pkl").notes)
    reasons = {s.file: s.reason for s in collection.skipped}
    assert reasons["d/d/a.pkl"] == "duplicate of d/a.pkl (same file name, identical content)"
    assert reasons["d/d/c.pkl"] == "nested copy of d/c.pkl with DIFFERENT content; kept d/c.pkl"


def test_folder_with_zips_inside(fixture, tmp_path):
    shutil.copy(fixture.zip, tmp_path / "one.zip")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    collection = load_logs(tmp_path)
    assert len(collection.files) == len(fixture.files)
    assert all(log.name.startswith("one.zip/synth_data/") for log in collection.files)
    assert ("broken.zip", None) in {(s.file, s.run) for s in collection.skipped}


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_logs("/no/such/logs.zip")
