"""Slow, obviously correct pure-Python reference of the naming-game family.

This module is a *test oracle*: it follows the rules of /work/shared/REFERENCE.md (Baronchelli et al. 2006,
the finite-pool LLM baseline, the beta variant, committed minorities of Xie et al. 2011) line by line, with
``random.Random`` and Python sets.  No numpy is used in the dynamics.  It is deliberately slow: every
observable is recomputed from scratch after every step instead of being updated incrementally.

One function, :func:`naming_game_run`, covers the whole family.  The binary-agreement game of Xie et al.
is the special case ``vocabulary=2, committed=k, committed_mode="added", initial="prepared"``
(A = ``prepared_name`` = 0, B = ``committed_name`` = 1) and has no function of its own.

Conventions
-----------
* Population: ``n_agents + committed`` agents when ``committed_mode == "added"``, ``n_agents`` otherwise
  ("converted").  Agents ``0 .. committed-1`` are the committed ones (in both modes); the others are
  uncommitted.
* Committed agents hold ``{committed_name}`` from the start and NEVER change their inventory, neither as
  speaker nor as hearer.
* Word labels are arbitrary; only their identity matters.  With the open vocabulary the names 0 and 1 are
  reserved for the prepared and committed names, and the brand-new word invented by agent ``i`` is labelled
  ``2 + i``.  Each agent can invent at most once, because an inventory never becomes empty again once it
  holds a word (collapses leave one word, and a committed agent is never empty), so these labels are unique.
  With a finite pool of ``W`` names the names are ``0 .. W-1``.
* A speaker's word is drawn uniformly from ``sorted(inventory)`` (sorting only makes runs reproducible; it
  does not change the law).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

__all__ = ["naming_game_run", "consensus_word"]


def consensus_word(inventories: Sequence[set]) -> int | None:
    """The word every agent holds, if every inventory is exactly the same single word; else None."""
    first = inventories[0]
    if len(first) != 1:
        return None
    for inventory in inventories:
        if inventory != first:
            return None
    return next(iter(first))


def naming_game_run(
    rng: random.Random | int,
    n_agents: int,
    n_interactions: int,
    *,
    vocabulary: str | int = "open",
    empty_speaker: str = "keeps",
    beta: float = 1.0,
    committed: int = 0,
    committed_mode: str = "added",
    committed_name: int = 1,
    initial: str = "empty",
    prepared_name: int = 0,
    neighbours: Sequence[Sequence[int]] | None = None,
    schedule: str = "pairs",
    record_every: int = 1,
    stop_at_consensus: bool = False,
    observer: Callable[[int, list[set]], None] | None = None,
) -> dict:
    """Run one naming game and return its trajectory.

    Parameters
    ----------
    rng: a ``random.Random`` (an int is accepted and used as its seed).
    n_agents: number of agents (uncommitted ones in "added" mode, all of them in "converted" mode).
    n_interactions: number of interactions to perform.  For the "matching" schedule, whole rounds are
        performed as long as fewer than ``n_interactions`` interactions have been done, so the total may
        exceed it by less than one round.
    vocabulary: "open" (an empty speaker invents a brand-new word) or an int ``W`` (finite pool of names
        ``0..W-1``; an empty speaker draws one uniformly).
    empty_speaker: with a finite pool, "keeps" (standard: the drawn name joins the speaker's inventory
        before it is uttered) or "forgets" (LLM-paper baseline: the speaker utters it without keeping it; it
        only acquires a name as a hearer or through a success).  The open vocabulary requires "keeps".
    beta: probability that a success collapses the inventories of speaker and hearer to the uttered word.
    committed, committed_mode, committed_name: ``committed`` agents (ids ``0..committed-1``) always holding
        ``{committed_name}``; "added" makes the population ``n_agents + committed``, "converted" takes them
        out of the ``n_agents``.
    initial: "empty" or "prepared" (every uncommitted agent starts with ``{prepared_name}``).
    neighbours: adjacency lists over the whole population (length ``n_agents + committed`` in "added" mode);
        None means the complete graph.  The hearer is drawn uniformly from the speaker's list.
    schedule: "pairs" (random sequential: speaker uniform among all agents, hearer uniform among its
        neighbours) or "matching" (complete graph only: each step is a round, a uniformly random perfect
        matching of the population -- one agent sits out if the population is odd -- with a random
        speaker/hearer role in each pair; the disjoint pair interactions are applied one after another and
        the round counts as ``population // 2`` interactions).
    record_every: a point is recorded at 0 interactions, then whenever the interaction count reaches a
        multiple of ``record_every`` ("matching": after each round during which a multiple was reached), and
        at the end of the run if that last state was not recorded yet.
    stop_at_consensus: end the run as soon as consensus is reached.
    observer: optional ``observer(t, inventories)`` called after every step ("pairs": every interaction,
        "matching": every round) with the live inventories (do not mutate them).  Used by the tests.

    Returns
    -------
    dict with the lists (one entry per recorded point) 'interactions' (interactions performed so far),
        'successes' (cumulative number of successes), 'total_words' (sum of inventory sizes over all agents
        incl. committed), 'distinct_names' (size of the union of inventories), 'committed_only_share' (share
        of UNCOMMITTED agents whose inventory is exactly ``{committed_name}``; nan if there is none),
    and the scalars 'consensus_time' (interaction count at which, for the first time, every agent incl.
        committed holds exactly one and the same word; checked at the start and after every step -- after
        every interaction for "pairs", after every round for "matching"; None if never), 'winner' (that word
        or None), 'peak_total_words', 'peak_time' (maximum of total_words over the states checked in the
        same way, and the first interaction count at which it was reached), 'final_inventories' (list of
        sets, agent order), 'n_population' (number of agents incl. committed).
    """
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)

    # ------------------------------------------------------------------ arguments
    open_vocabulary = vocabulary == "open"
    if not open_vocabulary:
        if isinstance(vocabulary, bool) or not isinstance(vocabulary, int) or vocabulary < 1:
            raise ValueError(f"vocabulary must be 'open' or a positive int, got {vocabulary!r}")
    if empty_speaker not in ("keeps", "forgets"):
        raise ValueError(f"empty_speaker must be 'keeps' or 'forgets', got {empty_speaker!r}")
    if open_vocabulary and empty_speaker == "forgets":
        raise ValueError("the open vocabulary requires empty_speaker='keeps' (inventors keep their word)")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if committed_mode not in ("added", "converted"):
        raise ValueError(f"committed_mode must be 'added' or 'converted', got {committed_mode!r}")
    if initial not in ("empty", "prepared"):
        raise ValueError(f"initial must be 'empty' or 'prepared', got {initial!r}")
    if schedule not in ("pairs", "matching"):
        raise ValueError(f"schedule must be 'pairs' or 'matching', got {schedule!r}")
    if committed < 0 or (committed_mode == "converted" and committed > n_agents):
        raise ValueError(f"bad number of committed agents: {committed}")
    if record_every < 1:
        raise ValueError("record_every must be >= 1")
    for name, used in ((committed_name, committed > 0), (prepared_name, initial == "prepared")):
        if not used:
            continue
        if open_vocabulary and name not in (0, 1):
            raise ValueError("with the open vocabulary the prepared/committed names must be 0 or 1")
        if not open_vocabulary and not 0 <= name < vocabulary:
            raise ValueError(f"name {name} is not in the pool 0..{vocabulary - 1}")

    population = n_agents + committed if committed_mode == "added" else n_agents
    if population < 2:
        raise ValueError("the population must hold at least two agents")
    is_committed = [agent < committed for agent in range(population)]

    if neighbours is not None:
        if schedule == "matching":
            raise ValueError("the matching schedule is defined on the complete graph only")
        if len(neighbours) != population:
            raise ValueError(f"neighbours must have one list per agent ({population})")
        for agent, agent_neighbours in enumerate(neighbours):
            if len(agent_neighbours) == 0:
                raise ValueError(f"agent {agent} has no neighbour")
            for other in agent_neighbours:
                if other == agent or not 0 <= other < population:
                    raise ValueError(f"bad neighbour {other} of agent {agent}")

    # ------------------------------------------------------------------ initial state
    inventories: list[set] = []
    for agent in range(population):
        if is_committed[agent]:
            inventories.append({committed_name})
        elif initial == "prepared":
            inventories.append({prepared_name})
        else:
            inventories.append(set())
    invented: set[int] = set()  # open vocabulary: words invented so far

    # ------------------------------------------------------------------ one interaction
    def interact(speaker: int, hearer: int) -> bool:
        """Play one speaker -> hearer interaction; return True on success."""
        inventory = inventories[speaker]
        if inventory:
            word = rng.choice(sorted(inventory))
        elif open_vocabulary:
            word = 2 + speaker  # a brand-new word, labelled by its inventor
            assert word not in invented, "an agent invented twice"
            invented.add(word)
            inventory.add(word)
        else:
            word = rng.randrange(vocabulary)
            if empty_speaker == "keeps":
                inventory.add(word)
        # (a committed speaker is never empty and never changes: it always utters committed_name)

        if word in inventories[hearer]:
            if beta >= 1.0 or rng.random() < beta:
                for agent in (speaker, hearer):
                    if not is_committed[agent]:
                        inventories[agent] = {word}
            return True
        if not is_committed[hearer]:
            inventories[hearer].add(word)
        return False

    def draw_pair() -> tuple[int, int]:
        speaker = rng.randrange(population)
        if neighbours is None:
            hearer = rng.randrange(population - 1)  # uniform among the others
            if hearer >= speaker:
                hearer += 1
        else:
            hearer = rng.choice(neighbours[speaker])
        return speaker, hearer

    # ------------------------------------------------------------------ observables
    uncommitted = [agent for agent in range(population) if not is_committed[agent]]
    record: dict[str, list] = {
        "interactions": [],
        "successes": [],
        "total_words": [],
        "distinct_names": [],
        "committed_only_share": [],
    }

    def total_words() -> int:
        return sum(len(inventory) for inventory in inventories)

    def take_record(t: int, successes: int) -> None:
        names: set[int] = set()
        for inventory in inventories:
            names |= inventory
        if uncommitted:
            share = sum(inventories[a] == {committed_name} for a in uncommitted) / len(uncommitted)
        else:
            share = float("nan")
        record["interactions"].append(t)
        record["successes"].append(successes)
        record["total_words"].append(total_words())
        record["distinct_names"].append(len(names))
        record["committed_only_share"].append(share)

    t = 0
    successes = 0
    consensus_time = None
    winner = None
    peak_total_words = total_words()
    peak_time = 0

    def check(t: int) -> None:
        """Consensus and peak checks on the current state."""
        nonlocal consensus_time, winner, peak_total_words, peak_time
        words = total_words()
        if words > peak_total_words:
            peak_total_words, peak_time = words, t
        if consensus_time is None:
            word = consensus_word(inventories)
            if word is not None:
                consensus_time, winner = t, word

    check(0)
    take_record(0, 0)

    # ------------------------------------------------------------------ dynamics
    while t < n_interactions and not (stop_at_consensus and consensus_time is not None):
        if schedule == "pairs":
            speaker, hearer = draw_pair()
            successes += interact(speaker, hearer)
            t += 1
            recorded_step = t % record_every == 0
        else:
            order = list(range(population))
            rng.shuffle(order)
            before = t
            for i in range(0, population - 1, 2):
                a, b = order[i], order[i + 1]
                if rng.random() < 0.5:
                    a, b = b, a
                successes += interact(a, b)
                t += 1
            recorded_step = t // record_every > before // record_every
        check(t)
        if observer is not None:
            observer(t, inventories)
        if recorded_step:
            take_record(t, successes)

    if record["interactions"][-1] != t:
        take_record(t, successes)

    return {
        **record,
        "consensus_time": consensus_time,
        "winner": winner,
        "peak_total_words": peak_total_words,
        "peak_time": peak_time,
        "final_inventories": [set(inventory) for inventory in inventories],
        "n_population": population,
    }
