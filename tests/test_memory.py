"""The memory games against the pure-Python reference, exact small cases, invariants, sweeps and bad input."""

import argparse
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv import engine, policies, topology
from jaxconv.engine import ensemble, simulate, sweep
from jaxconv.games.memory import Drift, Memory, MemoryGame, best_response_game
from tests.reference_memory import best_response_run, memory_game_run
from tests.stats import assert_means_agree, assert_proportion, assert_same_distribution

SOFTMAX = dict(bias=[0.3, 0.0, -0.2], win_stay=2.0, lose_shift=1.0, copy_partner=0.5, partner_weight=0.4, recency=0.7)
LOOKUP = [[[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]], [[0.2, 0.8], [0.02, 0.98], [0.5, 0.5]], [[0.5, 0.5]] * 3]
RING = [[(i - 1) % 8, (i + 1) % 8] for i in range(8)]

# (label, MemoryGame arguments, the same for the reference, n_agents, rounds)
VARIANTS = [
    ("llm best response", dict(n_names=2, memory=3), dict(n_names=2, memory=3), 8, 30),
    (
        "softmax hearer",
        dict(n_names=3, memory=3, policy=policies.SoftmaxSurrogate(**SOFTMAX), update="hearer"),
        dict(n_names=3, memory=3, policy={"kind": "softmax", **SOFTMAX}, update="hearer"),
        6,
        40,
    ),
    (
        "lookup matching",
        dict(n_names=2, memory=2, policy=policies.LookupTable(LOOKUP), schedule="matching", stop=None),
        dict(
            n_names=2, memory=2, policy={"kind": "lookup", "table": LOOKUP, "depth": 1}, schedule="matching", stop=None
        ),
        8,
        30,
    ),
    (
        "softmax drift",
        dict(n_names=3, memory=3, policy=policies.SoftmaxSurrogate(**SOFTMAX), drift=Drift(1.0, rounds=2)),
        dict(n_names=3, memory=3, policy={"kind": "softmax", **SOFTMAX}, drift_sd=1.0, drift_rounds=2),
        6,
        40,
    ),
    (
        "committed ring",
        dict(n_names=2, memory=4, initial="prepared", committed=2, stop="consensus", graph=topology.ring(8)),
        dict(n_names=2, memory=4, initial="prepared", committed=2, stop="consensus", neighbours=RING),
        8,
        25,
    ),
]
N_JAX, N_REFERENCE = 4000, 1000


def _per_round(game):
    return 2 if game.schedule.pairs_per_step(game.graph) > 1 else game.n_agents


@pytest.fixture(scope="module", params=VARIANTS, ids=[v[0] for v in VARIANTS])
def variant(request):
    label, kwargs, reference_kwargs, n, rounds = request.param
    game = MemoryGame(n, **kwargs)
    steps = _per_round(game)
    result = ensemble(jax.random.key(0), game, N_JAX, rounds * steps, steps)
    rng = random.Random(1)
    runs = [memory_game_run(rng, n, n_interactions=rounds * n, **reference_kwargs) for _ in range(N_REFERENCE)]
    return label, game, result, runs


def _times(values):
    return np.array([-1 if v is None else v for v in values])


def test_stop_and_consensus_times(variant):
    label, game, result, runs = variant
    for name in ("stop_time", "consensus_time"):
        ours, theirs = result.summary[name], _times([r[name] for r in runs])
        assert_proportion((theirs >= 0).sum(), len(theirs), (ours >= 0).mean(), f"{label} {name} reached")
        if (ours >= 0).mean() > 0.3:
            assert_same_distribution(ours[ours >= 0], theirs[theirs >= 0], f"{label} {name}")
            assert_means_agree(ours[ours >= 0], theirs[theirs >= 0], f"{label} {name}")


def test_winner_distribution(variant):
    label, game, result, runs = variant
    theirs = np.array([r["winner"] for r in runs])
    for name in range(game.n_names):
        assert_means_agree(result.summary["winner"] == name, theirs == name, f"{label} winner {name}")


def test_success_choices_and_flip_by_round(variant):
    label, game, result, runs = variant
    observations = result.observations
    n_records = observations["interactions"].shape[1]
    for index in (0, n_records // 4, n_records // 2, n_records - 1):
        for name in ("interactions", "successes", "pushed_agents"):
            ours = observations[name][:, index]
            assert_means_agree(ours, [r[name][index] for r in runs], f"{label} {name}@{index}")
        for w in range(game.n_names):
            for name in ("choices", "free_choices"):
                ours = observations[name][:, index, w]
                assert_means_agree(ours, [r[name][index][w] for r in runs], f"{label} {name}[{w}]@{index}")
    assert_means_agree(result.summary["flipped"], [r["flipped"] for r in runs], f"{label} flipped")


def test_best_response_model_against_reference():
    """``best_response_game`` against an independent deque-based implementation of Centola et al. (2018)."""
    n, memory, rounds = 12, 4, 25
    committed = np.array([3, 4])
    result = sweep(jax.random.key(4), best_response_game(n, memory), {"n_committed": committed}, N_JAX, rounds * n)
    rng = random.Random(4)
    for index, k in enumerate(committed):
        runs = [best_response_run(rng, n, memory, int(k), rounds * n) for _ in range(N_REFERENCE)]
        for name in ("pushed_agents", "flipped", "successes"):
            assert_means_agree(result.summary[name][index], [r[name] for r in runs], f"M={memory} k={k} {name}")


# ----- exact small cases -----------------------------------------------------------------------------------------
def test_two_agents_first_interaction_decides():
    """N=2, W=2, H=1, best response: a first success repeats forever (stop at 3N = 6); a first failure makes each
    copy the other, so they fail forever."""
    game = MemoryGame(2, 2, 1)
    keys = jax.random.split(jax.random.key(3), 4000)
    state, obs = jax.vmap(lambda k: simulate(k, game, 12, 1))(keys)
    first = obs["successes"][:, 0] == 1
    np.testing.assert_array_equal(state.stop_time, np.where(first, 6, -1))
    np.testing.assert_array_equal(obs["successes"][~first], 0)
    np.testing.assert_array_equal(obs["successes"][first][:, 5], 6)
    np.testing.assert_array_equal(obs["interactions"][first][:, -1], 6)  # frozen after the stop
    assert_proportion(first.sum(), 4000, 0.5, "first interaction succeeds")


def test_prepared_population_stops_after_3n_successes():
    game = MemoryGame(6, 4, 3, initial="prepared", prepared_name=2)
    state, obs = simulate(jax.random.key(0), game, 30, 6)
    summary = game.summarize(state)
    assert int(summary["consensus_time"]) == 0
    assert int(summary["stop_time"]) == 18
    assert int(summary["winner"]) == 2
    np.testing.assert_array_equal(obs["successes"], [6, 12, 18, 18, 18])
    np.testing.assert_array_equal(obs["choices"][:, 2], [12, 12, 12, 0, 0])


def test_uniform_policy_succeeds_with_probability_one_over_w():
    game = MemoryGame(5, 4, 2, policy=policies.Uniform(), stop=None)
    result = ensemble(jax.random.key(5), game, 512, 40, 40)
    assert_proportion(int(result.summary["successes"].sum()), 512 * 40, 0.25, "uniform success rate")


def test_lookup_table_that_always_answers_one_name():
    table = np.zeros((3, 3, 2))
    table[..., 1] = 1.0
    game = MemoryGame(4, 2, 2, policy=policies.LookupTable(table), stop=None)
    state, obs = simulate(jax.random.key(1), game, 20, 10)
    np.testing.assert_array_equal(obs["choices"], [[0, 20], [0, 20]])
    assert (np.asarray(state.own) == 1).all()


# ----- invariants ------------------------------------------------------------------------------------------------
def _trajectory(game, keys, n_steps):
    """Every state of runs from ``keys`` (small sizes only): leaves with axes (replica, step, ...)."""

    def run(key):
        words = jax.random.bits(key, (n_steps, game.words_per_step), jnp.uint32)
        return jax.lax.scan(lambda s, w: (game.advance(s, w),) * 2, game.init(key), words)[1]

    return jax.jit(jax.vmap(run))(keys), jax.vmap(game.init)(keys)


INVARIANT_GAMES = [
    MemoryGame(5, 3, 3, committed=2, initial="prepared", placement="random", stop="consensus"),
    MemoryGame(6, 2, 2, update="hearer", committed=1, schedule="matching", stop="successes", stop_window=6),
    MemoryGame(4, 3, 4, policy=policies.SoftmaxSurrogate(np.zeros(3), win_stay=3.0, temperature=0.5)),
]


def test_view_derives_payoffs_and_fill_from_the_entries():
    game = MemoryGame(4, 3, 3, payoffs=(7.0, -2.0))
    names = Memory(jnp.array([1, 0, -1]), jnp.array([1, 2, -1]))
    view = game.view(names)
    np.testing.assert_array_equal(view.payoff, [7.0, -2.0, 0.0])
    np.testing.assert_array_equal(view.filled, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(view.own, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    # the same memory as weight rows (the relaxed representation) is seen the same way
    rows = game.view(Memory(jax.nn.one_hot(names.own, 3), jax.nn.one_hot(names.partner, 3)))
    for seen, expected in zip(rows, view):
        np.testing.assert_array_equal(seen, expected)


@pytest.mark.parametrize("game", INVARIANT_GAMES, ids=["random placement", "hearer matching", "softmax"])
def test_invariants(game):
    """Committed agents never change, memories are valid, counters match a recount, ended runs are frozen,
    consensus under best response is absorbing."""
    states, start = _trajectory(game, jax.random.split(jax.random.key(9), 16), 150)
    own, partner = np.asarray(states.own), np.asarray(states.partner)
    committed = np.asarray(start.committed)[:, None, :]
    assert (committed.sum(axis=-1) == int(game.n_committed)).all()
    for name, values in (("own", own), ("partner", partner)):
        frozen = np.broadcast_to(np.asarray(getattr(start, name))[:, None], values.shape)
        mask = np.broadcast_to(committed[..., None], values.shape)
        np.testing.assert_array_equal(values[mask], frozen[mask], err_msg=f"committed {name} changed")
    slots = own >= 0  # remembered interactions: a prefix of the shift register, own and partner alike
    assert (np.diff(slots.astype(int), axis=-1) <= 0).all() and ((partner >= 0) == slots).all()
    assert (own < game.n_names).all() and (partner < game.n_names).all()
    free = ~committed[..., None]
    recount = [((own == w) & free).sum(axis=(2, 3)) + ((partner == w) & free).sum(axis=(2, 3)) for w in range(3)]
    np.testing.assert_array_equal(np.asarray(states.entries), np.stack(recount[: game.n_names], axis=-1))
    last_committed = np.asarray(states.last_choice)[np.broadcast_to(committed, states.last_choice.shape)]
    assert (last_committed == int(game.committed_name)).all()
    assert (np.asarray(states.successes) <= np.asarray(states.interactions)).all()
    # the streak is the run of successes at the end of the chronological buffer of recent choices
    window = game.stop_window
    for recent, interactions, streak in zip(
        np.asarray(states.recent).reshape(-1, window, 2),
        np.asarray(states.interactions).ravel(),
        np.asarray(states.streak).ravel(),
    ):
        chronological = np.roll(recent, -(interactions % window), axis=0)[window - min(interactions, window) :]
        failures = np.flatnonzero(chronological[:, 0] != chronological[:, 1])
        trailing = len(chronological) - 1 - failures[-1] if len(failures) else len(chronological)
        assert min(streak, window) == trailing
    done = np.asarray(jax.vmap(jax.vmap(game.is_done))(states))
    for leaf in jax.tree.leaves(states):
        leaf = np.asarray(leaf)
        after = done[:, :-1]
        np.testing.assert_array_equal(leaf[:, 1:][after], leaf[:, :-1][after], err_msg="an ended run changed")
    if isinstance(game.policy, policies.BestResponse):
        reached = np.asarray(jax.vmap(jax.vmap(game.at_consensus))(states.entries))
        first = np.argmax(reached, axis=1)
        for replica in np.flatnonzero(reached.any(axis=1)):
            assert reached[replica, first[replica] :].all(), "consensus is not absorbing"


def test_same_key_same_result_and_chunking():
    game = MemoryGame(8, 3, 3, committed=1, stop=None)
    a = ensemble(jax.random.key(7), game, 20, 160, 16)
    b = ensemble(jax.random.key(7), game, 20, 160, 16, chunk_size=3)
    for part in ("summary", "observations"):
        for name, value in getattr(a, part).items():
            np.testing.assert_array_equal(value, getattr(b, part)[name], err_msg=name)


def test_sweep_committed_without_recompiling():
    """New committed counts of the same length reuse the compiled program; the sweep gives the results of
    separate ensembles (same replica keys)."""
    game = best_response_game(10, 4, 0.0)
    first = sweep(jax.random.key(2), game, {"n_committed": np.array([0, 2, 4])}, 16, 100)
    misses = engine._build_runner.cache_info().misses
    second = sweep(jax.random.key(2), game, {"n_committed": np.array([1, 3, 5])}, 16, 100)
    assert engine._build_runner.cache_info().misses == misses
    assert not np.array_equal(first.summary["pushed_agents"], second.summary["pushed_agents"])
    alone = ensemble(jax.random.key(2), best_response_game(10, 4, 0.3), 16, 100)
    np.testing.assert_array_equal(second.summary["pushed_agents"][1], alone.summary["pushed_agents"])
    with pytest.raises(ValueError, match="10"):
        sweep(jax.random.key(2), game, {"n_committed": np.array([1, 10, 5])}, 16, 100)


def test_until_done_matches_fixed_length():
    """Stopping each chunk once every replica has stopped gives the fixed-length results (the same game and run
    as the first reference variant, so the fixed-length program is already compiled)."""
    label, kwargs, _, n, rounds = VARIANTS[0]
    game = MemoryGame(n, **kwargs)
    fixed = ensemble(jax.random.key(0), game, N_JAX, rounds * n, n)
    stopped = ensemble(jax.random.key(0), game, N_JAX, rounds * n, n, until_done=True)
    assert (fixed.summary["stop_time"] >= 0).all()
    for name in fixed.summary:
        np.testing.assert_array_equal(stopped.summary[name], fixed.summary[name], err_msg=name)


# ----- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_agents=1), "n_agents"),
        (dict(n_agents=6, n_names=1), "got 1"),
        (dict(n_agents=6, memory=0), r"memory \(H\).*got 0"),
        (dict(n_agents=6, committed=6), "got 6"),
        (dict(n_agents=6, committed=-1), "got -1"),
        (dict(n_agents=6, committed_fraction=1.5), "1.5"),
        (dict(n_agents=6, committed=1, committed_name=2), "committed_name"),
        (dict(n_agents=6, update="speaker"), "'speaker'"),
        (dict(n_agents=6, stop="never"), "'never'"),
        (dict(n_agents=6, stop_window=0), "stop_window"),
        (dict(n_agents=6, payoffs=(1.0, float("nan"))), "payoffs"),
        (dict(n_agents=6, graph=topology.ring(8)), "8 nodes"),
        (dict(n_agents=6, graph=topology.ring(6), schedule="matching"), "matching"),
        (dict(n_agents=6, policy=policies.LookupTable(np.full((3, 2), 0.5))), r"shape \(3, 2\)"),
        (dict(n_agents=6, memory=1, policy=policies.LookupTable(np.full((3, 3, 3, 3, 2), 0.5))), "H=1"),
        (dict(n_agents=6, n_names=3, policy=policies.SoftmaxSurrogate(np.zeros(2))), r"shape \(2,\)"),
    ],
)
def test_bad_parameters_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        MemoryGame(**kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Drift(-0.5), "-0.5"),
        (lambda: Drift(float("inf")), "inf"),
        (lambda: Drift(0.5, rounds=0), "rounds"),
        (lambda: MemoryGame(6, drift=0.5), "drift must be a Drift"),
    ],
)
def test_bad_drift_names_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
    from jaxconv.meanfield import MemoryMeanField

    with pytest.raises(ValueError, match="drift"):
        MemoryMeanField(MemoryGame(6, drift=Drift(0.5)), windows="all")


# ----- command line ----------------------------------------------------------------------------------------------
def _cli(argv):
    from jaxconv.cli import memory as cli_memory

    parser = argparse.ArgumentParser()
    cli_memory.add_parsers(parser.add_subparsers(dest="game"))
    return cli_memory.run(parser.parse_args(argv))


@pytest.mark.filterwarnings("ignore:could not set")
def test_cli_memory_game_and_best_response():
    """``memory-game`` runs the first reference variant (compiled once) and gives its results."""
    out = _cli(f"memory-game --agents 8 --memory 3 --replicas {N_JAX} --rounds 30 --json".split())
    fixed = ensemble(jax.random.key(0), MemoryGame(8, **VARIANTS[0][1]), N_JAX, 240, 8).summary
    stopped = fixed["stop_time"] >= 0
    assert out["winner_counts"] == {str(w): int(np.sum(stopped & (fixed["winner"] == w))) for w in (0, 1)}
    assert out["final_majority_counts"] == {str(w): int(np.sum(fixed["winner"] == w)) for w in (0, 1)}
    assert out["stop_time_mean_rounds"] == pytest.approx(fixed["stop_time"].mean() / 8)
    assert len(out["success_rate_by_round"]) == 30 and out["success_rate_by_round"][-1] == 1.0
    assert out["flip_fraction"] is None and out["interactions_per_second"] > 0
    out = _cli(
        "best-response --agents 8 --memory 4 --committed-fraction 0.5 --replicas 8 --rounds 20 --graph ring "
        "--graph-param k=4".split()
    )
    assert out["committed"] == 4 and out["graph"]["kind"] == "ring" and 0 <= out["flip_fraction"] <= 1
    assert len(out["pushed_share_by_round"]) == 20


def test_cli_graph_parameters_by_name_or_bare_value():
    """A bare ``--graph-param VALUE`` sets the graph's first parameter; the run's seed seeds random graphs."""
    from jaxconv import topology
    from jaxconv.cli.options import make_graph

    for bare, named in ((["4"], ["d=4"]), (["8.5", "seed=2"], ["mean_degree=8.5", "seed=2"])):
        kind = "regular" if bare == ["4"] else "er"
        a, b = make_graph(kind, 30, bare, seed=7), make_graph(kind, 30, named, seed=7)
        np.testing.assert_array_equal(a.neighbours, b.neighbours)
    expected = topology.random_regular(30, 4, seed=7)
    np.testing.assert_array_equal(make_graph("regular", 30, ["4"], seed=7).neighbours, expected.neighbours)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["memory-game", "--graph", "lattice2d", "--agents", "10"], "square"),
        (["memory-game", "--graph", "ring", "--graph-param", "q=3"], "'q=3'"),
        (["memory-game", "--graph", "ws", "--graph-param", "k=four"], "'k=four'"),
        (["memory-game", "--graph", "ba", "--agents", "10", "--graph-param", "m=10"], "m=10"),
        (["memory-game", "--graph", "lattice2d", "--agents", "16", "--graph-param", "3"], "'3'"),
        (["memory-game", "--policy", "lookup"], "--table"),
        (["memory-game", "--policy", "greedy"], "'greedy'"),
        (["best-response", "--committed-fraction", "1.2"], "1.2"),
        (["memory-game", "--replicas", "0"], "replicas"),
    ],
)
@pytest.mark.filterwarnings("ignore:could not set")
def test_cli_bad_values(argv, message):
    with pytest.raises(ValueError, match=message):
        _cli(argv)
