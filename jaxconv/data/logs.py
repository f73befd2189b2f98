"""Loading LLM naming-game logs (format of Ashery, Aiello & Baronchelli 2025): a zip, a folder or a pickle.

A game file is a dict: an optional ``'rules'`` string and one integer key per run, each run
``{'tracker': {'players', 'answers', 'outcome'}, 'simulation': {agent_id: {...}}, 'convergence': {...}}``.
Single-prompt tests (``*bias_test*``) are
``{'simulation': <one agent's memory>, 'tracker': {'answers': [...]}}``.
Pickles are read with :func:`jaxconv.data.safe_pickle.safe_loads`, which refuses every global.

Tolerated quirks, each reported (``LogCollection.skipped`` or ``LogFile.notes``), never silently dropped:
duplicates (the same file name with identical content, e.g. a folder nested in itself; files with identical
content but different names are both kept, with a note, since deterministic answers give identical pickles),
absent ``'rules'``, missing or empty runs, runs of different lengths,
other key names for the tracker and the agent histories (:data:`TRACKER_KEYS`, :data:`AGENT_KEYS`).
A bad file (corrupt zip member, truncated or hostile pickle, wrong schema) is reported as skipped with its
reason and the other files still load; ``strict=True`` raises instead. Loading a single file always raises.
"""

import hashlib
import re
import reprlib
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from jaxconv.data.safe_pickle import DataFileError, safe_loads

KINDS = ("game", "committed", "evolved", "no_memory_bias_test", "bias_test", "meta", "unknown")
MAX_FILE_BYTES = 64 << 20  # larger files and zip members are skipped unread (the largest real log is < 1 MB)
MAX_NAMES = 100  # distinct names in one file
MAX_NAME_CHARS = 200  # characters of one name
MAX_ID = 2**31 - 1  # agent ids, run keys and outcomes
MAX_SIZE = 100_000  # N and H read from a file name
MAX_MISSING = 10_000  # gaps in the run keys listed one by one

# canonical key -> accepted spellings, canonical first
RUN_KEYS = {"tracker": ("tracker", "track"), "simulation": ("simulation", "agents", "population")}
TRACKER_KEYS = {
    "players": ("players", "pairs", "player_pairs", "agents"),
    "answers": ("answers", "choices", "actions", "responses"),
    "outcome": ("outcome", "outcomes", "success", "successes", "results"),
}
AGENT_KEYS = {
    "my_history": ("my_history", "own_history", "my_answers"),
    "partner_history": ("partner_history", "partner_answers"),
    "outcome": ("outcome", "outcomes", "payoffs", "payoff_history"),
    "interactions": ("interactions", "partners"),
    "committed_tag": ("committed_tag", "committed"),
}


class LogSchemaError(DataFileError):
    """The pickle loaded but does not hold naming-game logs in the expected layout."""


class CorruptArchiveError(DataFileError):
    """A zip archive (or one of its members) cannot be read."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 40, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4


def _short(value) -> str:
    """A bounded repr of any loaded value, for messages (at most ~200 characters whatever the value)."""
    try:
        return _REPR.repr(value)[:200]
    except Exception:  # a value whose repr fails (e.g. an int too long to print)
        return f"<{type(value).__name__}>"


def _keys(mapping) -> str:
    """The first keys of a dict, shortened, for messages."""
    keys = [_short(k) for _, k in zip(range(8), mapping, strict=False)]
    return "[" + ", ".join(keys) + (", ..." if len(mapping) > 8 else "") + "]"


@dataclass(frozen=True)
class Skipped:
    """Something not loaded: a whole file (``run`` None) or one run of a file, and why."""

    file: str
    run: int | None
    reason: str


@dataclass
class FileMeta:
    """What a log's file name says. ``names``: the options offered (None for bias tests, whose name shows only
    the memory); ``payoffs`` = (failure, success), e.g. (-50, 100); ``memory`` = H; ``n_agents`` = N;
    ``committed`` = k; ``variant`` = 'swap' | 'inject'; ``initial`` = index of the prepared name ('0') or
    'random'; ``own_memory``/``partner_memory``: the fixed memory of a bias test."""

    file: str
    kind: str = "unknown"
    model: str | None = None
    names: list[str] | None = None
    payoffs: tuple[int, int] | None = None
    memory: int | None = None
    n_agents: int | None = None
    committed: int | None = None
    incumbent: str | None = None
    pushed: str | None = None
    variant: str | None = None
    initial: str | None = None
    network: str | None = None
    max_interactions: int | None = None
    temperature: float | None = None
    stochastic: bool = True
    own_memory: list[str] | None = None
    partner_memory: list[str] | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["payoffs"] = list(self.payoffs) if self.payoffs else None
        return out


@dataclass
class AgentHistory:
    """One agent's stored record ('simulation' entry): full histories, oldest first, prepared rounds first."""

    my_history: list[str]
    partner_history: list[str]
    outcome: list[int]
    interactions: list[int]
    committed: bool


@dataclass
class Run:
    """One run. ``players``: (T, 2) agent ids; ``answers``: (T, 2) names, answers[t, i] by players[t, i];
    ``success``: (T,) bool (the tracker's outcome, or equal answers when it has none); ``agents``: stored
    histories by agent id (None when the run has no 'simulation')."""

    key: int
    players: np.ndarray
    answers: np.ndarray
    success: np.ndarray
    stored_outcome: np.ndarray | None
    agents: dict[int, AgentHistory] | None
    committed_to: str | None = None
    converged_index: int | None = None

    @property
    def n_interactions(self) -> int:
        return len(self.players)

    @property
    def committed_agents(self) -> frozenset[int]:
        return frozenset(a for a, h in (self.agents or {}).items() if h.committed)


@dataclass
class SinglePrompt:
    """A single-prompt test: the fixed memory shown (own, partner, payoff; oldest first) and every answer."""

    own: list[str]
    partner: list[str]
    payoff: list[int]
    answers: list[str]


@dataclass
class LogFile:
    """One loaded file. ``names``: the file name's names, then any other name met in the data (first seen
    first); ``n_agents``: N from the file name, else the population seen in the data."""

    name: str
    meta: FileMeta
    names: list[str]
    n_agents: int | None
    rules: str | None = None
    runs: list[Run] = field(default_factory=list)
    single: SinglePrompt | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class LogCollection:
    """All loaded from one path: ``files`` in load order, ``skipped`` files and runs with the reason."""

    source: str
    files: list[LogFile]
    skipped: list[Skipped]

    def file(self, name: str) -> LogFile:
        """The file whose name or base name is ``name``."""
        for log in self.files:
            if name in (log.name, PurePosixPath(log.name).name):
                return log
        raise KeyError(f"no file named {name!r} in {self.source}")


# ---------------------------------------------------------------------------------------------- file names

_SPLIT = re.compile(
    r"^(?P<model>.+?)_(?P<word>converged_baseline|evolved_from|no_memory_bias_test|bias_test|swap|inject|meta)"
    r"(?:_(?P<rest>.*))?$"
)
_KIND_OF_WORD = {
    "converged_baseline": "game",
    "evolved_from": "evolved",
    "swap": "committed",
    "inject": "committed",
    "no_memory_bias_test": "no_memory_bias_test",
    "bias_test": "bias_test",
    "meta": "meta",
}
_GAME_BODY = re.compile(r"^(?P<names>.+?)_(?P<failure>-?\d+)_(?P<success>-?\d+)_(?P<memory>\d+)mem(?:_(?P<tail>.+))?$")
_ANCHOR = re.compile(r"(?:^|_)(?P<failure>-?\d+)_(?P<success>-?\d+)_(?P<memory>\d+)mem(?:_(?P<tail>.+))?$")
_COMMITTED_REST = re.compile(r"^(?P<initial>[^_]+)_(?P<k>\d+)cmtd_(?P<body>.+)$")
_EVOLVED_REST = re.compile(r"^(?P<initial>[^_]+)_(?P<body>.+)$")
_NO_MEMORY_REST = re.compile(r"^(?P<options>.+)_(?P<memory>\d+)mem$")
_BIAS_REST = re.compile(r"^(?P<own>[^_]+)_(?P<partner>[^_]+)$")


def _split_options(text: str) -> list[str]:
    """'Q_M' -> [Q, M]; 'QMXY' (one token of capitals) -> one name per letter; 'female_male' -> two names."""
    if "_" in text:
        return text.split("_")
    return list(text) if text.isalpha() and text.isupper() else [text]


def _parse_tail(meta: FileMeta, tail: str | None) -> None:
    network = []
    for token in tail.split("_") if tail else []:
        if m := re.fullmatch(r"(\d+)ps", token):
            meta.n_agents = int(m[1])
        elif m := re.fullmatch(r"(\d+)ints", token):
            meta.max_interactions = int(m[1])
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)tmp", token):
            meta.temperature = float(m[1])
        else:
            network.append(token)
    meta.network = "_".join(network) or None


def _parse_game_body(meta: FileMeta, body: str) -> bool:
    """Fill names, payoffs, memory and tail from '{names}_{fail}_{success}_{H}mem_...'; False if no match."""
    m = _GAME_BODY.match(body)
    if not m:
        return False
    meta.names = m["names"].split("_")
    meta.payoffs = (int(m["failure"]), int(m["success"]))
    meta.memory = int(m["memory"])
    _parse_tail(meta, m["tail"])
    return True


def _set_incumbent(meta: FileMeta) -> None:
    """The prepared (incumbent) name is names[initial]; the pushed name is the second name, as in the
    published generator (committed agents answer options[1])."""
    if not meta.names or meta.initial is None or not meta.initial.isdigit():
        return
    index = int(meta.initial)
    if index < len(meta.names):
        meta.incumbent = meta.names[index]
    if len(meta.names) > 1 and meta.names[1] != meta.incumbent:
        meta.pushed = meta.names[1]


def parse_filename(name: str) -> FileMeta:
    """Metadata from a log's file name.

    ``llama31_70b_swap_0_10cmtd_M_Q_-50_100_5mem_complete_24ps_0.5tmp.pkl`` -> model 'llama31_70b', kind
    'committed', k 10, names [M, Q], incumbent M, pushed Q, payoffs (-50, 100), H 5, N 24. Nothing depends on
    the model name; an unknown pattern gives kind 'unknown' with what could be parsed."""
    stem = PurePosixPath(name).name
    for suffix in (".pkl", ".pickle"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    meta = FileMeta(file=name)
    if stem.startswith("ns_"):  # the published generator's prefix for non-stochastic (matching) schedules
        meta.stochastic = False
        stem = stem[3:]
    split = _SPLIT.match(stem)
    if not split:
        anchor = _ANCHOR.search(stem)
        if anchor:
            meta.payoffs = (int(anchor["failure"]), int(anchor["success"]))
            meta.memory = int(anchor["memory"])
            _parse_tail(meta, anchor["tail"])
        return meta
    meta.model, meta.kind, rest = split["model"], _KIND_OF_WORD[split["word"]], split["rest"] or ""
    if meta.kind == "game":
        _parse_game_body(meta, rest)
    elif meta.kind == "committed":
        meta.variant = split["word"]
        if m := _COMMITTED_REST.match(rest):
            meta.initial, meta.committed = m["initial"], int(m["k"])
            _parse_game_body(meta, m["body"])
            _set_incumbent(meta)
    elif meta.kind == "evolved":
        meta.committed = 0
        if (m := _EVOLVED_REST.match(rest)) and _parse_game_body(meta, m["body"]):
            meta.initial = m["initial"]
            _set_incumbent(meta)
    elif meta.kind == "no_memory_bias_test":
        if m := _NO_MEMORY_REST.match(rest):
            meta.names, meta.memory = _split_options(m["options"]), int(m["memory"])
    elif meta.kind == "bias_test":
        if m := _BIAS_REST.match(rest):
            meta.own_memory, meta.partner_memory = _split_options(m["own"]), _split_options(m["partner"])
            if len(meta.own_memory) == len(meta.partner_memory):
                meta.memory = len(meta.own_memory)
    return meta


# ---------------------------------------------------------------------------------------------- content


class _RunSkip(Exception):
    """A run that cannot be used; the message is the reason."""


def _pick(mapping: dict, spellings: tuple[str, ...], used: set):
    for key in spellings:
        if key in mapping:
            if key != spellings[0]:
                used.add(f"{key!r} for {spellings[0]!r}")
            return mapping[key]
    return None


_INT_TEXT = re.compile(r"\s*-?[0-9]{1,10}\s*")


def _as_int(value, what: str) -> int:
    if isinstance(value, bool):
        raise _RunSkip(f"{what} is a bool, not an integer")
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, int):
        if abs(value) > MAX_ID:
            raise _RunSkip(f"{what} is {_short(value)}, outside [-{MAX_ID}, {MAX_ID}]")
        return value
    raise _RunSkip(f"{what} is {_short(value)}, not an integer")


def _as_success(value, what: str) -> bool:
    if isinstance(value, bool | int | float) and value == value:
        return value > 0  # 1/0, True/False or a payoff such as +100/-50
    raise _RunSkip(f"{what} is {_short(value)}, not 1/0 or a payoff")


def _as_name(value, what: str) -> str:
    if not isinstance(value, str):
        raise _RunSkip(f"{what} is {_short(value)}, not a name")
    if len(value) > MAX_NAME_CHARS:
        raise _RunSkip(f"{what} is a name of {len(value)} characters (limit {MAX_NAME_CHARS}): {_short(value)}")
    return value


def _pairs(rows, what: str) -> list:
    if not isinstance(rows, list | tuple):
        raise _RunSkip(f"tracker {what} is a {type(rows).__name__}, not a list")
    for t, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise _RunSkip(f"tracker {what}[{t}] is {_short(row)}, not a pair")
    return rows


def _parse_agent(agent_id, record, used: set) -> AgentHistory:
    label = _short(agent_id)
    if not isinstance(record, dict):
        raise _RunSkip(f"simulation entry of agent {label} is a {type(record).__name__}, not a dict")
    fields = {key: _pick(record, spellings, used) for key, spellings in AGENT_KEYS.items()}
    lists = {}
    for key in ("my_history", "partner_history", "outcome", "interactions"):
        value = fields[key] if fields[key] is not None else []
        if not isinstance(value, list | tuple):
            raise _RunSkip(f"agent {label}: {key} is a {type(value).__name__}, not a list")
        lists[key] = list(value)
    return AgentHistory(
        my_history=[_as_name(str(x), f"agent {label} own answer") for x in lists["my_history"]],
        partner_history=[_as_name(str(x), f"agent {label} partner answer") for x in lists["partner_history"]],
        outcome=[_as_int(x, f"agent {label} outcome") for x in lists["outcome"]],
        interactions=[_as_int(x, f"agent {label} partner id") for x in lists["interactions"]],
        committed=bool(fields["committed_tag"]),
    )


def _parse_run(key: int, value, used: set) -> Run:
    if not value:
        raise _RunSkip("empty run")
    if not isinstance(value, dict):
        raise _RunSkip(f"run is a {type(value).__name__}, not a dict")
    tracker = _pick(value, RUN_KEYS["tracker"], used)
    if not isinstance(tracker, dict):
        raise _RunSkip(f"no tracker dict (run keys: {_keys(value)})")
    players = _pick(tracker, TRACKER_KEYS["players"], used)
    answers = _pick(tracker, TRACKER_KEYS["answers"], used)
    outcome = _pick(tracker, TRACKER_KEYS["outcome"], used)
    for what, rows in (("players", players), ("answers", answers)):
        if rows is None:
            raise _RunSkip(f"tracker has no {what} list (tracker keys: {_keys(tracker)})")
    players, answers = _pairs(players, "players"), _pairs(answers, "answers")
    lengths = {"players": len(players), "answers": len(answers)}
    if outcome is not None:
        if not isinstance(outcome, list | tuple):
            raise _RunSkip(f"tracker outcome is a {type(outcome).__name__}, not a list")
        lengths["outcome"] = len(outcome)
    if len(set(lengths.values())) > 1:
        raise _RunSkip(f"tracker lists have different lengths {lengths}")
    if not players:
        raise _RunSkip("no interactions")
    player_ids = np.array([[_as_int(p, f"player id at t={t}") for p in row] for t, row in enumerate(players)])
    for t, row in enumerate(answers):
        if not all(isinstance(a, str) for a in row):
            raise _RunSkip(f"answers[{t}] = {_short(row)} is not a pair of names")
        for a in row:
            _as_name(a, f"answers[{t}]")
    answer_array = np.array([[str(a) for a in row] for row in answers], dtype=str)
    stored = None
    if outcome is not None:
        stored = np.array([_as_success(x, f"outcome[{t}]") for t, x in enumerate(outcome)], dtype=bool)
    success = stored if stored is not None else answer_array[:, 0] == answer_array[:, 1]
    simulation = _pick(value, RUN_KEYS["simulation"], used)
    agents = None
    if isinstance(simulation, dict):
        agents = {_as_int(a, "agent id"): _parse_agent(a, record, used) for a, record in simulation.items()}
    convergence = value.get("convergence") if isinstance(value.get("convergence"), dict) else {}
    committed_to = convergence.get("committed_to")
    index = convergence.get("converged_index")
    return Run(
        key=key,
        players=player_ids,
        answers=answer_array,
        success=success,
        stored_outcome=stored,
        agents=agents,
        committed_to=committed_to if isinstance(committed_to, str) else None,
        converged_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
    )


def _run_key(key) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= MAX_ID:
        return key
    if isinstance(key, str) and re.fullmatch(r"[0-9]{1,10}", key) and int(key) <= MAX_ID:
        return int(key)
    return None


def _parse_single(obj: dict, name: str, used: set) -> SinglePrompt:
    tracker = _pick(obj, RUN_KEYS["tracker"], used)
    answers = _pick(tracker, TRACKER_KEYS["answers"], used) if isinstance(tracker, dict) else None
    if not isinstance(answers, list | tuple) or not all(isinstance(a, str) for a in answers):
        raise LogSchemaError(name, "single-prompt test without a list of string answers in tracker['answers']")
    try:
        for a in answers:
            _as_name(a, "an answer")
        agent = _parse_agent("(single prompt)", _pick(obj, RUN_KEYS["simulation"], used), used)
    except _RunSkip as error:
        raise LogSchemaError(name, f"single-prompt test: {error}") from None
    return SinglePrompt(agent.my_history, agent.partner_history, agent.outcome, list(answers))


def _is_single_prompt(obj: dict) -> bool:
    simulation = _pick(obj, RUN_KEYS["simulation"], set())
    return isinstance(simulation, dict) and any(k in simulation for k in AGENT_KEYS["my_history"])


def parse_log(obj, name: str) -> tuple[LogFile, list[Skipped]]:
    """Parse an unpickled log named ``name``: its runs (or single-prompt test) and the runs skipped.

    Raises LogSchemaError naming the file when the content is not naming-game logs."""
    meta = parse_filename(name)
    for label, value in (("N", meta.n_agents), ("memory H", meta.memory), ("committed k", meta.committed)):
        if value is not None and value > MAX_SIZE:
            raise LogSchemaError(name, f"{label} = {value} in the file name is larger than {MAX_SIZE}")
    log = LogFile(name=name, meta=meta, names=list(meta.names or []), n_agents=meta.n_agents)
    if meta.kind == "meta":
        log.notes.append("comprehension-question answers, not game data: content not parsed")
        return log, []
    if not isinstance(obj, dict):
        raise LogSchemaError(name, f"expected a dict of runs, got a {type(obj).__name__}")
    used: set = set()
    skipped: list[Skipped] = []
    if _is_single_prompt(obj):
        log.single = _parse_single(obj, name, used)
        _extend_names(log, [log.single.own, log.single.partner, log.single.answers])
        if meta.own_memory is not None and (meta.own_memory, meta.partner_memory) != (
            log.single.own,
            log.single.partner,
        ):
            log.notes.append(
                f"the file name's memory (own {meta.own_memory}, partner {meta.partner_memory}) differs from the "
                f"stored one (own {log.single.own}, partner {log.single.partner}); the stored one is used"
            )
        _note_aliases(log, used)
        return log, skipped
    if isinstance(obj.get("tracker"), dict):  # a bare run saved on its own
        obj = {0: obj}
    rules = obj.get("rules")
    log.rules = rules if isinstance(rules, str) else None
    if log.rules is None:
        log.notes.append("no 'rules' (system prompt) stored")
    keys = {}
    for key in obj:
        run_key = _run_key(key)
        if run_key is not None:
            keys[run_key] = key
        elif key != "rules":
            ignored = sum(note.startswith("ignored top-level key") for note in log.notes)
            if ignored < 8:
                log.notes.append(f"ignored top-level key {_short(key)}")
    if not keys:
        raise LogSchemaError(name, f"no runs: no integer keys and no tracker (top-level keys: {_keys(obj)})")
    n_missing = max(keys) + 1 - len(keys)
    if n_missing > MAX_MISSING:
        raise LogSchemaError(name, f"run keys go up to {max(keys)} but only {len(keys)} runs are stored")
    for missing in sorted(set(range(max(keys) + 1)) - set(keys)):
        skipped.append(Skipped(name, missing, "run missing (no such key in the file)"))
    for run_key in sorted(keys):
        try:
            log.runs.append(_parse_run(run_key, obj[keys[run_key]], used))
        except _RunSkip as error:
            skipped.append(Skipped(name, run_key, str(error)))
    _note_aliases(log, used)
    _extend_names(
        log,
        [r.answers.ravel() for r in log.runs]
        + [h.my_history + h.partner_history for r in log.runs for h in (r.agents or {}).values()],
    )
    if log.n_agents is None and log.runs:
        log.n_agents = max(len(r.agents) if r.agents else len(np.unique(r.players)) for r in log.runs)
        log.notes.append(f"N not in the file name: using the population seen in the data ({log.n_agents})")
    return log, skipped


def _note_aliases(log: LogFile, used: set) -> None:
    if used:
        log.notes.append("read other key names: " + ", ".join(sorted(used)))


def _extend_names(log: LogFile, sequences) -> None:
    known = set(log.names)
    extra = []
    for sequence in sequences:
        for name in sequence:
            if name not in known:
                known.add(name)
                extra.append(name)
                if len(known) > MAX_NAMES:
                    raise LogSchemaError(log.name, f"more than {MAX_NAMES} distinct names in the file")
    if extra and log.meta.names:
        log.notes.append(f"names in the data but not in the file name: {extra}")
    log.names.extend(extra)


# ---------------------------------------------------------------------------------------------- sources


def _collapse_repeats(name: str) -> str:
    """'a/a/x.pkl' -> 'a/x.pkl' (a folder nested in itself, as in llama31_data/llama31_data/)."""
    parts = PurePosixPath(name).parts
    kept = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1] or i == len(parts) - 1]
    return "/".join(kept)


def _is_macos_metadata(name: str) -> bool:
    path = PurePosixPath(name)
    return "__MACOSX" in path.parts or path.name.startswith("._") or path.name == ".DS_Store"


def _zip_entries(path: Path, prefix: str, stack: ExitStack):
    """(name, read) for each member of the zip at ``path`` (kept open by ``stack``); raises
    CorruptArchiveError if unreadable."""
    label = prefix.rstrip("/") or str(path)
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as error:
        raise CorruptArchiveError(label, f"not a readable zip archive ({_short(str(error))})") from None
    entries = []
    for info in archive.infolist():
        if info.is_dir():
            continue

        def read(info=info):
            name = prefix + info.filename
            if info.file_size > MAX_FILE_BYTES:
                raise CorruptArchiveError(name, f"member too large ({info.file_size} bytes, limit {MAX_FILE_BYTES})")
            try:
                with archive.open(info) as member:  # read at most the limit, whatever the header claims
                    data = member.read(MAX_FILE_BYTES + 1)
            except RuntimeError as error:  # encrypted member (zipfile asks for a password)
                why = "encrypted, password required" if "encrypted" in str(error) else _short(str(error))
                raise CorruptArchiveError(name, f"cannot read zip member ({why})") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as error:
                raise CorruptArchiveError(name, f"cannot read zip member ({_short(str(error))})") from None
            if len(data) > MAX_FILE_BYTES:
                raise CorruptArchiveError(name, f"member too large (more than {MAX_FILE_BYTES} bytes)")
            return data

        entries.append((prefix + info.filename, read))
    return entries


def _file_reader(path: Path, name: str):
    def read():
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise DataFileError(name, f"file too large ({size} bytes, limit {MAX_FILE_BYTES}); not read")
            with path.open("rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise DataFileError(name, f"cannot read ({error.strerror or error})") from None
        if len(data) > MAX_FILE_BYTES:
            raise DataFileError(name, f"file too large (more than {MAX_FILE_BYTES} bytes); not read")
        return data

    return read


def _folder_entries(folder: Path, skipped: list[Skipped], strict: bool, stack: ExitStack):
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".zip":
            try:
                entries.extend(_zip_entries(path, name + "/", stack))
            except CorruptArchiveError as error:
                if strict:
                    raise
                skipped.append(Skipped(name, None, _reason(error)))
        else:
            entries.append((name, _file_reader(path, name)))
    return entries


def _reason(error: DataFileError) -> str:
    text = str(error)
    return text[len(error.file) + 2 :] if text.startswith(error.file + ": ") else text


def load_logs(path, *, strict: bool = False) -> LogCollection:
    """Load every log under ``path`` (a .zip, a folder of .pkl and .zip files, or one pickle file).

    Returns a LogCollection; duplicates (same file name and identical content, or a folder nested in itself)
    and unusable files and runs are listed in ``skipped`` with the reason. ``strict=True`` raises on the first
    unusable file (DataFileError, a ValueError naming it). Loading a single pickle file raises if unusable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    with ExitStack() as stack:
        return _load(path, strict, stack)


def _load(path: Path, strict: bool, stack: ExitStack) -> LogCollection:
    skipped: list[Skipped] = []
    single_file = False
    if path.is_dir():
        entries = _folder_entries(path, skipped, strict, stack)
    elif path.suffix == ".zip" or zipfile.is_zipfile(path):
        entries = _zip_entries(path, "", stack)
    else:
        entries, single_file = [(path.name, _file_reader(path, path.name))], True
    files: list[LogFile] = []
    by_content: dict[str, list[str]] = {}  # sha256 -> names read with that content
    names_read: set[str] = set()
    for name, read in sorted(entries, key=lambda entry: (entry[0].count("/"), entry[0])):
        if _is_macos_metadata(name):
            skipped.append(Skipped(name, None, "macOS metadata, not a log"))
            continue
        if not single_file and PurePosixPath(name).suffix not in (".pkl", ".pickle"):
            skipped.append(Skipped(name, None, "not a .pkl file"))
            continue
        try:
            data = read()
            same_content = by_content.setdefault(hashlib.sha256(data).hexdigest(), [])
            twin = next((n for n in same_content if PurePosixPath(n).name == PurePosixPath(name).name), None)
            if twin is not None:
                skipped.append(Skipped(name, None, f"duplicate of {twin} (same file name, identical content)"))
                continue
            outer = _collapse_repeats(name)
            if outer != name and outer in names_read:
                skipped.append(Skipped(name, None, f"nested copy of {outer} with DIFFERENT content; kept {outer}"))
                continue
            log, run_skips = parse_log(safe_loads(data, name), name)
        except Exception as error:  # one bad file is skipped with its reason; the others still load
            if not isinstance(error, DataFileError):
                error = DataFileError(name, f"{type(error).__name__}: {_short(str(error))}")
            if strict or single_file:
                raise error from None
            skipped.append(Skipped(name, None, _reason(error)))
            continue
        if same_content:
            log.notes.append(f"identical content to {same_content[0]} (kept: the file names differ)")
        same_content.append(name)
        names_read.add(name)
        files.append(log)
        skipped.extend(run_skips)
    return LogCollection(source=str(path), files=files, skipped=skipped)
