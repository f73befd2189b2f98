"""Running games: one replica (``simulate``), many replicas (``ensemble``), many per parameter value (``sweep``).

A game is an equinox Module with ``init(key)``, ``advance(state, words)`` (one step from pre-drawn uint32 random
words), ``record(state) -> (state, observation)``, ``is_done(state)`` and ``summarize(state)``, and the sizes
``words_per_step`` and ``interactions_per_step``. Random words are drawn in bulk for blocks of steps from one key
per block, and each replica has its own key, so a replica's trajectory depends only on its key: not on the number
of replicas, the chunk size or the number of devices.

Replicas are sharded over the local devices. On a CPU, run with
``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` (``jaxconv.devices.use_cpu_cores()`` does it) to
use every core.
"""

import hashlib
import json
import time
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

WORDS_PER_DRAW = 256  # random words drawn at once per replica
UNROLL = 4


class Result(NamedTuple):
    """Ensemble output. ``summary``: per-replica results, leading axes ``(replicas,)`` (or ``(values, replicas)``
    for a sweep). ``observations``: recorded every ``record_every`` steps, axes ``(..., n_records, ...)``; None when
    the run stopped early."""

    summary: dict
    observations: dict | None


# ----- one replica ------------------------------------------------------------------------------------------------
def simulate(key: jax.Array, game, n_steps: int, record_every: int):
    """Run one replica for ``n_steps`` steps, recording every ``record_every`` steps.

    Returns ``(final_state, observations)``, observations with leading axis ``n_steps // record_every``."""
    check_steps(n_steps, record_every)
    init_key, run_key = jax.random.split(key)

    def block(state, block_key):
        return game.record(advance_steps(game, state, block_key, record_every))

    return jax.lax.scan(block, game.init(init_key), jax.random.split(run_key, n_steps // record_every))


def simulate_until_done(key: jax.Array, game, max_steps: int, check_every: int):
    """Like ``simulate`` but stops at the first record where ``game.is_done``; returns the final state only.

    Under ``vmap`` the loop runs until every replica is done and finished replicas stay frozen (the batched
    while-loop keeps their state), so their results are those of the step at which they finished."""
    check_steps(max_steps, check_every)
    init_key, run_key = jax.random.split(key)
    block_keys = jax.random.split(run_key, max_steps // check_every)

    def not_done(carry):
        block, state = carry
        return (block < block_keys.shape[0]) & ~game.is_done(state)

    def run_block(carry):
        block, state = carry
        state, _ = game.record(advance_steps(game, state, block_keys[block], check_every))
        return block + 1, state

    return jax.lax.while_loop(not_done, run_block, (jnp.int32(0), game.init(init_key)))[1]


def advance_steps(game, state, key: jax.Array, n_steps: int):
    """``n_steps`` steps, with the random words drawn in bulk, ``steps_per_draw(...)`` steps at a time."""
    per_draw = steps_per_draw(n_steps, game.words_per_step)

    def draw_and_run(state, draw_key):
        words = jax.random.bits(draw_key, (per_draw, game.words_per_step), jnp.uint32)
        return jax.lax.scan(lambda s, w: (game.advance(s, w), None), state, words, unroll=UNROLL)[0], None

    return jax.lax.scan(draw_and_run, state, jax.random.split(key, n_steps // per_draw))[0]


def steps_per_draw(n_steps: int, words_per_step: int) -> int:
    """Largest divisor of ``n_steps`` whose random words fit in one draw of ``WORDS_PER_DRAW`` (at least 1)."""
    limit = max(1, WORDS_PER_DRAW // words_per_step)
    return max(d for d in range(1, min(limit, n_steps) + 1) if n_steps % d == 0)


def check_steps(n_steps: int, record_every: int) -> None:
    for label, value in (("n_steps", n_steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    if n_steps % record_every:
        raise ValueError(f"n_steps={n_steps} is not a multiple of record_every={record_every}")
    if n_steps >= 2**31:
        raise ValueError(f"n_steps={n_steps} overflows the int32 step counters (max {2**31 - 1})")


# ----- many replicas ----------------------------------------------------------------------------------------------
def ensemble(
    key: jax.Array,
    game,
    n_replicas: int,
    n_steps: int,
    record_every: int | None = None,
    *,
    until_done: bool = False,
    chunk_size: int | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> Result:
    """``n_replicas`` independent replicas (one key each, split from ``key``).

    ``until_done=True`` stops each chunk of replicas once all are done (consensus) and returns summaries only.
    Replicas run in chunks of ``chunk_size`` (memory bound); with ``checkpoint_dir`` finished chunks are saved and
    a rerun with the same arguments loads them instead of recomputing."""
    return _run(key, game, (), n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress)


def sweep(
    key: jax.Array,
    game,
    values: dict,
    n_replicas: int,
    n_steps: int,
    record_every: int | None = None,
    *,
    until_done: bool = False,
    chunk_size: int | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> Result:
    """``ensemble`` for every value of the parameters in ``values`` (field name -> array whose leading axis runs over
    the values, the same length for all), e.g. ``{"beta": jnp.linspace(0, 1, 11)}``; a dotted name reaches into a
    sub-module, e.g. ``{"policy.bias": biases}`` with biases of shape ``(n_values, W)``. The same replica keys are
    used for every value (common random numbers). Results have leading axes ``(n_values, n_replicas)``. New values
    of the same length reuse the compiled program."""
    if not values:
        raise ValueError("sweep needs at least one parameter in values")
    shapes = {name: np.shape(v) for name, v in values.items()}
    if any(len(shape) == 0 for shape in shapes.values()) or len({shape[0] for shape in shapes.values()}) != 1:
        raise ValueError(f"swept values must be arrays with one leading length (the values), got shapes {shapes}")
    swept = []
    for name, array in values.items():
        if not isinstance(_field(game, name), jax.Array):
            raise ValueError(f"{name!r} is not an array parameter of {type(game).__name__} and cannot be swept")
        if hasattr(game, "check_value"):
            game.check_value(name, np.asarray(array))
        swept.append(jnp.asarray(array, _field(game, name).dtype))
    names = tuple(values)
    game = eqx.tree_at(lambda g: [_field(g, n) for n in names], game, swept)
    result = _run(key, game, names, n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress)
    # replicas were the outer axis inside the run; present (values, replicas)
    return jax.tree.map(lambda x: np.swapaxes(x, 0, 1), result)


def _field(game, path: str):
    """The field ``path`` of a game; dots reach into sub-modules (``"policy.bias"``); None if absent."""
    for name in path.split("."):
        game = getattr(game, name, None)
    return game


def _run(key, game, swept, n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress):
    record_every = n_steps if record_every is None else record_every
    check_steps(n_steps, record_every)
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1:
        raise ValueError(f"n_replicas must be an integer >= 1, got {n_replicas!r}")
    n_devices = jax.local_device_count()
    chunk = _round_up(min(chunk_size or n_replicas, n_replicas), n_devices)
    keys = jax.random.split(key, n_replicas)
    runner = partial(compiled_runner, game, swept, n_steps, record_every, until_done)
    store = _ChunkStore(checkpoint_dir, key, game, swept, n_steps, record_every, until_done, chunk)
    chunks = []
    starts = range(0, n_replicas, chunk)
    for index, start in enumerate(_progress(starts, progress, "replica chunks")):
        saved = store.load(index)
        if saved is None:
            chunk_keys = keys[start : start + chunk]
            out = jax.device_get(runner(chunk)(_sharded_padded(chunk_keys, chunk), eqx.filter(game, eqx.is_array)))
            n_real = len(chunk_keys)
            saved = jax.tree.map(lambda x, n=n_real: x[:n], out)
            store.save(index, saved)
        chunks.append(saved)
    summary, observations = jax.tree.map(lambda *xs: np.concatenate(xs), *chunks)
    return Result(summary, observations)


def compiled_runner(game, swept, n_steps, record_every, until_done, chunk):
    """The jitted function ``(keys (chunk,), array leaves of game) -> (summary, observations)``, sharded over the
    local devices. Cached on the game's static structure, so new parameter values do not recompile."""
    static = eqx.filter(game, eqx.is_array, inverse=True)
    return _build_runner(static, swept, n_steps, record_every, until_done, chunk, jax.local_device_count())


@lru_cache(maxsize=64)
def _build_runner(static, swept, n_steps, record_every, until_done, chunk, n_devices):
    def one_replica(key, game):
        if until_done:
            state = simulate_until_done(key, game, n_steps, record_every)
            return game.summarize(state), None
        state, observations = simulate(key, game, n_steps, record_every)
        return game.summarize(state), observations

    def replicas(keys, arrays):
        game = eqx.combine(arrays, static)
        if swept:
            axes = eqx.tree_at(
                lambda g: [_field(g, n) for n in swept],
                jax.tree.map(lambda _: None, game),
                [0] * len(swept),
                is_leaf=lambda x: x is None,
            )
            per_key = lambda k: jax.vmap(one_replica, in_axes=(None, axes))(k, game)  # noqa: E731
        else:
            per_key = lambda k: one_replica(k, game)  # noqa: E731
        return jax.vmap(per_key)(keys)

    mesh = Mesh(np.array(jax.local_devices()[:n_devices]), ("replicas",))
    sharded = jax.shard_map(
        replicas, mesh=mesh, in_specs=(P("replicas"), P()), out_specs=P("replicas"), check_vma=False
    )
    return jax.jit(sharded, compiler_options=_compiler_options())


@lru_cache(maxsize=1)
def _compiler_options() -> dict | None:
    """XLA options for the runners. On CPU, XLA hands small float reductions (per agent: a memory game's sums over
    H entries and maxima over W names) to YNNPACK library calls, which run them several times slower than XLA's
    own fused loops (benchmarks/RESULTS.md), so runners compiled for CPU turn those library fusions off. None on
    other backends, or if this jaxlib does not know the option."""
    if jax.default_backend() != "cpu":
        return None
    options = {"xla_cpu_experimental_ynn_fusion_type": ""}
    try:
        jax.jit(jnp.negative, compiler_options=options).lower(jnp.float32(0)).compile()
    except jax.errors.JaxRuntimeError:
        return None
    return options


def _sharded_padded(keys, size: int):
    """``keys`` padded to ``size`` (by repeating the last; the extra results are dropped) and sharded over the
    local devices."""
    padded = jnp.concatenate([keys, jnp.repeat(keys[-1:], size - len(keys), axis=0)])
    mesh = Mesh(np.array(jax.local_devices()), ("replicas",))
    return jax.device_put(padded, NamedSharding(mesh, P("replicas")))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _progress(iterable, enabled, description):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description)


class _ChunkStore:
    """Finished chunks of a long ensemble on disk (``.npz``), keyed by a fingerprint of everything that
    determines them, so an interrupted run resumes without recomputing finished chunks."""

    def __init__(self, directory, key, game, swept, n_steps, record_every, until_done, chunk):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        description = {
            "key": np.asarray(jax.random.key_data(key)).tolist(),
            "game": repr(eqx.filter(game, eqx.is_array, inverse=True)),
            "arrays": [np.asarray(x).tolist() for x in jax.tree.leaves(eqx.filter(game, eqx.is_array))],
            "run": [list(swept), n_steps, record_every, until_done, chunk],
        }
        self.fingerprint = hashlib.sha256(json.dumps(description).encode()).hexdigest()[:16]

    def _path(self, index):
        return self.directory / f"chunk-{self.fingerprint}-{index:05d}.npz"

    def load(self, index):
        if self.directory is None or not self._path(index).exists():
            return None
        with np.load(self._path(index), allow_pickle=False) as data:
            flat = {name: data[name] for name in data.files}
        summary = {k[len("summary/") :]: v for k, v in flat.items() if k.startswith("summary/")}
        observations = {k[len("observations/") :]: v for k, v in flat.items() if k.startswith("observations/")}
        return summary, observations or None

    def save(self, index, result):
        if self.directory is None:
            return
        summary, observations = result
        flat = {f"summary/{k}": v for k, v in summary.items()}
        flat.update({f"observations/{k}": v for k, v in (observations or {}).items()})
        temporary = self._path(index).with_suffix(".tmp.npz")
        np.savez(temporary, **flat)
        temporary.replace(self._path(index))


def timed_ensemble(key, game, n_replicas, n_steps, record_every=None, *, until_done=False):
    """``ensemble`` in one chunk, compiled ahead of time: returns ``(Result, compile_seconds, run_seconds)``."""
    record_every = n_steps if record_every is None else record_every
    check_steps(n_steps, record_every)
    chunk = _round_up(n_replicas, jax.local_device_count())
    keys = jax.random.split(key, n_replicas)
    padded = _sharded_padded(keys, chunk)
    arrays = eqx.filter(game, eqx.is_array)
    start = time.perf_counter()
    compiled = compiled_runner(game, (), n_steps, record_every, until_done, chunk).lower(padded, arrays).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(padded, arrays))
    run_seconds = time.perf_counter() - start
    summary, observations = jax.tree.map(lambda x: np.asarray(x)[:n_replicas], jax.device_get(out))
    return Result(summary, observations), compile_seconds, run_seconds
