"""Command line: ``jaxconv simulate naming-game|memory-game|best-response ...``, ``jaxconv data summary PATH``,
``jaxconv fit PATH``, ``jaxconv tipping MODEL ...``.

Every command prints one JSON object with ``--json`` (a short text summary otherwise). Bad input ends with a
one-line ``jaxconv: error: ...`` message and exit status 2.
"""

import argparse
import json
import sys

from jaxconv import cli_fit, cli_memory, cli_tipping


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SystemExit(_fail(f"{self.prog}: {message}"))


def _fail(message: str) -> int:
    print(f"jaxconv: error: {message}", file=sys.stderr)
    return 2


def seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [-2**63, 2**63) (what a JAX key holds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text[:40]!r}") from None
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [-2**63, 2**63), got {text[:40]}")
    return value


def _vocabulary(text: str):
    if text == "open":
        return "open"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'open' or a number of names, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxconv", description="Dynamics of social conventions in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    simulate = commands.add_parser("simulate", help="run an ensemble of a game")
    games = simulate.add_subparsers(dest="game", required=True, parser_class=_Parser)
    naming = games.add_parser("naming-game", help="the naming game family (Baronchelli et al. 2006)")
    naming.add_argument("--agents", type=int, default=100, help="N, uncommitted agents (default 100)")
    naming.add_argument("--replicas", type=int, default=256)
    naming.add_argument(
        "--steps", type=int, default=20_000, help="interactions per replica (rounded up to whole rounds)"
    )
    naming.add_argument("--seed", type=seed, default=0)
    naming.add_argument("--vocabulary", type=_vocabulary, default="open", help="'open' or a pool of W names")
    naming.add_argument("--empty-speaker", default="keeps", help="keeps | forgets (finite pool only)")
    naming.add_argument("--beta", type=float, default=1.0)
    naming.add_argument("--committed", type=int, default=0, help="K committed agents")
    naming.add_argument("--committed-mode", default="added", help="added | converted")
    naming.add_argument("--initial", default="empty", help="empty | prepared (uncommitted agents hold name 0)")
    naming.add_argument("--schedule", default="pairs", help="pairs | matching")
    naming.add_argument("--json", action="store_true", help="print one JSON object")
    cli_memory.add_parsers(games)

    data = commands.add_parser("data", help="LLM experiment logs")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    summary = data_commands.add_parser("summary", help="metadata, winners, stop times and flips per file")
    summary.add_argument("path", help="a zip file, a folder or a single log file")
    summary.add_argument("--json", action="store_true")
    cli_fit.add_parser(commands)
    cli_tipping.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    try:
        if args.command == "simulate" and args.game == "naming-game":
            result = _simulate_naming_game(args)
        elif args.command in ("simulate", "fit"):
            from jaxconv.devices import use_cpu_cores

            use_cpu_cores()
            result = (cli_memory if args.command == "simulate" else cli_fit).run(args)
        elif args.command == "tipping":
            result = cli_tipping.run(args)
        else:
            from jaxconv.data.summary import summarize_path, summary_text

            result = summarize_path(args.path)
            if not args.json:
                print(summary_text(result))
                return 0
    except (ValueError, OSError, OverflowError, MemoryError) as error:  # OSError includes FileNotFoundError
        return _fail((str(error).splitlines() or [type(error).__name__])[0][:500])
    if args.command in ("fit", "tipping") and not args.json:
        print((cli_fit if args.command == "fit" else cli_tipping).text(result))
    else:
        _print(result, args.json)
    return 0


def _simulate_naming_game(args) -> dict:
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    import jax
    import numpy as np

    from jaxconv.engine import check_steps, timed_ensemble
    from jaxconv.games.naming import NamingGame

    game = NamingGame(
        args.agents,
        vocabulary=args.vocabulary,
        empty_speaker=args.empty_speaker,
        beta=args.beta,
        committed=args.committed,
        committed_mode=args.committed_mode,
        initial=args.initial,
        schedule=args.schedule,
    )
    check_steps(args.steps, 1)
    if args.replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {args.replicas}")
    steps_per_round = 2 if args.schedule == "matching" else game.n_population
    interactions_per_round = steps_per_round * game.interactions_per_step
    n_rounds = -(-args.steps // interactions_per_round)
    if n_rounds * steps_per_round >= 2**31:
        raise ValueError(
            f"--steps {args.steps} (rounded up to {n_rounds} whole rounds = {n_rounds * steps_per_round} steps) "
            f"overflows the int32 step counters (max {2**31 - 1} steps)"
        )
    result, compile_seconds, run_seconds = timed_ensemble(
        jax.random.key(args.seed), game, args.replicas, n_rounds * steps_per_round, steps_per_round
    )
    summary, observations = result
    successes = np.diff(observations["successes"], axis=1, prepend=0) / interactions_per_round
    reached = summary["consensus_time"] >= 0
    interactions = args.replicas * n_rounds * interactions_per_round
    out = {
        "game": "naming-game",
        "agents": args.agents,
        "population": game.n_population,
        "replicas": args.replicas,
        "interactions": n_rounds * interactions_per_round,
        "interactions_per_round": interactions_per_round,
        "devices": jax.local_device_count(),
        "interactions_per_second": interactions / run_seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "consensus_fraction": float(reached.mean()),
        "consensus_time_mean": float(summary["consensus_time"][reached].mean()) if reached.any() else None,
        "max_total_words_mean": float(summary["peak_total_words"].mean()),
        "success_rate_by_round": [round(float(x), 6) for x in successes.mean(axis=0)],
    }
    if args.committed > 0:
        out["committed_flip_fraction"] = float(summary["committed_flip"].mean())
    return out


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, list) and len(value) > 8 and all(isinstance(v, float) for v in value):
            value = f"[{', '.join(f'{v:.3g}' for v in value[:8])}, ...] ({len(value)} values)"
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
