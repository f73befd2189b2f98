"""GPU figures in one run (benchmarks/gpu.sh): interactions/s, compile time and device memory of jaxconv, beside a
numba-cuda kernel (one thread per replica) of the minimal naming game.

Rows: naming game N=100 at 10^3 .. 10^6 replicas; N=10^4 at the largest replica count that fits; the memory game
(N=24, H=5, W=10, best response); one replica of N=10^6 in conflict-free blocks (the default path for word slots)
and one step at a time; a score-function gradient estimate (jaxconv.relax) on a small memory game. ``--quick``
shrinks every size so that the script runs in a minute or two on a CPU (the numba-cuda kernel then runs in numba's
CUDA simulator, NUMBA_ENABLE_CUDASIM=1, on a few replicas: a check, not a timing); without numba-cuda that peer is
reported as not run.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_bytes():
    import jax

    stats = [d.memory_stats() or {} for d in jax.local_devices()]
    peaks = [s.get("peak_bytes_in_use") for s in stats]
    return int(sum(peaks)) if all(p is not None for p in peaks) else None


def _row(name, replicas, interactions, compile_seconds, seconds, **extra):
    return {
        "run": name,
        "replicas": replicas,
        "interactions_per_second": replicas * interactions / seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": seconds,
        "device_peak_bytes": _peak_bytes(),
        **extra,
    }


def jaxconv_rows(quick: bool) -> list[dict]:
    import jax

    from jaxconv.engine import estimate_memory, timed_ensemble
    from jaxconv.games.memory import MemoryGame
    from jaxconv.games.naming import NamingGame
    from jaxconv.policies import BestResponse

    rows = []
    steps = 2000 if quick else 10_000
    for replicas in (64, 256) if quick else (10**3, 10**4, 10**5, 10**6):
        result, c, s = timed_ensemble(jax.random.key(0), NamingGame(100), replicas, steps, steps)
        rows.append(_row(f"naming N=100, {steps} interactions", replicas, steps, c, s))
    n = 1000 if quick else 10**4
    game = NamingGame(n)
    steps = 20 * n
    fits = estimate_memory(game, (), 10**7, steps, steps, False)["fitting_chunk"]
    replicas = 8 if quick else max(jax.device_count(), fits // jax.device_count() * jax.device_count())
    result, c, s = timed_ensemble(jax.random.key(1), game, replicas, steps, steps)
    rows.append(
        _row(f"naming N={n} ({game.inventory}, K={game.capacity}), {steps} interactions", replicas, steps, c, s)
    )
    steps = 1000
    game = MemoryGame(24, 10, 5, policy=BestResponse(), stop=None)
    replicas = 256 if quick else 10**5
    result, c, s = timed_ensemble(jax.random.key(2), game, replicas, steps, steps)
    rows.append(_row("memory game N=24 H=5 W=10, 1000 interactions", replicas, steps, c, s))
    n = 10**4 if quick else 10**6
    for stepping in ("blocks", "sequential"):  # conflict-free blocks (the default for slots), and one at a time
        game = NamingGame(n, stepping=stepping)
        steps = 20 * n if stepping == "blocks" else min(20 * n, 200_000)  # one at a time: a rate, not a run
        result, c, s = timed_ensemble(jax.random.key(3), game, 1, steps, n)
        label = f"one replica N={n} ({game.inventory}, K={game.capacity}, {stepping}), {steps} interactions"
        rows.append(_row(label, 1, steps, c, s))
    rows.append(gradient_row(quick))
    return rows


def gradient_row(quick: bool) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from jaxconv.choosers import ScoreFunction
    from jaxconv.games.memory import MemoryGame
    from jaxconv.policies import SoftmaxSurrogate
    from jaxconv.relax import expectation

    policy = SoftmaxSurrogate(jnp.array([0.0, 0.1]), win_stay=2.0, lose_shift=2.0, partner_weight=1.0)
    game = MemoryGame(12, 2, 3, policy=policy, stop=None)
    replicas, steps = (64, 120) if quick else (10**5, 600)

    @eqx.filter_jit
    def gradient(game, key):
        return eqx.filter_grad(
            lambda g: expectation(key, g, ScoreFunction(), lambda o: o["success_rate"][-1], replicas, steps, 12)[0]
        )(game)

    start = time.perf_counter()
    compiled = gradient.lower(game, jax.random.key(0)).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(game, jax.random.key(1)))
    seconds = time.perf_counter() - start
    return _row("score-function gradient, memory game N=12 H=3 W=2", replicas, steps, compile_seconds, seconds)


NUMBA_N, NUMBA_CAPACITY = 100, 102  # the numba-cuda peer: N=100, room for every word

try:  # module level, so that numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) sees its own `cuda` in the kernel
    from numba import cuda
    from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32

    NUMBA_CUDA_MISSING = None
except Exception as missing:  # no numba, or no CUDA target in it: the peer is reported as not run
    cuda = None
    NUMBA_CUDA_MISSING = f"{type(missing).__name__}: {str(missing)[:80]}"

if cuda is not None:

    @cuda.jit
    def naming_kernel(states, inventories, sizes, successes, steps):
        """One replica of the minimal naming game per thread (inventories in global memory)."""
        n = NUMBA_N
        r = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
        if r >= sizes.shape[0]:
            return
        count = 0
        for _ in range(steps):
            speaker = int(xoroshiro128p_uniform_float32(states, r) * n) % n
            hearer = int(xoroshiro128p_uniform_float32(states, r) * (n - 1)) % (n - 1)
            if hearer >= speaker:
                hearer += 1
            if sizes[r, speaker] == 0:
                word = 2 + speaker
                inventories[r, speaker, 0] = word
                sizes[r, speaker] = 1
            else:
                k = int(xoroshiro128p_uniform_float32(states, r) * sizes[r, speaker]) % sizes[r, speaker]
                word = inventories[r, speaker, k]
            known = False
            for j in range(sizes[r, hearer]):
                if inventories[r, hearer, j] == word:
                    known = True
            if known:
                count += 1
                inventories[r, speaker, 0] = word
                inventories[r, hearer, 0] = word
                sizes[r, speaker] = 1
                sizes[r, hearer] = 1
            else:
                inventories[r, hearer, sizes[r, hearer]] = word
                sizes[r, hearer] += 1
        successes[r] = count


def numba_cuda_row(quick: bool) -> dict:
    """The minimal naming game, N=100, one CUDA thread per replica (``naming_kernel``)."""
    import numpy as np

    if cuda is None:
        raise RuntimeError(f"numba-cuda is not installed ({NUMBA_CUDA_MISSING})")
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":  # the simulator's xoroshiro wraps numpy uint64 on purpose
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
    n, capacity, kernel = NUMBA_N, NUMBA_CAPACITY, naming_kernel
    replicas, steps = (4, 200) if quick else (10**5, 10_000)
    inventories = cuda.device_array((replicas, n, capacity), np.int32)
    sizes = cuda.to_device(np.zeros((replicas, n), np.int32))
    successes = cuda.device_array(replicas, np.int64)
    states = create_xoroshiro128p_states(replicas, seed=0)
    threads = 128
    blocks = -(-replicas // threads)
    start = time.perf_counter()
    kernel[blocks, threads](states, inventories, sizes, successes, 1)  # compile
    cuda.synchronize()
    compile_seconds = time.perf_counter() - start
    sizes.copy_to_device(np.zeros((replicas, n), np.int32))
    start = time.perf_counter()
    kernel[blocks, threads](states, inventories, sizes, successes, steps)
    cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "run": "numba-cuda naming N=100 (one thread per replica)" + (" [CUDA simulator]" if quick else ""),
        "replicas": replicas,
        "interactions_per_second": replicas * steps / seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": seconds,
        "mean_successes": float(successes.copy_to_host().mean()),
        "device_peak_bytes": replicas * n * (capacity + 1) * 4,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results_gpu.json")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from jaxconv.devices import configure

    used = configure()
    rows = jaxconv_rows(args.quick)
    try:
        rows.append(numba_cuda_row(args.quick))
    except Exception as error:  # no numba-cuda, no CUDA driver: say so in the table
        rows.append({"run": f"numba-cuda peer: not run ({type(error).__name__}: {str(error)[:100]})"})
        print(f"numba-cuda peer skipped: {rows[-1]['run']}", flush=True)
    import jax

    device = f"{jax.devices()[0].device_kind} x {used['devices']} ({used['platform']})"
    args.out.write_text(json.dumps({"device": device, "quick": args.quick, "rows": rows}, indent=2))
    print(f"device: {device}\n")
    print("| run | replicas | interactions/s | compile s | device peak |\n|---|---|---|---|---|")
    for row in rows:
        if "replicas" not in row:
            print(f"| {row['run']} | | | | |")
            continue
        peak = row.get("device_peak_bytes")
        peak = "n/a" if peak is None else f"{peak / 2**20:.0f} MiB"
        print(
            f"| {row['run']} | {row['replicas']:,} | {row['interactions_per_second']:.3g} | "
            f"{row['compile_seconds']:.1f} | {peak} |"
        )


if __name__ == "__main__":
    os.environ.setdefault("JAXCONV_BENCH", "gpu")
    main()
