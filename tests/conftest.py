"""Tests run on 8 virtual CPU devices, so the sharded multi-device path is exercised on any machine."""

import os
from pathlib import Path

# test workers run side by side (pytest -n): on a GPU none may claim most of its memory up front
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import pytest

jax.config.update("jax_num_cpu_devices", 8)

AI_NORMS = Path(os.environ.get("JAXCONV_AI_NORMS", Path(__file__).resolve().parents[2] / "shared/data/ai-norms"))


@pytest.fixture
def ai_norms_dir():
    """The shared LLM logs; the test is skipped when they are absent."""
    if not AI_NORMS.is_dir():
        pytest.skip(f"LLM logs not found at {AI_NORMS}")
    return AI_NORMS
