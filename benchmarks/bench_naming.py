"""Throughput of the minimal naming game: jaxconv against a pure-Python loop and a compiled (numba) loop.

Minimal naming game, complete graph, N=100, random sequential pairs, 1024 replicas x 20000 interactions, in ONE
run, reported as interactions per second and as ratios. The pure-Python loop is timed on a subset of the
replicas (its rate per interaction does not depend on how many replicas run). Then one replica of N=10^4 run to
consensus: compile time, run time and peak memory (measured in a child process).

    pip install -e ".[bench]" && python benchmarks/bench_naming.py          # full sizes
    python benchmarks/bench_naming.py --quick                               # seconds
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def throughput(args) -> dict:
    import jax
    from reference_loops import numba_loop, python_reference

    from jaxconv.engine import timed_ensemble
    from jaxconv.games.naming import NamingGame

    n, replicas, steps = args.agents, args.replicas, args.interactions
    rows = {}
    game = NamingGame(n)
    (result, compile_seconds, seconds) = timed_ensemble(jax.random.key(0), game, replicas, steps, steps)
    best = min(seconds, *(timed_ensemble(jax.random.key(r), game, replicas, steps, steps)[2] for r in (1, 2)))
    rows["jaxconv"] = {
        "seconds": best,
        "interactions_per_second": replicas * steps / best,
        "compile_seconds": compile_seconds,
        "devices": jax.local_device_count(),
        "mean_successes": float(result.summary["successes"].mean()),
    }
    numba_loop(4, 1, 10, 0)  # compile
    start = time.perf_counter()
    successes, _ = numba_loop(n, replicas, steps, 0)
    seconds = time.perf_counter() - start
    rows["numba (1 core)"] = {
        "seconds": seconds,
        "interactions_per_second": replicas * steps / seconds,
        "mean_successes": float(successes.mean()),
    }
    python_replicas = max(1, replicas // args.python_fraction)
    start = time.perf_counter()
    successes, _ = python_reference(n, python_replicas, steps, 0)
    seconds = time.perf_counter() - start
    rows["pure Python"] = {
        "seconds": seconds,
        "replicas_timed": python_replicas,
        "interactions_per_second": python_replicas * steps / seconds,
        "mean_successes": float(successes.mean()),
    }
    ours = rows["jaxconv"]["interactions_per_second"]
    for row in rows.values():
        row["jaxconv_speedup"] = ours / row["interactions_per_second"]
    return rows


def one_large_replica(n_agents: int) -> dict:
    """Runs in a child process so that its peak resident memory is its own."""
    code = f"""
import json, resource, time, jax
from jaxconv.engine import timed_ensemble
from jaxconv.games.naming import NamingGame
n = {n_agents}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
game = NamingGame(n)
budget = int(4 * n ** 1.5) // n * n
result, compile_seconds, seconds = timed_ensemble(jax.random.key(0), game, 1, budget, n, until_done=True)
print(json.dumps({{
    "N": n, "compile_seconds": compile_seconds, "run_seconds": seconds,
    "consensus_time": int(result.summary["consensus_time"][0]),
    "interactions_run": int(result.summary["interactions"][0]),
    "state_megabytes": n * game.n_words * 4 / 2**20,
    "peak_rss_megabytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_before_jaxconv_megabytes": before / 1024,
}}))
"""
    env = dict(os.environ, XLA_FLAGS="")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=1024)
    parser.add_argument("--interactions", type=int, default=20_000)
    parser.add_argument("--python-fraction", type=int, default=32, help="time pure Python on replicas / this")
    parser.add_argument("--large", type=int, default=10_000, help="N of the single replica run to consensus (0: skip)")
    parser.add_argument("--out", type=Path, default=HERE / "results_naming.json")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.interactions, args.large = 64, 2000, 1000

    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    import jax

    machine["jax"] = jax.__version__
    rows = throughput(args)
    large = one_large_replica(args.large) if args.large else None
    report = {"machine": machine, "command": " ".join(sys.argv), "throughput": rows, "one_large_replica": large}
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print("\n| implementation | interactions/s | jaxconv speed-up |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['interactions_per_second']:.3g} | {row['jaxconv_speedup']:.2f}x |")
    if large is None:
        return
    print(
        f"peak RSS at N={large['N']}: {large['peak_rss_megabytes']:.0f} MB; "
        f"resource usage of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
