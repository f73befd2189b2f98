"""`jaxconv reproduce`: runs experiment scripts, assembles results.json and REPORT.md from their rows."""

import argparse
import json
import re
import textwrap

import pytest

from jaxconv.cli import reproduce

ROW = {"quantity": "q", "published": 0.5, "source": "A. Author, J. Stat. (2000), Fig. 1", "ours": 0.49}


def _run(argv, **kwargs):
    parser = argparse.ArgumentParser()
    reproduce.add_parser(parser.add_subparsers(dest="command"))
    return reproduce.run(parser.parse_args(["reproduce", *argv]), **kwargs)


def _table(report: str) -> list[list[str]]:
    """The cells of REPORT.md's table rows (header and rule excluded)."""
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| experiment | quantity | published | source | ours | agree |")
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[1:]]


@pytest.fixture
def fake_experiments(tmp_path, monkeypatch):
    """A folder of three scripts without JAX: one writes rows and a figure, one fails, one needs the logs."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "_common.py").write_text("")
    rows = [
        ROW | {"uncertainty": 0.01, "agree": True},
        ROW | {"quantity": "r", "ours": "increasing", "uncertainty": [0.2, 0.3], "agree": False, "note": "why"},
    ]
    (folder / "good.py").write_text(
        textwrap.dedent(
            f"""
            import argparse, json, pathlib
            parser = argparse.ArgumentParser()
            parser.add_argument("--out", type=pathlib.Path)
            parser.add_argument("--seed", type=int)
            parser.add_argument("--quick", action="store_true")
            args = parser.parse_args()
            (args.out / "good.json").write_text(json.dumps({{"quick": args.quick, "reproduced": {rows!r}}}))
            (args.out / "good.png").write_bytes(b"png")
            print("seed", args.seed)
            """
        )
    )
    (folder / "bad.py").write_text("raise SystemExit('something broke')\n")
    (folder / "logs_needed.py").write_text("raise SystemExit('must not run')\n")
    monkeypatch.setattr(reproduce, "experiments_dir", lambda: folder)
    monkeypatch.setattr(reproduce, "EXPERIMENTS", {"good": "g", "bad": "b", "logs_needed": "l"})
    monkeypatch.setattr(reproduce, "NEEDS_LOGS", frozenset({"logs_needed"}))
    monkeypatch.setattr("jaxconv.data.fetch.data_dir", lambda: None)
    return folder


def test_report_assembled_from_rows(fake_experiments, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(ChildProcessError, match="1 of 3 experiments failed \\(bad\\)"):
        _run(["all", "--quick", "--seed", "7", "--out", str(out)], progress=False)
    result = json.loads((out / "results.json").read_text())
    entries = {e["name"]: e for e in result["experiments"]}
    assert [e["name"] for e in result["experiments"]] == ["good", "bad", "logs_needed"]
    assert entries["good"]["status"] == "ok" and entries["good"]["figures"] == ["good.png"]
    assert json.loads((out / "good.json").read_text())["quick"] is True
    assert "seed 7" in (out / entries["good"]["log"]).read_text()
    assert entries["bad"]["status"] == "failed" and "something broke" in entries["bad"]["reason"]
    assert entries["logs_needed"]["status"] == "skipped" and "jaxconv data fetch" in entries["logs_needed"]["reason"]
    assert [r["quantity"] for r in result["rows"]] == ["q", "r"] and result["rows"][0]["experiment"] == "good"
    assert result["quick"] is True and result["seed"] == 7
    report = (out / "REPORT.md").read_text()
    table = _table(report)
    assert table[0] == ["good", "q", "0.5", ROW["source"], "0.49 ± 0.01", "yes"]
    assert table[1][4:] == ["increasing [0.2, 0.3]", "**no** (why)"]
    assert "Quick run" in report and "![good](good.png)" in report
    assert "skipped, needs the LLM logs" in report and "failed, exit status 1: something broke" in report
    # one line per experiment on stderr (no terminal here: no bar)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["[1/3] good", "[2/3] bad", "[3/3] logs_needed"]


def test_rows_lacking_keys_fail_the_experiment(fake_experiments, tmp_path):
    (fake_experiments / "good.py").write_text(
        "import json, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "(out / 'good.json').write_text(json.dumps({'reproduced': [{'quantity': 'q'}]}))\n"
    )
    with pytest.raises(ChildProcessError):
        _run(["good", "--out", str(tmp_path)], progress=False)
    entry = json.loads((tmp_path / "results.json").read_text())["experiments"][0]
    assert entry["status"] == "failed" and "lacks ['published', 'source'" in entry["reason"]


def test_bad_names_and_no_checkout(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        _run(["nope", "--out", str(tmp_path)])
    assert reproduce.resolve(["naming_scaling", "committed_minority"]) == ["committed_minority", "naming_scaling"]
    assert reproduce.resolve(["all"]) == reproduce.resolve([]) == list(reproduce.EXPERIMENTS)
    assert reproduce.resolve(["finite_pool", "all"]) == list(reproduce.EXPERIMENTS)
    monkeypatch.setattr("jaxconv.__file__", str(tmp_path / "site-packages" / "jaxconv" / "__init__.py"))
    with pytest.raises(FileNotFoundError, match="clone the jaxconv repository") as error:
        reproduce.experiments_dir()
    assert "\n" not in str(error.value)


def test_every_experiment_script_exists():
    folder = reproduce.experiments_dir()
    assert all((folder / f"{name}.py").is_file() for name in reproduce.EXPERIMENTS)


def test_two_quick_experiments(tmp_path):
    """The real scripts: rows with every key, a source that is a paper (never a file the user lacks), figures."""
    out = tmp_path / "out"
    result = _run(["finite_pool", "beta_transition", "--quick", "--out", str(out)], progress=False)
    assert [e["status"] for e in result["experiments"]] == ["ok", "ok"]
    assert sorted(f for e in result["experiments"] for f in e["figures"]) == ["beta_transition.png", "finite_pool.png"]
    rows = result["rows"]
    assert len(rows) >= 10
    for row in rows:
        assert set(reproduce.ROW_KEYS) <= set(row) and row["agree"] in (True, False, None)
        assert "REFERENCE" not in row["source"] and re.search(r"\(20\d\d\)", row["source"])
        uncertainty = row["uncertainty"]
        assert uncertainty is None or isinstance(uncertainty, float) or len(uncertainty) == 2
    table = _table((out / "REPORT.md").read_text())
    assert len(table) == len(rows) and all(len(cells) == 6 for cells in table)
    assert "reproduced quantities" in reproduce.text(result)


@pytest.fixture
def common(monkeypatch):
    """experiments/_common.py, the helpers that write the rows."""
    monkeypatch.syspath_prepend(str(reproduce.experiments_dir()))
    import _common

    monkeypatch.setattr(_common, "QUICK", False)
    return _common


def test_row_agreement_rules(common):
    inside = common.row("q", 0.5, "s", 0.529, 0.01)  # 2.9 SE: agrees
    assert inside["agree"] is True and inside["uncertainty"] == 0.01 and set(common.ROW_KEYS) <= set(inside)
    assert common.row("q", 0.5, "s", 0.531, 0.01)["agree"] is False
    assert common.row("q", 0.5, "s", 0.55, 0.01, published_se=0.02)["agree"] is True  # combined SE 0.0224
    assert common.row("q", 0.0979, "s", 0.1, interval=(0.09, 0.11))["agree"] is True
    assert common.row("q", 0.0979, "s", 0.1, interval=(0.099, 0.11))["agree"] is False
    assert common.row("q", "increasing", "s", "1, 2", agree=True, note="n")["note"] == "n"
    assert common.row("q", 1.0, "s", 2.0)["agree"] is None  # no uncertainty: undecided
    common.QUICK = True
    assert common.row("q", 0.5, "s", 0.6, 0.01)["note"].startswith("quick run: too small to be conclusive")
    assert "note" not in common.row("q", 0.5, "s", 0.5, 0.01)


def test_share_interval_and_crossing(common):
    low, high = common.share_interval([0, 5, 10], 10)  # Wilson 95%: 0/10, 5/10, 10/10
    assert low == pytest.approx([0, 0.2366, 0.7225], abs=1e-4)
    assert high == pytest.approx([0.2775, 0.7634, 1], abs=1e-4)
    assert common.crossing([0.1, 0.2, 0.3], [0.2, 0.4, 0.8]) == pytest.approx(0.225)
    assert common.crossing([0.1, 0.2], [0.1, 0.4]) is None
    estimate, (low, high) = common.crossing_interval([0.1, 0.2, 0.3], [20, 40, 80], 100)
    assert estimate == pytest.approx(0.225) and low < estimate < high and high - low < 0.1
    assert common.binomial_se(0.0, 100) > 0
