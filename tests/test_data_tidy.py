"""Tidy tables: memory windows rebuilt from the tracker agree with the stored histories; differences shown."""

import csv

import numpy as np
import pytest

from jaxconv.data.logs import load_logs
from jaxconv.data.synthetic import dumps, game_file_name, simulate_run, write_fixture_logs
from jaxconv.data.tidy import CHOICE_COLUMNS, INTERACTION_COLUMNS, load_tidy_npz, tidy_dataset

H = 3


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_fixture_logs(tmp_path_factory.mktemp("logs"), seed=2, memory=H)


@pytest.fixture(scope="module")
def tidy(fixture):
    return tidy_dataset(load_logs(fixture.folder))


def _write(tmp_path, kind, runs, **name):
    path = tmp_path / game_file_name("t", kind, ["Q", "M"], memory=H, n_agents=5, **name)
    path.write_bytes(dumps(runs))
    return path


def _runs(n_runs=2, **kwargs):
    rng = np.random.default_rng(7)
    return {r: simulate_run(rng, n_agents=5, names=["Q", "M"], memory=H, **kwargs) for r in range(n_runs)}


def test_reconstruction_matches_every_stored_history(tidy, fixture):
    assert tidy.mismatches == []
    assert tidy.skipped == []
    game_runs = sum(len(log.runs) for log in load_logs(fixture.folder).files)
    assert tidy.n_agents_checked == 6 * game_runs


def test_memory_windows_equal_the_stored_histories(fixture, tidy):
    """Oracle: the k-th choice of an agent saw stored rounds [p + k - H, p + k), p = its prepared rounds."""
    collection = load_logs(fixture.folder)
    choices = tidy.choices
    checked = 0
    for index, name in enumerate(tidy.files):
        log = collection.file(name)
        code = {n: i for i, n in enumerate(log.names)}
        for run in log.runs:
            rows = np.flatnonzero((choices["file"] == index) & (choices["run"] == run.key))
            seen: dict[int, int] = {}
            for row in rows:
                agent = int(choices["agent"][row])
                stored = run.agents[agent]
                k = seen.get(agent, 0)
                seen[agent] = k + 1
                prepared = len(stored.my_history) - int(np.sum(run.players == agent))
                end = prepared + k
                own = [code[x] for x in stored.my_history[max(0, end - H) : end]]
                partner = [code[x] for x in stored.partner_history[max(0, end - H) : end]]
                payoff = stored.outcome[max(0, end - H) : end]
                length = len(own)
                assert choices["memory_len"][row] == length
                assert list(choices["memory_own"][row, H - length :]) == own
                assert list(choices["memory_partner"][row, H - length :]) == partner
                assert list(choices["memory_payoff"][row, H - length :]) == payoff
                assert (choices["memory_own"][row, : H - length] == -1).all()
                assert choices["choice"][row] == code[stored.my_history[end]]
                checked += 1
    assert checked == len(tidy.interactions["t"]) * 2


def test_tables_shapes_codes_and_flags(tidy):
    n = len(tidy.interactions["t"])
    assert set(tidy.interactions) == set(INTERACTION_COLUMNS)
    assert all(len(v) == n for v in tidy.interactions.values())
    choices = tidy.choices
    games = ~choices["single_prompt"]
    assert games.sum() == 2 * n
    assert choices["memory_own"].shape == (len(choices["t"]), H)
    # prepared files start with full memory of the incumbent Q (code 0) and payoff +100
    committed_file = next(i for i, f in enumerate(tidy.files) if "swap_0_3cmtd" in f)
    first = np.flatnonzero((choices["file"] == committed_file) & (choices["t"] == 0))
    assert (choices["memory_len"][first] == H).all() and (choices["memory_payoff"][first] == 100).all()
    assert choices["committed"][choices["file"] == committed_file].any()
    assert (choices["choice"][choices["committed"]] == 1).all()  # committed agents answer M
    # baseline runs start with empty memory
    baseline = next(i for i, f in enumerate(tidy.files) if "baseline_Q_M_-50" in f)
    assert (choices["memory_len"][(choices["file"] == baseline) & (choices["t"] == 0)] == 0).all()


def test_single_prompt_rows(tidy, fixture):
    index = tidy.files.index(fixture.files["bias_q_m"])
    rows = tidy.choices["file"] == index
    assert rows.sum() == 100 and tidy.choices["single_prompt"][rows].all()
    names = tidy.names[index]
    assert (tidy.choices["memory_own"][rows][:, -1] == names.index("Q")).all()
    assert (tidy.choices["memory_partner"][rows][:, -1] == names.index("M")).all()
    assert (tidy.choices["memory_payoff"][rows][:, -1] == -50).all()
    assert (tidy.choices["agent"][rows] == -1).all() and (tidy.choices["memory_len"][rows] == 1).all()


def test_tampered_history_and_outcome_are_reported(tmp_path):
    runs = _runs()
    agent = runs[1]["tracker"]["players"][4][0]
    history = runs[1]["simulation"][agent]["my_history"]
    history[-1] = "M" if history[-1] == "Q" else "Q"
    runs[0]["tracker"]["outcome"][2] = 1 - runs[0]["tracker"]["outcome"][2]
    _write(tmp_path, "game", runs)
    mismatches = tidy_dataset(load_logs(tmp_path)).mismatches
    fields = {(m.run, m.agent, m.field) for m in mismatches}
    assert fields == {(1, agent, "my_history"), (0, None, "tracker.outcome")}
    detail = next(m.detail for m in mismatches if m.field == "my_history")
    assert detail.startswith(f"position {len(history) - 1}: stored")


def test_missing_simulation_uses_the_prepared_memory_and_says_so(tmp_path):
    runs = _runs(committed=1, initial=0, max_interactions=60)
    reference = tidy_dataset(load_logs(_write(tmp_path, "committed", runs, committed=1)))
    for run in runs.values():
        del run["simulation"]
    (tmp_path / "a").mkdir()
    stripped = tidy_dataset(load_logs(_write(tmp_path / "a", "committed", runs, committed=1)))
    assert {(m.field, m.agent) for m in stripped.mismatches} == {("simulation", None)}
    for column in ("memory_own", "memory_partner", "memory_payoff", "memory_len"):
        np.testing.assert_array_equal(stripped.choices[column], reference.choices[column])


def test_unknown_memory_size_is_skipped_unless_given(tmp_path):
    (tmp_path / "mine.pkl").write_bytes(dumps(_runs()))
    collection = load_logs(tmp_path)
    skipped = tidy_dataset(collection)
    assert [(s.file, s.reason[:19]) for s in skipped.skipped] == [("mine.pkl", "memory size H unkno")]
    given = tidy_dataset(collection, memory=H)
    assert given.memory == [H] and given.payoffs == [(-50, 100)] and given.mismatches == []


def test_npz_round_trip_without_pickles(tidy, tmp_path):
    path = tmp_path / "tidy.npz"
    tidy.to_npz(path)
    back = load_tidy_npz(path)
    assert (back.files, back.names, back.memory, back.payoffs) == (
        tidy.files,
        tidy.names,
        tidy.memory,
        tidy.payoffs,
    )
    for table, other in ((tidy.interactions, back.interactions), (tidy.choices, back.choices)):
        assert table.keys() == other.keys()
        for key in table:
            np.testing.assert_array_equal(table[key], other[key])
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)


def test_csv_export(tidy, tmp_path):
    paths = tidy.to_csv(tmp_path / "csv")
    assert [p.name for p in paths] == [
        "files.csv",
        "names.csv",
        "interactions.csv",
        "choices.csv",
        "mismatches.csv",
    ]
    with (tmp_path / "csv" / "choices.csv").open() as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[: len(CHOICE_COLUMNS)] == list(CHOICE_COLUMNS)
    assert header[len(CHOICE_COLUMNS) :][:H] == [f"memory_own_{i}" for i in range(1, H + 1)]
    assert len(rows) - 1 == len(tidy.choices["t"])
    last = rows[-1]
    assert int(last[header.index(f"memory_payoff_{H}")]) == tidy.choices["memory_payoff"][-1, -1]
    with (tmp_path / "csv" / "names.csv").open() as handle:
        assert len(list(csv.reader(handle))) - 1 == sum(len(n) for n in tidy.names)
