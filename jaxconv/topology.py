"""Interaction graphs held as arrays, for use inside jitted and vmapped game steps.

Every graph is an undirected simple graph on nodes 0..n_nodes-1 without isolated nodes. `CompleteGraph`
stores no arrays; every other graph is a `NeighbourGraph` of padded neighbour lists. Build graphs with the
constructors below (they validate before anything is traced and raise `ValueError` naming the bad value), then
pass them to jitted code like any equinox module: `n_nodes` is static, arrays are traced.
"""

import abc
import numbers
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from jaxconv.random_words import take_int


class Graph(eqx.Module):
    """Abstract interaction graph on nodes 0..n_nodes-1."""

    n_nodes: int = eqx.field(static=True)
    kind: eqx.AbstractVar[str]

    @abc.abstractmethod
    def partner(self, agent: jax.Array, word: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Uniform random neighbour of `agent` from one uniform uint32 random `word`.

        Args:
            agent: int32 scalar, a node.
            word: uint32 scalar, uniform on [0, 2**32).

        Returns:
            `(partner, rest)`: the int32 scalar neighbour of `agent` picked by `word % d` (d = degree of
            `agent`) and the float32 scalar `rest` in [0, 1) made from `word // d`, nearly uniform and
            independent of the partner (see `jaxconv.random_words.take_int` for the bounds).
        """

    @abc.abstractmethod
    def degrees(self) -> jax.Array:
        """Degree of every node, int32 (n_nodes,)."""

    def describe(self) -> dict:
        """Short JSON-ready summary: {"kind", "n_nodes", "mean_degree"}. Call outside jit."""
        return {
            "kind": self.kind,
            "n_nodes": self.n_nodes,
            "mean_degree": float(np.mean(np.asarray(self.degrees(), dtype=np.float64))),
        }


class CompleteGraph(Graph):
    """Complete graph: every agent meets any of the n_nodes - 1 others. No arrays: O(1) memory."""

    kind: ClassVar[str] = "complete"

    def partner(self, agent: jax.Array, word: jax.Array) -> tuple[jax.Array, jax.Array]:
        offset, rest = take_int(word, self.n_nodes - 1)
        return (agent + 1 + offset) % self.n_nodes, rest

    def degrees(self) -> jax.Array:
        return jnp.full((self.n_nodes,), self.n_nodes - 1, jnp.int32)


class NeighbourGraph(Graph):
    """Graph held as padded neighbour lists.

    Attributes:
        neighbours: int32 (n_nodes, max_degree); row i holds the sorted neighbours of i, padded with i itself
            (padding is never chosen).
        degree: int32 (n_nodes,), every entry >= 1.
        kind: name of the constructor that built the graph (static, for `describe`).
    """

    neighbours: jax.Array
    degree: jax.Array
    kind: str = eqx.field(static=True, default="edges")

    def partner(self, agent: jax.Array, word: jax.Array) -> tuple[jax.Array, jax.Array]:
        index, rest = take_int(word, self.degree[agent])
        return self.neighbours[agent, index], rest

    def degrees(self) -> jax.Array:
        return self.degree


# ----------------------------------------------------------------------------------------------------------
# Validation helpers

_MAX_NODES = 2**30  # keeps agent + n_nodes inside int32
_MAX_ENTRIES = 2**31  # NeighbourGraph.neighbours.size


def _check_int(name: str, value, minimum: int, maximum: int = _MAX_NODES) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {name}={value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {name}={value}")
    return int(value)


_BYTES_PER_EDGE = 512  # peak memory of a build through networkx, measured ~450 B per edge (ws, regular; n = 10^6)
_BYTES_PER_NODE = 1024  # and ~900 B per node; about half of each without networkx (ring, lattice2d)


def _check_memory(kind: str, n: int, n_edges: float) -> None:
    """ValueError naming the sizes when building a graph of ``n_edges`` edges on ``n`` nodes would need more than the
    share of the available memory a run may use (checked before anything is allocated)."""
    from jaxconv.engine import MEMORY_SAFETY, memory_limits

    need = _BYTES_PER_EDGE * n_edges + _BYTES_PER_NODE * n
    available = memory_limits()[0]
    if need > MEMORY_SAFETY * available:
        raise ValueError(
            f"not enough memory to build the {kind} graph on n={n} nodes: about {n_edges:.3g} edges need "
            f"~{need / 1e9:.3g} GB, {available / 1e9:.3g} GB available"
        )


def _check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {name}={value!r}")
    return float(value)


def _check_even_degree(k, n: int) -> int:
    k = _check_int("k", k, 2)
    if k % 2:
        raise ValueError(f"k must be even, got k={k}")
    if k >= n:
        raise ValueError(f"k must be < n={n}, got k={k}")
    return k


def _n_components(n: int, u: np.ndarray, v: np.ndarray) -> int:
    """Number of connected components (hooking of roots to the smallest neighbouring root + path jumping)."""
    root = np.arange(n)
    while True:
        ru, rv = root[u], root[v]
        differ = ru != rv
        if not differ.any():
            return int(np.count_nonzero(root == np.arange(n)))
        ru, rv = ru[differ], rv[differ]
        np.minimum.at(root, np.maximum(ru, rv), np.minimum(ru, rv))
        while not np.array_equal(root[root], root):
            root = root[root]


def _as_edge_array(edges) -> np.ndarray:
    """Array-like of node-id pairs -> int64 (n_edges, 2)."""
    edges = np.asarray(edges)
    if edges.size == 0:
        return np.zeros((0, 2), np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"edges must have shape (n_edges, 2), got shape {edges.shape}")
    if not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"edges must hold integer node ids, got dtype {edges.dtype}")
    return edges.astype(np.int64)


def _build(n: int, edges, kind: str, allow_disconnected: bool) -> NeighbourGraph:
    """Validate an undirected edge list on nodes 0..n-1 and build the padded neighbour arrays."""
    n = _check_int("n", n, 2)
    edges = _as_edge_array(edges)
    if len(edges) == 0:
        raise ValueError(f"graph on n={n} nodes has no edges (every node is isolated)")
    bad = (edges < 0) | (edges >= n)
    if bad.any():
        raise ValueError(f"edge endpoint out of range [0, {n}): node {edges[bad][0]}")
    loops = edges[:, 0] == edges[:, 1]
    if loops.any():
        raise ValueError(f"self-loop at node {edges[loops][0, 0]}")
    pairs = np.sort(edges.min(axis=1) * n + edges.max(axis=1))
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # duplicate edges collapse
    u, v = pairs // n, pairs % n
    degree = np.bincount(u, minlength=n) + np.bincount(v, minlength=n)
    isolated = np.flatnonzero(degree == 0)
    if isolated.size:
        raise ValueError(f"{isolated.size} isolated node(s), e.g. {isolated[:5].tolist()}")
    components = _n_components(n, u, v)
    if components > 1 and not allow_disconnected:
        raise ValueError(f"graph is disconnected ({components} components); pass allow_disconnected=True")
    source = np.concatenate([u, v])
    target = np.concatenate([v, u])
    order = np.lexsort((target, source))
    source, target = source[order], target[order]
    start = np.cumsum(degree) - degree
    if n * degree.max() > _MAX_ENTRIES:
        raise ValueError(
            f"padded neighbour array too large: n={n} x max degree {degree.max()} (node {degree.argmax()})"
            f" > 2**31 entries"
        )
    neighbours = np.repeat(np.arange(n, dtype=np.int32), degree.max()).reshape(n, -1)
    neighbours[source, np.arange(source.size) - start[source]] = target
    return NeighbourGraph(
        n_nodes=n,
        neighbours=jnp.asarray(neighbours, jnp.int32),
        degree=jnp.asarray(degree, jnp.int32),
        kind=kind,
    )


# ----------------------------------------------------------------------------------------------------------
# Constructors


def complete(n: int) -> CompleteGraph:
    """Complete graph on n >= 2 nodes (no arrays: O(1) memory)."""
    return CompleteGraph(n_nodes=_check_int("n", n, 2))


def ring(n: int, k: int = 2) -> NeighbourGraph:
    """Ring lattice: node i is linked to the k nearest nodes i +- 1, ..., i +- k/2 (mod n), k even, k < n."""
    n = _check_int("n", n, 3)
    k = _check_even_degree(k, n)
    _check_memory("ring", n, n * k / 2)
    nodes = np.arange(n)
    edges = [np.stack([nodes, (nodes + j) % n], axis=1) for j in range(1, k // 2 + 1)]
    return _build(n, np.concatenate(edges), "ring", allow_disconnected=False)


def lattice2d(side: int, periodic: bool = True) -> NeighbourGraph:
    """Square lattice of side**2 nodes; node (row, col) = row * side + col is linked to its 4 nearest ones.

    With periodic=True (torus, side >= 3) every node has degree 4; otherwise border nodes have 2 or 3.
    """
    side = _check_int("side", side, 3 if periodic else 2)
    _check_memory("lattice2d", side * side, 2 * side * side)
    index = np.arange(side * side).reshape(side, side)
    if periodic:
        right, down = np.roll(index, -1, axis=1), np.roll(index, -1, axis=0)
        edges = [np.stack([index.ravel(), right.ravel()], 1), np.stack([index.ravel(), down.ravel()], 1)]
    else:
        edges = [
            np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], 1),
            np.stack([index[:-1, :].ravel(), index[1:, :].ravel()], 1),
        ]
    return _build(side * side, np.concatenate(edges), "lattice2d", allow_disconnected=False)


def erdos_renyi(
    n: int,
    p: float | None = None,
    *,
    mean_degree: float | None = None,
    seed: int,
    allow_disconnected: bool = False,
) -> NeighbourGraph:
    """G(n, p) random graph; give either the edge probability p or mean_degree = p * (n - 1).

    Raises ValueError if the draw has isolated nodes (or is disconnected, unless allow_disconnected).
    """
    n = _check_int("n", n, 2)
    if (p is None) == (mean_degree is None):
        raise ValueError(f"give exactly one of p and mean_degree, got p={p!r}, mean_degree={mean_degree!r}")
    if mean_degree is not None:
        if isinstance(mean_degree, bool) or not isinstance(mean_degree, numbers.Real):
            raise ValueError(f"mean_degree must be a number, got mean_degree={mean_degree!r}")
        if not 0 <= mean_degree <= n - 1:
            raise ValueError(f"mean_degree must be in [0, n - 1 = {n - 1}], got mean_degree={mean_degree}")
        p = mean_degree / (n - 1)
    p = _check_probability("p", p)
    if 0.0 < p and 1.0 - p == 1.0:
        raise ValueError(f"p={p!r} is too small to sample (1 - p rounds to 1); use p = 0 or p >= 1e-15")
    _check_memory("erdos_renyi", n, p * n * (n - 1) / 2)
    graph = nx.fast_gnp_random_graph(n, p, seed=_check_int("seed", seed, 0))
    return _build(n, _edge_array(graph), "erdos_renyi", allow_disconnected)


def barabasi_albert(n: int, m: int, seed: int) -> NeighbourGraph:
    """Barabasi-Albert preferential attachment: each new node links to m existing ones (1 <= m < n)."""
    n = _check_int("n", n, 2)
    m = _check_int("m", m, 1)
    if m >= n:
        raise ValueError(f"m must be < n={n}, got m={m}")
    _check_memory("barabasi_albert", n, m * n)
    graph = nx.barabasi_albert_graph(n, m, seed=_check_int("seed", seed, 0))
    return _build(n, _edge_array(graph), "barabasi_albert", allow_disconnected=False)


def watts_strogatz(n: int, k: int, p: float, seed: int, *, allow_disconnected: bool = False) -> NeighbourGraph:
    """Watts-Strogatz small world: ring(n, k) with each edge rewired with probability p (k even, k < n).

    Raises ValueError if rewiring leaves isolated nodes (or a disconnected graph, unless allow_disconnected).
    """
    n = _check_int("n", n, 3)
    k = _check_even_degree(k, n)
    p = _check_probability("p", p)
    _check_memory("watts_strogatz", n, n * k / 2)
    graph = nx.watts_strogatz_graph(n, k, p, seed=_check_int("seed", seed, 0))
    return _build(n, _edge_array(graph), "watts_strogatz", allow_disconnected)


def random_regular(n: int, d: int, seed: int, *, allow_disconnected: bool = False) -> NeighbourGraph:
    """Uniform random d-regular graph (1 <= d < n, n * d even); d <= 2 draws are usually disconnected."""
    n = _check_int("n", n, 2)
    d = _check_int("d", d, 1)
    if d >= n:
        raise ValueError(f"d must be < n={n}, got d={d}")
    if n * d % 2:
        raise ValueError(f"n * d must be even, got n={n}, d={d}")
    _check_memory("random_regular", n, n * d / 2)
    graph = nx.random_regular_graph(d, n, seed=_check_int("seed", seed, 0))
    return _build(n, _edge_array(graph), "random_regular", allow_disconnected)


def from_edges(edges, n_nodes: int | None = None, *, allow_disconnected: bool = False) -> NeighbourGraph:
    """Graph from an undirected edge list, array-like (n_edges, 2) of node ids in [0, n_nodes).

    n_nodes defaults to the largest id + 1. Duplicate edges (either orientation) collapse to one.
    """
    edges = _as_edge_array(edges)
    if n_nodes is None:
        n_nodes = int(edges.max()) + 1 if edges.size else 0
    return _build(n_nodes, edges, "edges", allow_disconnected)


def from_networkx(graph: nx.Graph, *, allow_disconnected: bool = False) -> NeighbourGraph:
    """Graph from an undirected networkx graph (multi-edges collapse; self-loops, isolated nodes are errors).

    Node i of the result is the i-th node of `sorted(graph.nodes)`, or of `list(graph.nodes)` (insertion
    order) when the labels cannot be sorted.
    """
    if not isinstance(graph, nx.Graph):
        raise ValueError(f"expected a networkx graph, got {type(graph).__name__}")
    if graph.is_directed():
        raise ValueError(f"directed graphs are not supported, got {type(graph).__name__}; call .to_undirected()")
    n = _check_int("n", graph.number_of_nodes(), 2)
    loops = list(nx.nodes_with_selfloops(graph))
    if loops:
        raise ValueError(f"self-loop at node {loops[0]!r}")
    isolated = list(nx.isolates(graph))
    if isolated:
        raise ValueError(f"{len(isolated)} isolated node(s), e.g. {isolated[:5]}")
    return _build(n, _edge_array(graph), "networkx", allow_disconnected)


def _edge_array(graph: nx.Graph) -> np.ndarray:
    """Edges of a networkx graph as int64 (n_edges, 2), nodes numbered in sorted (else insertion) order."""
    try:
        nodes = sorted(graph.nodes)
    except TypeError:
        nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    return np.array([(index[a], index[b]) for a, b in graph.edges()], np.int64).reshape(-1, 2)
