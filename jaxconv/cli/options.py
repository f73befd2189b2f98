"""Options shared by the simulating commands (``simulate naming-game|memory-game|best-response`` and ``sweep``),
written once, and what they do: ``--seed``, ``--replicas``, ``--graph``/``--graph-param``, ``--devices`` and the
multi-process settings, ``--checkpoint DIR``/``--chunk-size``, ``--progress``, ``--replicas-out FILE``,
``--json``/``--out FILE``; plus the keys every command's JSON carries (``seed``, ``parameters``, ``version``) and
the standard error of a mean.

A game module (:mod:`jaxconv.cli.naming`, :mod:`jaxconv.cli.memory`) turns parsed arguments into a :class:`Plan`
(the game and its step counts) and per-replica summaries into outcomes; :func:`simulate` runs a plan with these
options.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

GRAPH_PARAMETERS = {
    "complete": {},
    "ring": {"k": 2},
    "lattice2d": {},
    "er": {"mean_degree": 4.0, "seed": None},
    "ba": {"m": 2, "seed": None},
    "ws": {"k": 4, "p": 0.1, "seed": None},
    "regular": {"d": 4, "seed": None},
}
GRAPH_ALIASES = {
    "lattice": "lattice2d",
    "erdos-renyi": "er",
    "barabasi-albert": "ba",
    "watts-strogatz": "ws",
    "random-regular": "regular",
}
CHECKPOINT_CHUNKS = 10  # with --checkpoint or progress bars and no --chunk-size: replicas in about this many chunks
# arguments that name the command, or change how a run is executed or written but not its results
NOT_PARAMETERS = {
    "command",
    "game",
    "data_command",
    "model",
    "json",
    "out",
    "replicas_out",
    "checkpoint",
    "chunk_size",
    "progress",
    "devices",
    "coordinator",
    "num_processes",
    "process_id",
    "cluster",
}


def seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [-2**63, 2**63) (what a JAX key holds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text[:40]!r}") from None
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [-2**63, 2**63), got {text[:40]}")
    return value


# ----- the options ------------------------------------------------------------------------------------------------
def add_output(parser) -> None:
    """``--json`` (print one JSON object) and ``--out FILE`` (also write it to FILE)."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_out(parser)


def add_out(parser) -> None:
    parser.add_argument("--out", metavar="FILE", help="also write the JSON object to FILE")


def add_simulation_options(parser, replicas: int = 256, sweep: bool = False) -> None:
    """The options every simulating subcommand has (module docstring). For ``jaxconv sweep`` (``sweep=True``),
    ``--out FILE`` (also spelled ``--replicas-out``) is the table of every replica, and the JSON goes to stdout."""
    parser.add_argument("--replicas", type=int, default=replicas, help="independent runs")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (replica i gets key i of its split)")
    parser.add_argument(
        "--graph",
        default="complete",
        help="interaction graph: " + " | ".join(GRAPH_PARAMETERS) + " (or lattice, erdos-renyi, barabasi-albert, "
        "watts-strogatz, random-regular)",
    )
    parser.add_argument(
        "--graph-param",
        action="append",
        default=[],
        metavar="[NAME=]VALUE",
        help="e.g. k=4, p=0.1, m=2, d=4, seed=1; a bare VALUE sets the graph's first parameter (ring k, er "
        "mean_degree, ba m, ws k, regular d); random graphs are seeded by --seed unless seed= is given",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="save finished chunks of replicas in DIR; a rerun with the same arguments reuses them",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help=f"replicas per chunk (default: about 1/{CHECKPOINT_CHUNKS} of them with --checkpoint or progress "
        "bars, else as many as fit in memory)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over the chunks on stderr (default: when stderr is a terminal and without --json)",
    )
    add_device_options(parser)
    if sweep:
        parser.add_argument(
            "--out",
            "--replicas-out",
            dest="replicas_out",
            metavar="FILE",
            help="write the table, one row per grid point and replica, to FILE (.csv or .npz: by its suffix)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object (a summary per grid point)")
        return
    parser.add_argument(
        "--replicas-out", metavar="FILE", help="write one row per replica to FILE (.csv or .npz: by its suffix)"
    )
    add_output(parser)


def add_device_options(parser) -> None:
    """--devices and the multi-process settings (jaxconv.devices.configure)."""
    parser.add_argument("--devices", type=int, default=None, help="CPU devices (default: XLA_FLAGS, else one per core)")
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (several processes)")
    parser.add_argument("--num-processes", type=int, default=None, help="number of processes")
    parser.add_argument("--process-id", type=int, default=None, help="this process, 0 .. num-processes - 1")
    parser.add_argument("--cluster", action="store_true", help="detect the processes (SLURM, MPI, ...) as JAX does")


def configure_devices(args) -> dict:
    """Set up the devices (and processes) of ``args``; :func:`jaxconv.devices.describe` of the result."""
    from jaxconv.devices import configure

    return configure(
        args.devices,
        coordinator=args.coordinator,
        n_processes=args.num_processes,
        process_id=args.process_id,
        cluster=args.cluster,
    )


def check_run_options(args) -> None:
    """ValueError naming a bad ``--replicas``, ``--chunk-size`` or ``--replicas-out`` before anything runs."""
    if args.replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {args.replicas}")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise ValueError(f"chunk-size must be >= 1, got {args.chunk_size}")
    if args.replicas_out is not None:
        replicas_format(args.replicas_out)
        check_writable(args.replicas_out, "--replicas-out")
    if args.checkpoint is not None and Path(args.checkpoint).exists() and not Path(args.checkpoint).is_dir():
        raise ValueError(f"--checkpoint {args.checkpoint} is not a folder")


def check_writable(path: str, option: str = "--out") -> None:
    """Fail before a long run when ``path`` cannot be written."""
    folder = Path(path).expanduser().resolve().parent
    if Path(path).is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{option} {path}: folder {folder} is not writable")


# ----- graphs -----------------------------------------------------------------------------------------------------
def make_graph(kind: str, n_agents: int, params: list[str], seed: int):
    """The graph ``kind`` on ``n_agents`` nodes with ``NAME=VALUE`` parameters (a bare ``VALUE`` names the kind's
    first parameter; defaults in ``GRAPH_PARAMETERS``; ``seed`` defaults to the run's seed); None for the complete
    graph. ValueError naming the bad kind or parameter."""
    from jaxconv import topology

    kind = GRAPH_ALIASES.get(kind, kind)
    if kind not in GRAPH_PARAMETERS:
        raise ValueError(f"unknown graph {kind!r}; choose one of {[*GRAPH_PARAMETERS, *GRAPH_ALIASES]}")
    values = dict(GRAPH_PARAMETERS[kind])
    for item in params:
        name, named, text = item.partition("=")
        if not named:
            name, text = next(iter(values), None), item
        if name not in values or not text:
            raise ValueError(f"bad --graph-param {item!r} for graph {kind!r}; parameters: {sorted(values) or 'none'}")
        try:
            values[name] = float(text) if name in ("p", "mean_degree") else int(text)
        except ValueError:
            raise ValueError(f"bad --graph-param {item!r}: {name} must be a number") from None
    if "seed" in values and values["seed"] is None:
        values["seed"] = seed
    if kind == "complete":
        return None
    if kind == "ring":
        return topology.ring(n_agents, **values)
    if kind == "lattice2d":
        side = math.isqrt(n_agents)
        if side * side != n_agents:
            raise ValueError(f"--graph lattice2d needs a square number of agents, got {n_agents}")
        return topology.lattice2d(side)
    if kind == "er":
        return topology.erdos_renyi(n_agents, **values)
    if kind == "ba":
        return topology.barabasi_albert(n_agents, **values)
    if kind == "ws":
        return topology.watts_strogatz(n_agents, **values)
    return topology.random_regular(n_agents, **values)


# ----- running ----------------------------------------------------------------------------------------------------
class Plan(NamedTuple):
    """What to run: ``game`` for ``n_steps`` steps recorded every ``record_every`` (one population round of
    ``interactions_per_round`` interactions), stopping at ``game.is_done`` when ``until_done``."""

    game: object
    n_steps: int
    record_every: int
    until_done: bool
    interactions_per_round: int


def progress_enabled(args) -> bool:
    """``--progress``/``--no-progress``, else on when stderr is a terminal and the output is not JSON."""
    if args.progress is not None:
        return args.progress
    return sys.stderr.isatty() and not args.json


def chunked(args) -> bool:
    """Whether the run goes through the engine's chunked ``ensemble``/``sweep`` (checkpoints, progress or an
    explicit chunk size) rather than one chunk compiled ahead of time and timed."""
    return args.checkpoint is not None or args.chunk_size is not None or progress_enabled(args)


def chunk_size(args) -> int:
    """``--chunk-size``, else about ``CHECKPOINT_CHUNKS`` chunks (a number that depends only on the replicas, so a
    rerun finds the same chunks)."""
    return args.chunk_size or -(-args.replicas // CHECKPOINT_CHUNKS)


class Checkpoints:
    """Counts the chunk files that runs with ``--checkpoint DIR`` write: a chunk found finished is reused (not
    rewritten), so ``reused = chunks - written``."""

    def __init__(self, directory: str | None):
        self.directory = None if directory is None else Path(directory)
        self.chunks = 0
        self.written = 0

    def _files(self) -> dict:
        if self.directory is None or not self.directory.is_dir():
            return {}
        return {path.name: (path.stat().st_mtime_ns, path.stat().st_ino) for path in self.directory.glob("chunk-*.npz")}

    def run(self, function, n_replicas: int, chunk: int):
        """``function()`` (an engine call over ``n_replicas`` in chunks of ``chunk``), counting its chunks."""
        from jaxconv.engine import devices_for

        before = self._files()
        result = function()
        after = self._files()
        n_devices = devices_for(n_replicas)
        size = -(-min(chunk, n_replicas) // n_devices) * n_devices  # as the engine rounds it
        self.chunks += -(-n_replicas // size)
        self.written += sum(1 for name, stamp in after.items() if before.get(name) != stamp)
        return result

    def report(self) -> dict | None:
        if self.directory is None:
            return None
        return {
            "directory": str(self.directory),
            "chunks": self.chunks,
            "chunks_reused": self.chunks - self.written,
            "chunks_computed": self.written,
        }


def run_plan(args, plan: Plan, checkpoints: Checkpoints) -> tuple:
    """Run ``args.replicas`` replicas of ``plan`` from ``--seed``: ``(Result, compile_seconds, run_seconds)``;
    ``compile_seconds`` is None for a chunked run, whose ``run_seconds`` then includes compilation."""
    import jax

    from jaxconv import engine

    key = jax.random.key(args.seed)
    if not chunked(args):
        return engine.timed_ensemble(
            key, plan.game, args.replicas, plan.n_steps, plan.record_every, until_done=plan.until_done
        )
    size = chunk_size(args)
    start = time.perf_counter()
    result = checkpoints.run(
        lambda: engine.ensemble(
            key,
            plan.game,
            args.replicas,
            plan.n_steps,
            plan.record_every,
            until_done=plan.until_done,
            chunk_size=size,
            checkpoint_dir=args.checkpoint,
            progress=progress_enabled(args),
        ),
        args.replicas,
        size,
    )
    return result, None, time.perf_counter() - start


def simulate(args, plan_of, describe, outcomes) -> dict:
    """The ``simulate`` subcommands: configure the devices, build the plan (``plan_of(args)``), run it, write
    ``--replicas-out`` and return ``describe(args, plan, devices)`` + timings + ``outcomes(args, plan, result)``."""
    check_run_options(args)
    used = configure_devices(args)
    plan = plan_of(args)
    checkpoints = Checkpoints(args.checkpoint)
    result, compile_seconds, run_seconds = run_plan(args, plan, checkpoints)
    if plan.until_done:  # replicas stopped at consensus: the interactions they played
        interactions = int(np.sum(result.summary["interactions"], dtype=np.int64))
    else:  # every replica's slots, runs ended by a stop rule included
        interactions = args.replicas * plan.n_steps * plan.game.interactions_per_step
    out = describe(args, plan, used) | {
        "interactions_per_second": interactions / run_seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
    }
    if checkpoints.report() is not None:
        out["checkpoint"] = checkpoints.report()
    out |= outcomes(args, plan, result)
    if args.replicas_out is not None:
        write_replicas(args.replicas_out, replica_columns(result.summary, args.seed))
        out["replicas_out"] = args.replicas_out
    return out


# ----- per-replica rows -------------------------------------------------------------------------------------------
def replica_columns(summary: dict, run_seed: int, first: dict | None = None) -> dict:
    """One column per field of a per-replica ``summary`` (``(replicas,)`` each; a field with more axes gives one
    column per entry, ``name_0``, ``name_1``, ...), after ``first`` (columns of the same length, e.g. swept
    parameters), ``replica`` (index i: the replica ran from key i of ``jax.random.split(key(seed), replicas)``)
    and ``seed``."""
    n = len(next(iter(summary.values())))
    columns = dict(first or {})
    columns["replica"] = np.arange(n)
    columns.setdefault("seed", np.full(n, run_seed, np.int64))
    for name, values in summary.items():
        values = np.asarray(values)
        if values.ndim == 1:
            columns[name] = values
        else:
            for index, column in enumerate(values.reshape(n, -1).T):
                columns[f"{name}_{index}"] = column
    return columns


def replicas_format(path: str) -> str:
    """``"csv"`` or ``"npz"`` from the suffix of ``path``; ValueError naming it otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise ValueError(f"--replicas-out {path}: the file name must end in .csv or .npz, got {suffix or 'none'!r}")
    return suffix[1:]


def write_replicas(path: str, columns: dict) -> None:
    """Write equal-length ``columns`` to ``path``: a CSV table with a header row (booleans as 0/1, text as is) or an
    ``.npz`` of one array per column. Through a temporary file, so a failure leaves no half file."""
    target = Path(path).expanduser()
    kind = replicas_format(path)
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}.{kind}")
    try:
        if kind == "npz":
            np.savez(temporary, **{name: np.asarray(values) for name, values in columns.items()})
        else:
            import csv

            with open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                cells = [_cells(values) for values in columns.values()]
                writer.writerows(zip(*cells, strict=True))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _cells(values) -> list:
    values = np.asarray(values)
    if values.dtype == bool:
        values = values.astype(np.int8)
    return values.tolist()


# ----- standard errors and the common JSON keys -------------------------------------------------------------------
def mean_se(values, axis: int = 0):
    """Mean of ``values`` over ``axis`` and its standard error (sample sd with ddof=1 / sqrt(n)); for empty input
    ``(None, None)`` and for one value ``(mean, None)``. Scalars for 1-d input, lists otherwise (rounded to 6
    digits); NaN entries (a replica without that round) are left out."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[~np.isnan(values)]
        if values.size == 0:
            return None, None
        se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else None
        return float(values.mean()), se
    count = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=axis) / np.maximum(count, 1)
        spread = np.nansum((values - np.expand_dims(mean, axis)) ** 2, axis=axis) / np.maximum(count - 1, 1)
        se = np.sqrt(spread / np.maximum(count, 1))
    return _rounded(np.where(count > 0, mean, np.nan)), _rounded(np.where(count > 1, se, np.nan))


def _rounded(values: np.ndarray) -> list:
    return [None if not math.isfinite(x) else round(float(x), 6) for x in values]


def with_se(out: dict, name: str, values, axis: int = 0) -> None:
    """``out[name]`` = the mean of ``values`` and ``out[name + "_se"]`` its standard error (:func:`mean_se`)."""
    out[name], out[f"{name}_se"] = mean_se(values, axis)


def parameters(args) -> dict:
    """The parsed arguments that determine a command's result, JSON-ready (``NOT_PARAMETERS`` left out: the
    command's name, output and execution settings, which the results do not depend on)."""
    return {name: plain(value) for name, value in vars(args).items() if name not in NOT_PARAMETERS}


def stamp(result: dict, args) -> dict:
    """``result`` with the keys every command's JSON carries: ``seed`` (None for a command without one),
    ``parameters`` and ``version``."""
    from jaxconv import __version__

    return result | {"seed": getattr(args, "seed", None), "parameters": parameters(args), "version": __version__}


def plain(value):
    """A parsed argument as JSON: tuples as lists, numpy scalars as numbers, inf/nan as text, others as str."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
