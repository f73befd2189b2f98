"""Tests for jaxconv.topology and jaxconv.random_words.

Statistical tests use a fixed key and a tolerance of 5 standard errors on every compared quantity.
"""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from jaxconv import topology
from jaxconv.random_words import take_int, to_unit

Z_MAX = 5.0


def z_scores(counts: np.ndarray, total: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial z-scores of `counts` out of `total` trials with success probability `p` (0 < p < 1)."""
    return (counts - total * p) / np.sqrt(total * p * (1 - p))


# ----------------------------------------------------------------------------------------------------------
# random_words


@pytest.mark.parametrize("n", [1, 2, 3, 7, 256, 1000, 99991, 2**31 - 1])
def test_take_int_exact_values(n):
    rng = np.random.default_rng(n)
    words = np.concatenate([[0, 1, n - 1, n, 2**31, 2**32 - 1], rng.integers(0, 2**32, 200)]).astype(np.uint32)
    value, rest = take_int(jnp.asarray(words), n)
    assert value.dtype == jnp.int32 and rest.dtype == jnp.float32
    for w, v, r in zip(words.tolist(), np.asarray(value).tolist(), np.asarray(rest).tolist(), strict=True):
        assert v == w % n
        assert r == ((w // n * n) >> 8) / 2**24  # floor(2**24 * (w // n) * n / 2**32) / 2**24
    assert np.all((np.asarray(rest) >= 0) & (np.asarray(rest) < 1))


def test_take_int_array_n_broadcasts():
    words = jnp.asarray([10, 11, 12], jnp.uint32)
    value, _ = take_int(words, jnp.asarray([3, 4, 5], jnp.int32))
    np.testing.assert_array_equal(value, [1, 3, 2])


def conditional_errors(n: int, r: int, m: int) -> tuple[float, float]:
    """Exact max relative error of P(floor(rest * m) = j | value = r) vs 1/m, over all 2**32 words.

    Words with value r are w = n q + r, q in [0, Q); their rest is a / 2**24 with a = (n q) >> 8, so the q
    with a given a form the range [ceil(256 a / n), ceil(256 (a + 1) / n)). Returns the error with the product
    rest * m taken exactly and in float32.
    """
    n_q = (2**32 - 1 - r) // n + 1
    a = np.arange(2**24, dtype=np.int64)
    weight = np.minimum(-(-256 * (a + 1) // n), n_q) - np.minimum(-(-256 * a // n), n_q)
    bins_exact = (a * m) >> 24
    bins_f32 = np.floor(a.astype(np.float32) * np.float32(2**-24) * np.float32(m)).astype(np.int64)
    errors = []
    for bins in (bins_exact, bins_f32):
        counts = np.bincount(bins, weights=weight, minlength=m)
        assert counts.size == m and counts.sum() == n_q
        errors.append(float(np.abs(counts * m / n_q - 1).max()))
    return errors[0], errors[1]


@pytest.mark.parametrize(("n", "m"), [(1, 12345), (7, 1000), (99991, 10)])
def test_take_int_rest_bias_bound(n, m):
    """The documented bound on the bias of floor(rest * m) given the value, checked by exact counting."""
    for r in {0, n - 1}:
        exact, f32 = conditional_errors(n, r, m)
        assert exact < (3 * n + 256) * m / 2**32
        assert f32 < (5 * n + 768) * m / 2**32


def test_to_unit():
    words = jnp.asarray([0, 255, 256, 2**31, 2**32 - 1], jnp.uint32)
    np.testing.assert_array_equal(to_unit(words), [0.0, 0.0, 2**-24, 0.5, 1 - 2**-24])
    u = np.asarray(to_unit(jax.random.bits(jax.random.key(0), (100_000,), jnp.uint32)), np.float64)
    assert abs(u.mean() - 0.5) < Z_MAX * np.sqrt(1 / 12 / u.size)


# ----------------------------------------------------------------------------------------------------------
# Structure of small graphs


def test_complete():
    g = topology.complete(5)
    assert isinstance(g, topology.CompleteGraph) and g.n_nodes == 5
    assert jax.tree_util.tree_leaves(g) == []
    np.testing.assert_array_equal(g.degrees(), [4] * 5)
    assert g.degrees().dtype == jnp.int32
    assert g.describe() == {"kind": "complete", "n_nodes": 5, "mean_degree": 4.0}


def test_complete_large_n_exact_partners():
    n = 10**6
    g = topology.complete(n)
    assert jax.tree_util.tree_leaves(g) == []
    agents = jnp.asarray([0, 0, n - 1, n - 1, 12345], jnp.int32)
    words = jnp.asarray([0, n - 2, 0, n - 2, 2**32 - 1], jnp.uint32)
    partners, rest = jax.vmap(g.partner)(agents, words)
    expected = [1, n - 1, 0, n - 2, (12345 + 1 + (2**32 - 1) % (n - 1)) % n]
    np.testing.assert_array_equal(partners, expected)
    assert partners.dtype == jnp.int32 and np.all(np.asarray(rest) < 1)


def test_ring_structure():
    g = topology.ring(6)
    assert g.neighbours.dtype == jnp.int32 and g.degree.dtype == jnp.int32
    np.testing.assert_array_equal(g.degrees(), [2] * 6)
    np.testing.assert_array_equal(g.neighbours, [[1, 5], [0, 2], [1, 3], [2, 4], [3, 5], [0, 4]])
    g = topology.ring(7, k=4)
    np.testing.assert_array_equal(g.degrees(), [4] * 7)
    np.testing.assert_array_equal(g.neighbours[0], [1, 2, 5, 6])
    np.testing.assert_array_equal(g.neighbours[3], [1, 2, 4, 5])
    assert g.describe() == {"kind": "ring", "n_nodes": 7, "mean_degree": 4.0}


def test_lattice2d_periodic_wraps():
    g = topology.lattice2d(3)
    assert g.n_nodes == 9
    np.testing.assert_array_equal(g.degrees(), [4] * 9)
    np.testing.assert_array_equal(g.neighbours[0], [1, 2, 3, 6])  # left and up wrap to 2 and 6
    np.testing.assert_array_equal(g.neighbours[8], [2, 5, 6, 7])
    g = topology.lattice2d(4)
    np.testing.assert_array_equal(g.neighbours[5], [1, 4, 6, 9])
    np.testing.assert_array_equal(g.neighbours[3], [0, 2, 7, 15])


def test_lattice2d_open_boundaries():
    g = topology.lattice2d(3, periodic=False)
    np.testing.assert_array_equal(np.asarray(g.degrees()).reshape(3, 3), [[2, 3, 2], [3, 4, 3], [2, 3, 2]])
    np.testing.assert_array_equal(g.neighbours[0], [1, 3, 0, 0])  # padded with the node itself
    np.testing.assert_array_equal(g.neighbours[4], [1, 3, 5, 7])
    np.testing.assert_array_equal(g.neighbours[5], [2, 4, 8, 5])


def test_from_edges_collapses_duplicates_and_pads():
    g = topology.from_edges([(0, 1), (1, 0), (1, 2), (0, 1), (3, 2)])
    assert g.n_nodes == 4
    np.testing.assert_array_equal(g.degrees(), [1, 2, 2, 1])
    np.testing.assert_array_equal(g.neighbours, [[1, 0], [0, 2], [1, 3], [2, 3]])
    assert g.describe() == {"kind": "edges", "n_nodes": 4, "mean_degree": 1.5}
    json.dumps(g.describe())


def test_from_networkx_relabels_in_sorted_order():
    G = nx.MultiGraph([("c", "a"), ("a", "b"), ("a", "c")])
    g = topology.from_networkx(G)  # a, b, c -> 0, 1, 2; the double edge a-c collapses
    np.testing.assert_array_equal(g.degrees(), [2, 1, 1])
    np.testing.assert_array_equal(g.neighbours, [[1, 2], [0, 1], [0, 2]])
    g = topology.from_networkx(nx.Graph([("x", 1), (1, 2.5)]))  # unsortable labels: insertion order x, 1, 2.5
    np.testing.assert_array_equal(g.neighbours, [[1, 0], [0, 2], [1, 2]])


def test_random_generators_structure():
    g = topology.random_regular(20, 3, seed=1)
    np.testing.assert_array_equal(g.degrees(), [3] * 20)
    assert g.describe()["kind"] == "random_regular"
    n, m = 50, 2
    g = topology.barabasi_albert(n, m, seed=0)
    assert int(g.degrees().sum()) == 2 * m * (n - m)  # a star on m + 1 nodes, then m edges per new node
    assert int(g.degrees()[m + 1 :].min()) >= m
    g = topology.watts_strogatz(12, 4, 0.0, seed=0)
    np.testing.assert_array_equal(g.neighbours, topology.ring(12, 4).neighbours)
    g = topology.erdos_renyi(30, mean_degree=8, seed=3)
    expected = topology.from_networkx(nx.fast_gnp_random_graph(30, 8 / 29, seed=3))
    np.testing.assert_array_equal(g.neighbours, expected.neighbours)
    assert g.describe()["kind"] == "erdos_renyi"


def test_same_seed_same_graph():
    a, b = topology.watts_strogatz(40, 4, 0.3, seed=7), topology.watts_strogatz(40, 4, 0.3, seed=7)
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    c = topology.watts_strogatz(40, 4, 0.3, seed=8)
    assert not np.array_equal(a.neighbours, c.neighbours)


def test_allow_disconnected():
    g = topology.from_edges([(0, 1), (2, 3)], allow_disconnected=True)
    np.testing.assert_array_equal(g.neighbours, [[1], [0], [3], [2]])
    g = topology.random_regular(12, 1, seed=0, allow_disconnected=True)
    np.testing.assert_array_equal(g.degrees(), [1] * 12)


# ----------------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: topology.complete(1), "n=1"),
        (lambda: topology.complete(2.0), "n=2.0"),
        (lambda: topology.complete(True), "n=True"),
        (lambda: topology.complete(2**31), f"n={2**31}"),
        (lambda: topology.ring(2), "n=2"),
        (lambda: topology.ring(10, 3), "k=3"),
        (lambda: topology.ring(10, 0), "k=0"),
        (lambda: topology.ring(10, 10), "k=10"),
        (lambda: topology.lattice2d(2), "side=2"),
        (lambda: topology.lattice2d(1, periodic=False), "side=1"),
        (lambda: topology.erdos_renyi(10, 1.5, seed=0), "p=1.5"),
        (lambda: topology.erdos_renyi(10, -0.1, seed=0), "p=-0.1"),
        (lambda: topology.erdos_renyi(10, float("nan"), seed=0), "p=nan"),
        (lambda: topology.erdos_renyi(10, seed=0), "p=None, mean_degree=None"),
        (lambda: topology.erdos_renyi(10, 0.5, mean_degree=3, seed=0), "p=0.5, mean_degree=3"),
        (lambda: topology.erdos_renyi(10, mean_degree=10, seed=0), "mean_degree=10"),
        (lambda: topology.erdos_renyi(10, 0.5, seed=1.5), "seed=1.5"),
        (lambda: topology.erdos_renyi(10, 0.5, seed=-1), "seed=-1"),
        (lambda: topology.erdos_renyi(1, 0.5, seed=0), "n=1"),
        (lambda: topology.barabasi_albert(5, 5, seed=0), "m=5"),
        (lambda: topology.barabasi_albert(5, 0, seed=0), "m=0"),
        (lambda: topology.watts_strogatz(10, 3, 0.1, seed=0), "k=3"),
        (lambda: topology.watts_strogatz(10, 4, 2, seed=0), "p=2"),
        (lambda: topology.random_regular(5, 3, seed=0), "n=5, d=3"),
        (lambda: topology.random_regular(5, 5, seed=0), "d=5"),
        (lambda: topology.random_regular(6, 0, seed=0), "d=0"),
        (lambda: topology.from_edges([(0, 1), (2, 2), (1, 2)]), "self-loop at node 2"),
        (lambda: topology.from_edges([(0, 1)], n_nodes=5), r"3 isolated node\(s\), e.g. \[2, 3, 4\]"),
        (lambda: topology.from_edges([(0, 1), (2, 3), (4, 5)]), "disconnected \\(3 components\\)"),
        (lambda: topology.from_edges([(0, 5)], n_nodes=3), "node 5"),
        (lambda: topology.from_edges([(0, 1), (-1, 0)], n_nodes=3), "node -1"),
        (lambda: topology.from_edges([(0, 1, 2)]), r"shape \(1, 3\)"),
        (lambda: topology.from_edges([(0.0, 1.5)]), "dtype float64"),
        (lambda: topology.from_edges([], n_nodes=1), "n=1"),
        (lambda: topology.from_edges([(0, 1)], n_nodes=2.5), "n=2.5"),
        (lambda: topology.random_regular(12, 1, seed=0), "disconnected \\(6 components\\)"),
        (lambda: topology.erdos_renyi(50, 0.01, seed=0), "isolated node"),
        (lambda: topology.from_networkx(nx.DiGraph([(0, 1), (1, 0)])), "DiGraph"),
        (lambda: topology.from_networkx(nx.Graph([("a", "b"), ("x", "x")])), "self-loop at node 'x'"),
        (lambda: topology.from_networkx(nx.Graph([("a", "b"), ("z", "z")])), "self-loop at node 'z'"),
        (lambda: topology.from_networkx(nx.empty_graph(["a", "b", "q"])), r"3 isolated node\(s\)"),
        (lambda: topology.from_networkx(nx.path_graph(1)), "n=1"),
        (lambda: topology.from_networkx([(0, 1)]), "got list"),
        (lambda: topology.from_edges([(0, i) for i in range(1, 50_000)]), "max degree 49999 \\(node 0\\)"),
    ],
)
def test_validation_errors_name_the_value(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda n: topology.ring(n, 4),
        lambda n: topology.lattice2d(int(n**0.5)),
        lambda n: topology.erdos_renyi(n, mean_degree=8, seed=0),
        lambda n: topology.barabasi_albert(n, 3, seed=0),
        lambda n: topology.watts_strogatz(n, 4, 0.1, seed=0),
        lambda n: topology.random_regular(n, 4, seed=0),
    ],
)
def test_graph_too_large_for_memory_is_refused_before_building(build, monkeypatch):
    """A graph whose build would not fit the available memory is refused naming the sizes, before networkx or
    numpy allocate it (10^9 nodes would take the machine's whole memory); a small one still builds."""
    monkeypatch.setenv("JAXCONV_MEMORY_LIMIT", str(100 << 20))
    assert build(100).n_nodes == 100
    with pytest.raises(ValueError, match=r"not enough memory to build the \w+ graph on n=\d+ nodes: about .* GB"):
        build(10**9)


def test_isolated_node_named_by_label():
    G = nx.Graph([("a", "b")])
    G.add_node("lonely")
    with pytest.raises(ValueError, match=r"1 isolated node\(s\), e.g. \['lonely'\]"):
        topology.from_networkx(G)


# ----------------------------------------------------------------------------------------------------------
# Partner sampling


IRREGULAR_EDGES = [(0, 1), (0, 2), (0, 3), (1, 2), (3, 4), (4, 5), (2, 5), (0, 5), (5, 6)]  # degrees 1 to 4


def sample(graph: topology.Graph, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`draws` partners of every agent: agents, partners and rests (float64), each (n_nodes * draws,)."""
    words = jax.random.bits(jax.random.key(seed), (graph.n_nodes, draws), jnp.uint32)
    agents = jnp.broadcast_to(jnp.arange(graph.n_nodes, dtype=jnp.int32)[:, None], words.shape)
    partners, rest = jax.vmap(graph.partner)(agents.ravel(), words.ravel())
    assert partners.dtype == jnp.int32 and rest.dtype == jnp.float32
    return np.asarray(agents).ravel(), np.asarray(partners), np.asarray(rest, np.float64)


def check_partner_frequencies(nx_graph: nx.Graph, graph: topology.Graph, draws: int, seed: int) -> None:
    """Each (agent, partner) pair has frequency 1/deg(agent) for neighbours and 0 otherwise; the rest is
    uniform on [0, 1) given the pair (conditional means and 4-bin histograms)."""
    n = graph.n_nodes
    agents, partners, rest = sample(graph, draws, seed)
    assert np.all((rest >= 0) & (rest < 1))
    counts = np.bincount(agents * n + partners, minlength=n * n).reshape(n, n)
    for agent in range(n):
        neighbours = sorted(nx_graph.neighbors(agent))
        others = np.setdiff1d(np.arange(n), neighbours)
        assert counts[agent, others].sum() == 0, f"agent {agent} got a non-neighbour"
        if len(neighbours) == 1:
            assert counts[agent, neighbours[0]] == draws
        else:
            z = z_scores(counts[agent, neighbours], draws, 1 / len(neighbours))
            assert np.abs(z).max() < Z_MAX, (agent, z)
    assert abs(rest.mean() - 0.5) < Z_MAX * np.sqrt(1 / 12 / rest.size)
    for agent, partner in nx_graph.to_directed().edges():
        chosen = rest[(agents == agent) & (partners == partner)]
        assert abs(chosen.mean() - 0.5) < Z_MAX * np.sqrt(1 / 12 / chosen.size), (agent, partner)
        quarters = np.bincount((chosen * 4).astype(int), minlength=4)
        assert np.abs(z_scores(quarters, chosen.size, 0.25)).max() < Z_MAX, (agent, partner, quarters)


def test_partner_frequencies_irregular_graph():
    nx_graph = nx.Graph(IRREGULAR_EDGES)
    graph = topology.from_edges(IRREGULAR_EDGES)
    np.testing.assert_array_equal(graph.degrees(), [d for _, d in sorted(nx_graph.degree())])
    check_partner_frequencies(nx_graph, graph, draws=40_000, seed=0)


def test_partner_frequencies_complete_graph():
    n = 7
    check_partner_frequencies(nx.complete_graph(n), topology.complete(n), draws=40_000, seed=1)


def test_partner_frequencies_ring_and_lattice():
    check_partner_frequencies(nx.circulant_graph(9, [1, 2]), topology.ring(9, 4), draws=5_000, seed=2)
    lattice = nx.convert_node_labels_to_integers(nx.grid_2d_graph(3, 3, periodic=True), ordering="sorted")
    check_partner_frequencies(lattice, topology.lattice2d(3), draws=5_000, seed=3)


# ----------------------------------------------------------------------------------------------------------
# jit / vmap


@pytest.mark.parametrize("graph", [topology.complete(6), topology.from_edges(IRREGULAR_EDGES)])
def test_graph_through_filter_jit(graph):
    def draw(g: topology.Graph, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        words = jax.random.bits(key, (100,), jnp.uint32)
        agents = jnp.arange(100, dtype=jnp.int32) % g.n_nodes
        return jax.vmap(g.partner)(agents, words)

    key = jax.random.key(4)
    jitted = eqx.filter_jit(draw)(graph, key)
    eager = draw(graph, key)
    for a, b in zip(jitted, eager, strict=True):
        np.testing.assert_array_equal(a, b)
    partners, _ = jax.jit(lambda g, a, w: g.partner(a, w))(graph, jnp.int32(0), jnp.uint32(12345))
    assert partners.shape == () and partners.dtype == jnp.int32


def test_same_shape_graphs_share_a_compilation():
    traces = []

    @eqx.filter_jit
    def degree_sum(g: topology.Graph) -> jax.Array:
        traces.append(None)
        return g.degrees().sum()

    assert int(degree_sum(topology.random_regular(10, 3, seed=0))) == 30
    assert int(degree_sum(topology.random_regular(10, 3, seed=1))) == 30
    assert len(traces) == 1
