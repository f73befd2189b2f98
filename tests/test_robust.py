"""Regression tests of the hostile-input probe (issue 12), one group per finding. Every malicious file is
generated here, in tmp_path; each test failed on the code before the fix (hung, crashed, or gave a wrong answer)."""

import json
import os
import resource
import struct
import subprocess
import sys
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import engine, topology
from jaxconv.cli import main
from jaxconv.data import DataFileError, PickleLimitError, load_logs, safe_loads
from jaxconv.engine import CheckpointError, ensemble, sweep
from jaxconv.games.memory import MemoryGame
from jaxconv.games.naming import NamingGame
from jaxconv.policies import SoftmaxSurrogate, sample

GAME_FILE = "m_converged_baseline_Q_M_-50_100_5mem_complete_24ps.pkl"


# ----- pickle building blocks (protocol 2 opcodes) --------------------------------------------------------------
def p_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def p_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def p_list(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def p_dict(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def p_log(players: bytes) -> bytes:
    """A game log of one run whose tracker 'players' is ``players`` (answers: one pair)."""
    tracker = p_dict((p_str("players"), players), (p_str("answers"), p_list(p_list(p_str("Q"), p_str("Q")))))
    return b"\x80\x02" + p_dict((p_int(0), p_dict((p_str("tracker"), tracker)))) + b"."


def laughs(levels: int, kind: str = "list") -> bytes:
    """An expression whose value doubles at each level by two memo references to the level below: a list (or a
    tuple) with 2**levels leaves as a tree, in ~8 bytes per level."""
    out = b"]q\x000" if kind == "list" else b")q\x000"
    for i in range(levels):
        get = b"h" + bytes([i])
        out += (b"(" + get + get + b"lq" if kind == "list" else get + get + b"\x86q") + bytes([i + 1]) + b"0"
    return out + b"h" + bytes([levels])


def deep(levels: int) -> bytes:
    """A list nested ``levels`` deep."""
    return b"]" * levels + b"a" * (levels - 1)


def bounded(code: str, timeout: float = 60, memory_gib: float = 3) -> dict:
    """Run ``code`` in a fresh Python with a time and address-space limit; returns rc, stderr, seconds, peak RSS."""
    wrapper = (
        "import atexit, resource, sys\n"
        # VmHWM: this process's own peak (ru_maxrss can report the forking parent's peak after exec)
        "peak = lambda: [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "atexit.register(lambda: print('PEAK_KB', peak(), file=sys.stderr))\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({int(memory_gib * 2**30)}, {int(memory_gib * 2**30)}))\n"
        f"{code}\n"
    )
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"rc": None, "stderr": "timeout", "seconds": time.perf_counter() - start, "peak_kb": None}
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB")]
    return {
        "rc": done.returncode,
        "stderr": done.stderr,
        "stdout": done.stdout,
        "seconds": time.perf_counter() - start,
        "peak_kb": int(peak[0].split()[1]) if peak else None,
    }


# ----- 1. denial of service from a tiny file ---------------------------------------------------------------------
def test_billion_laughs_row_is_refused_quickly_with_little_memory(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    data = p_log(p_list(laughs(60)))  # a 'players' row whose tree has 2**60 leaves
    assert len(data) < 1000
    (folder / GAME_FILE).write_bytes(data)
    run = bounded(
        f"from jaxconv.cli import main\nsys.exit(main(['data', 'summary', {str(folder)!r}, '--json']))",
        timeout=60,
    )
    assert run["rc"] == 0, run["stderr"][-2000:]
    summary = json.loads(run["stdout"])
    assert summary["files"] == {}
    [skip] = summary["skipped"]
    assert "refused" in skip["reason"] and "elements" in skip["reason"]
    assert run["seconds"] < 30 and run["peak_kb"] < 1_000_000


def test_dict_key_of_a_shared_tuple_is_refused_before_hashing():
    data = b"\x80\x02}" + laughs(80, "tuple") + b"K\x01s."  # {t80: 1}, t80 hashes 2**80 leaves
    start = time.perf_counter()
    with pytest.raises(PickleLimitError, match="elements"):
        safe_loads(data, "key.pkl")
    assert time.perf_counter() - start < 5


def test_messages_stay_short_for_large_values(tmp_path):
    """A bad row of 10^5 elements is named in a bounded message (the old one printed it whole)."""
    row = b"](" + b"K\x01" * 100_000 + b"e"
    (tmp_path / GAME_FILE).write_bytes(p_log(p_list(row)))
    collection = load_logs(tmp_path)
    [skip] = collection.skipped
    assert "not a pair" in skip.reason and len(skip.reason) < 400


# ----- 2. checkpoints never mixed --------------------------------------------------------------------------------
def test_checkpoints_of_another_replica_count_are_not_reused(tmp_path):
    game = NamingGame(4)
    assert len(ensemble(jax.random.key(0), game, 24, 8, chunk_size=16, checkpoint_dir=tmp_path).summary["winner"]) == 24
    again = ensemble(jax.random.key(0), game, 20, 8, chunk_size=16, checkpoint_dir=tmp_path)
    assert len(again.summary["winner"]) == 20
    fresh = ensemble(jax.random.key(0), game, 20, 8, chunk_size=16)
    np.testing.assert_array_equal(again.summary["consensus_time"], fresh.summary["consensus_time"])


def _chunk_files(folder):
    return sorted(p for p in folder.glob("chunk-*.npz"))


def test_copied_chunk_of_another_run_is_refused_or_recomputed(tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    ensemble(jax.random.key(0), NamingGame(4, beta=1.0), 8, 8, checkpoint_dir=one)
    right = ensemble(jax.random.key(0), NamingGame(4, beta=0.5), 8, 8, checkpoint_dir=other)
    [wrong_file], [right_file] = _chunk_files(one), _chunk_files(other)
    right_file.write_bytes(wrong_file.read_bytes())  # copied over, under the right name
    with pytest.raises(CheckpointError, match=right_file.name) as caught:
        ensemble(jax.random.key(0), NamingGame(4, beta=0.5), 8, 8, checkpoint_dir=other)
    assert "another run" in str(caught.value)
    redone = ensemble(jax.random.key(0), NamingGame(4, beta=0.5), 8, 8, checkpoint_dir=other, recompute_bad_chunks=True)
    for name in right.summary:
        np.testing.assert_array_equal(redone.summary[name], right.summary[name])
    ensemble(jax.random.key(0), NamingGame(4, beta=0.5), 8, 8, checkpoint_dir=other)  # the file was rewritten


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_chunk_names_the_file(tmp_path, damage):
    ensemble(jax.random.key(0), NamingGame(4), 8, 8, checkpoint_dir=tmp_path)
    [path] = _chunk_files(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0" * 100)
    with pytest.raises(CheckpointError, match=path.name):
        ensemble(jax.random.key(0), NamingGame(4), 8, 8, checkpoint_dir=tmp_path)


# ----- 3. non-finite parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy, message",
    [
        (lambda: SoftmaxSurrogate(jnp.array([jnp.inf, 0.0])), "bias must be finite"),
        (lambda: SoftmaxSurrogate(jnp.zeros(2), temperature=1e-45, win_stay=1.0), "temperature"),
        (lambda: SoftmaxSurrogate(jnp.zeros(2), win_stay=float("nan")), "win_stay must be finite"),
        (lambda: SoftmaxSurrogate(jnp.zeros(2), own_weight=1.0, recency=1e10), "recency"),
    ],
)
def test_policies_that_would_give_nan_are_refused(policy, message):
    with pytest.raises(ValueError, match=message):
        MemoryGame(6, 2, 5, policy=policy())


def test_sample_never_turns_invalid_weights_into_a_name():
    for weights in ([jnp.nan, 0.5], [0.0, 0.0], [-1.0, 2.0], [jnp.inf, 1.0], [0.2, jnp.nan, 0.3]):
        p = jnp.array(weights, jnp.float32)
        assert int(sample(p, jnp.float32(0.5))) == len(weights)
    assert int(sample(jnp.array([0.0, 1.0]), jnp.float32(0.3))) == 1


def test_swept_policy_field_with_nan_is_refused():
    game = MemoryGame(6, 2, 3, policy=SoftmaxSurrogate(jnp.zeros(2)))
    with pytest.raises(ValueError, match="win_stay must be finite"):
        sweep(jax.random.key(0), game, {"policy.win_stay": jnp.array([1.0, jnp.nan])}, 2, 12)


@pytest.mark.parametrize("name", ["committed_name", "prepared_name"])
def test_swept_names_outside_the_pool_are_refused(name):
    game = NamingGame(6, vocabulary=2, committed=1, committed_mode="converted", initial="prepared")
    with pytest.raises(ValueError, match=rf"{name} must be integers in \[0, 2\)"):
        sweep(jax.random.key(0), game, {name: jnp.array([0, 5])}, 2, 12)


def test_empty_sweep_is_refused():
    with pytest.raises(ValueError, match="empty"):
        sweep(jax.random.key(0), NamingGame(6), {"beta": jnp.array([])}, 2, 12)


# ----- 4. one bad file never aborts a collection ----------------------------------------------------------------
def _good_log() -> bytes:
    row = p_list(p_int(0), p_int(1))
    answers = p_list(p_list(p_str("Q"), p_str("Q")))
    tracker = p_dict((p_str("players"), p_list(row)), (p_str("answers"), answers))
    return b"\x80\x02" + p_dict((p_int(0), p_dict((p_str("tracker"), tracker)))) + b"."


def test_deeply_nested_file_is_skipped_and_the_rest_loads(tmp_path):
    (tmp_path / GAME_FILE).write_bytes(_good_log())
    (tmp_path / ("deep_" + GAME_FILE)).write_bytes(p_log(p_list(deep(50_000))))
    collection = load_logs(tmp_path)
    assert [log.name for log in collection.files] == [GAME_FILE]
    [skip] = collection.skipped
    assert skip.file == "deep_" + GAME_FILE and "nested deeper" in skip.reason


def _encrypted_zip(path, members: dict[str, bytes], encrypted: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    target = encrypted.encode()
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            if raw[start + name_at : start + name_at + len(target)] == target:
                raw[start + flag_at] |= 1  # "encrypted" flag bit
            start += 4
    path.write_bytes(bytes(raw))


def test_encrypted_zip_member_is_skipped_and_the_rest_loads(tmp_path):
    path = tmp_path / "logs.zip"
    _encrypted_zip(path, {GAME_FILE: _good_log(), "x_" + GAME_FILE: _good_log() + b""}, "x_" + GAME_FILE)
    collection = load_logs(path)
    assert [log.name for log in collection.files] == [GAME_FILE]
    [skip] = collection.skipped
    assert skip.file == "x_" + GAME_FILE and "encrypted" in skip.reason


# ----- 5. memory checked up front -------------------------------------------------------------------------------
def test_huge_naming_game_is_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(16 << 30))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"not enough memory.*NamingGame: state 4.66 GiB per replica"):
        ensemble(jax.random.key(0), NamingGame(200_000, inventory="bitsets"), 1, 10)
    assert time.perf_counter() - start < 10


def test_huge_stop_window_is_refused(monkeypatch):
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(16 << 30))
    with pytest.raises(ValueError, match="not enough memory.*MemoryGame"):
        ensemble(jax.random.key(0), MemoryGame(6, stop_window=10**9), 8, 12)


def test_replicas_are_chunked_to_fit_and_results_do_not_change(monkeypatch):
    game = NamingGame(4)
    whole = ensemble(jax.random.key(3), game, 24, 8)
    per_replica = engine.estimate_memory(game, (), 24, 8, 8, False)["per_replica"]
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(int(16.5 * per_replica / engine.MEMORY_SAFETY)))
    assert engine.estimate_memory(game, (), 24, 8, 8, False)["fitting_chunk"] < 24
    chunked = ensemble(jax.random.key(3), game, 24, 8)
    for name in whole.summary:
        np.testing.assert_array_equal(chunked.summary[name], whole.summary[name])


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "memory-game", "--replicas", "1000000000"],
        ["simulate", "memory-game", "--rounds", "200000000", "--schedule", "matching"],
        ["simulate", "naming-game", "--agents", "200000", "--replicas", "1", "--inventory", "bitsets"],
    ],
)
def test_cli_refuses_runs_that_do_not_fit(argv, capsys, monkeypatch):
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(16 << 30))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not enough memory" in err


def test_large_loose_file_is_skipped_unread(tmp_path):
    (tmp_path / GAME_FILE).write_bytes(_good_log())
    with open(tmp_path / ("big_" + GAME_FILE), "wb") as big:
        big.truncate(5 << 30)  # sparse: 5 GB that would all be read by the old loader
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    collection = load_logs(tmp_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB
    assert [log.name for log in collection.files] == [GAME_FILE]
    assert "too large" in collection.skipped[0].reason


def test_zip_bomb_member_is_skipped(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(GAME_FILE, _good_log())
        with archive.open("bomb_" + GAME_FILE, "w", force_zip64=True) as member:
            zeros = b"\0" * (1 << 20)
            for _ in range(80):  # 80 MiB of zeros, a ~80 KB member
                member.write(zeros)
    assert os.path.getsize(path) < 1 << 20
    collection = load_logs(path)
    assert [log.name for log in collection.files] == [GAME_FILE]
    assert "too large" in collection.skipped[0].reason


# ----- 6. smaller -----------------------------------------------------------------------------------------------
def test_seed_out_of_range_is_one_line(capsys):
    assert main(["simulate", "naming-game", "--seed", str(2**64), "--agents", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed" in err and str(2**64) in err


def test_graphs_without_edges_are_value_errors():
    with pytest.raises(ValueError, match="no edges"):
        topology.erdos_renyi(10, 0.0, seed=0, allow_disconnected=True)
    with pytest.raises(ValueError, match="no edges"):
        topology.from_edges([], 5)


def test_bad_chunk_size_and_beta_shape_are_named():
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1 or None, got -2"):
        ensemble(jax.random.key(0), NamingGame(4), 2, 8, chunk_size=-2)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\], got an array of shape \(2, 3\)"):
        NamingGame(4, beta=np.ones((2, 3)))


def test_steps_overflow_names_the_value_given(capsys):
    assert main(["simulate", "naming-game", "--agents", "100", "--steps", "2147483640"]) == 2
    err = capsys.readouterr().err
    assert "--steps 2147483640" in err and err.count("\n") == 1


def test_loader_errors_are_data_file_errors():
    """Strict loading of a refused file raises a DataFileError (a ValueError naming the file)."""
    with pytest.raises(DataFileError, match="deep.pkl"):
        safe_loads(b"\x80\x02" + deep(10_000) + b".", "deep.pkl")
