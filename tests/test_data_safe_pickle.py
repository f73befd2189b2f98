"""The builtins-only unpickler: builtin data loads, any global is refused before anything runs."""

import os
import pickle
import pickletools

import pytest

from jaxconv.data.safe_pickle import CorruptPickleError, UnsafePickleError, safe_load, safe_loads


def _system_payload(marker) -> bytes:
    """Protocol-0 pickle calling os.system("touch marker") when loaded by plain pickle.loads."""
    return b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."


class _Reduces:
    """Pickles (protocol 4, STACK_GLOBAL) as a call to os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_builtin_containers_load_in_every_protocol(protocol):
    data = {
        "rules": "x",
        0: {"tracker": {"players": [[1, 2]], "answers": [("Q", "M")], "outcome": [0]}},
        1: None,
    }
    data["numbers"] = [1.5, -2.0, True, False, 2**70, ""]
    assert safe_loads(pickle.dumps(data, protocol=protocol)) == data


def test_bytes_and_sets_load_from_protocol_4():
    """(Older protocols spell them as calls of _codecs.encode / builtins.set, which are refused.)"""
    data = [b"raw", {1, 2}, frozenset({3}), bytearray(b"x")]
    assert safe_loads(pickle.dumps(data, protocol=5)) == data
    with pytest.raises(UnsafePickleError):
        safe_loads(pickle.dumps({1, 2}, protocol=2))


def test_payload_really_references_os_system(tmp_path):
    """Guards the next tests: the payload is a genuine call of os.system (inspected, never run)."""
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(_system_payload(tmp_path / "m"))]
    assert ("GLOBAL", "os system") in ops and ("REDUCE", None) in ops


def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_system_payload(marker))
    with pytest.raises(UnsafePickleError) as caught:
        safe_load(path)
    assert str(path) in str(caught.value) and "os.system" in str(caught.value)
    assert caught.value.file == str(path)
    assert isinstance(caught.value, ValueError)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reduce_payload_in_any_protocol_is_refused(tmp_path, protocol):
    marker = tmp_path / "marker"
    data = pickle.dumps({"runs": [_Reduces(marker)]}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refused global (posix|os|nt)\.system"):
        safe_loads(data, "payload.pkl")
    assert not marker.exists()


def test_classes_are_refused_even_harmless_ones():
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        safe_loads(pickle.dumps(__import__("collections").OrderedDict(a=1)), "ordered.pkl")


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_loads(b"P1\n.", "persistent.pkl")


def test_truncated_pickle_names_the_file():
    data = pickle.dumps({"a": list(range(100))}, protocol=4)
    with pytest.raises(CorruptPickleError, match=r"^half\.pkl: truncated pickle"):
        safe_loads(data[: len(data) // 2], "half.pkl")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"not a pickle at all", "not a valid pickle"), (b"N.extra", "trailing data")],
)
def test_damaged_bytes_name_the_file(data, message):
    with pytest.raises(CorruptPickleError, match=f"^bad.pkl: .*{message}"):
        safe_loads(data, "bad.pkl")
