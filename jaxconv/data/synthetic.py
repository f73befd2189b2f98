"""Synthetic logs in the schema of the published LLM experiments, so tests and examples need no real data.

:func:`simulate_run` is a small pure-Python version of the experiment's protocol: a complete graph of N agents
(ids 1..N); in each interaction p1 is uniform and p2 uniform among the others; both answer at once from their
own memory of the last H rounds (own name, partner's name, payoff); same name = success. A policy maps that
memory to a name; the default :func:`noisy_best_response` stands in for an LLM until the project's memory-game
simulator replaces it. :func:`write_fixture_logs` writes a folder and a zip of such files with the quirks of
the real ones (nested duplicate folder, absent 'rules', missing and empty runs, other tracker key names).
"""

import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Policy = Callable[[list[str], list[str], list[int], list[str], np.random.Generator], str]
RULES = "Context: Player 1 is playing a multi-round partnership game with Player 2. (synthetic log)"


def noisy_best_response(noise: float = 0.1) -> Policy:
    """Policy: with probability ``noise`` (or with an empty memory) a uniform name, else the name the
    partners in memory used most (ties broken uniformly). Arguments: own, partner, payoff (oldest first),
    names, rng."""

    def policy(own, partner, payoff, names, rng):
        if not partner or rng.random() < noise:
            return names[rng.integers(len(names))]
        counts = np.array([partner.count(name) for name in names])
        best = np.flatnonzero(counts == counts.max())
        return names[best[rng.integers(len(best))]]

    return policy


def softmax_agent(
    bias: dict[str, float],
    *,
    win_stay: float = 0.0,
    lose_shift: float = 0.0,
    own_weight: float = 0.0,
    partner_weight: float = 0.0,
    recency: float = 1.0,
    first_bias: dict[str, float] | None = None,
    unanimity: float | None = None,
    lapse: float | None = None,
    memory: int = 5,
) -> Policy:
    """Policy: :class:`jaxconv.policies.SoftmaxSurrogate`'s rule in plain numpy (``copy_partner`` 0, temperature 1),
    its optional terms included; ``bias`` and ``first_bias`` per name (0 for a name not listed), so that a bias
    belongs to a name whatever a file's order of names; ``memory``: the H rounds the agent sees, to tell a full
    memory (for ``unanimity``). The returned policy's ``probabilities(own, partner, names)`` gives the distribution."""

    def probabilities(own, partner, names):
        own, partner = own[::-1], partner[::-1]  # most recent first
        if not own:
            score = np.array([(first_bias if first_bias is not None else bias).get(n, 0.0) for n in names])
        else:
            score = np.array([bias.get(n, 0.0) for n in names])
            won = own[0] == partner[0]
            decay = recency ** np.arange(len(own))
            for i, name in enumerate(names):
                score[i] += win_stay * (won and own[0] == name) + lose_shift * (not won and partner[0] == name)
                score[i] += own_weight * sum(d for d, x in zip(decay, own, strict=True) if x == name)
                score[i] += partner_weight * sum(d for d, x in zip(decay, partner, strict=True) if x == name)
                if unanimity is not None and len(own) >= memory and set(own) | set(partner) == {name}:
                    score[i] += unanimity
        p = np.exp(score - score.max())
        p /= p.sum()
        if lapse is not None:
            p = (1 - lapse) * p + lapse / len(names)
        return p

    def policy(own, partner, payoff, names, rng):
        return names[rng.choice(len(names), p=probabilities(own, partner, names))]

    policy.probabilities = probabilities
    return policy


def _agent(agent_id: int, n_agents: int) -> dict:
    return {
        "my_history": [],
        "partner_history": [],
        "interactions": [],
        "score": 0,
        "score_history": [],
        "outcome": [],
        "committed_tag": False,
        "neighbours": [a for a in range(1, n_agents + 1) if a != agent_id],
    }


def _record(agent: dict, own: str, partner: str, payoff: int) -> None:
    agent["my_history"].append(own)
    agent["partner_history"].append(partner)
    agent["outcome"].append(payoff)
    agent["score"] += payoff
    agent["score_history"].append(agent["score"])


def simulate_run(
    rng: np.random.Generator,
    *,
    n_agents: int,
    names: list[str],
    memory: int = 5,
    payoffs: tuple[int, int] = (-50, 100),
    committed: int = 0,
    initial: int | None = None,
    max_interactions: int = 1000,
    stop_when_converged: bool = True,
    policy: Policy | None = None,
    stop_window: int | None = None,
    drift: tuple[float, int] | None = None,
) -> dict:
    """One run as the experiment stored it: ``{'simulation', 'tracker', 'convergence'}``.

    ``initial``: prepare every agent with H rounds of (names[initial], same, success) first (committed-
    minority and evolved files); ``committed``: then k random agents always answer names[1]. The run stops
    once the last ``stop_window`` (default 3N) interactions all succeeded (if ``stop_when_converged``) or after
    ``max_interactions``. ``drift = (sd, rounds)``: shared shocks (:class:`jaxconv.games.memory.Drift`): in each
    block of ``rounds`` rounds of N interactions, every answer is drawn from the policy's probabilities (a policy
    with ``probabilities``, e.g. :func:`softmax_agent`) times exp(shock of the name), renormalised, the shocks of a
    block being independent normal draws of sd ``sd``, one per name."""
    if n_agents < 2 or not names:
        raise ValueError(f"need n_agents >= 2 and at least one name, got {n_agents} agents and names {names!r}")
    if not 0 <= committed <= n_agents:
        raise ValueError(f"committed must be in [0, {n_agents}], got {committed}")
    policy = policy or noisy_best_response()
    if drift is not None and not hasattr(policy, "probabilities"):
        raise ValueError("drift needs a policy with probabilities(own, partner, names), e.g. softmax_agent")
    shocks = {}  # block -> the shock of each name
    failure, success = payoffs
    agents = {a: _agent(a, n_agents) for a in range(1, n_agents + 1)}
    if initial is not None:
        for agent in agents.values():
            for _ in range(memory):
                _record(agent, names[initial], names[initial], success)
    for a in rng.choice(np.arange(1, n_agents + 1), size=committed, replace=False).tolist():
        agents[a]["committed_tag"] = True
    pushed = names[1] if len(names) > 1 and (committed or initial is not None) else None
    tracker = {"players": [], "answers": [], "outcome": []}
    while len(tracker["outcome"]) < max_interactions:
        p1 = int(rng.integers(1, n_agents + 1))
        p2 = int(rng.choice(agents[p1]["neighbours"]))
        answers = []
        for a in (p1, p2):
            agent = agents[a]
            if agent["committed_tag"]:
                answers.append(pushed)
            else:
                window = slice(-memory, None) if memory else slice(0, 0)
                shown = (
                    agent["my_history"][window],
                    agent["partner_history"][window],
                    agent["outcome"][window],
                )
                if drift is None:
                    answers.append(policy(*shown, names, rng))
                    continue
                sd, rounds = drift
                block = len(tracker["outcome"]) // (rounds * n_agents)
                if block not in shocks:
                    shocks[block] = rng.normal(0.0, sd, len(names))
                weights = policy.probabilities(shown[0], shown[1], names) * np.exp(shocks[block])
                answers.append(names[rng.choice(len(names), p=weights / weights.sum())])
        payoff = success if answers[0] == answers[1] else failure
        _record(agents[p1], answers[0], answers[1], payoff)
        _record(agents[p2], answers[1], answers[0], payoff)
        agents[p1]["interactions"].append(p2)
        agents[p2]["interactions"].append(p1)
        tracker["players"].append([p1, p2])
        tracker["answers"].append(answers)
        tracker["outcome"].append(int(payoff == success))
        last = 3 * n_agents if stop_window is None else stop_window
        if stop_when_converged and len(tracker["outcome"]) >= last and all(tracker["outcome"][-last:]):
            break
    converged_index = len(tracker["outcome"]) if initial is None else 0
    return {
        "simulation": agents,
        "tracker": tracker,
        "convergence": {"converged_index": converged_index, "committed_to": pushed},
    }


def single_prompt_test(
    rng: np.random.Generator,
    *,
    own: list[str],
    partner: list[str],
    names: list[str],
    n_answers: int,
    payoffs: tuple[int, int] = (-50, 100),
    policy: Policy | None = None,
) -> dict:
    """A single-prompt test: ``n_answers`` answers of ``policy`` to the fixed memory (own, partner)."""
    policy = policy or noisy_best_response()
    outcome = [payoffs[1] if o == p else payoffs[0] for o, p in zip(own, partner, strict=True)]
    agent = {
        "my_history": own,
        "partner_history": partner,
        "interactions": [],
        "score": sum(outcome),
        "score_history": np.cumsum(outcome, dtype=int).tolist(),
        "outcome": outcome,
    }
    return {
        "simulation": agent,
        "tracker": {"answers": [policy(own, partner, outcome, names, rng) for _ in range(n_answers)]},
    }


def game_file_name(
    model: str,
    kind: str,
    names: list[str],
    *,
    payoffs: tuple[int, int] = (-50, 100),
    memory: int = 5,
    n_agents: int = 24,
    committed: int = 0,
    initial: int = 0,
    max_interactions: int = 500,
    temperature: float = 0.5,
    network: str = "complete",
) -> str:
    """The published file name of a 'game', 'committed' (swap) or 'evolved' file."""
    body = f"{'_'.join(names)}_{payoffs[0]}_{payoffs[1]}_{memory}mem_{network}_{n_agents}ps"
    if kind == "game":
        return f"{model}_converged_baseline_{body}_{temperature}tmp.pkl"
    if kind == "committed":
        return f"{model}_swap_{initial}_{committed}cmtd_{body}_{temperature}tmp.pkl"
    if kind == "evolved":
        return f"{model}_evolved_from_{initial}_{body}_{max_interactions}ints_{temperature}tmp.pkl"
    raise ValueError(f"kind must be 'game', 'committed' or 'evolved', got {kind!r}")


def dumps(obj) -> bytes:
    """Pickle builtin data (what the loader accepts)."""
    return pickle.dumps(obj, protocol=4)


def write_zip(path, members: dict[str, bytes], *, nested_duplicate: bool = False) -> Path:
    """Write ``members`` (name -> bytes) into a zip; with ``nested_duplicate`` every member is stored again
    under its top folder repeated (``d/x.pkl`` and ``d/d/x.pkl``), as in the published llama31_data.zip."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if nested_duplicate:
            for name, data in members.items():
                top = name.split("/", 1)[0]
                archive.writestr(f"{top}/{name}", data)
    return path


def _rename_tracker_keys(game: dict, renames: dict[str, str]) -> dict:
    for key, run in game.items():
        if isinstance(key, int) and run:
            run["tracker"] = {renames.get(k, k): v for k, v in run["tracker"].items()}
    return game


@dataclass
class FixtureLogs:
    """Paths written by :func:`write_fixture_logs`; ``files`` maps a label to the file name."""

    folder: Path
    zip: Path
    files: dict[str, str]


def write_fixture_logs(
    directory, *, seed: int = 0, model: str = "synth", n_agents: int = 6, memory: int = 3, n_runs: int = 5
) -> FixtureLogs:
    """Write a folder ``{model}_data/`` and a zip ``{model}_data.zip`` (every file twice: nested duplicate
    folder) of small synthetic logs. Labels in ``files``:

    - 'game': W=2 {Q, M} baseline with 'rules'; run 2 missing and run 4 empty.
    - 'game_w3': W=3 {Q, M, X} baseline, no 'rules', tracker keys 'pairs', 'choices', 'outcomes'.
    - 'committed_1', 'committed_3': prepared on Q, k committed agents push M (no 'rules', as published).
    - 'evolved': prepared on Q, no committed agent.
    - 'no_memory': 200 answers with empty memory; 'bias_q_m', 'bias_q_q': single-prompt tests.
    - 'meta': comprehension answers (not game data)."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    sizes = {"n_agents": n_agents, "memory": memory}
    files: dict[str, tuple[str, dict]] = {}

    game = {"rules": RULES} | {r: simulate_run(rng, names=["Q", "M"], **sizes) for r in range(n_runs + 1)}
    del game[2]
    game[4] = {}
    files["game"] = (game_file_name(model, "game", ["Q", "M"], **sizes), game)
    game_w3 = {r: simulate_run(rng, names=["Q", "M", "X"], **sizes) for r in range(n_runs)}
    files["game_w3"] = (
        game_file_name(model, "game", ["Q", "M", "X"], **sizes),
        _rename_tracker_keys(game_w3, {"players": "pairs", "answers": "choices", "outcome": "outcomes"}),
    )
    for k in (1, 3):
        runs = {
            r: simulate_run(rng, names=["Q", "M"], committed=k, initial=0, max_interactions=40 * n_agents, **sizes)
            for r in range(n_runs)
        }
        files[f"committed_{k}"] = (game_file_name(model, "committed", ["Q", "M"], committed=k, **sizes), runs)
    evolved = {"rules": RULES} | {
        r: simulate_run(
            rng,
            names=["Q", "M"],
            initial=0,
            max_interactions=20 * n_agents,
            stop_when_converged=False,
            **sizes,
        )
        for r in range(n_runs)
    }
    files["evolved"] = (
        game_file_name(model, "evolved", ["Q", "M"], max_interactions=20 * n_agents, **sizes),
        evolved,
    )
    files["no_memory"] = (
        f"{model}_no_memory_bias_test_QM_0mem.pkl",
        single_prompt_test(rng, own=[], partner=[], names=["Q", "M"], n_answers=200),
    )
    files["bias_q_m"] = (
        f"{model}_bias_test_Q_M.pkl",
        single_prompt_test(rng, own=["Q"], partner=["M"], names=["Q", "M"], n_answers=100),
    )
    files["bias_q_q"] = (
        f"{model}_bias_test_Q_Q.pkl",
        single_prompt_test(rng, own=["Q"], partner=["Q"], names=["Q", "M"], n_answers=100),
    )
    files["meta"] = (f"{model}_meta_test_final.pkl", {1: {"min": [1, 1], "max": [1, 0], "payoff": [1, 1]}})

    folder = directory / f"{model}_data"
    folder.mkdir(parents=True, exist_ok=True)
    members = {}
    for file_name, content in files.values():
        data = dumps(content)
        (folder / file_name).write_bytes(data)
        members[f"{model}_data/{file_name}"] = data
    archive = write_zip(directory / f"{model}_data.zip", members, nested_duplicate=True)
    return FixtureLogs(folder=folder, zip=archive, files={label: name for label, (name, _) in files.items()})
