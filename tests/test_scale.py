"""Word-slot inventories (issue [scale]): the same law as bitsets, exact overflow detection and automatic
regrowth, one replica without padding, devices as asked."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import cli, engine
from jaxconv.choosers import Sample
from jaxconv.engine import ensemble, simulate, timed_ensemble
from jaxconv.games.naming import NamingGame, Slots, default_capacity
from tests.stats import assert_means_agree, assert_same_distribution

VARIANTS = [
    ("open", dict(), 12, 600),
    ("pool forgets", dict(vocabulary=3, empty_speaker="forgets"), 8, 300),
    ("matching", dict(schedule="matching"), 8, 400),
]


@pytest.mark.parametrize("kwargs, n_agents, n_interactions", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_slots_and_bitsets_have_the_same_law(kwargs, n_agents, n_interactions):
    """Slots choose a uniformly random known word as bitsets do: every result agrees in distribution."""
    runs = {}
    for kind, seed in (("bitsets", 0), ("slots", 1)):
        game = NamingGame(n_agents, inventory=kind, **kwargs)
        runs[kind] = ensemble(jax.random.key(seed), game, 1500, n_interactions // game.interactions_per_step, 10)
    ours, theirs = runs["slots"], runs["bitsets"]
    assert not ours.summary["overflow"].any()
    reached = ours.summary["consensus_time"] >= 0
    if reached.mean() > 0.5:
        other = theirs.summary["consensus_time"]
        assert_same_distribution(ours.summary["consensus_time"][reached], other[other >= 0], "consensus time")
    for name in ("peak_total_words", "peak_time", "successes", "committed_only_agents"):
        assert_means_agree(ours.summary[name], theirs.summary[name], name)
    for name in ours.observations:
        middle = ours.observations[name].shape[1] // 2
        assert_means_agree(ours.observations[name][:, middle], theirs.observations[name][:, middle], name)


def test_slot_operations():
    slots = Slots(4, None)
    row = slots.empty_row()
    assert int(row[0]) == 0 and not bool(slots.knows(row, 5))
    one = slots.stored(slots.add(row, 5))
    two = slots.stored(slots.add(one, 7))
    assert int(two[0]) == 2 and bool(slots.knows(two, 7)) and bool(slots.knows(two, 5))
    assert not bool(slots.knows(two, 6))
    np.testing.assert_array_equal(slots.add(two, 7), two)  # adding a known word changes nothing
    full = two
    for word in (8, 9):
        full = slots.stored(slots.add(full, word))
    assert int(full[0]) == 4 and int(full[3]) == 0
    over = slots.add(full, 10)
    assert int(over[3]) == 1, "adding to a full inventory must flag the overflow"
    assert bool(slots.holds_only(slots.only(3), 3)) and not bool(slots.holds_only(two, 5))
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(slots.members(two, 12))), [5, 7])
    uttered = jax.vmap(lambda u: slots.utter(Sample(), full, u[None], 0).value)(jnp.linspace(0, 0.999, 400))
    words, counts = np.unique(np.asarray(uttered), return_counts=True)
    np.testing.assert_array_equal(words, [5, 7, 8, 9])
    np.testing.assert_array_equal(counts, 100)  # uniform over the four known words


def test_overflow_is_detected_and_rerun_with_more_slots(monkeypatch):
    """A tiny capacity overflows in most replicas; they go on from their overflowed states with 1.5x the slots
    (widened, never rerun from the start) and every result equals the run with a capacity that never overflows
    (a replica's trajectory does not depend on K while it fits), records before and after the overflow alike."""
    large = NamingGame(40, inventory="slots", capacity=42)
    small = NamingGame(40, inventory="slots", capacity=10)
    key = jax.random.key(5)
    reference = ensemble(key, large, 48, 2000, 40)
    starts = []  # (K, whether from a given state) of every run traced
    start = engine._start
    monkeypatch.setattr(engine, "_start", lambda g, k, s: starts.append((g.capacity, s is not None)) or start(g, k, s))
    grown = ensemble(key, small, 48, 2000, 40, chunk_size=16)
    assert {k for k, given in starts if given} and all(given == (k > 10) for k, given in starts), starts
    assert set(np.unique(grown.summary["capacity"])) <= {10, 16, 24, 40, 42}  # 1.5x, in whole search blocks
    assert (grown.summary["capacity"] > 10).any() and (grown.summary["capacity"] == 10).any()
    assert (reference.summary["capacity"] == 42).all()
    assert not grown.summary["overflow"].any()
    for name in reference.summary:
        if name != "capacity":
            np.testing.assert_array_equal(grown.summary[name], reference.summary[name], err_msg=name)
    for name in reference.observations:
        np.testing.assert_array_equal(grown.observations[name], reference.observations[name], err_msg=name)
    stopped, _, _ = timed_ensemble(key, small, 48, 2000, 40, until_done=True)
    assert (reference.summary["consensus_time"] >= 0).all()
    for name in ("consensus_time", "winner", "peak_total_words", "peak_time"):
        np.testing.assert_array_equal(stopped.summary[name], reference.summary[name], err_msg=name)


def test_overflow_in_a_sweep_goes_on_exactly():
    """Sweeps continue overflowed (replica, value) runs from their states too; every value equals a large K."""
    key, values = jax.random.key(8), {"beta": jnp.array([0.3, 1.0])}
    reference = engine.sweep(key, NamingGame(36, inventory="slots", capacity=38), values, 12, 1500, 50)
    grown = engine.sweep(key, NamingGame(36, inventory="slots", capacity=8), values, 12, 1500, 50)
    assert (grown.summary["capacity"] > 8).any() and not grown.summary["overflow"].any()
    for part in ("summary", "observations"):
        theirs, ours = getattr(reference, part), getattr(grown, part)
        for name in theirs:
            if name != "capacity":
                np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{part} {name}")


def test_regrowth_that_does_not_fit_is_refused(monkeypatch):
    """The grown state must fit next to what is held: a clear error naming both capacities, not a crash."""
    game = NamingGame(2000, capacity=8)
    needs = [engine.estimate_memory(g, (), 1, 2000 * 300, 2000, True)["per_replica"] for g in (game, game.grown())]
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(int(sum(needs) / 2 / engine.MEMORY_SAFETY)))
    with pytest.raises(ValueError, match="1 replicas overflowed K=8 word slots; with K=16: not enough memory"):
        ensemble(jax.random.key(0), game, 1, 2000 * 300, 2000, until_done=True)


def test_runs_longer_than_int32():
    """n_steps beyond 2^31 (and 2^32) in blocks: counted exactly on the host (int64); the sequential path and the
    2^62 limit refuse, naming the value."""
    game, key = NamingGame(50, stepping="blocks"), jax.random.key(4)
    short = ensemble(key, game, 3, 2**20, 2**20)
    long = ensemble(key, game, 3, 2**33, 2**32)
    assert (short.summary["consensus_time"] > 0).all()
    np.testing.assert_array_equal(long.summary["consensus_time"], short.summary["consensus_time"])
    assert long.summary["interactions"].dtype == np.int64 and (long.summary["interactions"] == 2**33).all()
    np.testing.assert_array_equal(long.summary["successes"], short.summary["successes"] + 2**33 - 2**20)
    np.testing.assert_array_equal(long.observations["interactions"], [[2**32, 2**33]] * 3)
    stopped = ensemble(key, game, 3, 2**40, 2**40, until_done=True)
    np.testing.assert_array_equal(stopped.summary["consensus_time"], short.summary["consensus_time"])
    sequential = NamingGame(50, inventory="slots", stepping="sequential")
    with pytest.raises(ValueError, match=f"n_steps={2**31} .* overflows the interaction counters of NamingGame"):
        ensemble(key, sequential, 2, 2**31, 2**31)
    with pytest.raises(ValueError, match=f"n_steps={2**62} .*max {2**62 - 1} interactions"):
        ensemble(key, game, 1, 2**62, 2**62)


def test_overflow_flag_without_regrowth():
    """The state itself flags the overflow (the engine's rerun relies on it); nothing is silently dropped."""
    game = NamingGame(30, inventory="slots", capacity=2)
    state, _ = simulate(jax.random.key(0), game, 3000, 30)
    assert bool(state.overflow)
    assert bool(game.is_done(state))
    with pytest.raises(ValueError, match="cannot overflow"):
        NamingGame(30, inventory="slots", capacity=32).grown()


def test_one_replica_is_unbatched_and_equals_simulate():
    game = NamingGame(300)
    key = jax.random.key(3)
    one, _, _ = timed_ensemble(key, game, 1, 30_000, 300)
    state, observations = jax.jit(lambda k: simulate(k, game, 30_000, 300))(jax.random.split(key, 1)[0])
    assert int(one.summary["consensus_time"][0]) == int(state.consensus_time)
    np.testing.assert_array_equal(one.observations["successes"][0], observations["successes"])
    many = ensemble(key, game, 3, 30_000, 300)
    assert int(many.summary["consensus_time"][0]) == int(one.summary["consensus_time"][0])


def test_capacity_and_memory_do_not_grow_like_n_squared():
    assert default_capacity(100) < 64 and default_capacity(10**6) <= 3072
    for n in (10**4, 10**5, 10**6):
        slots, bitsets = NamingGame(n, inventory="slots"), NamingGame(n, inventory="bitsets")
        assert slots.state_bytes() < 25 * n * np.sqrt(n)
        assert bitsets.state_bytes() > n * n / 8
    assert NamingGame(100).inventory == "bitsets" and NamingGame(10**5).inventory == "slots"
    assert NamingGame(10**5, vocabulary=5).inventory == "bitsets"


def _cli_json(capsys, *argv):
    assert cli.main(["simulate", "naming-game", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for timing in ("interactions_per_second", "compile_seconds", "run_seconds", "path", "devices", "devices_used"):
        out.pop(timing)
    return out


def test_cli_until_consensus_with_slots_and_devices(capsys):
    argv = ["--agents", "200", "--replicas", "5", "--steps", "200000", "--until-consensus", "--inventory", "slots"]
    eight = _cli_json(capsys, *argv, "--devices", "8", "--capacity", "12")
    assert eight["consensus_fraction"] == 1.0 and eight["capacity_regrowths"] >= 1
    assert eight["capacity"] > eight["initial_capacity"] == 12
    one_device = cli.main(["simulate", "naming-game", *argv, "--devices", "8", "--capacity", "64", "--json"])
    assert one_device == 0
    big = json.loads(capsys.readouterr().out)
    assert big["devices"] == 8
    for name in ("consensus_time_mean", "max_total_words_mean", "consensus_fraction"):
        assert big[name] == eight[name], name


def test_devices_from_the_environment(monkeypatch):
    from jaxconv import devices

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    assert devices.requested_cpu_devices() == 3
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "5")
    assert devices.requested_cpu_devices() == 5
    assert devices.describe()["devices"] == jax.device_count()
    assert engine.devices_for(1) == 1 and engine.devices_for(3) == jax.device_count()
