"""``jaxconv simulate naming-game ...``: an ensemble of the naming game family (:mod:`jaxconv.games.naming`).

``add_parser(games)`` adds the subcommand (its own options and the shared ones of :mod:`jaxconv.cli.options`);
``run(args)`` returns one JSON-ready dict. ``add_arguments``, ``plan`` and ``outcomes`` are what ``jaxconv sweep``
reuses. Result keys: docs/cli.md.
"""

import argparse

import numpy as np

from jaxconv.cli import options


def vocabulary(text: str):
    """argparse type of ``--vocabulary``: ``open`` or a number of names."""
    if text == "open":
        return "open"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'open' or a number of names, got {text!r}") from None


def add_parser(games) -> None:
    """Add ``naming-game`` to the ``simulate`` subparsers ``games``."""
    add_arguments(games.add_parser("naming-game", help="the naming game family (Baronchelli et al. 2006)"))


def add_arguments(parser, sweep: bool = False) -> None:
    """The options of the naming game on ``parser`` (``sweep``: as ``jaxconv sweep`` has them)."""
    parser.add_argument("--agents", type=int, default=100, help="N, uncommitted agents (default 100)")
    parser.add_argument(
        "--steps", type=int, default=20_000, help="interactions per replica (rounded up to whole rounds)"
    )
    parser.add_argument("--vocabulary", type=vocabulary, default="open", help="'open' or a pool of W names")
    parser.add_argument("--empty-speaker", default="keeps", help="keeps | forgets (finite pool only)")
    parser.add_argument("--beta", type=float, default=1.0, help="probability that a success collapses inventories")
    parser.add_argument("--committed", type=int, default=0, help="K committed agents")
    parser.add_argument(
        "--committed-mode", default="added", help="added | converted (converted: needed on a non-complete graph)"
    )
    parser.add_argument("--initial", default="empty", help="empty | prepared (uncommitted agents hold name 0)")
    parser.add_argument("--schedule", default="pairs", help="pairs | matching")
    parser.add_argument(
        "--until-consensus", action="store_true", help="stop each replica at consensus (--steps is then the maximum)"
    )
    parser.add_argument(
        "--inventory", default="auto", help="auto | bitsets | slots (K word ids per agent, for large N)"
    )
    parser.add_argument("--capacity", type=int, default=None, help="initial word slots per agent (default from N)")
    parser.add_argument(
        "--stepping",
        default="auto",
        help="auto | sequential | blocks (exact conflict-free blocks of random pairs; auto: blocks with word slots)",
    )
    parser.add_argument(
        "--block-size", type=int, default=None, help="candidate interactions per block (default 2/3 sqrt(N))"
    )
    options.add_simulation_options(parser, sweep=sweep)


def plan(args) -> options.Plan:
    """The game of ``args`` and its steps: ``--steps`` rounded up to whole population rounds, recorded per round."""
    from jaxconv.engine import check_steps
    from jaxconv.games.base import check_int
    from jaxconv.games.naming import NamingGame

    n_nodes = args.agents + (args.committed if args.committed_mode == "added" else 0)
    graph = options.make_graph(args.graph, n_nodes, args.graph_param, args.seed)
    game = NamingGame(
        args.agents,
        vocabulary=args.vocabulary,
        empty_speaker=args.empty_speaker,
        beta=args.beta,
        committed=args.committed,
        committed_mode=args.committed_mode,
        initial=args.initial,
        schedule=args.schedule,
        graph=graph,
        inventory=args.inventory,
        capacity=args.capacity,
        stepping=args.stepping,
        block_size=args.block_size,
    )
    check_int("--steps", args.steps, low=1)
    steps_per_round = 2 if args.schedule == "matching" else game.n_population
    interactions_per_round = steps_per_round * game.interactions_per_step
    n_rounds = -(-args.steps // interactions_per_round)
    try:
        check_steps(n_rounds * steps_per_round, steps_per_round, game)
    except ValueError as error:
        raise ValueError(f"--steps {args.steps} (rounded up to {n_rounds} whole rounds): {error}") from None
    return options.Plan(game, n_rounds * steps_per_round, steps_per_round, args.until_consensus, interactions_per_round)


def run(args) -> dict:
    """``jaxconv simulate naming-game``: the ensemble of ``args``, described and summarized."""
    return options.simulate(args, plan, describe, outcomes)


def describe(args, plan: options.Plan, used: dict) -> dict:
    """What ran and how: the game's sizes, inventories, devices and execution path."""
    from jaxconv.engine import devices_for

    game = plan.game
    n_devices = devices_for(args.replicas)
    chunk = min(options.chunk_size(args), args.replicas) if options.chunked(args) else args.replicas
    per_device = -(-chunk // n_devices)
    path = (
        f"{args.replicas} replica(s) on {n_devices} of {used['devices']} device(s) in {used['processes']} "
        f"process(es), {per_device} per device"
        + (f" in chunks of {chunk}, " if chunk < args.replicas else ", ")
        + ("unbatched (as simulate)" if per_device == 1 else "vmapped")
        + (f", conflict-free blocks of {game.block_size} candidate pairs" if game.in_blocks else ", one step at a time")
        + (", stopped at consensus" if args.until_consensus else "")
    )
    return {
        "game": "naming-game",
        "agents": args.agents,
        "population": game.n_population,
        "graph": game.graph.describe(),
        "replicas": args.replicas,
        "interactions": plan.n_steps * game.interactions_per_step,
        "interactions_per_round": plan.interactions_per_round,
        "devices": used["devices"],
        "devices_used": n_devices,
        "processes": used["processes"],
        "path": path,
        "inventory": game.inventory,
        "stepping": game.stepping,
        "initial_capacity": game.capacity,
        "state_bytes_per_replica": game.state_bytes(),
    }


def outcomes(args, plan: options.Plan, result) -> dict:
    """Means over the replicas, each with its standard error (``..._se``), from ``result`` = (summary,
    observations) of :func:`plan`'s ensemble."""
    summary, observations = result
    game = plan.game
    reached = summary["consensus_time"] >= 0
    capacities = np.asarray(summary.get("capacity", np.array([game.capacity])))
    grown, regrowths = game, 0
    while grown.capacity < np.max(capacities):
        grown, regrowths = grown.grown(), regrowths + 1
    out = {
        "capacity": int(np.max(capacities)),
        "capacity_regrowths": regrowths,
        "replicas_regrown": int(np.sum(capacities > game.capacity)),
    }
    options.with_se(out, "consensus_fraction", reached)
    options.with_se(out, "consensus_time_mean", summary["consensus_time"][reached])
    options.with_se(out, "max_total_words_mean", summary["peak_total_words"])
    if len(reached) == 1:
        out["consensus_time"] = int(summary["consensus_time"][0])
    if observations is not None:
        successes = np.diff(observations["successes"], axis=1, prepend=0) / plan.interactions_per_round
        options.with_se(out, "success_rate_by_round", successes)
    if int(game.n_committed) > 0:
        options.with_se(out, "committed_flip_fraction", summary["committed_flip"])
    return out
