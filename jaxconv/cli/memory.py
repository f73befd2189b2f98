"""Command line of the memory games: ``jaxconv simulate memory-game ...`` and ``jaxconv simulate best-response ...``.

``add_parsers(games)`` adds both to the ``simulate`` subparsers; ``run(args)`` runs the ensemble and returns one
JSON-ready dict. Bad values raise ValueError with one line naming the value.

Result keys: ``winner_counts`` (name -> replicas; majority name of each replica's final 3N interactions),
``consensus_fraction`` (replicas that reached consensus, see ``jaxconv.games.memory``), ``stopped_fraction`` and
``stop_time_mean_rounds`` (the paper's stop rule, interactions / N, over the replicas that stopped),
``success_rate_by_round`` (mean share of successful interactions per population round; a run that has ended counts
as succeeding, as it ended on a streak of successes or at consensus), ``flip_fraction`` (with committed agents:
replicas whose non-committed agents' latest choices are >= 95% the committed name), ``pushed_share_by_round`` and
``flipped_paper_criterion`` (the paper's criterion, :mod:`jaxconv.criteria`: per round the non-committed agents'
share of the pushed name, replicas that converged padded with share 1, mean over the replicas that have each round,
flipped if the last 3 rounds sum to >= 2.849) and ``interactions_per_second``
(interaction slots simulated per second of run time, ended runs included).
"""

import math

import numpy as np

from jaxconv.criteria import ends_converged

GRAPH_PARAMETERS = {
    "complete": {},
    "ring": {"k": 2},
    "lattice2d": {},
    "er": {"mean_degree": 4.0, "seed": None},
    "ba": {"m": 2, "seed": None},
    "ws": {"k": 4, "p": 0.1, "seed": None},
    "regular": {"d": 4, "seed": None},
}
POLICIES = ("best-response", "uniform", "softmax", "lookup")


def add_parsers(games) -> None:
    """Add the ``memory-game`` and ``best-response`` subcommands to the ``simulate`` subparsers ``games``."""
    memory = games.add_parser("memory-game", help="memory-window coordination game (the LLM naming-game protocol)")
    _common_arguments(memory, memory_default=5)
    memory.add_argument("--policy", default="best-response", help=" | ".join(POLICIES))
    memory.add_argument("--update", default="both", help="both | hearer (who remembers an interaction)")
    memory.add_argument("--committed", type=int, default=0, help="K committed agents (converted from the N)")
    memory.add_argument("--initial", default="empty", help="empty | prepared (H x (name 0, name 0, success))")
    memory.add_argument("--stop", default="successes", help="successes (last 3N succeeded) | consensus | none")
    memory.add_argument("--payoffs", type=float, nargs=2, default=(100.0, -50.0), metavar=("SUCCESS", "FAILURE"))
    memory.add_argument("--payoff-weight", type=float, help="best response: weight of own payoffs (default none)")
    memory.add_argument("--bias", type=float, nargs="+", help="softmax: W per-name bias logits (default 0)")
    for name in ("win-stay", "lose-shift", "copy-partner", "own-weight", "partner-weight"):
        memory.add_argument(f"--{name}", type=float, default=0.0, help="softmax weight")
    memory.add_argument("--recency", type=float, default=1.0, help="softmax: weight recency^h of the h-th latest")
    memory.add_argument("--temperature", type=float, default=1.0, help="softmax temperature")
    memory.add_argument("--table", help="lookup: .npy file of P(name | last d interactions), shape (W+1,)*2d+(W,)")

    best = games.add_parser("best-response", help="Centola et al. (2018) best-response model with committed agents")
    _common_arguments(best, memory_default=12)
    best.add_argument("--committed-fraction", type=float, default=0.25, help="p, committed share of the N")
    best.add_argument("--payoff-weight", type=float, help="weight of own payoffs in the best response (default none)")


def _common_arguments(parser, memory_default: int) -> None:
    parser.add_argument("--agents", type=int, default=24, help="N (default 24)")
    parser.add_argument("--names", type=int, default=2, help="W (default 2)")
    parser.add_argument("--memory", type=int, default=memory_default, help=f"H or M (default {memory_default})")
    parser.add_argument("--replicas", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30, help="population rounds (N interactions each)")
    from jaxconv.cli.main import seed

    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--graph", default="complete", help=" | ".join(GRAPH_PARAMETERS))
    parser.add_argument(
        "--graph-param",
        action="append",
        default=[],
        metavar="[NAME=]VALUE",
        help="e.g. k=4, p=0.1, m=2, d=4, seed=1; a bare VALUE sets the graph's first parameter (ring k, er "
        "mean_degree, ba m, ws k, regular d)",
    )
    parser.add_argument("--schedule", default="pairs", help="pairs | matching")
    parser.add_argument("--placement", default="first", help="first (agents 0..k-1) | random committed agents")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict:
    """Run ``args.game`` ("memory-game" or "best-response") and return the result dict."""
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    import jax

    from jaxconv.engine import timed_ensemble

    for label, value in (("replicas", args.replicas), ("rounds", args.rounds)):
        if value < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    game = _game(args)
    steps_per_round = 2 if args.schedule == "matching" else args.agents
    if args.rounds * steps_per_round >= 2**31:
        raise ValueError(
            f"--rounds {args.rounds} x {steps_per_round} steps per round overflows the int32 step counters "
            f"(max {2**31 - 1} steps)"
        )
    interactions_per_round = steps_per_round * game.interactions_per_step
    result, compile_seconds, run_seconds = timed_ensemble(
        jax.random.key(args.seed), game, args.replicas, args.rounds * steps_per_round, steps_per_round
    )
    out = {
        "game": args.game,
        "agents": args.agents,
        "names": args.names,
        "memory": args.memory,
        "committed": int(game.n_committed),
        "update": game.update,
        "policy": type(game.policy).__name__,
        "graph": game.graph.describe(),
        "schedule": args.schedule,
        "replicas": args.replicas,
        "rounds": args.rounds,
        "interactions_per_round": interactions_per_round,
        "devices": jax.local_device_count(),
        "interactions_per_second": args.replicas * args.rounds * interactions_per_round / run_seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
    }
    return out | summarize_ensemble(game, *result, interactions_per_round)


def summarize_ensemble(game, summary: dict, observations: dict, interactions_per_round: int) -> dict:
    """The result keys of the module docstring from an ensemble recorded once per population round."""
    n = game.n_agents
    stopped = summary["stop_time"] >= 0
    reached = summary["consensus_time"] >= 0
    winners = summary["winner"]
    played = np.diff(observations["interactions"], axis=1, prepend=0)
    succeeded = np.diff(observations["successes"], axis=1, prepend=0)
    ended = played == 0
    rate = np.where(ended, 1.0, succeeded / np.maximum(played, 1))
    out = {
        "winner_counts": {str(w): int(np.sum(winners == w)) for w in range(game.n_names)},
        "consensus_fraction": float(reached.mean()),
        "consensus_time_mean_rounds": _mean_or_none(summary["consensus_time"][reached] / n),
        "stopped_fraction": float(stopped.mean()),
        "stop_time_mean_rounds": _mean_or_none(summary["stop_time"][stopped] / n),
        "success_rate_by_round": [round(float(x), 6) for x in rate.mean(axis=0)],
        "running_fraction_by_round": [round(float(x), 6) for x in (~ended).mean(axis=0)],
        "flip_fraction": None,
    }
    if int(game.n_committed) > 0:
        from jaxconv.criteria import population_curve, simulated_shares

        shares, lengths = simulated_shares(
            observations["free_choices"], observations["interactions"], int(game.committed_name), n
        )
        curve = population_curve(shares, lengths, horizon_rounds=shares.shape[-1])
        out["flip_fraction"] = float(summary["flipped"].mean())
        out["pushed_share_by_round"] = [round(float(x), 6) for x in curve]
        out["flipped_paper_criterion"] = bool(ends_converged(curve))
    return out


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _game(args):
    from jaxconv.games.memory import MemoryGame, best_response_game

    graph = make_graph(args.graph, args.agents, args.graph_param, args.seed)
    if args.game == "best-response":
        return best_response_game(
            args.agents,
            args.memory,
            args.committed_fraction,
            n_names=args.names,
            payoff_weight=args.payoff_weight,
            schedule=args.schedule,
            graph=graph,
            placement=args.placement,
        )
    stop = None if args.stop == "none" else args.stop
    return MemoryGame(
        args.agents,
        args.names,
        args.memory,
        policy=_policy(args),
        update=args.update,
        payoffs=args.payoffs,
        initial=args.initial,
        committed=args.committed,
        placement=args.placement,
        stop=stop,
        schedule=args.schedule,
        graph=graph,
    )


def _policy(args):
    from jaxconv import policies

    if args.policy == "best-response":
        return policies.BestResponse(args.payoff_weight)
    if args.policy == "uniform":
        return policies.Uniform()
    if args.policy == "softmax":
        return policies.SoftmaxSurrogate(
            np.zeros(args.names) if args.bias is None else args.bias,
            win_stay=args.win_stay,
            lose_shift=args.lose_shift,
            copy_partner=args.copy_partner,
            own_weight=args.own_weight,
            partner_weight=args.partner_weight,
            recency=args.recency,
            temperature=args.temperature,
        )
    if args.policy == "lookup":
        if not args.table:
            raise ValueError("--policy lookup needs --table FILE.npy")
        table = np.load(args.table, allow_pickle=False)
        if not isinstance(table, np.ndarray) or not np.issubdtype(table.dtype, np.number):
            raise ValueError(f"--table {args.table} must be a .npy file of numbers")
        return policies.LookupTable(table)
    raise ValueError(f"unknown policy {args.policy!r}; choose one of {list(POLICIES)}")


def make_graph(kind: str, n_agents: int, params: list[str], seed: int):
    """The graph ``kind`` on ``n_agents`` nodes with ``NAME=VALUE`` parameters (a bare ``VALUE`` names the kind's
    first parameter; defaults in ``GRAPH_PARAMETERS``; ``seed`` defaults to the run's seed)."""
    from jaxconv import topology

    if kind not in GRAPH_PARAMETERS:
        raise ValueError(f"unknown graph {kind!r}; choose one of {list(GRAPH_PARAMETERS)}")
    values = dict(GRAPH_PARAMETERS[kind])
    for item in params:
        name, named, text = item.partition("=")
        if not named:
            name, text = next(iter(values), None), item
        if name not in values or not text:
            raise ValueError(f"bad --graph-param {item!r} for graph {kind!r}; parameters: {sorted(values) or 'none'}")
        try:
            values[name] = float(text) if name in ("p", "mean_degree") else int(text)
        except ValueError:
            raise ValueError(f"bad --graph-param {item!r}: {name} must be a number") from None
    if "seed" in values and values["seed"] is None:
        values["seed"] = seed
    if kind == "complete":
        return None
    if kind == "ring":
        return topology.ring(n_agents, **values)
    if kind == "lattice2d":
        side = math.isqrt(n_agents)
        if side * side != n_agents:
            raise ValueError(f"--graph lattice2d needs a square number of agents, got {n_agents}")
        return topology.lattice2d(side)
    if kind == "er":
        return topology.erdos_renyi(n_agents, **values)
    if kind == "ba":
        return topology.barabasi_albert(n_agents, **values)
    if kind == "ws":
        return topology.watts_strogatz(n_agents, **values)
    return topology.random_regular(n_agents, **values)
