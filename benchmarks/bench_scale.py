"""One replica of the minimal naming game to consensus at large N: jaxconv (word-slot inventories, one device)
beside the numba peer, in ONE process, one after the other; and the memory per replica of each representation.

    pip install -e ".[bench]" && python benchmarks/bench_scale.py                  # N = 10^3, 10^4, 10^5
    python benchmarks/bench_scale.py --sizes 1000 10000 --quick                    # seconds

The numba peer (``reference_loops.numba_to_consensus``) is the compiled single-core loop of ``numba_loop``:
per-agent word lists with room for every word and a linear search. jaxconv runs through ``timed_ensemble`` (one
replica, ``until_done``, consensus checked every N interactions), as ``jaxconv simulate naming-game --replicas 1
--until-consensus`` does. Times are wall-clock and process CPU seconds (the CPU time is less sensitive to other
load on a shared machine).
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


def jaxconv_one(n: int, seed: int = 0, inventory: str = "auto") -> dict:
    import jax

    from jaxconv.engine import timed_ensemble
    from jaxconv.games.naming import NamingGame

    game = NamingGame(n, inventory=inventory)
    budget = min(int(6 * n**1.5) // n * n, (2**31 - 1) // n * n)
    cpu = time.process_time()
    result, compile_seconds, run_seconds = timed_ensemble(jax.random.key(seed), game, 1, budget, n, until_done=True)
    summary = result.summary
    return {
        "consensus_time": int(summary["consensus_time"][0]),
        "interactions_run": int(summary["interactions"][0]),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "cpu_seconds_with_compile": time.process_time() - cpu,
        "inventory": game.inventory,
        "initial_capacity": game.capacity,
        "capacity": int(summary.get("capacity", [game.capacity])[0]),
        "state_bytes": game.state_bytes(),
    }


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
    parser.add_argument("--out", type=Path, default=HERE / "results_scale.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [1000]
    from jaxconv.devices import configure

    configure(devices=1)
    rows = []
    for n in args.sizes:
        row = {"N": n, "jaxconv": jaxconv_one(n)}
        if not args.no_numba:
            row["numba"] = numba_one(n)
            row["ratio_wall"] = row["jaxconv"]["run_seconds"] / row["numba"]["run_seconds"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    report = {"load_average": os.getloadavg(), "one_replica": rows, "memory": memory_table()}
    args.out.write_text(json.dumps(report, indent=2))
    print("\n| N | numba s | jaxconv s (compile) | ratio | consensus at (jaxconv, numba) | capacity |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        j, nb = row["jaxconv"], row.get("numba", {})
        print(
            f"| {row['N']:.0e} | {nb.get('run_seconds', float('nan')):.3g} | {j['run_seconds']:.3g} "
            f"({j['compile_seconds']:.1f}) | {row.get('ratio_wall', float('nan')):.2f}x | "
            f"{j['consensus_time']}, {nb.get('consensus_time')} | {j['capacity']} |"
        )
    print("\n| N | bitsets | slots (K) | auto |\n|---|---|---|---|")
    for m in report["memory"]:
        slots = f"{m['slots_bytes']:,} B ({m['slots_capacity']})"
        print(f"| {m['N']:.0e} | {m['bitsets_bytes']:,} B | {slots} | {m['auto']} |")


if __name__ == "__main__":
    main()
