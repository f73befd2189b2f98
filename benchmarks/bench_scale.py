"""One replica of the minimal naming game to consensus at large N: jaxconv (word-slot inventories in conflict-free
blocks, one device) beside the numba peer, in ONE process, one after the other; and the memory per replica of each
representation.

    pip install -e ".[bench]" && python benchmarks/bench_scale.py                  # N = 10^3, 10^4, 10^5
    python benchmarks/bench_scale.py --sizes 1000 10000 --quick                    # seconds
    python benchmarks/bench_scale.py --sizes 1000000 --segments 50000000 --save DIR   # N = 10^6, resumable

The numba peer (``reference_loops.numba_to_consensus``) is the compiled single-core loop of ``numba_loop``:
per-agent word lists with room for every word and a linear search. jaxconv runs through ``timed_ensemble`` (one
replica, ``until_done``), as ``jaxconv simulate naming-game --replicas 1 --until-consensus`` does: for slot
inventories with random sequential pairs that is the conflict-free block path (``jaxconv.games.blocks``,
consensus checked after every block); ``--sequential`` runs the one-step-at-a-time path instead. Times are
wall-clock and process CPU seconds (the CPU time is less sensitive to other load on a shared machine); the load
average is printed before and after each run.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def memory_table(sizes=(10**2, 10**3, 10**4, 10**5, 10**6)) -> list[dict]:
    """State bytes per replica of the minimal naming game (from the state's shapes: nothing is allocated)."""
    import jax

    from jaxconv.engine import _nbytes
    from jaxconv.games.naming import NamingGame

    rows = []
    for n in sizes:
        row = {"N": n}
        for kind in ("bitsets", "slots"):
            game = NamingGame(n, inventory=kind)
            row[f"{kind}_bytes"] = _nbytes(jax.eval_shape(game.init, jax.random.key(0)))
            if kind == "slots":
                row["slots_capacity"] = game.capacity
        row["auto"] = NamingGame(n).inventory
        rows.append(row)
    return rows


def jaxconv_one(n: int, seed: int = 0, inventory: str = "auto", stepping: str = "auto") -> dict:
    import jax
    import numpy as np

    from jaxconv.engine import _fetch, _replicated, _sharded_padded, compiled_runner, timed_ensemble
    from jaxconv.games.naming import NamingGame

    game = NamingGame(n, inventory=inventory, stepping=stepping)
    budget = int(6 * n**1.5) // n * n
    key = jax.random.key(seed)
    # the run as timed_ensemble makes it (one replica, one device), compiled first so that CPU time is the run's
    keys = np.asarray(jax.random.key_data(jax.random.split(key, 1)))
    padded, arrays = _sharded_padded(keys, 1, 1), _replicated(game, 1)
    start = time.perf_counter()
    compiled = compiled_runner(game, (), budget, n, True, 1, 1).lower(padded, arrays).compile()
    compile_seconds = time.perf_counter() - start
    cpu, start = time.process_time(), time.perf_counter()
    summary = _fetch(jax.block_until_ready(compiled(padded, arrays))[0])
    run_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if summary.get("overflow", [False])[0]:  # rare: through timed_ensemble, which continues with more slots
        result, compile_seconds, run_seconds = timed_ensemble(key, game, 1, budget, n, until_done=True)
        summary, cpu_seconds = result.summary, float("nan")
    return {
        "consensus_time": int(summary["consensus_time"][0]),
        "interactions_run": int(summary["interactions"][0]),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "cpu_seconds": cpu_seconds,
        "inventory": game.inventory,
        "stepping": game.stepping,
        "block_size": game.block_size if game.in_blocks else None,
        "initial_capacity": game.capacity,
        "capacity": int(summary.get("capacity", [game.capacity])[0]),
        "state_bytes": game.state_bytes(),
    }


def jaxconv_segments(n: int, segment: int, seed=0, capacity=None, save: Path | None = None, save_every=900.0):
    """One replica of N agents in conflict-free blocks, ``segment`` interactions per call, printing a JSON line
    after each (interactions, words, seconds, peak RSS so far) until consensus: the cost of a run too long to wait
    for. An overflow continues with more slots (``NamingGame.grown``/``widened``) if the grown state fits in
    memory, else stops. With ``save`` the state is written there every ``save_every`` seconds, at the end and on
    SIGTERM/SIGINT (after the current segment), and a run with the same ``save`` resumes from it."""
    import resource
    import signal

    import jax

    from jaxconv.counts import LIMIT, Count
    from jaxconv.engine import _compiler_options, memory_limits
    from jaxconv.games.naming import NamingGame

    game = NamingGame(n, stepping="blocks", capacity=capacity)
    init_key, run_key = jax.random.split(jax.random.key(seed))  # as simulate_until_done splits it
    spent = {"seconds": 0.0, "cpu_seconds": 0.0, "regrowths": 0}
    if save is not None and (save / "state.json").exists():
        state, game, spent = _load_state(save, n, seed)
    else:
        state = jax.jit(lambda k: game.init(k))(init_key)
    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.append(True))

    def runner(game):
        return jax.jit(
            lambda state, end: game.advance_to(run_key, state, end, stop_at_consensus=True),
            donate_argnums=0,
            compiler_options=_compiler_options(),
        )

    run, saved_at = runner(game), time.perf_counter()
    cpu, start = time.process_time() - spent["cpu_seconds"], time.perf_counter() - spent["seconds"]
    while int(state.consensus_time) < 0 and not stop:
        if bool(state.overflow):
            grown = game.grown()
            usable = 0.8 * memory_limits()[0]  # available now, the current state still held
            if grown.state_bytes() > usable:
                reason = f"overflow at K={game.capacity}: K={grown.capacity} needs {grown.state_bytes() / 1e9:.1f} GB"
                print(json.dumps({"stopped": f"{reason}, {usable / 1e9:.1f} GB usable"}), flush=True)
                break
            state, game = jax.jit(lambda state, g=grown: g.widened(state))(state), grown
            run, spent["regrowths"] = runner(game), spent["regrowths"] + 1
        state = jax.block_until_ready(run(state, Count.of(min(LIMIT - 1, int(state.interactions) + segment))))
        spent["seconds"], spent["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
        line = {
            "N": n,
            "interactions": int(state.interactions),
            "total_words": int(state.total_words),
            "peak_words": int(state.peak_words),
            "peak_time": int(state.peak_time),
            "seconds": round(spent["seconds"], 1),
            "cpu_seconds": round(spent["cpu_seconds"], 1),
            "consensus_time": int(state.consensus_time),
            "overflow": bool(state.overflow),
            "capacity": game.capacity,
            "regrowths": spent["regrowths"],
            "state_bytes": game.state_bytes(),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "load": os.getloadavg()[0],
        }
        print(json.dumps(line), flush=True)
        if save is not None and time.perf_counter() - saved_at > save_every:
            _save_state(save, state, game, seed, spent)
            saved_at = time.perf_counter()
    if save is not None:
        _save_state(save, state, game, seed, spent)


COUNTS = ("interactions", "successes", "single_since", "peak_time", "consensus_time")
WORDS = ("total_words", "n_single", "peak_words")


def _save_state(directory: Path, state, game, seed: int, spent: dict) -> None:
    """The state to ``directory``: inventories.npy (written a slab of rows at a time, so the host holds no
    second copy) and state.json (counters, K, seed, seconds spent); each replaced atomically."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    rows = state.inventories
    partial = directory / "inventories.partial.npy"
    with open(partial, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": "<i4", "fortran_order": False, "shape": rows.shape})
        for i in range(0, rows.shape[0], SLAB):
            out.write(np.asarray(rows[i : i + SLAB], np.int32).tobytes())
    partial.replace(directory / "inventories.npy")
    meta = {name: int(getattr(state, name)) for name in COUNTS + WORDS}
    meta.update(N=game.n_population, capacity=game.capacity, seed=seed, overflow=bool(state.overflow), **spent)
    (directory / "state.partial.json").write_text(json.dumps(meta, indent=1))
    (directory / "state.partial.json").replace(directory / "state.json")
    print(json.dumps({"saved": str(directory), "interactions": meta["interactions"]}), flush=True)


def _load_state(directory: Path, n: int, seed: int):
    """The state, game and seconds spent saved by :func:`_save_state` (for the same N and seed)."""
    import jax.numpy as jnp
    import numpy as np

    from jaxconv.counts import Count
    from jaxconv.games.naming import NamingGame, NamingState

    meta = json.loads((directory / "state.json").read_text())
    if (meta["N"], meta["seed"]) != (n, seed):
        raise ValueError(f"{directory} holds N={meta['N']}, seed={meta['seed']}, not N={n}, seed={seed}")
    game = NamingGame(n, stepping="blocks", capacity=meta["capacity"])
    rows = np.load(directory / "inventories.npy", mmap_mode="r")
    state = NamingState(
        inventories=jnp.asarray(rows),
        **{name: Count.of(meta[name]) for name in COUNTS},
        **{name: jnp.int32(meta[name]) for name in WORDS},
        overflow=jnp.bool_(meta["overflow"]),
    )
    spent = {key: meta[key] for key in ("seconds", "cpu_seconds", "regrowths")}
    return state, game, spent


SLAB = 16384  # rows copied to the host at a time when a state is saved


def numba_one(n: int, seed: int = 0) -> dict:
    from reference_loops import numba_to_consensus

    numba_to_consensus(4, 1000, 0)  # compile
    cpu, start = time.process_time(), time.perf_counter()
    t = numba_to_consensus(n, 2**62, seed)
    return {"consensus_time": t, "run_seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--quick", action="store_true", help="N = 10^3 only")
    parser.add_argument("--no-numba", action="store_true")
    parser.add_argument("--sequential", action="store_true", help="one step at a time instead of blocks")
    parser.add_argument(
        "--segments", type=int, default=None, metavar="T",
        help="instead: one replica of the first size in blocks, a progress line every T interactions",
    )  # fmt: skip
    parser.add_argument("--save", type=Path, default=None, help="with --segments: save the state here, resume from it")
    parser.add_argument("--capacity", type=int, default=None, help="with --segments: initial word slots K")
    parser.add_argument("--out", type=Path, default=HERE / "results_scale.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [1000]
    from jaxconv.devices import configure

    configure(devices=1)
    if args.segments:
        jaxconv_segments(args.sizes[0], args.segments, capacity=args.capacity, save=args.save)
        return
    rows = []
    for n in args.sizes:
        row = {"N": n, "load_before": os.getloadavg()[0]}
        row["jaxconv"] = jaxconv_one(n, stepping="sequential" if args.sequential else "auto")
        if not args.no_numba:
            row["numba"] = numba_one(n)
            row["ratio_wall"] = row["jaxconv"]["run_seconds"] / row["numba"]["run_seconds"]
            row["ratio_cpu"] = row["jaxconv"]["cpu_seconds"] / row["numba"]["cpu_seconds"]
        row["load_after"] = os.getloadavg()[0]
        print(json.dumps(row), flush=True)
        rows.append(row)
    report = {"load_average": os.getloadavg(), "one_replica": rows, "memory": memory_table()}
    args.out.write_text(json.dumps(report, indent=2))
    print(
        "\n| N | numba s (CPU s) | jaxconv s (CPU s), compile | ratio wall (CPU) | consensus at (jaxconv, numba) "
        "| K | load |"
    )
    print("|---|---|---|---|---|---|---|")
    nan = float("nan")
    for row in rows:
        j, nb = row["jaxconv"], row.get("numba", {})
        print(
            f"| {row['N']:.0e} | {nb.get('run_seconds', nan):.3g} ({nb.get('cpu_seconds', nan):.3g}) | "
            f"{j['run_seconds']:.3g} ({j['cpu_seconds']:.3g}), "
            f"{j['compile_seconds']:.1f} | {row.get('ratio_wall', nan):.2f}x ({row.get('ratio_cpu', nan):.2f}x) | "
            f"{j['consensus_time']:,}, {nb.get('consensus_time', 0):,} | {j['capacity']} | "
            f"{row['load_before']:.1f}-{row['load_after']:.1f} |"
        )
    print("\n| N | bitsets | slots (K) | auto |\n|---|---|---|---|")
    for m in report["memory"]:
        slots = f"{m['slots_bytes']:,} B ({m['slots_capacity']})"
        print(f"| {m['N']:.0e} | {m['bitsets_bytes']:,} B | {slots} | {m['auto']} |")


if __name__ == "__main__":
    main()
