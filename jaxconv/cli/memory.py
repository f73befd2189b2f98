"""``jaxconv simulate memory-game ...`` and ``jaxconv simulate best-response ...``: ensembles of the memory-window
games (:mod:`jaxconv.games.memory`).

``add_parsers(games)`` adds both to the ``simulate`` subparsers (their own options and the shared ones of
:mod:`jaxconv.cli.options`); ``run(args)`` returns one JSON-ready dict. ``add_arguments``, ``plan`` and
``outcomes`` are what ``jaxconv sweep`` reuses. Bad values raise ValueError with one line naming the value. Result
keys: docs/cli.md.
"""

import numpy as np

from jaxconv.cli import options
from jaxconv.criteria import ends_converged

POLICIES = ("best-response", "uniform", "softmax", "lookup")


def add_parsers(games) -> None:
    """Add the ``memory-game`` and ``best-response`` subcommands to the ``simulate`` subparsers ``games``."""
    add_arguments(
        games.add_parser("memory-game", help="memory-window coordination game (the LLM naming-game protocol)"),
        "memory-game",
    )
    add_arguments(
        games.add_parser("best-response", help="Centola et al. (2018) best-response model with committed agents"),
        "best-response",
    )


def add_arguments(parser, game: str, sweep: bool = False) -> None:
    """The options of ``game`` ("memory-game" or "best-response") on ``parser`` (``sweep``: as ``jaxconv sweep``
    has them)."""
    memory_default = 5 if game == "memory-game" else 12
    parser.add_argument("--agents", type=int, default=24, help="N (default 24)")
    parser.add_argument("--names", type=int, default=2, help="W (default 2)")
    parser.add_argument("--memory", type=int, default=memory_default, help=f"H or M (default {memory_default})")
    parser.add_argument("--rounds", type=int, default=30, help="population rounds (N interactions each)")
    parser.add_argument("--schedule", default="pairs", help="pairs | matching")
    parser.add_argument("--placement", default="first", help="first (agents 0..k-1) | random committed agents")
    if game == "best-response":
        parser.add_argument("--committed-fraction", type=float, default=0.25, help="p, committed share of the N")
        parser.add_argument(
            "--payoff-weight", type=float, help="weight of own payoffs in the best response (default none)"
        )
        options.add_simulation_options(parser, sweep=sweep)
        return
    parser.add_argument("--policy", default="best-response", help=" | ".join(POLICIES))
    parser.add_argument("--update", default="both", help="both | hearer (who remembers an interaction)")
    parser.add_argument("--committed", type=int, default=0, help="K committed agents (converted from the N)")
    parser.add_argument("--initial", default="empty", help="empty | prepared (H x (name 0, name 0, success))")
    parser.add_argument("--stop", default="successes", help="successes (last 3N succeeded) | consensus | none")
    parser.add_argument("--payoffs", type=float, nargs=2, default=(100.0, -50.0), metavar=("SUCCESS", "FAILURE"))
    parser.add_argument("--payoff-weight", type=float, help="best response: weight of own payoffs (default none)")
    parser.add_argument("--bias", type=float, nargs="+", help="softmax: W per-name bias logits (default 0)")
    for name in ("win-stay", "lose-shift", "copy-partner", "own-weight", "partner-weight"):
        parser.add_argument(f"--{name}", type=float, default=0.0, help="softmax weight")
    parser.add_argument("--recency", type=float, default=1.0, help="softmax: weight recency^h of the h-th latest")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature")
    parser.add_argument("--table", help="lookup: .npy file of P(name | last d interactions), shape (W+1,)*2d+(W,)")
    options.add_simulation_options(parser, sweep=sweep)


def plan(args) -> options.Plan:
    """The game of ``args`` for ``--rounds`` population rounds, recorded once per round."""
    if args.rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {args.rounds}")
    game = _game(args)
    steps_per_round = 2 if args.schedule == "matching" else args.agents
    if args.rounds * steps_per_round >= 2**31:
        raise ValueError(
            f"--rounds {args.rounds} x {steps_per_round} steps per round overflows the int32 step counters "
            f"(max {2**31 - 1} steps)"
        )
    interactions_per_round = steps_per_round * game.interactions_per_step
    return options.Plan(game, args.rounds * steps_per_round, steps_per_round, False, interactions_per_round)


def run(args) -> dict:
    """Run ``args.game`` ("memory-game" or "best-response") and return the result dict."""
    return options.simulate(args, plan, describe, outcomes)


def describe(args, plan: options.Plan, used: dict) -> dict:
    """What ran: the game's sizes, policy, graph, schedule and devices."""
    game = plan.game
    return {
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
        "interactions_per_round": plan.interactions_per_round,
        "devices": used["devices"],
        "processes": used["processes"],
    }


def outcomes(args, plan: options.Plan, result) -> dict:
    """The outcomes of an ensemble recorded once per population round (docs/cli.md): counts, and means over the
    replicas each with its standard error (``..._se``)."""
    summary, observations = result
    game = plan.game
    n = game.n_agents
    stopped = summary["stop_time"] >= 0
    reached = summary["consensus_time"] >= 0
    winners = summary["winner"]
    played = np.diff(observations["interactions"], axis=1, prepend=0)
    succeeded = np.diff(observations["successes"], axis=1, prepend=0)
    ended = played == 0
    rate = np.where(ended, 1.0, succeeded / np.maximum(played, 1))
    out = {
        "winner_counts": {str(w): int(np.sum(stopped & (winners == w))) for w in range(game.n_names)},
        "final_majority_counts": {str(w): int(np.sum(winners == w)) for w in range(game.n_names)},
    }
    options.with_se(out, "consensus_fraction", reached)
    options.with_se(out, "consensus_time_mean_rounds", summary["consensus_time"][reached] / n)
    options.with_se(out, "stopped_fraction", stopped)
    options.with_se(out, "stop_time_mean_rounds", summary["stop_time"][stopped] / n)
    options.with_se(out, "success_rate_by_round", rate)
    options.with_se(out, "running_fraction_by_round", ~ended)
    out["flip_fraction"] = out["flip_fraction_se"] = None
    if int(game.n_committed) > 0:
        from jaxconv.criteria import padded, population_curve, simulated_shares

        shares, lengths = simulated_shares(
            observations["free_choices"], observations["interactions"], int(game.committed_name), n
        )
        curve = population_curve(shares, lengths, horizon_rounds=shares.shape[-1])
        options.with_se(out, "flip_fraction", summary["flipped"])
        share, share_se = options.mean_se(padded(shares, lengths, horizon_rounds=shares.shape[-1]))
        out["pushed_share_by_round"], out["pushed_share_by_round_se"] = share[: len(curve)], share_se[: len(curve)]
        out["flipped_paper_criterion"] = bool(ends_converged(curve))
    return out


def _game(args):
    from jaxconv.games.memory import MemoryGame, best_response_game

    graph = options.make_graph(args.graph, args.agents, args.graph_param, args.seed)
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
