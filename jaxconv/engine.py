"""Running games: one replica (``simulate``), many replicas (``ensemble``), many per parameter value (``sweep``).

A game is an equinox Module with ``init(key)``, ``advance(state, words)`` (one step from pre-drawn uint32 random
words), ``record(state) -> (state, observation)``, ``is_done(state)`` and ``summarize(state)``, and the sizes
``words_per_step`` and ``interactions_per_step``. Random words are drawn in bulk for blocks of steps from one key
per block, and each replica has its own key, so a replica's trajectory depends only on its key: not on the number
of replicas, the chunk size or the number of devices.

Replicas are sharded over the devices: on a CPU, run with ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``
(``jaxconv.devices.use_cpu_cores()`` does it) to use every core; a lone replica runs on one device without a batch
axis (as ``simulate``). Under JAX's multi-process runtime (``jax.distributed``, set up by
``jaxconv.devices.configure(coordinator=..., n_processes=..., process_id=...)``) every process runs the same call:
the replicas are sharded over the devices of all processes and every process gets all the results.

A game may instead run in blocks of interactions (``game.in_blocks``: ``NamingGame`` with word slots and random
sequential pairs, ``jaxconv.games.blocks``): ``game.advance_to(key, state, end, stop_at_consensus=...)`` then
replaces the steps; interaction t's randomness depends on (key, t) only, so records just say where to stop.

A game whose inventories can overflow (``NamingGame`` with word slots) says so per replica in its summary
(``game.overflowed(summary)``); those replicas run on with their own keys on ``game.grown()`` until none
overflows (a game run in blocks from its final state, widened: ``game.widened``; others from the start), so
results are those of a capacity large enough for every replica.

Interaction counts may pass 2^31 where the game says so (``game.max_interactions``; ``NamingGame`` in blocks
counts with ``jaxconv.counts.Count``, two int32 words); results reach the host as int64 arrays.
"""

import hashlib
import json
import os
import time
import zipfile
import zlib
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxconv.counts import Count, to_host

WORDS_PER_DRAW = 256  # random words drawn at once per replica
UNROLL = 4


class Result(NamedTuple):
    """Ensemble output. ``summary``: per-replica results, leading axes ``(replicas,)`` (or ``(values, replicas)``
    for a sweep). ``observations``: recorded every ``record_every`` steps, axes ``(..., n_records, ...)``; None when
    the run stopped early."""

    summary: dict
    observations: dict | None


# ----- one replica ------------------------------------------------------------------------------------------------
def simulate(key: jax.Array, game, n_steps: int, record_every: int, state=None):
    """Run one replica for ``n_steps`` steps, recording every ``record_every`` steps.

    Returns ``(final_state, observations)``, observations with leading axis ``n_steps // record_every``. A game
    run in blocks may start from ``state`` (one this key's run reached, e.g. widened after an overflow) instead of
    ``game.init``: records at ends it has already passed then repeat it."""
    check_steps(n_steps, record_every, game)
    init_key, run_key = jax.random.split(key)
    state = _start(game, init_key, state)
    if getattr(game, "in_blocks", False):  # interaction t drawn from (run_key, t): records only say where to stop
        ends = Count.of(record_every * np.arange(1, n_steps // record_every + 1, dtype=np.int64))
        advance = lambda state, end: game.advance_to(run_key, state, end, stop_at_consensus=False)  # noqa: E731
        return jax.lax.scan(lambda state, end: game.record(advance(state, end)), state, ends)

    def block(state, block_key):
        return game.record(advance_steps(game, state, block_key, record_every))

    return jax.lax.scan(block, state, jax.random.split(run_key, n_steps // record_every))


def simulate_until_done(key: jax.Array, game, max_steps: int, check_every: int, state=None):
    """Like ``simulate`` but stops at the first record where ``game.is_done``; returns the final state only.

    Under ``vmap`` the loop runs until every replica is done and finished replicas stay frozen (the batched
    while-loop keeps their state), so their results are those of the step at which they finished."""
    check_steps(max_steps, check_every, game)
    init_key, run_key = jax.random.split(key)
    state = _start(game, init_key, state)
    if getattr(game, "in_blocks", False):  # consensus checked after every block, not every check_every steps
        return game.advance_to(run_key, state, Count.of(max_steps), stop_at_consensus=True)
    block_keys = jax.random.split(run_key, max_steps // check_every)

    def not_done(carry):
        block, state = carry
        return (block < block_keys.shape[0]) & ~game.is_done(state)

    def run_block(carry):
        block, state = carry
        state, _ = game.record(advance_steps(game, state, block_keys[block], check_every))
        return block + 1, state

    return jax.lax.while_loop(not_done, run_block, (jnp.int32(0), state))[1]


def _start(game, init_key: jax.Array, state):
    """``game.init(init_key)``, or ``state`` for a game run in blocks (whose draws depend on the interaction
    count only, so a run can go on from any of its states)."""
    if state is None:
        return game.init(init_key)
    if not getattr(game, "in_blocks", False):
        raise ValueError(f"only games run in blocks go on from a given state, not {type(game).__name__} step by step")
    return state


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


def check_steps(n_steps: int, record_every: int, game=None) -> None:
    """ValueError naming the value unless the steps are whole, ``record_every`` divides ``n_steps`` and the run
    fits the counters: its interactions at most ``game.max_interactions`` if the game says, else its steps below
    2^31 (int32 counters)."""
    for label, value in (("n_steps", n_steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    if n_steps % record_every:
        raise ValueError(f"n_steps={n_steps} is not a multiple of record_every={record_every}")
    limit = getattr(game, "max_interactions", None)
    if limit is None and n_steps >= 2**31:
        raise ValueError(f"n_steps={n_steps} overflows the int32 step counters (max {2**31 - 1})")
    if limit is not None and n_steps * game.interactions_per_step > limit:
        raise ValueError(
            f"n_steps={n_steps} ({n_steps * game.interactions_per_step} interactions) overflows the interaction "
            f"counters of {type(game).__name__} (max {limit} interactions)"
        )


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
    recompute_bad_chunks: bool = False,
) -> Result:
    """``n_replicas`` independent replicas (one key each, split from ``key``).

    ``until_done=True`` stops each chunk of replicas once all are done (consensus) and returns summaries only.
    Replicas run in chunks of ``chunk_size`` (memory bound; by default as many as fit in memory, see
    :func:`estimate_memory`); with ``checkpoint_dir`` finished chunks are saved and a rerun with the same arguments
    loads them instead of recomputing. Each chunk file holds the fingerprint of everything that determines it and
    is verified when loaded: a corrupt or mismatched file raises :class:`CheckpointError` naming it, or is
    recomputed (and overwritten) with ``recompute_bad_chunks=True``; it is never mixed in."""
    return _run(
        key, game, (), n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress,
        recompute_bad_chunks,
    )  # fmt: skip


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
    recompute_bad_chunks: bool = False,
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
    if next(iter(shapes.values()))[0] == 0:
        raise ValueError(f"swept values are empty (shapes {shapes}): give at least one value")
    swept = []
    for name, array in values.items():
        field = _field(game, name)
        if not isinstance(field, jax.Array):
            raise ValueError(f"{name!r} is not an array parameter of {type(game).__name__} and cannot be swept")
        array = _as_swept(name, array, field)
        if hasattr(game, "check_value"):
            game.check_value(name, array)
        _check_swept(name, array, field)
        swept.append(jnp.asarray(array, field.dtype))
    names = tuple(values)
    game = eqx.tree_at(lambda g: [_field(g, n) for n in names], game, swept)
    result = _run(
        key, game, names, n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress,
        recompute_bad_chunks,
    )  # fmt: skip
    # replicas were the outer axis inside the run; present (values, replicas)
    return jax.tree.map(lambda x: np.swapaxes(x, 0, 1), result)


def _as_swept(name: str, array, field) -> np.ndarray:
    """Swept values as a numpy array of numbers of shape (values,) + the field's shape; ValueError naming the
    parameter otherwise."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as error:
        raise ValueError(f"swept {name} is not an array of numbers ({error})") from None
    if array.shape[1:] != field.shape:
        raise ValueError(
            f"{name} must have shape {tuple(field.shape)} for each swept value, got {array.shape[1:]} "
            f"(swept array of shape {array.shape})"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"swept {name} must hold numbers, got dtype {array.dtype}")
    return array


def _check_swept(name: str, array: np.ndarray, field) -> None:
    """Swept values finite, and whole numbers within int32 for an integer field; ValueError naming them."""
    _check_finite(name, array)
    if np.issubdtype(field.dtype, np.integer) and not np.array_equal(array, np.round(array)):
        raise ValueError(f"swept {name} must be whole numbers, got {_shown(array)}")
    if np.issubdtype(field.dtype, np.integer) and np.any(np.abs(array) >= 2**31):
        raise ValueError(f"swept {name} must fit in int32, got {_shown(array)}")


def _shown(array) -> str:
    array = np.asarray(array)
    return str(array.tolist()) if array.size <= 8 else f"{array.ravel()[:8].tolist()}... ({array.size} values)"


def _check_finite(name: str, array) -> None:
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {_shown(array)}")


def check_parameters(game) -> None:
    """Every float array of ``game`` (policy fields, payoffs, beta, ...) finite; ValueError naming the first that
    is not. Runs on concrete values, before anything is traced."""
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(game, eqx.is_array))[0]
    for path, leaf in leaves:
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            _check_finite(jax.tree_util.keystr(path, simple=True, separator=".") or "parameter", np.asarray(leaf))


def _field(game, path: str):
    """The field ``path`` of a game; dots reach into sub-modules (``"policy.bias"``); None if absent."""
    for name in path.split("."):
        game = getattr(game, name, None)
    return game


def _run(
    key, game, swept, n_replicas, n_steps, record_every, until_done, chunk_size, checkpoint_dir, progress, recompute
):
    record_every = n_steps if record_every is None else record_every
    check_steps(n_steps, record_every, game)
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1:
        raise ValueError(f"n_replicas must be an integer >= 1, got {n_replicas!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1 or None, got {chunk_size!r}")
    check_parameters(game)
    n_devices = devices_for(n_replicas)
    memory = estimate_memory(game, swept, n_replicas, n_steps, record_every, until_done)
    fitting = max(n_devices, memory["fitting_chunk"] // n_devices * n_devices)
    chunk = _round_up(min(chunk_size or fitting, n_replicas), n_devices)
    _check_fits(memory, chunk, game, n_replicas)
    keys = np.asarray(jax.random.key_data(jax.random.split(key, n_replicas)))
    arrays = _replicated(game, n_devices)
    runner = partial(compiled_runner, game, swept, n_steps, record_every, until_done, chunk, n_devices)
    store = _ChunkStore(
        checkpoint_dir, key, game, swept, n_steps, record_every, until_done, chunk, n_replicas, memory["fields"]
    )
    chunks = []
    starts = range(0, n_replicas, chunk)
    for index, start in enumerate(_progress(starts, progress, "replica chunks")):
        saved = store.load(index, min(chunk, n_replicas - start), recompute)
        if saved is None:
            chunk_keys = keys[start : start + chunk]
            outputs = runner()(_sharded_padded(chunk_keys, chunk, n_devices), arrays)
            saved = _rows(_fetch(outputs[:2]), len(chunk_keys))
            saved = _regrown(game, swept, n_steps, record_every, until_done, chunk_keys, saved, outputs[2])
            del outputs  # the chunk's final states, before the next chunk runs
            store.save(index, saved)
        chunks.append(saved)
    summary, observations = jax.tree.map(lambda *xs: np.concatenate(xs), *chunks)
    return Result(summary, observations)


def compiled_runner(game, swept, n_steps, record_every, until_done, chunk, n_devices=None, resume=False):
    """The jitted function ``(keys (chunk,), array leaves of game[, states]) -> (summary, observations, states)``,
    sharded over the first ``n_devices`` devices (default all, of all processes). Cached on the game's static
    structure, so new parameter values do not recompile. Keys may be typed keys or their raw ``uint32`` data.
    ``states`` (the final states, kept on the devices) is None except for games that go on after an overflow
    (:func:`_continues`); ``resume=True`` takes their starting states as a third argument."""
    static = eqx.filter(game, eqx.is_array, inverse=True)
    n_devices = jax.device_count() if n_devices is None else n_devices
    return _build_runner(static, swept, n_steps, record_every, until_done, chunk, n_devices, resume)


def _continues(game) -> bool:
    """Whether a replica whose inventories overflowed goes on from its final state with more slots (a game run in
    blocks, in one process) rather than being rerun from the start."""
    return getattr(game, "in_blocks", False) and jax.process_count() == 1


def devices_for(n_replicas: int) -> int:
    """Devices a run of ``n_replicas`` uses: all of them (of all processes), except that in one process a lone
    replica runs on one device, neither padded nor duplicated (and then without a batch axis)."""
    if jax.process_count() > 1 or n_replicas > 1:
        return jax.device_count()
    return 1


def _mesh(n_devices: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:n_devices]), ("replicas",))


def _global(array, mesh: Mesh, spec) -> jax.Array:
    """A host array (the same on every process) as a global array on ``mesh``."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, NamedSharding(mesh, spec), lambda index: array[index])


def _fetch(tree):
    """Results to the host: from every process's devices when several processes run."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return to_host(jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True)))
    return to_host(jax.device_get(tree))


@lru_cache(maxsize=64)
def _build_runner(static, swept, n_steps, record_every, until_done, chunk, n_devices, resume):  # noqa: C901
    def one_replica(key, game, state):
        if until_done:
            state, observations = simulate_until_done(key, game, n_steps, record_every, state), None
        else:
            state, observations = simulate(key, game, n_steps, record_every, state)
        return game.summarize(state), observations, state if _continues(game) else None

    def replicas(keys, arrays, states=None):
        if keys.dtype == jnp.uint32:  # raw key data (how keys travel between processes)
            keys = jax.random.wrap_key_data(keys)
        game = eqx.combine(arrays, static)
        if swept:
            axes = eqx.tree_at(
                lambda g: [_field(g, n) for n in swept],
                jax.tree.map(lambda _: None, game),
                [0] * len(swept),
                is_leaf=lambda x: x is None,
            )
            per_key = lambda k, s: jax.vmap(one_replica, in_axes=(None, axes, 0))(k, game, s)  # noqa: E731
        else:
            per_key = lambda k, s: one_replica(k, game, s)  # noqa: E731
        if keys.shape[0] == 1:  # one replica on this device: no batch axis (loops and searches stop early)
            return jax.tree.map(lambda x: x[None], per_key(keys[0], jax.tree.map(lambda x: x[0], states)))
        return jax.vmap(per_key)(keys, states)

    mesh = _mesh(n_devices)
    in_specs = (P("replicas"), P()) + ((P("replicas"),) if resume else ())
    sharded = jax.shard_map(replicas, mesh=mesh, in_specs=in_specs, out_specs=P("replicas"), check_vma=False)
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


def _sharded_padded(keys, size: int, n_devices: int | None = None):
    """The raw data of ``keys`` (typed keys or ``(n, 2) uint32``) padded to ``size`` (by repeating the last; the
    extra results are dropped) and sharded over the first ``n_devices`` devices (default all)."""
    data = np.asarray(jax.random.key_data(keys) if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else keys)
    padded = np.concatenate([data, np.repeat(data[-1:], size - len(data), axis=0)])
    return _global(padded, _mesh(jax.device_count() if n_devices is None else n_devices), P("replicas"))


def _replicated(game, n_devices: int):
    """The array leaves of ``game``, replicated on the first ``n_devices`` devices."""
    mesh = _mesh(n_devices)
    return jax.tree.map(lambda x: _global(x, mesh, P()), eqx.filter(game, eqx.is_array))


def _run_keys(game, swept, n_steps, record_every, until_done, keys, states=None):
    """Run the replicas of ``keys`` (raw data) in one chunk, from ``states`` if given (their rows, on the devices):
    ``((summary, observations), final states, compile s, run s)``; the final states (kept on the devices, padded
    to the chunk) are None unless the game continues after an overflow."""
    n_devices = devices_for(len(keys))
    chunk = _round_up(len(keys), n_devices)
    inputs = (_sharded_padded(keys, chunk, n_devices), _replicated(game, n_devices))
    if states is not None:
        repeat = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], chunk - len(keys), axis=0)])  # noqa: E731
        inputs += (jax.device_put(jax.tree.map(repeat, states), NamedSharding(_mesh(n_devices), P("replicas"))),)
    start = time.perf_counter()
    runner = compiled_runner(game, swept, n_steps, record_every, until_done, chunk, n_devices, states is not None)
    compiled = runner.lower(*inputs).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    summary, observations, final = jax.block_until_ready(compiled(*inputs))
    out = _rows(_fetch((summary, observations)), len(keys))
    return out, final, compile_seconds, time.perf_counter() - start


def _rows(tree, n: int):
    """The first ``n`` rows (the real replicas of a padded chunk) of a host tree."""
    return jax.tree.map(lambda x: np.asarray(x)[:n], tree)


def _regrown(game, swept, n_steps, record_every, until_done, keys, out, states=None, timings=None):
    """``out`` = (summary, observations) of the replicas of ``keys``, with every replica whose inventories
    overflowed run again on ``game.grown()`` (repeatedly) until none overflows: from its final state in
    ``states`` (rows as ``keys``, on the devices) widened to the new K when the game continues
    (:func:`_continues`; its records before the overflow are kept), else from the start. ``timings``: a list to
    which the (compile, run) seconds of those runs are appended."""
    summary, observations = out
    rows = np.arange(len(keys))  # the replicas whose final states ``states`` holds, in its order
    overflowed = getattr(game, "overflowed", None)
    while overflowed is not None:
        mask = overflowed(summary)
        if mask is None or not np.any(mask):
            break
        redo = np.flatnonzero(np.asarray(mask).reshape(len(keys), -1).any(axis=1))
        grown = game.grown()
        memory = estimate_memory(grown, swept, len(redo), n_steps, record_every, until_done)
        context = f"{len(redo)} replicas overflowed K={game.capacity} word slots; with K={grown.capacity}"
        _check_fits(memory, _round_up(len(redo), devices_for(len(redo))), grown, len(redo), "replicas", context)
        start = None
        if states is not None:
            picked = np.searchsorted(rows, redo)
            start = grown.widened(jax.tree.map(lambda x, p=picked: x[p], states))
        states = None  # released before the run
        (new_summary, new_observations), states, compile_seconds, run_seconds = _run_keys(
            grown, swept, n_steps, record_every, until_done, keys[redo], start
        )
        if timings is not None:
            timings.append((compile_seconds, run_seconds))
        if start is not None and observations is not None:
            ends = record_every * grown.interactions_per_step * np.arange(1, n_steps // record_every + 1)
            passed = ends <= summary["interactions"][redo][..., None]  # recorded before the overflow
            new_observations = _merged(observations, redo, new_observations, passed)
        summary = _with_rows(summary, redo, new_summary)
        observations = _with_rows(observations, redo, new_observations)
        game, rows, overflowed = grown, redo, grown.overflowed
    return summary, observations


def _merged(observations: dict, rows, new: dict, passed: np.ndarray) -> dict:
    """Records of ``rows`` from ``observations`` where ``passed`` ``(rows, [values,] n_records)``, else ``new``."""
    return {
        name: np.where(np.expand_dims(passed, tuple(range(passed.ndim, x.ndim))), observations[name][rows], x)
        for name, x in new.items()
    }


def _with_rows(tree, rows, new):
    if tree is None:
        return None

    def put(old, fresh):
        old = np.array(old)
        old[rows] = fresh
        return old

    return jax.tree.map(put, tree, new)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _progress(iterable, enabled, description):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description)


class CheckpointError(ValueError):
    """A checkpoint chunk file that cannot be used (corrupt, truncated, or from another run); names the file."""


class _ChunkStore:
    """Finished chunks of a long ensemble on disk (``.npz``), keyed by a fingerprint of everything that
    determines them (key, game, swept names and values, steps, recording, stop rule, chunk size and replica
    count), so an interrupted run resumes without recomputing finished chunks. Each file also holds the
    fingerprint, its chunk index and row count (``__checkpoint__``), verified when it is loaded."""

    def __init__(self, directory, key, game, swept, n_steps, record_every, until_done, chunk, n_replicas, fields=None):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        description = {
            "format": 2,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
            "game": repr(eqx.filter(game, eqx.is_array, inverse=True)),
            "arrays": [np.asarray(x).tolist() for x in jax.tree.leaves(eqx.filter(game, eqx.is_array))],
            "run": [list(swept), n_steps, record_every, until_done, chunk, n_replicas],
        }
        self.fingerprint = hashlib.sha256(json.dumps(description).encode()).hexdigest()[:16]
        self.fields = fields  # expected array names in a file, or None

    def _path(self, index):
        return self.directory / f"chunk-{self.fingerprint}-{index:05d}.npz"

    def load(self, index, n_rows, recompute=False):
        """The saved chunk ``index`` (``n_rows`` replicas), None if absent (or bad and ``recompute``); raises
        CheckpointError naming a corrupt or mismatched file."""
        if self.directory is None or not self._path(index).exists():
            return None
        path = self._path(index)
        try:
            with np.load(path, allow_pickle=False) as data:
                flat = {name: data[name] for name in data.files}
            reason = self._mismatch(flat, index, n_rows)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError) as error:
            reason = f"unreadable ({type(error).__name__}: {str(error)[:80]})"
        if reason is not None:
            if recompute:
                return None
            raise CheckpointError(
                f"checkpoint {path}: {reason}; it was not used. Delete it, or pass recompute_bad_chunks=True to "
                "recompute it"
            )
        flat.pop("__checkpoint__")
        summary = {k[len("summary/") :]: v for k, v in flat.items() if k.startswith("summary/")}
        observations = {k[len("observations/") :]: v for k, v in flat.items() if k.startswith("observations/")}
        return summary, observations or None

    def _mismatch(self, flat: dict, index: int, n_rows: int) -> str | None:
        if "__checkpoint__" not in flat:
            return "no fingerprint inside (not a chunk written by this version of jaxconv)"
        stamp = json.loads(str(flat["__checkpoint__"]))
        if stamp.get("fingerprint") != self.fingerprint:
            theirs = str(stamp.get("fingerprint"))[:16]
            return f"written by another run (fingerprint {theirs}, this run {self.fingerprint})"
        if stamp.get("index") != index or stamp.get("rows") != n_rows:
            return f"holds chunk {stamp.get('index')} of {stamp.get('rows')} rows, expected chunk {index} of {n_rows}"
        names = set(flat) - {"__checkpoint__"}
        if self.fields is not None and names != self.fields:
            return f"holds fields {sorted(names)}, expected {sorted(self.fields)}"
        bad = [name for name in names if flat[name].ndim == 0 or len(flat[name]) != n_rows]
        if bad:
            return f"field {bad[0]} does not have {n_rows} rows"
        return None

    def save(self, index, result):
        if self.directory is None:
            return
        summary, observations = result
        flat = {f"summary/{k}": v for k, v in summary.items()}
        flat.update({f"observations/{k}": v for k, v in (observations or {}).items()})
        rows = len(next(iter(summary.values())))
        flat["__checkpoint__"] = np.array(json.dumps({"fingerprint": self.fingerprint, "index": index, "rows": rows}))
        temporary = self._path(index).with_suffix(".tmp.npz")
        np.savez(temporary, **flat)
        temporary.replace(self._path(index))


# ----- memory -----------------------------------------------------------------------------------------------------
MEMORY_SAFETY = 0.8  # share of the available memory a run may plan to use
TEMPORARIES = 3  # copies of a replica's state XLA may hold at once (carry, update, scan buffers)


def _nbytes(tree) -> int:
    return sum(int(np.prod(x.shape, dtype=np.float64)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def memory_limits() -> tuple[int, int]:
    """Bytes available (host, all local devices together). ``$JAXCONV_MEMORY_LIMIT`` (bytes) overrides both."""
    override = os.environ.get("JAXCONV_MEMORY_LIMIT")
    if override:
        return int(float(override)), int(float(override))
    host = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if host is None:
        try:
            host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            host = 1 << 50
    if jax.default_backend() == "cpu":
        return host, host
    limits = [(d.memory_stats() or {}).get("bytes_limit") for d in jax.local_devices()]
    return host, sum(limits) if all(limits) else host


def estimate_memory(game, swept, n_replicas, n_steps, record_every, until_done) -> dict:
    """Bytes a run will need, from its sizes (``jax.eval_shape``: nothing is allocated): ``per_replica`` on the
    devices while it runs (state x TEMPORARIES, its records, block keys), ``host`` for the results of all replicas
    (kept twice while concatenated) and their keys, ``fitting_chunk`` the most replicas per chunk that fit."""
    n_values = 1
    if swept:
        n_values = _field(game, swept[0]).shape[0]
        game = eqx.tree_at(lambda g: [_field(g, n) for n in swept], game, [_field(game, n)[0] for n in swept])
    try:
        state = jax.eval_shape(lambda k: game.init(k), jax.random.key(0))
    except (TypeError, OverflowError, ValueError) as error:  # sizes beyond what an array shape can hold
        reason = (str(error).splitlines() or [type(error).__name__])[0][:160]
        raise ValueError(f"{type(game).__name__} cannot be built at these sizes ({reason})") from None
    state_bytes = _nbytes(state)
    record_bytes = _nbytes(jax.eval_shape(lambda s: game.record(s)[1], state))
    summary_bytes = _nbytes(jax.eval_shape(lambda s: game.summarize(s), state))
    n_records = n_steps // record_every
    kept = summary_bytes + (0 if until_done else n_records * record_bytes)
    per_replica = n_values * (TEMPORARIES * state_bytes + kept + 8 * n_records) + 4 * WORDS_PER_DRAW
    host = n_replicas * (2 * n_values * kept + 16)
    host_limit, device_limit = memory_limits()
    if jax.default_backend() == "cpu":
        budget = MEMORY_SAFETY * host_limit - host
    else:
        budget = MEMORY_SAFETY * device_limit
    return {
        "state_bytes": state_bytes,
        "record_bytes": record_bytes,
        "n_records": n_records,
        "n_values": n_values,
        "per_replica": per_replica,
        "host": host,
        "host_limit": host_limit,
        "device_limit": device_limit,
        "budget": budget,
        "fitting_chunk": int(max(1, min(n_replicas, budget // per_replica))),
        "fields": {f"summary/{k}" for k in jax.eval_shape(lambda s: game.summarize(s), state)}
        | (set() if until_done else {f"observations/{k}" for k in jax.eval_shape(lambda s: game.record(s)[1], state)}),
    }


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.3g} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1024
    return ""


def _check_fits(memory: dict, chunk: int, game, n_replicas: int, knob: str = "chunk_size", context=None) -> None:
    """ValueError naming the sizes (after ``context``, if given) when ``chunk`` replicas at a time (and all the
    results) do not fit."""
    prefix = f"{context}: " if context else ""
    sizes = (
        f"{type(game).__name__}: state {_size(memory['state_bytes'])} per replica, {memory['n_records']} records of "
        f"{_size(memory['record_bytes'])}" + (f", {memory['n_values']} swept values" if memory["n_values"] > 1 else "")
    )
    host_limit = memory["host_limit"]
    if memory["host"] > MEMORY_SAFETY * host_limit:
        raise ValueError(
            f"{prefix}not enough memory: the results of {n_replicas} replicas need {_size(memory['host'])} but "
            f"{_size(host_limit)} is available ({sizes}); use fewer replicas or record less often"
        )
    need = chunk * memory["per_replica"]
    if need > memory["budget"]:
        n_devices = jax.local_device_count()
        fitting = int(max(memory["budget"], 0) // memory["per_replica"]) // n_devices * n_devices
        hint = f"use {knob} <= {fitting}" if fitting >= 1 else "use a smaller game or fewer steps"
        raise ValueError(
            f"{prefix}not enough memory: {chunk} replicas at a time need about {_size(need)} "
            f"({_size(memory['per_replica'])} per replica) but {_size(max(memory['budget'], 0))} is usable "
            f"({sizes}); {hint}"
        )


def timed_ensemble(key, game, n_replicas, n_steps, record_every=None, *, until_done=False):
    """``ensemble`` in one chunk, compiled ahead of time: returns ``(Result, compile_seconds, run_seconds)``; the
    times include those of replicas rerun after an inventory overflow."""
    record_every = n_steps if record_every is None else record_every
    check_steps(n_steps, record_every, game)
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1:
        raise ValueError(f"n_replicas must be an integer >= 1, got {n_replicas!r}")
    check_parameters(game)
    chunk = _round_up(n_replicas, devices_for(n_replicas))
    memory = estimate_memory(game, (), n_replicas, n_steps, record_every, until_done)
    _check_fits(memory, chunk, game, n_replicas, "replicas")
    keys = np.asarray(jax.random.key_data(jax.random.split(key, n_replicas)))
    out, states, compile_seconds, run_seconds = _run_keys(game, (), n_steps, record_every, until_done, keys)
    timings = []
    summary, observations = _regrown(game, (), n_steps, record_every, until_done, keys, out, states, timings)
    compile_seconds += sum(t[0] for t in timings)
    run_seconds += sum(t[1] for t in timings)
    return Result(summary, observations), compile_seconds, run_seconds
