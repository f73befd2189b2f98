"""The documentation builds without a warning (``mkdocs build --strict``), has a page per public module, and
docs/results.md explains every key that the games' summaries and the commands' JSON hold."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = (ROOT / "docs" / "results.md").read_text() + (ROOT / "docs" / "cli.md").read_text()

PUBLIC_MODULES = [
    "games.naming",
    "games.memory",
    "games.blocks",
    "policies",
    "choosers",
    "relax",
    "meanfield",
    "exact",
    "engine",
    "topology",
    "schedules",
    "estimate.likelihood",
    "estimate.fit",
    "estimate.collective",
    "estimate.pipeline",
    "estimate.drift",
    "estimate.random_effects",
    "estimate.predict",
    "estimate.tipping",
    "data.fetch",
    "data.logs",
    "data.safe_pickle",
    "data.tidy",
    "data.summary",
    "data.synthetic",
]


def test_mkdocs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed (pip install -e '.[docs]')")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for module in PUBLIC_MODULES:
        page = tmp_path / "api" / module / "index.html"
        assert page.is_file(), module
        assert f"jaxconv.{module}" in page.read_text()
    assert (tmp_path / "results" / "index.html").is_file()


def test_every_public_module_has_a_page():
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.md")}
    assert set(PUBLIC_MODULES) <= pages
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages:
        assert f"api/{page}.md" in nav, page
        assert (ROOT / "docs" / "api" / f"{page}.md").read_text().strip() == f"::: jaxconv.{page}"


def _undocumented(keys) -> list[str]:
    return sorted(k for k in keys if f"`{k.removesuffix('_se')}`" not in RESULTS)  # X_se: the standard error of X


def test_results_document_every_summary_key():
    import jax

    from jaxconv import MemoryGame, NamingGame, ensemble

    naming = NamingGame(6, vocabulary=2, committed=1, initial="prepared")
    memory = MemoryGame(6, 2, 2, committed=1, initial="prepared")
    for game in (naming, NamingGame(6), memory):
        result = ensemble(jax.random.key(0), game, 2, 12, 6)
        assert not _undocumented(result.summary), type(game).__name__
        assert not _undocumented(result.observations), type(game).__name__


def _keys(value, depth: int = 0) -> set[str]:
    """Keys of a JSON object, nested dicts and lists of dicts included (not keys that are names or numbers)."""
    keys = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key.replace("_", "").isalpha() and len(key) > 1 and not key[0].isupper():
                keys.add(key)  # not a name (Q, M), a file name or an index
            if key != "parameters":  # option names, documented by --help
                keys |= _keys(item, depth + 1)
    elif isinstance(value, list):
        for item in value[:1]:
            keys |= _keys(item, depth + 1)
    return keys


def test_results_document_every_cli_key(tmp_path, capsys):
    from jaxconv.cli import main
    from jaxconv.data.synthetic import write_fixture_logs

    fixture = write_fixture_logs(tmp_path, seed=2)
    commands = [
        ["simulate", "naming-game", "--agents", "6", "--replicas", "2", "--steps", "30", "--committed", "1"],
        ["simulate", "memory-game", "--agents", "6", "--replicas", "2", "--rounds", "3", "--committed", "1"],
        ["data", "summary", str(fixture.zip)],
    ]
    for argv in commands:
        assert main([*argv, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert not _undocumented(_keys(result)), argv
