"""`jaxconv data fetch`: downloads verified against SHA-256, cached, refused when corrupted; commands without a
PATH find the fetched logs. The repository is served from a temporary folder by a local HTTP server."""

import hashlib
import http.server
import json
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest

from jaxconv.cli import main
from jaxconv.data import fetch as fetch_module
from jaxconv.data.fetch import REGISTRY, DownloadError, data_dir, fetch, logs_path, resolve_names
from jaxconv.data.synthetic import write_fixture_logs


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def repository(tmp_path):
    """A folder laid out like the authors' repository (``ROOT/data/NAME``) served on 127.0.0.1; yields
    ``(base_url, data folder, list of requested paths)``."""
    root = tmp_path / "repository"
    (root / "data").mkdir(parents=True)
    requests: list[str] = []

    class Handler(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root / "data", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_default_logs(tmp_path, monkeypatch):
    """No $JAXCONV_AI_NORMS and an empty per-user cache (a temporary folder); returns the cache folder."""
    cache = tmp_path / "user-cache"
    monkeypatch.delenv("JAXCONV_AI_NORMS", raising=False)
    monkeypatch.setattr(fetch_module, "cache_dir", lambda: cache)
    return cache


def _fake_files(folder: Path, sizes=(1000, 2500)) -> dict:
    """Small files of random bytes in ``folder``; their registry (name -> (sha256, bytes))."""
    registry = {}
    for i, size in enumerate(sizes):
        data = bytes((i * 31 + j * 7) % 251 for j in range(size))
        (folder / f"model{i}_data.zip").write_bytes(data)
        registry[f"model{i}_data.zip"] = (hashlib.sha256(data).hexdigest(), size)
    return registry


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_fetch_verifies_and_caches(repository, tmp_path):
    base_url, served, requests = repository
    registry = _fake_files(served)
    cache = tmp_path / "cache"
    report = []
    paths = fetch(to=cache, base_url=base_url, registry=registry, report=report)
    assert [p.name for p in paths] == list(registry)
    for path in paths:
        assert path.read_bytes() == (served / path.name).read_bytes()
    assert sorted(requests) == sorted(f"/data/{name}" for name in registry)
    assert all(entry["downloaded"] for entry in report)
    assert sorted(p.name for p in cache.iterdir()) == sorted(registry)  # no temporary file left behind

    # a second fetch finds the verified copies and downloads nothing
    report.clear()
    assert fetch(to=cache, base_url=base_url, registry=registry, report=report) == paths
    assert len(requests) == len(registry)
    assert not any(entry["downloaded"] for entry in report)

    # one name, by its short form
    assert fetch(["model1"], to=cache, base_url=base_url, registry=registry) == [cache / "model1_data.zip"]


def test_damaged_cached_copy_is_downloaded_again(repository, tmp_path):
    base_url, served, requests = repository
    registry = _fake_files(served, sizes=(300,))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "model0_data.zip").write_bytes(b"truncated")
    (path,) = fetch(to=cache, base_url=base_url, registry=registry)
    assert path.read_bytes() == (served / "model0_data.zip").read_bytes() and len(requests) == 1


def test_corrupted_download_is_refused_and_nothing_cached(repository, tmp_path, capsys, monkeypatch):
    base_url, served, _ = repository
    registry = _fake_files(served)
    (served / "model1_data.zip").write_bytes(b"tampered" * 100)  # the server now sends other bytes
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch(["model1"], to=cache, base_url=base_url, registry=registry)
    assert not cache.exists() or not any(cache.iterdir())

    monkeypatch.setattr(fetch_module, "REGISTRY", registry)
    status, out, err = _run(capsys, "data", "fetch", "--to", str(cache), "--base-url", base_url)
    assert status == 2 and out == ""
    assert err.startswith("jaxconv: error: ") and err.count("\n") == 1 and "SHA-256" in err, err
    assert "model1_data.zip" in err
    assert sorted(p.name for p in cache.iterdir()) == ["model0_data.zip"]  # the good one is kept, verified


def test_missing_file_on_server_is_a_one_line_error(repository, tmp_path, capsys, monkeypatch):
    base_url, served, _ = repository
    registry = _fake_files(served, sizes=(10,))
    (served / "model0_data.zip").unlink()
    monkeypatch.setattr(fetch_module, "REGISTRY", registry)
    status, _, err = _run(capsys, "data", "fetch", "--to", str(tmp_path / "c"), "--base-url", base_url)
    assert status == 2 and err.count("\n") == 1 and "model0_data.zip" in err
    assert not (tmp_path / "c" / "model0_data.zip").exists()


def test_unknown_names_are_refused(capsys, tmp_path):
    with pytest.raises(ValueError, match="known: claude_data.zip, llama2_data.zip, llama31_data.zip, llama3_data"):
        fetch(["gpt5"], to=tmp_path)
    status, out, err = _run(capsys, "data", "fetch", "claude", "gpt5", "--to", str(tmp_path))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "'gpt5'" in err and all(name in err for name in REGISTRY)
    assert not any(tmp_path.iterdir())  # names are checked before anything is downloaded


def test_names_and_registry():
    assert resolve_names() == ["claude_data.zip", "llama2_data.zip", "llama31_data.zip", "llama3_data.zip"]
    assert resolve_names(["llama3", "llama31_data", "llama3_data.zip"]) == ["llama3_data.zip", "llama31_data.zip"]
    for digest, size in REGISTRY.values():
        assert len(digest) == 64 and int(digest, 16) >= 0 and size > 0
    assert fetch_module.BASE_URL.endswith(f"/AI-norms/{fetch_module.COMMIT}/")


def test_logs_are_found_env_then_cache(tmp_path, monkeypatch, no_default_logs):
    with pytest.raises(FileNotFoundError, match="run `jaxconv data fetch`") as error:
        logs_path()
    assert "\n" not in str(error.value)
    assert data_dir() is None
    no_default_logs.mkdir()
    (no_default_logs / "claude_data.zip").write_bytes(b"x")
    assert data_dir() == no_default_logs and logs_path() == no_default_logs
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("JAXCONV_AI_NORMS", str(env))
    assert data_dir() == no_default_logs  # $JAXCONV_AI_NORMS holds no logs: the cache is next
    (env / "llama3_data.zip").write_bytes(b"x")
    assert data_dir() == env
    assert logs_path("elsewhere.zip") == Path("elsewhere.zip")
    assert fetch_module.default_dir() == env


@pytest.mark.parametrize("argv", [["data", "summary"], ["fit", "--replicas", "0", "--bootstrap", "0"]])
def test_commands_without_logs_say_fetch(argv, capsys, no_default_logs):
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "run `jaxconv data fetch`" in err


def test_fetch_then_summary_without_path(repository, tmp_path, capsys, monkeypatch, no_default_logs):
    """The whole first-day path: fetch (default folder: the cache), then `data summary` with no PATH."""
    base_url, served, requests = repository
    fixture = write_fixture_logs(tmp_path / "fixture", seed=1)
    shutil.copy(fixture.zip, served / fixture.zip.name)
    registry = {fixture.zip.name: hashlib.sha256(fixture.zip.read_bytes()).hexdigest()}
    monkeypatch.setattr(fetch_module, "REGISTRY", registry)

    status, out, err = _run(capsys, "data", "fetch", "--base-url", base_url, "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["directory"] == str(no_default_logs)
    assert [f["name"] for f in result["files"]] == ["synth_data.zip"] and result["files"][0]["downloaded"]
    status, out, _ = _run(capsys, "data", "fetch", "--base-url", base_url)
    assert status == 0 and "already cached" in out and len(requests) == 1

    summary_file = tmp_path / "summary.json"
    status, out, err = _run(capsys, "data", "summary", "--json", "--out", str(summary_file))
    assert status == 0, err
    summary = json.loads(out)
    assert summary == json.loads(summary_file.read_text())
    assert any(name.endswith(fixture.files["game"]) for name in summary["files"])


@pytest.mark.data
def test_real_archives(repository, tmp_path, ai_norms_dir):
    """The authors' files, served locally, pass the pinned SHA-256 (skipped without the shared copies)."""
    base_url, served, _ = repository
    present = [name for name in REGISTRY if (ai_norms_dir / name).is_file()]
    if not present:
        pytest.skip(f"no authors' archives in {ai_norms_dir}")
    for name in present:
        shutil.copy(ai_norms_dir / name, served / name)
    report = []
    paths = fetch(present, to=tmp_path / "cache", base_url=base_url, report=report)
    for path, name in zip(paths, present):
        assert path.stat().st_size == REGISTRY[name][1]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == REGISTRY[name][0]
    assert [entry["downloaded"] for entry in report] == [True] * len(present)
