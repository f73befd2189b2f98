"""Engine: sweeps without recompiling, results independent of devices and chunks, resumable runs."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import engine
from jaxconv.engine import ensemble, sweep
from jaxconv.games.naming import NamingGame


def test_sweeping_beta_and_committed_reuses_the_compiled_program():
    game = NamingGame(10, vocabulary=2, committed=2, committed_mode="converted", initial="prepared")
    values = {"beta": jnp.array([0.2, 0.6, 1.0]), "n_committed": jnp.array([0, 2, 4])}
    first = sweep(jax.random.key(0), game, values, 6, 200, 100)
    runner = engine.compiled_runner(game, ("beta", "n_committed"), 200, 100, False, 8)
    assert runner._cache_size() == 1
    second = sweep(
        jax.random.key(0), game, {"beta": jnp.array([0.3, 0.5, 0.9]), "n_committed": jnp.array([1, 3, 5])}, 6, 200, 100
    )
    assert engine.compiled_runner(game, ("beta", "n_committed"), 200, 100, False, 8) is runner
    assert runner._cache_size() == 1, "a new parameter value recompiled the sweep"
    assert first.summary["consensus_time"].shape == (3, 6)
    assert first.observations["successes"].shape == (3, 6, 2)
    assert not np.array_equal(first.summary["successes"], second.summary["successes"])


def test_sweep_matches_separate_ensembles():
    """Value i of a sweep is the ensemble of the game with that value (same replica keys)."""
    game = NamingGame(8, vocabulary=3)
    betas = [0.3, 1.0]
    swept = sweep(jax.random.key(5), game, {"beta": jnp.array(betas)}, 5, 120, 40)
    for i, beta in enumerate(betas):
        alone = ensemble(jax.random.key(5), NamingGame(8, vocabulary=3, beta=beta), 5, 120, 40)
        for name in alone.summary:
            np.testing.assert_array_equal(swept.summary[name][i], alone.summary[name])


def test_sweep_rejects_bad_values():
    game = NamingGame(8)
    with pytest.raises(ValueError, match="n_agents"):
        sweep(jax.random.key(0), game, {"n_agents": jnp.array([3, 4])}, 2, 10)
    with pytest.raises(ValueError, match="one leading length"):
        sweep(jax.random.key(0), game, {"beta": jnp.array([0.1, 0.2]), "n_committed": jnp.array([1])}, 2, 10)


def test_results_do_not_depend_on_the_number_of_devices():
    """8 virtual devices (this process) and 1 device (a fresh process) give identical replicas."""
    here = ensemble(jax.random.key(11), NamingGame(12, vocabulary=5), 10, 400, 200).summary
    assert jax.local_device_count() == 8
    script = (
        "import json, jax; jax.config.update('jax_num_cpu_devices', 1)\n"
        "from jaxconv.engine import ensemble; from jaxconv.games.naming import NamingGame\n"
        "s = ensemble(jax.random.key(11), NamingGame(12, vocabulary=5), 10, 400, 200).summary\n"
        "print(json.dumps({k: v.tolist() for k, v in s.items()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ)
    there = json.loads(out.stdout)
    for name, values in there.items():
        np.testing.assert_array_equal(here[name], values)


def test_interrupted_run_resumes_from_finished_chunks(tmp_path, monkeypatch):
    game = NamingGame(10)
    full = ensemble(jax.random.key(1), game, 20, 300, 100, chunk_size=8, checkpoint_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    # a rerun must load every chunk: make computing one fail
    monkeypatch.setattr(engine, "compiled_runner", lambda *a, **k: pytest.fail("recomputed a finished chunk"))
    resumed = ensemble(jax.random.key(1), game, 20, 300, 100, chunk_size=8, checkpoint_dir=tmp_path)
    for name in full.summary:
        np.testing.assert_array_equal(resumed.summary[name], full.summary[name])
    for name in full.observations:
        np.testing.assert_array_equal(resumed.observations[name], full.observations[name])


def test_checkpoints_of_other_runs_are_not_reused(tmp_path):
    ensemble(jax.random.key(1), NamingGame(10), 4, 300, 100, checkpoint_dir=tmp_path)
    ensemble(jax.random.key(1), NamingGame(10, beta=0.5), 4, 300, 100, checkpoint_dir=tmp_path)
    ensemble(jax.random.key(2), NamingGame(10), 4, 300, 100, checkpoint_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


@pytest.mark.parametrize(
    "n_steps, record_every, message",
    [(0, 1, "n_steps"), (10, 3, "multiple"), (10, 0, "record_every"), (2**31, 1, "overflow")],
)
def test_bad_step_counts(n_steps, record_every, message):
    with pytest.raises(ValueError, match=message):
        ensemble(jax.random.key(0), NamingGame(4), 2, n_steps, record_every)


def test_sweep_reaches_nested_parameters():
    """Sweeping ``policy.bias`` of a memory game equals separate ensembles of each policy."""
    from jaxconv.games.memory import MemoryGame
    from jaxconv.policies import SoftmaxSurrogate

    biases = jnp.array([[0.0, 0.0], [0.0, 1.5]])
    game = MemoryGame(6, 2, 3, policy=SoftmaxSurrogate(biases[0], win_stay=2.0))
    swept = sweep(jax.random.key(4), game, {"policy.bias": biases}, 8, 60, 30)
    for i in range(2):
        alone = MemoryGame(6, 2, 3, policy=SoftmaxSurrogate(biases[i], win_stay=2.0))
        expected = ensemble(jax.random.key(4), alone, 8, 60, 30).summary
        for name in expected:
            np.testing.assert_array_equal(swept.summary[name][i], expected[name])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"policy.bias": jnp.zeros((2, 3))}, r"bias must have shape \(2,\)"),
        ({"policy.temperature": jnp.array([1.0, -0.5])}, "temperature must be > 0, got -0.5"),
        ({"payoffs": jnp.array([[100.0, -50.0], [jnp.inf, 0.0]])}, "payoffs must be pairs of finite numbers"),
    ],
)
def test_sweep_checks_policy_and_game_values(values, message):
    from jaxconv.games.memory import MemoryGame
    from jaxconv.policies import SoftmaxSurrogate

    game = MemoryGame(6, 2, 3, policy=SoftmaxSurrogate(jnp.zeros(2)))
    with pytest.raises(ValueError, match=message):
        sweep(jax.random.key(0), game, values, 4, 10)


def test_cpu_runners_are_compiled_without_library_reduction_fusions():
    """The per-agent reductions of a memory game stay in XLA's own loops on CPU (benchmarks/RESULTS.md)."""
    from jaxconv.games.memory import MemoryGame

    if engine._compiler_options() is None:
        pytest.skip("this jaxlib does not know the YNNPACK fusion option")
    game = MemoryGame(6, 3, 2, stop=None)
    keys = engine._sharded_padded(jax.random.split(jax.random.key(0), 8), 8)
    arrays = engine.eqx.filter(game, engine.eqx.is_array)
    runner = engine.compiled_runner(game, (), 4, 4, False, 8)
    assert "ynn_fusion" not in runner.lower(keys, arrays).compile().as_text()
