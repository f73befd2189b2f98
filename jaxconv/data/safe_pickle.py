"""Loading pickles that hold only builtin data, without running any code.

A pickle can name any importable callable (``os.system``, ``builtins.eval``, ...) and have the unpickler call
it. Every such reference goes through ``Unpickler.find_class``; :class:`BuiltinsOnlyUnpickler` refuses all of
them, so only what the pickle opcodes build directly can come out: None, bool, int, float, str, bytes,
bytearray, list, tuple, dict, set and frozenset. Nothing is imported and nothing is called.
"""

import io
import pickle
from pathlib import Path


class DataFileError(ValueError):
    """A data file that cannot be used; ``file`` names it and the message says why."""

    def __init__(self, file: str, message: str):
        super().__init__(f"{file}: {message}")
        self.file = file


class UnsafePickleError(DataFileError):
    """The pickle references a global (a class or function); it was refused and nothing was executed."""

    def __init__(self, file: str, module: str, name: str):
        super().__init__(
            file,
            f"refused global {module}.{name}: this pickle references code, and only builtin data "
            "(dict, list, str, int, float, bool, None, tuple) is accepted; nothing was executed",
        )
        self.module = module
        self.name = name


class CorruptPickleError(DataFileError):
    """The bytes are not a complete, valid pickle (truncated, damaged or not a pickle at all)."""


class BuiltinsOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` refuses every global (and every persistent id)."""

    def __init__(self, stream, file: str):
        super().__init__(stream)
        self.file = file

    def find_class(self, module, name):
        raise UnsafePickleError(self.file, module, name)

    def persistent_load(self, pid):
        raise UnsafePickleError(self.file, "<persistent id>", repr(pid)[:60])


def safe_loads(data: bytes, file: str = "<bytes>"):
    """Unpickle ``data`` (named ``file`` in errors); raises UnsafePickleError or CorruptPickleError."""
    if not data:
        raise CorruptPickleError(file, "empty file, not a pickle")
    stream = io.BytesIO(data)
    truncated = "truncated pickle (data ended before the STOP opcode)"
    try:
        obj = BuiltinsOnlyUnpickler(stream, file).load()
    except UnsafePickleError:
        raise
    except EOFError:
        raise CorruptPickleError(file, truncated) from None
    except Exception as error:  # any failure of the opcode machine means a damaged pickle
        reason = str(error) or type(error).__name__
        raise CorruptPickleError(
            file, truncated if "truncated" in reason else f"not a valid pickle: {reason}"
        ) from None
    if stream.tell() != len(data):
        raise CorruptPickleError(file, f"trailing data after the pickle ({len(data) - stream.tell()} bytes)")
    return obj


def safe_load(path) -> object:
    """Unpickle the file at ``path`` with :func:`safe_loads`."""
    path = Path(path)
    return safe_loads(path.read_bytes(), str(path))
