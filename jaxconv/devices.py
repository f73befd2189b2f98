"""Devices and processes: which devices a run uses, and JAX's multi-process runtime.

JAX puts a whole computation on one CPU device, so on a CPU jaxconv shards replicas over several virtual CPU
devices, one per core by default. The count the user gives wins: ``configure(devices=n)`` (the CLI's
``--devices``), else ``XLA_FLAGS=--xla_force_host_platform_device_count=n`` or ``JAX_NUM_CPU_DEVICES=n``, else one
per core.

Several machines (or several processes on one) run through JAX's own runtime, ``jax.distributed``: start the same
command on every process with the coordinator's address, the number of processes and each one's id (or let JAX
detect them on a cluster: SLURM, Open MPI, Kubernetes/GKE TPU, ...). The engine then shards replicas over the
devices of all processes and gathers the results (``jaxconv.engine``).
"""

import os
import re
import warnings

import jax


def requested_cpu_devices() -> int | None:
    """The CPU device count the environment asks for (``XLA_FLAGS=--xla_force_host_platform_device_count=n``, else
    ``JAX_NUM_CPU_DEVICES``), None if it asks for none."""
    match = re.search(r"--xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
    if match:
        return int(match.group(1))
    value = os.environ.get("JAX_NUM_CPU_DEVICES", "").strip()
    return int(value) if value.isdigit() else None


def use_cpu_cores(n_devices: int | None = None) -> None:
    """Expose ``n_devices`` CPU devices (default: what the environment asks for, else one per core). Call before
    the first JAX computation; a later call cannot change the device count and warns if there are fewer devices
    than asked. No effect on GPU/TPU."""
    n_devices = n_devices or requested_cpu_devices() or os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", n_devices)
    except RuntimeError as error:  # backends already initialised
        if jax.local_device_count() < n_devices and jax.default_backend() == "cpu":
            warnings.warn(f"could not set {n_devices} CPU devices: {error}", stacklevel=2)


def configure(
    devices: int | None = None,
    *,
    coordinator: str | None = None,
    n_processes: int | None = None,
    process_id: int | None = None,
    cluster: bool = False,
) -> dict:
    """Set up devices (CPU: see ``use_cpu_cores``) and, when asked, JAX's multi-process runtime
    (``jax.distributed.initialize`` with ``coordinator`` "host:port", ``n_processes`` and this ``process_id``, or
    ``cluster=True`` for JAX's cluster auto-detection). Call before the first JAX computation. Several CPU
    processes talk through gloo collectives. Returns :func:`describe`."""
    if devices is not None and devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    distributed = cluster or coordinator is not None or (n_processes or 1) > 1
    if distributed and not jax.distributed.is_initialized():
        if not cluster and (coordinator is None or n_processes is None or process_id is None):
            raise ValueError("several processes need --coordinator HOST:PORT, --num-processes and --process-id")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        use_cpu_cores(devices)
        kwargs = {} if cluster and coordinator is None else dict(coordinator_address=coordinator)
        if not cluster or n_processes is not None:
            kwargs.update(num_processes=n_processes, process_id=process_id)
        jax.distributed.initialize(**kwargs)
    else:
        use_cpu_cores(devices)
    return describe()


def describe() -> dict:
    """Devices and processes in use: ``{"devices", "local_devices", "processes", "process_id", "platform"}``."""
    return {
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "processes": jax.process_count(),
        "process_id": jax.process_index(),
        "platform": jax.default_backend(),
    }
