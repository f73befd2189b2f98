"""Tidy tables of loaded logs: one row per interaction, one row per choice with the chooser's memory window.

Columns are numpy arrays of equal length; names are indices into ``names[file]``.

- ``interactions`` (n_interactions,): file, run, t, agent_1, agent_2, choice_1, choice_2, success (bool).
- ``choices`` (n_choices,): file, run, t, slot (0 for agent_1, 1 for agent_2; 0 for single prompts), agent,
  partner, choice, partner_choice, success (1/0, -1 for single prompts), committed, single_prompt, memory_len,
  and ``memory_own``, ``memory_partner``, ``memory_payoff`` of shape (n_choices, H_max): the last H rounds the
  agent saw before choosing, oldest first and right-aligned (the latest round in column H_max - 1), -1 where
  the history is shorter (``memory_len`` tells padding from a payoff of -1). Single-prompt tests have
  agent = partner = partner_choice = -1.

The memory is rebuilt from the tracker, starting from each agent's stored history before its first tracker
interaction (the prepared rounds of committed-minority files), and the whole rebuilt history is checked
against the stored ``my_history``, ``partner_history``, ``outcome`` and ``interactions``; every difference is
listed in ``TidyData.mismatches``.
"""

import csv
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np

from jaxconv.data.logs import LogCollection, LogFile, Run, Skipped

INTERACTION_COLUMNS = ("file", "run", "t", "agent_1", "agent_2", "choice_1", "choice_2", "success")
CHOICE_COLUMNS = (
    "file",
    "run",
    "t",
    "slot",
    "agent",
    "partner",
    "choice",
    "partner_choice",
    "success",
    "committed",
    "single_prompt",
    "memory_len",
)
MEMORY_COLUMNS = ("memory_own", "memory_partner", "memory_payoff")


@dataclass(frozen=True)
class Mismatch:
    """A difference between the tracker and a stored history (``agent`` None: about the whole run)."""

    file: str
    run: int
    agent: int | None
    field: str
    detail: str


@dataclass
class TidyData:
    """Per-file lists (``files``, ``names``, ``memory`` H, ``payoffs`` (failure, success), None if unknown for
    a single-prompt test) and the two tables."""

    files: list[str]
    names: list[list[str]]
    memory: list[int]
    payoffs: list[tuple[int, int] | None]
    interactions: dict[str, np.ndarray]
    choices: dict[str, np.ndarray]
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    n_agents_checked: int = 0

    def to_npz(self, path) -> None:
        """Write every table as plain numpy arrays (no pickled objects): names as an (F, W_max) str array."""
        width = max((len(n) for n in self.names), default=0)
        arrays = {
            "files": np.array(self.files, dtype=str),
            "names": np.array([n + [""] * (width - len(n)) for n in self.names], dtype=str).reshape(-1, width),
            "n_names": np.array([len(n) for n in self.names], dtype=np.int64),
            "memory": np.array(self.memory, dtype=np.int64),
            "payoffs": np.array([p or (0, 0) for p in self.payoffs], dtype=np.int64).reshape(-1, 2),
            "payoffs_known": np.array([p is not None for p in self.payoffs], dtype=bool),
            "mismatches": np.array([[str(x) for x in astuple(m)] for m in self.mismatches], dtype=str).reshape(-1, 5),
            "skipped": np.array([[str(x) for x in astuple(s)] for s in self.skipped], dtype=str).reshape(-1, 3),
            "n_agents_checked": np.array(self.n_agents_checked),
        }
        arrays |= {f"interaction_{k}": v for k, v in self.interactions.items()}
        arrays |= {f"choice_{k}": v for k, v in self.choices.items()}
        np.savez_compressed(path, **arrays)

    def to_csv(self, folder) -> list[Path]:
        """Write files.csv, names.csv, interactions.csv, choices.csv (memory as memory_own_1..H, oldest first)
        and mismatches.csv into ``folder``; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        width = self.choices["memory_own"].shape[1]
        memory_header = [f"{m}_{i}" for m in MEMORY_COLUMNS for i in range(1, width + 1)]
        tables = {
            "files.csv": (
                ["file_index", "file", "memory", "payoff_failure", "payoff_success"],
                [
                    [i, f, h, *(p or ("", ""))]
                    for i, (f, h, p) in enumerate(zip(self.files, self.memory, self.payoffs, strict=True))
                ],
            ),
            "names.csv": (
                ["file_index", "name_index", "name"],
                [[i, j, n] for i, names in enumerate(self.names) for j, n in enumerate(names)],
            ),
            "interactions.csv": (
                list(INTERACTION_COLUMNS),
                zip(*(self.interactions[c].astype(int) for c in INTERACTION_COLUMNS), strict=True),
            ),
            "choices.csv": (
                list(CHOICE_COLUMNS) + memory_header,
                (
                    list(row) + list(own) + list(partner) + list(payoff)
                    for row, own, partner, payoff in zip(
                        zip(*(self.choices[c].astype(int) for c in CHOICE_COLUMNS), strict=True),
                        *(self.choices[m] for m in MEMORY_COLUMNS),
                        strict=True,
                    )
                ),
            ),
            "mismatches.csv": (["file", "run", "agent", "field", "detail"], map(astuple, self.mismatches)),
        }
        paths = []
        for filename, (header, rows) in tables.items():
            path = folder / filename
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
            paths.append(path)
        return paths


def load_tidy_npz(path) -> TidyData:
    """Read a file written by :meth:`TidyData.to_npz`."""
    with np.load(path, allow_pickle=False) as data:
        names = [list(row[:n]) for row, n in zip(data["names"], data["n_names"], strict=True)]
        return TidyData(
            files=[str(f) for f in data["files"]],
            names=[[str(n) for n in row] for row in names],
            memory=[int(h) for h in data["memory"]],
            payoffs=[
                (int(a), int(b)) if known else None
                for (a, b), known in zip(data["payoffs"], data["payoffs_known"], strict=True)
            ],
            interactions={c: data[f"interaction_{c}"] for c in INTERACTION_COLUMNS},
            choices={c: data[f"choice_{c}"] for c in CHOICE_COLUMNS + MEMORY_COLUMNS},
            mismatches=[
                Mismatch(f, int(r), None if a == "None" else int(a), k, d) for f, r, a, k, d in data["mismatches"]
            ],
            skipped=[Skipped(f, None if r == "None" else int(r), why) for f, r, why in data["skipped"]],
            n_agents_checked=int(data["n_agents_checked"]),
        )


def _file_payoffs(log: LogFile) -> tuple[int, int] | None:
    """(failure, success) from the file name, else the two values of the stored payoffs."""
    if log.meta.payoffs:
        return log.meta.payoffs
    stored = {x for run in log.runs for h in (run.agents or {}).values() for x in h.outcome}
    if log.single:
        stored |= set(log.single.payoff)
    return (min(stored), max(stored)) if len(stored) == 2 else None


def _first_difference(rebuilt: list, stored: list) -> str | None:
    for i, (a, b) in enumerate(zip(rebuilt, stored, strict=False)):
        if a != b:
            return f"position {i}: stored {b!r}, tracker gives {a!r}"
    if len(rebuilt) != len(stored):
        return f"stored length {len(stored)}, tracker gives {len(rebuilt)}"
    return None


def _right_aligned(window: np.ndarray, width: int) -> np.ndarray:
    """(n, h) -> (n, width): the h columns last, -1 before them."""
    out = np.full((len(window), width), -1, dtype=np.int64)
    if window.shape[1]:
        out[:, width - window.shape[1] :] = window
    return out


class _Builder:
    """Accumulates the tables run by run; ``width`` = H_max, the memory columns of every choice."""

    def __init__(self, width: int):
        self.width = width
        self.interactions: list[dict[str, np.ndarray]] = []
        self.choices: list[dict[str, np.ndarray]] = []
        self.mismatches: list[Mismatch] = []
        self.n_agents_checked = 0

    def add_run(self, index: int, log: LogFile, run: Run, memory: int, payoffs: tuple[int, int]) -> None:
        code = {name: i for i, name in enumerate(log.names)}
        n = run.n_interactions
        choices = np.vectorize(code.__getitem__, otypes=[np.int64])(run.answers)
        self.interactions.append(
            {
                "file": np.full(n, index),
                "run": np.full(n, run.key),
                "t": np.arange(n),
                "agent_1": run.players[:, 0],
                "agent_2": run.players[:, 1],
                "choice_1": choices[:, 0],
                "choice_2": choices[:, 1],
                "success": run.success,
            }
        )
        self._check_outcome(log, run)
        # one row per choice, row = 2 t + slot (time order)
        agent, partner = run.players.ravel(), run.players[:, ::-1].ravel()
        own, other = choices.ravel(), choices[:, ::-1].ravel()
        payoff = np.where(own == other, payoffs[1], payoffs[0])
        # rank[row]: how many earlier choices the same agent made in this run
        order = np.argsort(agent, kind="stable")
        ids, starts, counts = np.unique(agent[order], return_index=True, return_counts=True)
        rank = np.empty(2 * n, dtype=np.int64)
        rank[order] = np.arange(2 * n) - np.repeat(starts, counts)
        participations = dict(zip(ids.tolist(), counts.tolist(), strict=True))
        prefixes = self._prefixes(log, run, code, memory, payoffs, participations)
        # every agent's history in one table: its prefix, then one round per choice
        everyone = sorted(set(prefixes) | set(participations))
        sizes = [len(prefixes.get(a, [])) + participations.get(a, 0) for a in everyone]
        block = dict(zip(everyone, np.cumsum([0] + sizes[:-1]).tolist(), strict=True))
        history = np.full((sum(sizes), 3), -1, dtype=np.int64)
        for a, rounds in prefixes.items():
            if rounds:
                history[block[a] : block[a] + len(rounds)] = rounds
        block_of = np.array([block[a] for a in agent.tolist()], dtype=np.int64)
        prefix_of = np.array([len(prefixes.get(a, [])) for a in agent.tolist()], dtype=np.int64)
        position = block_of + prefix_of + rank
        history[position] = np.stack([own, other, payoff], axis=1)
        # memory window of each choice: the ``memory`` rounds before ``position`` within the agent's block
        look = position[:, None] + np.arange(-memory, 0)[None, :]
        valid = look >= block_of[:, None]
        window = history[np.where(valid, look, 0)]
        window[~valid] = -1
        self.choices.append(
            {
                "file": np.full(2 * n, index),
                "run": np.full(2 * n, run.key),
                "t": np.repeat(np.arange(n), 2),
                "slot": np.tile([0, 1], n),
                "agent": agent,
                "partner": partner,
                "choice": own,
                "partner_choice": other,
                "success": np.repeat(run.success, 2).astype(np.int64),
                "committed": np.isin(agent, list(run.committed_agents)),
                "single_prompt": np.zeros(2 * n, dtype=bool),
                "memory_len": valid.sum(axis=1),
            }
            | {m: _right_aligned(window[:, :, i], self.width) for i, m in enumerate(MEMORY_COLUMNS)}
        )
        by_agent = partner[order]
        partners_of = {a: by_agent[s : s + c].tolist() for a, s, c in zip(ids.tolist(), starts, counts, strict=True)}
        rebuilt = {a: history[block[a] : block[a] + size].tolist() for a, size in zip(everyone, sizes, strict=True)}
        self._check_histories(log, run, rebuilt, partners_of)

    def add_single(self, index: int, log: LogFile) -> None:
        test = log.single
        code = {name: i for i, name in enumerate(log.names)}
        n = len(test.answers)
        shown = list(zip(test.own, test.partner, test.payoff, strict=False))[-self.width :] if self.width else []
        window = np.array([[code[o], code[p], x] for o, p, x in shown], dtype=np.int64).reshape(1, -1, 3)
        self.choices.append(
            {
                "file": np.full(n, index),
                "run": np.zeros(n, dtype=np.int64),
                "t": np.arange(n),
                "slot": np.zeros(n, dtype=np.int64),
                "agent": np.full(n, -1),
                "partner": np.full(n, -1),
                "choice": np.array([code[a] for a in test.answers], dtype=np.int64),
                "partner_choice": np.full(n, -1),
                "success": np.full(n, -1),
                "committed": np.zeros(n, dtype=bool),
                "single_prompt": np.ones(n, dtype=bool),
                "memory_len": np.full(n, len(shown)),
            }
            | {
                m: np.repeat(_right_aligned(window[:, :, i], self.width), n, axis=0)
                for i, m in enumerate(MEMORY_COLUMNS)
            }
        )

    def _check_outcome(self, log: LogFile, run: Run) -> None:
        if run.stored_outcome is None:
            return
        differ = np.flatnonzero(run.stored_outcome != (run.answers[:, 0] == run.answers[:, 1]))
        if len(differ):
            detail = f"{len(differ)} interactions whose outcome disagrees with the answers (first t={differ[0]})"
            self.mismatches.append(Mismatch(log.name, run.key, None, "tracker.outcome", detail))

    def _prefixes(self, log: LogFile, run: Run, code: dict, memory: int, payoffs, participations: dict) -> dict:
        """Each agent's rounds before its first tracker interaction: the stored rounds not in the tracker."""
        if run.agents is None:
            detail = "no stored histories: nothing to check against"
            self.mismatches.append(Mismatch(log.name, run.key, None, "simulation", detail))
            return {a: _prepared(log, code, memory, payoffs) for a in participations}
        prefixes = {}
        for agent in sorted(set(participations) | set(run.agents)):
            stored = run.agents.get(agent)
            extra = len(stored.my_history) - participations.get(agent, 0) if stored else -1
            if stored is None:
                self.mismatches.append(Mismatch(log.name, run.key, agent, "simulation", "agent has no stored record"))
            elif extra < 0:
                detail = f"stored history is {-extra} rounds shorter than the tracker's"
                self.mismatches.append(Mismatch(log.name, run.key, agent, "my_history", detail))
            if stored is None or extra < 0:
                prefixes[agent] = _prepared(log, code, memory, payoffs)
                continue
            rounds = zip(
                stored.my_history[:extra],
                stored.partner_history[:extra],
                stored.outcome[:extra],
                strict=False,
            )
            prefixes[agent] = [(code[own], code[partner], payoff) for own, partner, payoff in rounds]
        return prefixes

    def _check_histories(self, log: LogFile, run: Run, rebuilt: dict, partners: dict) -> None:
        """Compare each stored record with the rebuilt history (rows of (own, partner, payoff))."""
        if run.agents is None:
            return
        for agent, stored in run.agents.items():
            rounds = rebuilt.get(agent, [])
            self.n_agents_checked += 1
            checks = {
                "my_history": ([log.names[o] for o, _, _ in rounds], stored.my_history),
                "partner_history": ([log.names[p] for _, p, _ in rounds], stored.partner_history),
                "outcome": ([x for _, _, x in rounds], stored.outcome),
                "interactions": (partners.get(agent, []), stored.interactions),
            }
            for name, (from_tracker, from_store) in checks.items():
                difference = _first_difference(from_tracker, from_store)
                if difference:
                    self.mismatches.append(Mismatch(log.name, run.key, agent, name, difference))

    def tables(self) -> tuple[dict, dict]:
        """The accumulated (interactions, choices) columns."""
        interactions = {
            c: np.concatenate([t[c] for t in self.interactions] or [np.zeros(0, np.int64)]) for c in INTERACTION_COLUMNS
        }
        interactions["success"] = interactions["success"].astype(bool)
        empty = {c: np.zeros(0, np.int64) for c in CHOICE_COLUMNS} | {
            m: np.zeros((0, self.width), np.int64) for m in MEMORY_COLUMNS
        }
        choices = {c: np.concatenate([t[c] for t in self.choices] or [empty[c]]) for c in empty}
        for c in ("committed", "single_prompt"):
            choices[c] = choices[c].astype(bool)
        return interactions, choices


def _prepared(log: LogFile, code: dict, memory: int, payoffs) -> list:
    """Start of an agent without a stored record: H rounds of (incumbent, incumbent, success) in a prepared
    (committed-minority or evolved) file, else nothing."""
    if log.meta.kind in ("committed", "evolved") and log.meta.incumbent in code:
        x = code[log.meta.incumbent]
        return [(x, x, payoffs[1])] * memory
    return []


def tidy_dataset(logs: LogCollection | list[LogFile], memory: int | None = None) -> TidyData:
    """Tables of every game run and single-prompt test in ``logs``; ``memory`` overrides each file's H.

    Files without runs or answers (meta files) are left out; a file whose H is unknown (not in its file name
    and no ``memory`` given) is listed in ``skipped``."""
    files = logs.files if isinstance(logs, LogCollection) else list(logs)
    skipped = []
    usable = []
    for log in files:
        if not log.runs and log.single is None:
            continue
        h = memory if memory is not None else log.meta.memory
        if log.single is not None:
            h = len(log.single.own) if memory is None else memory
        if h is None:
            skipped.append(Skipped(log.name, None, "memory size H unknown (not in the file name): pass memory="))
            continue
        payoffs = _file_payoffs(log)
        if payoffs is None and log.runs:
            skipped.append(Skipped(log.name, None, "payoffs unknown (not in the file name nor the stored outcomes)"))
            continue
        usable.append((log, h, payoffs))
    width = max((h for _, h, _ in usable), default=0)
    builder = _Builder(width)
    for index, (log, h, payoffs) in enumerate(usable):
        if log.single is not None:
            builder.add_single(index, log)
        for run in log.runs:
            builder.add_run(index, log, run, h, payoffs)
    interactions, choices = builder.tables()
    return TidyData(
        files=[log.name for log, _, _ in usable],
        names=[list(log.names) for log, _, _ in usable],
        memory=[h for _, h, _ in usable],
        payoffs=[p for _, _, p in usable],
        interactions=interactions,
        choices=choices,
        mismatches=builder.mismatches,
        skipped=skipped,
        n_agents_checked=builder.n_agents_checked,
    )
