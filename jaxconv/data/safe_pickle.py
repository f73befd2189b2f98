"""Loading pickles that hold only builtin data, without running any code, in bounded time and memory.

A pickle can name any importable callable (``os.system``, ``builtins.eval``, ...) and have the unpickler call
it. Every such reference goes through ``Unpickler.find_class``; :class:`BuiltinsOnlyUnpickler` refuses all of
them, so only what the pickle opcodes build directly can come out: None, bool, int, float, str, bytes,
bytearray, list, tuple, dict, set and frozenset. Nothing is imported and nothing is called.

A small pickle can still describe a huge object: memo references (``GET``) let a few hundred bytes build a list
whose tree has 2**100 elements ("billion laughs"); its ``repr``, a traversal, or the hashing of such a tuple as a
dict key (done by the unpickler itself) never ends. Before the unpickler runs, :func:`check_pickle` therefore
reads the opcodes once (time linear in the size) and computes, for the object graph they build, the size of
everything as a tree (memo references expanded), the nesting depth, the characters of its strings as a tree and
the hashing work of dict keys and set items; a pickle over any of :data:`LIMITS` is refused
(:class:`PickleLimitError`) with a one-line message, and so is a self-containing (recursive) structure. What is
accepted can be traversed, hashed and printed in time and memory proportional to those limits.
"""

import io
import pickle
import pickletools
from pathlib import Path

LIMITS = {
    "bytes": 256 << 20,  # size of the pickle itself
    "elements": 5_000_000,  # objects of the result as a tree (each memo reference counted in full)
    "depth": 100,  # nesting of containers
    "chars": 256 << 20,  # characters of str / bytes of the result as a tree
    "hashing": 5_000_000,  # elements hashed while building dict keys, set and frozenset items
}


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


class PickleLimitError(DataFileError):
    """The pickle is valid but describes more than :data:`LIMITS` allow (size, depth, elements, hashing)."""


class BuiltinsOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` refuses every global (and every persistent id)."""

    def __init__(self, stream, file: str):
        super().__init__(stream)
        self.file = file

    def find_class(self, module, name):
        raise UnsafePickleError(self.file, module, name)

    def persistent_load(self, pid):
        raise UnsafePickleError(self.file, "<persistent id>", repr(pid)[:60])


def short(text, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (for messages)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----- the opcode scan ------------------------------------------------------------------------------------------
_LEAVES = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "NONE", "NEWTRUE", "NEWFALSE", "FLOAT",
    "BINFLOAT",
}  # fmt: skip
_STRINGS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "BYTEARRAY8",
}  # fmt: skip
_EMPTY = {"EMPTY_LIST": "list", "EMPTY_DICT": "dict", "EMPTY_SET": "set", "EMPTY_TUPLE": "tuple"}
_FROM_MARK = {"LIST": "list", "TUPLE": "tuple", "DICT": "dict", "FROZENSET": "frozenset"}
_CODE = {  # ops that would build objects from code: only reachable after a global, which is refused first
    "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "NEXT_BUFFER", "READONLY_BUFFER",
}  # fmt: skip


class _Graph:
    """The object graph a pickle builds. Containers are nodes 0, 1, ... with ``children[i]`` and ``kind[i]``; a
    leaf (number, None, str, bytes) is not a node but the negative id ``~chars`` (its characters, 0 for a number)."""

    def __init__(self):
        self.children: list[list[int]] = []
        self.kind: list[str] = []
        self.hashed: list[int] = []  # ids hashed by the unpickler (dict keys, set items), one per hashing

    def new(self, kind: str, children: list[int]) -> int:
        self.children.append(children)
        self.kind.append(kind)
        return len(self.kind) - 1


_TARGET = {"APPEND": "list", "APPENDS": "list", "SETITEM": "dict", "SETITEMS": "dict", "ADDITEMS": "set"}
MAX_INT_BITS = 256


def _scan(data: bytes, file: str) -> tuple[_Graph, int, int]:
    """Run the pickle's opcodes on node ids, as the C unpickler does (values on one stack, marks on another);
    returns the graph, the result's node and the bytes read."""
    graph = _Graph()
    stack: list[int] = []
    marks: list[int] = []
    memo: dict[int, int] = {}
    strings: list = ["?", "?"]  # the last two strings pushed, to name a refused STACK_GLOBAL

    def pop_mark() -> list[int]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for opcode, arg, position in pickletools.genops(data):
        name = opcode.name
        if name in _LEAVES:
            if isinstance(arg, int) and arg.bit_length() > MAX_INT_BITS:
                raise PickleLimitError(file, f"refused: an integer of {arg.bit_length()} bits (limit {MAX_INT_BITS})")
            stack.append(-1)
        elif name in _STRINGS:
            stack.append(~len(arg))
            strings = [strings[1], arg if isinstance(arg, str) else "?"]
        elif name in ("BINPUT", "PUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "GET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "MARK":
            marks.append(len(stack))
        elif name in _EMPTY:
            stack.append(graph.new(_EMPTY[name], []))
        elif name in _TARGET:
            if name.endswith("S"):
                items = pop_mark()
            else:
                n = 2 if name == "SETITEM" else 1
                if len(stack) < n + 1:
                    raise ValueError(f"{name} on a short stack")
                items = stack[-n:]
                del stack[-n:]
            target = stack[-1]
            if target < 0 or graph.kind[target] != _TARGET[name] or (_TARGET[name] == "dict" and len(items) % 2):
                raise ValueError(f"{name} on a {'leaf' if target < 0 else graph.kind[target]}")
            graph.children[target].extend(items)
            if _TARGET[name] == "dict":
                graph.hashed.extend(items[::2])
            elif _TARGET[name] == "set":
                graph.hashed.extend(items)
        elif name in _FROM_MARK:
            items = pop_mark()
            if name == "DICT" and len(items) % 2:
                raise ValueError(f"bad {name}")
            stack.append(graph.new(_FROM_MARK[name], items))
            if name == "DICT":
                graph.hashed.extend(items[::2])
            elif name == "FROZENSET":
                graph.hashed.extend(items)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n:
                raise ValueError(f"{name} on a short stack")
            items = stack[-n:]
            del stack[-n:]
            stack.append(graph.new("tuple", items))
        elif name == "POP":
            if marks and marks[-1] == len(stack):
                marks.pop()
            else:
                stack.pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("PROTO", "FRAME"):
            pass
        elif name == "STOP":
            return graph, stack[-1], position + 1
        elif name in ("GLOBAL", "INST"):
            module, _, attribute = arg.partition(" ")
            raise UnsafePickleError(file, short(module), short(attribute))
        elif name == "STACK_GLOBAL":
            raise UnsafePickleError(file, short(strings[0]), short(strings[1]))
        elif name in ("PERSID", "BINPERSID"):
            raise UnsafePickleError(file, "<persistent id>", short(repr(arg)) if arg is not None else "?")
        elif name in ("EXT1", "EXT2", "EXT4"):
            raise UnsafePickleError(file, "<extension registry>", f"code {arg}")
        elif name in _CODE:
            raise ValueError(f"opcode {name} without a callable")
        else:
            raise ValueError(f"unsupported opcode {name}")
    raise EOFError("no STOP opcode")


def _measure(graph: _Graph, file: str) -> dict:
    """Tree size, depth and characters of every container (iterative post-order over the graph, each edge
    followed once); refuses a cycle or any value over the limits. Returns the largest values and the hashing."""
    n = len(graph.kind)
    children = graph.children
    elements = [0] * n
    chars = [0] * n
    depth = [0] * n
    state = bytearray(n)  # 0 new, 1 on the path, 2 done
    max_e, max_c, max_d = LIMITS["elements"], LIMITS["chars"], LIMITS["depth"]
    worst = {"elements": 0, "depth": 0, "chars": 0}
    for root in range(n - 1, -1, -1):  # children are mostly created after their container: few descents
        if state[root]:
            continue
        state[root] = 1
        path = [[root, 0, 1, 0, 0]]  # node, next child, elements, chars, depth so far
        while path:
            frame = path[-1]
            node, i, e, c, d = frame
            kids = children[node]
            pending = -1
            for j in range(i, len(kids)):
                child = kids[j]
                if child < 0:
                    e += 1
                    c += ~child
                elif state[child] == 2:
                    e += elements[child]
                    c += chars[child]
                    if depth[child] >= d:
                        d = depth[child] + 1
                elif state[child] == 1:
                    raise PickleLimitError(file, "refused: the pickle builds a recursive (self-containing) structure")
                else:
                    pending = child
                    break
            if pending >= 0:
                frame[1:] = [j, e, c, d]
                if len(path) > max_d:
                    raise PickleLimitError(file, f"refused: containers nested deeper than {max_d} levels")
                state[pending] = 1
                path.append([pending, 0, 1, 0, 0])
                continue
            path.pop()
            state[node] = 2
            if e > max_e or c > max_c or d > max_d:
                if d > max_d:
                    raise PickleLimitError(file, f"refused: containers nested deeper than {max_d} levels")
                key = "elements" if e > max_e else "chars"
                raise PickleLimitError(
                    file,
                    f"refused: the pickle expands to more than {LIMITS[key]} {_WHAT[key]} (shared references "
                    "counted in full); nothing was built",
                )
            elements[node], chars[node], depth[node] = e, c, d
            worst["elements"] = max(worst["elements"], e)
            worst["chars"] = max(worst["chars"], c)
            worst["depth"] = max(worst["depth"], d)
    hashing = 0
    for node in graph.hashed:
        hashing += 1 if node < 0 else elements[node]
        if hashing > LIMITS["hashing"]:
            raise PickleLimitError(
                file, f"refused: building its dict keys and set items would hash more than {LIMITS['hashing']} elements"
            )
    worst["hashing"] = hashing
    return worst


_WHAT = {"elements": "elements", "chars": "characters of strings"}


def check_pickle(data: bytes, file: str = "<bytes>") -> dict:
    """Refuse ``data`` unless it is one complete pickle of builtin data within :data:`LIMITS`; returns the
    measured sizes (``elements``, ``depth``, ``chars``, ``hashing``, ``bytes``). Time linear in ``len(data)``.

    Raises UnsafePickleError (a global), PickleLimitError (over a limit) or CorruptPickleError."""
    if not data:
        raise CorruptPickleError(file, "empty file, not a pickle")
    if len(data) > LIMITS["bytes"]:
        raise PickleLimitError(file, f"refused: {len(data)} bytes, more than the limit of {LIMITS['bytes']} bytes")
    try:
        graph, _, end = _scan(data, file)
    except DataFileError:
        raise
    except EOFError:
        raise CorruptPickleError(file, "truncated pickle (data ended before the STOP opcode)") from None
    except (ValueError, KeyError, IndexError, TypeError, OverflowError, MemoryError) as error:
        reason = short(str(error) or type(error).__name__, 120)
        if "truncated" in reason or "not enough data" in reason:
            raise CorruptPickleError(file, "truncated pickle (data ended before the STOP opcode)") from None
        raise CorruptPickleError(file, f"not a valid pickle: {type(error).__name__}: {reason}") from None
    if end != len(data):
        raise CorruptPickleError(file, f"trailing data after the pickle ({len(data) - end} bytes)")
    return _measure(graph, file) | {"bytes": len(data)}


def safe_loads(data: bytes, file: str = "<bytes>"):
    """Unpickle ``data`` (named ``file`` in errors) after :func:`check_pickle`; raises UnsafePickleError,
    PickleLimitError or CorruptPickleError (all DataFileError, a ValueError naming the file)."""
    check_pickle(data, file)
    stream = io.BytesIO(data)
    truncated = "truncated pickle (data ended before the STOP opcode)"
    try:
        obj = BuiltinsOnlyUnpickler(stream, file).load()
    except UnsafePickleError:
        raise
    except EOFError:
        raise CorruptPickleError(file, truncated) from None
    except Exception as error:  # any failure of the opcode machine means a damaged pickle
        reason = short(str(error) or type(error).__name__, 120)
        raise CorruptPickleError(
            file, truncated if "truncated" in reason else f"not a valid pickle: {reason}"
        ) from None
    if stream.tell() != len(data):
        raise CorruptPickleError(file, f"trailing data after the pickle ({len(data) - stream.tell()} bytes)")
    return obj


def safe_load(path) -> object:
    """Unpickle the file at ``path`` with :func:`safe_loads` (refused unread if over the byte limit)."""
    path = Path(path)
    size = path.stat().st_size
    if size > LIMITS["bytes"]:
        raise PickleLimitError(str(path), f"refused: {size} bytes, more than the limit of {LIMITS['bytes']} bytes")
    return safe_loads(path.read_bytes(), str(path))
