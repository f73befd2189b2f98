"""Property-based fuzzing (hypothesis) of the loader and the command line: generated malicious or malformed
pickles and zips, and extreme CLI arguments. Every input is accepted or refused with a one-line message, without
a traceback, in bounded time."""

import io
import pickle
import struct
import time
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxconv import engine
from jaxconv.cli import main
from jaxconv.data import DataFileError, load_logs, safe_loads
from jaxconv.data.logs import parse_log

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
GAME_FILE = "m_converged_baseline_Q_M_-50_100_5mem_complete_24ps.pkl"
VALID = pickle.dumps(
    {
        "rules": "r",
        0: {
            "tracker": {"players": [[0, 1], [1, 0]], "answers": [["Q", "M"], ["M", "M"]], "outcome": [0, 1]},
            "simulation": {0: {"my_history": ["Q"], "partner_history": ["M"], "outcome": [-50], "interactions": [1]}},
        },
    },
    protocol=2,
)

# opcodes a hostile pickle is made of: containers, memo references (the "billion laughs"), marks, globals
_OPS = st.one_of(
    st.sampled_from([b"]", b"}", b")", b"(", b"a", b"e", b"s", b"u", b"t", b"l", b"d", b"0", b"1", b"2", b"\x85"]),
    st.sampled_from([b"\x86", b"\x87", b"\x8f", b"\x90", b"\x91", b"\x94", b"N", b"\x88", b"R", b"b", b"\x81"]),
    st.integers(0, 255).map(lambda i: b"K" + bytes([i])),
    st.integers(0, 40).map(lambda i: b"h" + bytes([i])),
    st.integers(0, 40).map(lambda i: b"q" + bytes([i])),
    st.text(max_size=8).map(lambda t: b"X" + struct.pack("<I", len(t.encode())) + t.encode()),
    st.just(b"cos\nsystem\n"),
    st.just(b"\x8c\x02os\x94\x8c\x06system\x94\x93"),
)


def _check_load(data: bytes) -> None:
    start = time.perf_counter()
    try:
        obj = safe_loads(data, "fuzz.pkl")
    except DataFileError as error:
        assert "\n" not in str(error) and len(str(error)) < 400
    else:
        repr(obj)  # anything accepted can be printed in bounded time
        try:
            parse_log(obj, GAME_FILE)
        except DataFileError as error:
            assert "\n" not in str(error) and len(str(error)) < 600
    assert time.perf_counter() - start < 10


@FUZZ
@given(st.lists(_OPS, max_size=60), st.booleans())
def test_generated_opcode_sequences(ops, proto):
    _check_load((b"\x80\x02" if proto else b"") + b"".join(ops) + b".")


@FUZZ
@given(st.data())
def test_mutated_valid_pickles(data):
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at:]
            if not raw:
                break
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=6))
    _check_load(bytes(raw))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([GAME_FILE, "a/" + GAME_FILE, "x.pkl", "__MACOSX/._x.pkl", "notes.txt", "a/a/x.pkl"]),
            st.one_of(st.just(VALID), st.binary(max_size=200), st.lists(_OPS, max_size=20).map(b"".join)),
        ),
        max_size=5,
    ),
    st.data(),
)
def test_generated_and_damaged_zips(tmp_path_factory, members, data):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as z:
        for name, content in members:
            z.writestr(name, content)
    raw = bytearray(buffer.getvalue())
    for _ in range(data.draw(st.integers(0, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    folder = tmp_path_factory.mktemp("zips")
    (folder / "logs.zip").write_bytes(bytes(raw))
    (folder / GAME_FILE).write_bytes(VALID)
    start = time.perf_counter()
    collection = load_logs(folder)  # a folder: every bad file or archive is skipped, the good file loads
    assert GAME_FILE in [log.name for log in collection.files]
    assert all("\n" not in s.reason for s in collection.skipped)
    assert time.perf_counter() - start < 10


class _WouldRun(Exception):
    pass


def _stop_before_running(key, game, n_replicas, n_steps, record_every=None, *, until_done=False):
    """``timed_ensemble`` up to its checks: validation, parameters and memory, then stop (no compilation)."""
    engine.check_steps(n_steps, record_every or n_steps)
    engine.check_parameters(game)
    memory = engine.estimate_memory(game, (), n_replicas, n_steps, record_every or n_steps, until_done)
    engine._check_fits(memory, n_replicas, game, n_replicas, "replicas")
    raise _WouldRun


_INTS = st.one_of(st.integers(-3, 50), st.sampled_from([2**31, 2**63, 2**64, 10**9, -(2**63) - 1]))
_FLOATS = st.one_of(
    st.floats(-10, 10),
    st.sampled_from(["nan", "inf", "-inf", "1e-45", "1e39", "-0", "1e300", "x"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_cli_arguments(monkeypatch, capsys, data):
    monkeypatch.setattr(engine, "timed_ensemble", _stop_before_running)
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(8 << 30))
    game = data.draw(st.sampled_from(["naming-game", "memory-game", "best-response"]))
    argv = ["simulate", game]
    ints = ["--agents", "--replicas", "--seed"] + (["--steps", "--committed"] if game == "naming-game" else [])
    ints += ["--names", "--memory", "--rounds"] if game != "naming-game" else []
    ints += ["--committed"] if game == "memory-game" else []
    floats = ["--beta"] if game == "naming-game" else ["--payoff-weight"]
    if game == "memory-game":
        floats += ["--win-stay", "--lose-shift", "--temperature", "--recency", "--own-weight"]
    if game == "best-response":
        floats += ["--committed-fraction"]
    for flag in data.draw(st.lists(st.sampled_from(ints), max_size=4, unique=True)):
        argv += [flag, str(data.draw(_INTS))]
    for flag in data.draw(st.lists(st.sampled_from(floats), max_size=3, unique=True)):
        argv += [flag, str(data.draw(_FLOATS))]
    if game == "memory-game" and data.draw(st.booleans()):
        argv += ["--policy", "softmax", "--bias", *map(str, data.draw(st.lists(_FLOATS, min_size=1, max_size=3)))]
    if data.draw(st.booleans()):
        argv += ["--graph", data.draw(st.sampled_from(["ring", "er", "ws", "regular", "lattice2d", "moon"]))]
        argv += ["--graph-param", str(data.draw(_FLOATS))]
    try:
        status = main(argv)
    except _WouldRun:
        return  # accepted: every check passed
    err = capsys.readouterr().err
    assert status == 2, argv
    assert err.startswith("jaxconv: error: ") and err.count("\n") == 1, (argv, err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "summary", "/nonexistent"],
        ["fit", "/nonexistent", "--seed", "-1"],
        ["simulate", "memory-game", "--lose-shift", "1e300", "--policy", "softmax", "--bias", "0", "0"],
    ],
)
def test_cli_missing_paths_are_one_line(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1
