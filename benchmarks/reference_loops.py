"""Baselines of the MINIMAL naming game for benchmarking jaxconv.

Minimal naming game (Baronchelli et al. 2006): open vocabulary, complete graph, random sequential pairs,
beta = 1.  Each baseline takes ``(n_agents, n_replicas, n_interactions, seed)`` and returns
``(successes, mean_final_total_words)``: the per-replica number of successes (int64 array of length
``n_replicas``) and the mean over replicas of the final total number of words.

* :func:`python_reference` -- plain Python (``random.Random`` and sets).  ``engine="minimal"`` (default) is a
  straightforward loop written for this benchmark; ``engine="reference"`` calls the slow test oracle
  ``tests/reference.py`` (which also recomputes its observables after every interaction).
* :func:`numba_loop` -- a single-core ``numba.njit`` loop written the fast natural way (inventories as a 2D int
  array with a size array).  numba is a benchmark-only dependency (``pip install .[bench]``).

Run ``python benchmarks/reference_loops.py`` to time both at small sizes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["python_reference", "numba_loop", "numba_to_consensus", "memory_game_python"]

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")


# --------------------------------------------------------------------------- pure Python


def _python_minimal(n_agents: int, n_interactions: int, rng: random.Random) -> tuple[int, int]:
    """One replica; returns (successes, final total words)."""
    inventories: list[set[int]] = [set() for _ in range(n_agents)]
    successes = 0
    for _ in range(n_interactions):
        speaker = rng.randrange(n_agents)
        hearer = rng.randrange(n_agents - 1)
        if hearer >= speaker:
            hearer += 1
        inventory = inventories[speaker]
        if inventory:
            word = rng.choice(sorted(inventory))
        else:
            word = 2 + speaker  # brand-new word, labelled by its inventor (as in tests/reference.py)
            inventory.add(word)
        if word in inventories[hearer]:
            successes += 1
            inventories[speaker] = {word}
            inventories[hearer] = {word}
        else:
            inventories[hearer].add(word)
    return successes, sum(len(inventory) for inventory in inventories)


def python_reference(
    n_agents: int, n_replicas: int, n_interactions: int, seed: int = 0, *, engine: str = "minimal"
) -> tuple[np.ndarray, float]:
    """Pure-Python baseline: per-replica successes and mean final total words.

    Replica ``r`` uses ``random.Random(seed * 1_000_003 + r)``."""
    if engine not in ("minimal", "reference"):
        raise ValueError(f"engine must be 'minimal' or 'reference', got {engine!r}")
    if engine == "reference":
        if _TESTS not in sys.path:
            sys.path.insert(0, _TESTS)
        from reference import naming_game_run

    successes = np.zeros(n_replicas, dtype=np.int64)
    words = 0
    for r in range(n_replicas):
        rng = random.Random(seed * 1_000_003 + r)
        if engine == "minimal":
            successes[r], final_words = _python_minimal(n_agents, n_interactions, rng)
        else:
            res = naming_game_run(rng, n_agents, n_interactions, record_every=max(n_interactions, 1))
            successes[r], final_words = res["successes"][-1], res["total_words"][-1]
        words += final_words
    return successes, words / n_replicas


# --------------------------------------------------------------------------- numba

_numba_kernel = None


def _build_numba_kernel():
    try:
        import numba
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("numba_loop needs numba (a benchmark-only dependency: pip install '.[bench]')") from err

    @numba.njit(cache=False)
    def kernel(n_agents, n_replicas, n_interactions, seed):
        np.random.seed(seed)
        capacity = n_agents + 2  # an inventory never holds more words than were invented (<= n_agents)
        inventory = np.empty((n_agents, capacity), dtype=np.int64)
        size = np.zeros(n_agents, dtype=np.int64)
        successes = np.zeros(n_replicas, dtype=np.int64)
        total_words = 0
        for r in range(n_replicas):
            size[:] = 0
            n_success = 0
            for _ in range(n_interactions):
                speaker = np.random.randint(0, n_agents)
                hearer = np.random.randint(0, n_agents - 1)
                if hearer >= speaker:
                    hearer += 1
                if size[speaker] == 0:
                    word = 2 + speaker  # invent
                    inventory[speaker, 0] = word
                    size[speaker] = 1
                else:
                    word = inventory[speaker, np.random.randint(0, size[speaker])]
                known = False
                for j in range(size[hearer]):
                    if inventory[hearer, j] == word:
                        known = True
                        break
                if known:
                    n_success += 1
                    inventory[speaker, 0] = word
                    size[speaker] = 1
                    inventory[hearer, 0] = word
                    size[hearer] = 1
                else:
                    inventory[hearer, size[hearer]] = word
                    size[hearer] += 1
            successes[r] = n_success
            total_words += size.sum()
        return successes, total_words / n_replicas

    return kernel


def numba_loop(n_agents: int, n_replicas: int, n_interactions: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Single-core numba baseline: per-replica successes and mean final total words.

    The first call compiles the kernel (call once at a tiny size before timing)."""
    global _numba_kernel
    if n_agents < 2:
        raise ValueError("need at least two agents")
    if _numba_kernel is None:
        _numba_kernel = _build_numba_kernel()
    successes, mean_words = _numba_kernel(n_agents, n_replicas, n_interactions, seed)
    return successes, float(mean_words)


_numba_consensus_kernel = None


def _build_numba_consensus_kernel():
    import numba

    @numba.njit(cache=False)
    def kernel(n_agents, max_interactions, seed):
        np.random.seed(seed)
        # numba_loop's rows of N + 2 words need 8 N^2 bytes of address space (80 GB at N = 10^5, refused here);
        # 16 sqrt(N) + 64 words is ten times the largest inventory of the minimal game (checked below)
        capacity = min(n_agents + 2, 16 * int(np.sqrt(n_agents)) + 64)
        inventory = np.empty((n_agents, capacity), dtype=np.int64)
        size = np.zeros(n_agents, dtype=np.int64)
        n_single = 0
        for t in range(1, max_interactions + 1):
            speaker = np.random.randint(0, n_agents)
            hearer = np.random.randint(0, n_agents - 1)
            if hearer >= speaker:
                hearer += 1
            if size[speaker] == 0:
                word = 2 + speaker
                inventory[speaker, 0] = word
                size[speaker] = 1
                n_single += 1
            else:
                word = inventory[speaker, np.random.randint(0, size[speaker])]
            known = False
            for j in range(size[hearer]):
                if inventory[hearer, j] == word:
                    known = True
                    break
            if known:
                n_single += (size[speaker] != 1) + (size[hearer] != 1)
                inventory[speaker, 0] = word
                size[speaker] = 1
                inventory[hearer, 0] = word
                size[hearer] = 1
                if n_single == n_agents:
                    for i in range(n_agents):
                        if inventory[i, 0] != word:
                            break
                    else:
                        return t
            else:
                n_single += (size[hearer] == 0) - (size[hearer] == 1)
                if size[hearer] == capacity:
                    return -2  # would overflow (never seen)
                inventory[hearer, size[hearer]] = word
                size[hearer] += 1
        return -1

    return kernel


def numba_to_consensus(n_agents: int, max_interactions: int, seed: int = 0) -> int:
    """One replica of the minimal naming game run to consensus by the numba loop's algorithm (per-agent word
    lists, linear search; room for 16 sqrt(N) + 64 words, -2 if an inventory would exceed it): the interaction at
    which consensus is reached, -1 if not within ``max_interactions``. The first call compiles."""
    global _numba_consensus_kernel
    if _numba_consensus_kernel is None:
        _numba_consensus_kernel = _build_numba_consensus_kernel()
    return int(_numba_consensus_kernel(n_agents, max_interactions, seed))


# --------------------------------------------------------------------------- memory game, dict per agent


def memory_game_python(
    n_agents: int, n_names: int, memory: int, n_replicas: int, n_interactions: int, seed: int = 0
) -> np.ndarray:
    """The LLM-protocol memory game with best-response agents, written the way the published experiment code is
    (one dict per agent with 'my_history', 'partner_history', 'outcome' lists, a tracker of interactions), the
    LLM call replaced by the best response to the partners' last ``memory`` choices (ties and empty memory:
    uniformly at random). Payoffs +100 / -50, complete graph, random pairs. Returns per-replica successes."""
    successes = np.zeros(n_replicas, dtype=np.int64)
    for r in range(n_replicas):
        rng = random.Random(seed * 1_000_003 + r)
        players = {
            i: {
                "my_history": [],
                "partner_history": [],
                "outcome": [],
                "score": 0,
                "neighbours": [j for j in range(n_agents) if j != i],
            }
            for i in range(n_agents)
        }
        tracker = {"players": [], "answers": [], "outcome": []}

        def answer(player, rng=rng):
            recent = player["partner_history"][-memory:]
            if not recent:
                return rng.randrange(n_names)
            counts = [recent.count(name) for name in range(n_names)]
            best = max(counts)
            return rng.choice([name for name in range(n_names) if counts[name] == best])

        for _ in range(n_interactions):
            p1 = rng.randrange(n_agents)
            p2 = rng.choice(players[p1]["neighbours"])
            a1, a2 = answer(players[p1]), answer(players[p2])
            payoff = 100 if a1 == a2 else -50
            for me, mine, theirs in ((p1, a1, a2), (p2, a2, a1)):
                players[me]["my_history"].append(mine)
                players[me]["partner_history"].append(theirs)
                players[me]["outcome"].append(payoff)
                players[me]["score"] += payoff
            tracker["players"].append([p1, p2])
            tracker["answers"].append([a1, a2])
            tracker["outcome"].append(int(a1 == a2))
        successes[r] = sum(tracker["outcome"])
    return successes


# --------------------------------------------------------------------------- timing


def _time(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument(
        "--rounds-factor", type=float, default=3.0, help="interactions = factor * N^1.5 (about the convergence time)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-reference", action="store_true", help="also time the slow test oracle")
    args = parser.parse_args(argv)

    compile_time, _ = _time(numba_loop, 4, 1, 10, 0)
    print(f"numba compile (first call): {compile_time:.2f} s")
    header = f"{'N':>6} {'replicas':>8} {'interactions':>12} {'engine':>10} {'seconds':>9} {'int/s':>11}"
    print(header + f" {'mean succ':>10} {'mean words':>10}")
    engines = [("python", python_reference), ("numba", numba_loop)]
    if args.with_reference:
        engines.insert(0, ("reference", lambda *a: python_reference(*a, engine="reference")))
    for n in args.sizes:
        n_interactions = int(args.rounds_factor * n**1.5)
        for name, fn in engines:
            seconds, (successes, words) = _time(fn, n, args.replicas, n_interactions, args.seed)
            rate = args.replicas * n_interactions / seconds
            print(
                f"{n:>6} {args.replicas:>8} {n_interactions:>12} {name:>10} {seconds:>9.3f} {rate:>11.3g}"
                f" {successes.mean():>10.1f} {words:>10.1f}"
            )


if __name__ == "__main__":
    main()
