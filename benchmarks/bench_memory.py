"""Throughput of the memory game (the LLM protocol with best-response agents): jaxconv against a pure-Python loop
written the way the published experiment code is (a dict per agent).

N=24, H=5, W=10, complete graph, random pairs, 4096 replicas x 1000 interactions, in ONE run, as a ratio. The
Python loop is timed on a subset of the replicas (its rate per interaction does not depend on their number).

    python benchmarks/bench_memory.py            # full sizes
    python benchmarks/bench_memory.py --quick
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--replicas", type=int, default=4096)
    parser.add_argument("--interactions", type=int, default=1000)
    parser.add_argument("--python-replicas", type=int, default=64)
    parser.add_argument("--out", type=Path, default=HERE / "results_memory.json")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.interactions, args.python_replicas = 256, 200, 8

    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    import jax
    from reference_loops import memory_game_python

    from jaxconv.engine import timed_ensemble
    from jaxconv.games.memory import MemoryGame
    from jaxconv.policies import BestResponse

    n, names, memory = 24, 10, 5
    game = MemoryGame(n, names, memory, policy=BestResponse(), stop=None)
    result, compile_seconds, seconds = timed_ensemble(
        jax.random.key(0), game, args.replicas, args.interactions, args.interactions
    )
    seconds = min(
        seconds,
        *(
            timed_ensemble(jax.random.key(s), game, args.replicas, args.interactions, args.interactions)[2]
            for s in (1, 2)
        ),
    )
    ours = args.replicas * args.interactions / seconds
    start = time.perf_counter()
    python_successes = memory_game_python(n, names, memory, args.python_replicas, args.interactions)
    python_seconds = time.perf_counter() - start
    theirs = args.python_replicas * args.interactions / python_seconds
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "jax": jax.__version__,
            "devices": jax.local_device_count(),
        },
        "command": " ".join(sys.argv),
        "jaxconv": {
            "interactions_per_second": ours,
            "seconds": seconds,
            "compile_seconds": compile_seconds,
            "mean_success_rate": float(result.summary["successes"].mean() / args.interactions),
        },
        "python_dict_per_agent": {
            "interactions_per_second": theirs,
            "replicas_timed": args.python_replicas,
            "mean_success_rate": float(python_successes.mean() / args.interactions),
        },
        "speedup": ours / theirs,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
