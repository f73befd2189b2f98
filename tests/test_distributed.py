"""Two processes on localhost through JAX's multi-process runtime (jax.distributed, gloo CPU collectives): the
replicas are sharded over both processes' devices and the results equal those of one process."""

import json
import os
import socket
import subprocess
import sys

ARGS = ["simulate", "naming-game", "--agents", "12", "--replicas", "6", "--steps", "240", "--seed", "4", "--json"]
TIMINGS = ("interactions_per_second", "compile_seconds", "run_seconds", "path", "devices", "devices_used", "processes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jaxconv(*extra):
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return subprocess.Popen(
        [sys.executable, "-m", "jaxconv.cli", *ARGS, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def test_two_processes_equal_one():
    port = _free_port()
    processes = [
        _jaxconv("--devices", "1", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i))
        for i in range(2)
    ]
    single = _jaxconv("--devices", "1")
    outputs = [p.communicate(timeout=200) for p in [*processes, single]]
    for p, (_out, err) in zip([*processes, single], outputs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    first, second, alone = (json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs)
    assert first["processes"] == 2 and first["devices"] == 2 and first["devices_used"] == 2
    assert alone["processes"] == 1
    for result in (first, second, alone):
        for name in TIMINGS:
            result.pop(name)
    assert first == alone
    assert second == alone  # every process gets all the results
