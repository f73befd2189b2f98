"""Using every CPU core: JAX puts a whole computation on one CPU device, so jaxconv shards replicas over
several virtual CPU devices, one per core."""

import os
import warnings

import jax


def use_cpu_cores(n_devices: int | None = None) -> None:
    """Expose ``n_devices`` CPU devices (default: one per core). Call before the first JAX computation; a later
    call cannot change the device count and warns if there are fewer devices than asked. No effect on GPU/TPU."""
    n_devices = n_devices or os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", n_devices)
    except RuntimeError as error:  # backends already initialised
        if jax.local_device_count() < n_devices and jax.default_backend() == "cpu":
            warnings.warn(f"could not set {n_devices} CPU devices: {error}", stacklevel=2)
