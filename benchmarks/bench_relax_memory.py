"""Reverse-mode memory of long differentiable runs: records scanned in rematerialised chunks of about sqrt(records)
(``jaxconv.relax``, the default from ``CHUNKED_FROM`` records) against the plain scan of checkpointed records, in
ONE run, as ratios.

The workload is the collective fit's (``jaxconv.estimate.collective``): the score-function gradient of an
outcome of hard runs recorded every interaction, here the mean success of ``--replicas`` runs of a softmax agent
(N=48, H=5, W=2) over T interactions. Per T: the compiled gradient's temporary memory (XLA's memory analysis, no
run needed), its compile time and its time per call (best of ``--repeats``), for both scans; the gradients agree.

    python benchmarks/bench_relax_memory.py            # T = 720, 1440, 2880; 128 replicas
    python benchmarks/bench_relax_memory.py --quick
"""

import argparse
import json
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--replicas", type=int, default=128)
    parser.add_argument("--steps", type=int, nargs="+", default=[720, 1440, 2880])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results_relax_memory.json")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.steps, args.repeats = 16, [300], 1

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxconv import MemoryGame, SoftmaxSurrogate, relax
    from jaxconv.choosers import ScoreFunction

    def mean_success(theta, n_steps):
        agent = SoftmaxSurrogate(jnp.stack([0.0, theta[0]]), win_stay=theta[1], partner_weight=0.5)
        game = MemoryGame(48, 2, 5, policy=agent, stop=None)
        keys = jax.random.split(jax.random.key(0), args.replicas)
        runs = jax.vmap(lambda k: relax.run(k, game, ScoreFunction(), n_steps, 1))(keys)
        return jnp.mean(relax.surrogate(runs["success_rate"].mean(axis=1), runs["log_prob"][:, -1]))

    theta = jnp.array([0.1, 1.0])
    chunked_from = relax.CHUNKED_FROM
    rows = []
    for n_steps in args.steps:
        row = {"interactions": n_steps, "replicas": args.replicas}
        for label, threshold in (("chunked", chunked_from), ("plain", n_steps + 1)):
            relax.CHUNKED_FROM = threshold
            start = time.perf_counter()
            compiled = jax.jit(jax.grad(mean_success), static_argnums=1).lower(theta, n_steps).compile()
            compile_s = time.perf_counter() - start
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                gradient = jax.block_until_ready(compiled(theta))
                seconds.append(time.perf_counter() - start)
            row[label] = {
                "temp_mb": compiled.memory_analysis().temp_size_in_bytes / 1e6,
                "compile_s": round(compile_s, 2),
                "call_s": round(min(seconds), 3),
                "gradient": np.asarray(gradient).tolist(),
            }
        relax.CHUNKED_FROM = chunked_from
        row["memory_plain_over_chunked"] = round(row["plain"]["temp_mb"] / row["chunked"]["temp_mb"], 1)
        row["time_chunked_over_plain"] = round(row["chunked"]["call_s"] / row["plain"]["call_s"], 2)
        row["gradients_agree"] = bool(np.allclose(row["chunked"]["gradient"], row["plain"]["gradient"], rtol=1e-4))
        rows.append(row)
        print(
            f"T={n_steps}: temp memory {row['plain']['temp_mb']:.1f} MB plain, {row['chunked']['temp_mb']:.1f} MB"
            f" chunked ({row['memory_plain_over_chunked']}x less); per call {row['plain']['call_s']} s plain,"
            f" {row['chunked']['call_s']} s chunked ({row['time_chunked_over_plain']}x); compile"
            f" {row['plain']['compile_s']} s / {row['chunked']['compile_s']} s; gradients agree:"
            f" {row['gradients_agree']}"
        )
    machine = {"platform": platform.platform(), "processor": platform.processor(), "devices": str(jax.devices())}
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
