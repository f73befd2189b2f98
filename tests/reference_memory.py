"""Slow, obviously correct pure-Python reference of the memory games (a test oracle).

Written the way the published experiment code is (Ashery, Aiello & Baronchelli 2025, github
Ariel-Flint-Ashery/AI-norms): one dict per agent with the lists 'my_history', 'partner_history' and 'outcome'
(oldest first), a 'committed_tag' and its 'neighbours', and a tracker of every interaction. The LLM call is
replaced by a policy computed from the last H entries of those lists. ``random.Random`` only, no numpy.

- :func:`memory_game_run`: the memory game of ``jaxconv.games.memory`` (both update rules, the policies
  best response, uniform, softmax surrogate and lookup table, stop rules, committed agents).
- :func:`best_response_run`: Centola et al. (2018) written from its description, independently of the above: each
  agent keeps a deque of its partners' last M plays, plays the most frequent name (ties at random), and only the
  hearer appends the speaker's play.

Conventions shared with jaxconv (see its module docstring): committed agents are agents 0..k-1, always answer
``committed_name`` and never change their memory; consensus, stop time, winner and flip are defined as there and
recomputed from scratch after every step (an interaction for "pairs", a round for "matching").
"""

from __future__ import annotations

import math
import random
from collections import deque

FLIP_THRESHOLD = 0.95


# ----- policies --------------------------------------------------------------------------------------------------
def policy_probabilities(player: dict, memory: int, n_names: int, policy: dict) -> list[float]:
    """Probabilities of the W names for ``player`` (a dict with the published keys) under ``policy``:
    {"kind": "uniform"}, {"kind": "best-response", "payoff_weight": a}, {"kind": "softmax", "bias": [...],
    "win_stay", "lose_shift", "copy_partner", "own_weight", "partner_weight", "recency", "temperature"} or
    {"kind": "lookup", "table": nested lists indexed [own_0][partner_0][own_1]...[name]} (index W = empty)."""
    own = player["my_history"][-memory:][::-1]  # most recent first
    partner = player["partner_history"][-memory:][::-1]
    outcome = player["outcome"][-memory:][::-1]
    kind = policy["kind"]
    if kind == "uniform":
        return [1.0 / n_names] * n_names
    if kind == "best-response":
        weight = policy.get("payoff_weight", 0.0)
        score = [0.0] * n_names
        for name in partner:
            score[name] += 1
        for name, payoff in zip(own, outcome):
            score[name] += weight * payoff
        best = [name for name in range(n_names) if score[name] == max(score)]
        return [1.0 / len(best) if name in best else 0.0 for name in range(n_names)]
    if kind == "softmax":
        score = list(policy["bias"])
        if own:
            won = own[0] == partner[0]
            if won:
                score[own[0]] += policy.get("win_stay", 0.0)
            else:
                score[partner[0]] += policy.get("lose_shift", 0.0)
            score[partner[0]] += policy.get("copy_partner", 0.0)
        recency = policy.get("recency", 1.0)
        for h, (mine, theirs) in enumerate(zip(own, partner)):
            score[mine] += policy.get("own_weight", 0.0) * recency**h
            score[theirs] += policy.get("partner_weight", 0.0) * recency**h
        scaled = [s / policy.get("temperature", 1.0) for s in score]
        top = max(scaled)
        weights = [math.exp(s - top) for s in scaled]
        return [w / sum(weights) for w in weights]
    if kind == "lookup":
        row = policy["table"]
        depth = policy["depth"]
        for h in range(depth):
            if h < len(own):
                row = row[own[h]][partner[h]]
            else:
                row = row[n_names][n_names]
        return list(row)
    raise ValueError(f"unknown policy {kind!r}")


def draw(rng: random.Random, probabilities: list[float]) -> int:
    """Inverse CDF of one uniform."""
    u = rng.random() * sum(probabilities)
    total = 0.0
    for name, p in enumerate(probabilities):
        total += p
        if u < total:
            return name
    return max(name for name, p in enumerate(probabilities) if p > 0)


# ----- the memory game -------------------------------------------------------------------------------------------
def memory_game_run(
    rng: random.Random | int,
    n_agents: int,
    n_names: int,
    memory: int,
    n_interactions: int,
    *,
    policy: dict | None = None,
    update: str = "both",
    payoffs: tuple = (100, -50),
    initial: str = "empty",
    prepared_name: int = 0,
    committed: int = 0,
    committed_name: int = 1,
    neighbours: list[list[int]] | None = None,
    schedule: str = "pairs",
    stop: str | None = "successes",
    stop_window: int | None = None,
    record_every: int | None = None,
    drift_sd: float = 0.0,
    drift_rounds: int = 4,
) -> dict:
    """One run of at most ``n_interactions`` interactions (whole rounds for "matching"). With ``drift_sd`` > 0, every
    non-committed answer in the block of ``drift_rounds`` rounds (of N interactions) holding the interaction is
    drawn from the policy's probabilities times exp(shock of its name), renormalised; the W shocks of a block are
    independent normal draws of sd ``drift_sd``, shared by all agents.

    Returns the records (every ``record_every`` interactions, default N; after the run ended they repeat its
    final counters with empty windows) 'interactions', 'successes', 'choices', 'free_choices' (per-window counts
    per name, all agents / non-committed ones), 'pushed_agents'; and 'stop_time', 'consensus_time' (None if
    never), 'winner', 'pushed_agents_final', 'flipped', 'interactions_final', 'successes_final'."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    policy = policy or {"kind": "best-response"}
    stop_window = stop_window or 3 * n_agents
    record_every = record_every or n_agents
    success_payoff, failure_payoff = payoffs
    agents = {}
    for n in range(n_agents):
        others = [m for m in range(n_agents) if m != n] if neighbours is None else list(neighbours[n])
        agents[n] = {
            "my_history": [],
            "partner_history": [],
            "outcome": [],
            "committed_tag": n < committed,
            "neighbours": others,
            "last_choice": committed_name if n < committed else None,
        }
        if initial == "prepared":
            for _ in range(memory):
                agents[n]["my_history"].append(prepared_name)
                agents[n]["partner_history"].append(prepared_name)
                agents[n]["outcome"].append(success_payoff)
            if n >= committed:
                agents[n]["last_choice"] = prepared_name
    tracker = {"players": [], "answers": [], "outcome": []}

    shocks = {}  # block of drift_rounds rounds -> the W shocks of its names

    def answer(player: dict) -> int:
        if player["committed_tag"]:
            return committed_name
        probabilities = policy_probabilities(player, memory, n_names, policy)
        if drift_sd > 0:
            block = len(tracker["outcome"]) // (drift_rounds * n_agents)
            if block not in shocks:
                shocks[block] = [rng.gauss(0.0, drift_sd) for _ in range(n_names)]
            probabilities = [p * math.exp(shock) for p, shock in zip(probabilities, shocks[block])]
        return draw(rng, probabilities)

    def remember(player: dict, mine: int, theirs: int, payoff) -> None:
        if player["committed_tag"]:
            return
        player["my_history"].append(mine)
        player["partner_history"].append(theirs)
        player["outcome"].append(payoff)

    def interact(p1: int, p2: int) -> None:
        a1, a2 = answer(agents[p1]), answer(agents[p2])  # simultaneous: both answer before any update
        payoff = success_payoff if a1 == a2 else failure_payoff
        if update == "both":
            remember(agents[p1], a1, a2, payoff)
        remember(agents[p2], a2, a1, payoff)
        agents[p1]["last_choice"], agents[p2]["last_choice"] = a1, a2
        tracker["players"].append([p1, p2])
        tracker["answers"].append([a1, a2])
        tracker["outcome"].append(1 if a1 == a2 else 0)

    def at_consensus() -> bool:
        for name in range(n_names):
            if committed and name != committed_name:
                continue
            if all(
                len(agent["my_history"]) >= memory
                and set(agent["my_history"][-memory:]) == {name}
                and set(agent["partner_history"][-memory:]) == {name}
                for agent in agents.values()
                if not agent["committed_tag"]
            ):
                return True
        return False

    def pushed_agents() -> int:
        return sum(a["last_choice"] == committed_name for a in agents.values() if not a["committed_tag"])

    record = {"interactions": [], "successes": [], "choices": [], "free_choices": [], "pushed_agents": []}
    window_start = 0

    def take_record() -> None:
        nonlocal window_start
        choices, free = [0] * n_names, [0] * n_names
        for (p1, p2), answers in zip(tracker["players"][window_start:], tracker["answers"][window_start:]):
            for player, name in zip((p1, p2), answers):
                choices[name] += 1
                free[name] += not agents[player]["committed_tag"]
        window_start = len(tracker["outcome"])
        record["interactions"].append(len(tracker["outcome"]))
        record["successes"].append(sum(tracker["outcome"]))
        record["choices"].append(choices)
        record["free_choices"].append(free)
        record["pushed_agents"].append(pushed_agents())

    stop_time = None
    consensus_time = 0 if at_consensus() else None
    next_record = record_every
    steps_done = 0  # interaction slots elapsed, frozen or not
    while steps_done < n_interactions:
        ended = (stop == "successes" and stop_time is not None) or (stop == "consensus" and consensus_time is not None)
        if schedule == "pairs":
            step_pairs = 1
            if not ended:
                p1 = rng.randrange(n_agents)
                interact(p1, rng.choice(agents[p1]["neighbours"]))
        else:
            step_pairs = n_agents // 2
            if not ended:
                order = list(range(n_agents))
                rng.shuffle(order)
                for i in range(0, n_agents - 1, 2):
                    p1, p2 = order[i], order[i + 1]
                    if rng.random() < 0.5:
                        p1, p2 = p2, p1
                    interact(p1, p2)
        steps_done += step_pairs
        t = len(tracker["outcome"])
        last = tracker["outcome"][-stop_window:]
        if stop_time is None and len(last) == stop_window and all(last):
            stop_time = t
        if consensus_time is None and not ended and at_consensus():
            consensus_time = t
        if steps_done >= next_record:
            take_record()
            next_record += record_every

    final = [name for answers in tracker["answers"][-stop_window:] for name in answers]
    counts = [final.count(name) for name in range(n_names)]
    pushed = pushed_agents()
    return {
        **record,
        "stop_time": stop_time,
        "consensus_time": consensus_time,
        "winner": counts.index(max(counts)) if final else None,
        "pushed_agents_final": pushed,
        "flipped": pushed >= FLIP_THRESHOLD * (n_agents - committed),
        "interactions_final": len(tracker["outcome"]),
        "successes_final": sum(tracker["outcome"]),
    }


# ----- Centola et al. 2018 ---------------------------------------------------------------------------------------
def best_response_run(
    rng: random.Random | int, n_agents: int, memory: int, committed: int, n_interactions: int
) -> dict:
    """The best-response model on the complete graph: memories start with M plays of name 0, agents 0..k-1 always
    play 1, speaker uniform, hearer uniform among the others, only the hearer remembers the speaker's play.

    Returns 'pushed_agents' (non-committed agents whose latest play is 1), 'flipped' and 'successes'."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    plays_seen = [deque([0] * memory, maxlen=memory) for _ in range(n_agents)]
    latest = [1 if n < committed else 0 for n in range(n_agents)]

    def play(agent: int) -> int:
        if agent < committed:
            return 1
        counts = [plays_seen[agent].count(name) for name in (0, 1)]
        best = [name for name in (0, 1) if counts[name] == max(counts)]
        return rng.choice(best)

    successes = 0
    for _ in range(n_interactions):
        speaker = rng.randrange(n_agents)
        hearer = rng.randrange(n_agents - 1)
        hearer += hearer >= speaker
        said, heard = play(speaker), play(hearer)
        successes += said == heard
        latest[speaker], latest[hearer] = said, heard
        if hearer >= committed:
            plays_seen[hearer].append(said)
    pushed = sum(latest[n] == 1 for n in range(committed, n_agents))
    return {
        "pushed_agents": pushed,
        "flipped": pushed >= FLIP_THRESHOLD * (n_agents - committed),
        "successes": successes,
    }
