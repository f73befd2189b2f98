"""``jaxconv tipping binary-naming-game|best-response ...``: the committed fraction p_c at which a committed minority
overturns a prepared convention with probability 1/2 (:mod:`jaxconv.estimate.tipping`).

``add_parser(commands)`` adds the ``tipping`` subcommand; ``run(args)`` returns one JSON-ready dict. Bad values
raise ValueError with one line naming the value.

- ``binary-naming-game``: Xie et al. (2011), names A=0 and B=1, the N agents prepared on A, committed agents
  converted from the N; flip = every uncommitted agent holds only B after ``--rounds`` rounds (N interactions each).
- ``best-response``: Centola et al. (2018), memory M, name 0 prepared, committed agents play 1; flip = >= 95% of
  the uncommitted agents' latest choices are 1 after ``--rounds`` rounds.

``--method gradient`` (stochastic Newton with score-function gradients, to ``--target-se``), ``sweep`` (grid of
``--grid-points`` values of p over ``--grid LOW HIGH``, ``--replicas`` each) or ``meanfield`` (binary naming game
only: the mean-field threshold of :mod:`jaxconv.meanfield`). Result keys: ``p_c``, ``p_c_se``, ``p_c_interval``
(95%), ``simulated_interactions``, ``method``, ``agents``, ``rounds``, ``seed`` and the method's details.
"""

import math

import numpy as np

from jaxconv.cli import options

MODELS = ("binary-naming-game", "best-response", "fitted")
METHODS = ("gradient", "sweep", "meanfield")


def add_parser(commands) -> None:
    """Add ``tipping`` to the top-level subparsers ``commands``."""
    tipping = commands.add_parser("tipping", help="critical mass p_c of a committed minority (gradient or sweep)")
    models = tipping.add_subparsers(dest="model", required=True)
    naming = models.add_parser("binary-naming-game", help="Xie et al. (2011): names A, B; committed to B")
    _common_arguments(naming)
    naming.add_argument("--beta", type=float, default=1.0, help="collapse probability on success (default 1)")
    best = models.add_parser("best-response", help="Centola et al. (2018): best response to the last M plays")
    _common_arguments(best)
    best.add_argument("--memory", type=int, default=12, help="M (default 12)")
    fitted = models.add_parser("fitted", help="the LLM protocol under the policies of a `jaxconv fit --json` output")
    fitted.add_argument("fit", help="the JSON written by `jaxconv fit ... --json`")
    _common_arguments(fitted, agents=24, rounds=30)
    fitted.add_argument("--llm", help="only this model of the fit (default: every model)")


def _common_arguments(parser, agents: int = 100, rounds: int = 100) -> None:
    parser.add_argument("--agents", type=int, default=agents, help=f"N (default {agents})")
    parser.add_argument(
        "--rounds", type=int, default=rounds, help=f"horizon in population rounds of N interactions (default {rounds})"
    )
    parser.add_argument("--method", default="gradient", help=" | ".join(METHODS))
    parser.add_argument("--seed", type=options.seed, default=0, help="random seed")
    parser.add_argument("--schedule", default="pairs", help="pairs | matching")
    parser.add_argument("--p0", type=float, default=0.2, help="gradient: starting committed probability")
    parser.add_argument("--target-se", type=float, default=0.003, help="gradient: standard error to reach")
    parser.add_argument("--initial-replicas", type=int, default=64, help="gradient: replicas per early iteration")
    parser.add_argument("--max-replicas", type=int, default=1 << 16, help="gradient: replica budget")
    parser.add_argument("--max-iterations", type=int, default=40, help="gradient: iteration budget")
    parser.add_argument("--replicas", type=int, default=256, help="sweep: replicas per grid point")
    parser.add_argument("--grid", type=float, nargs=2, default=(0.0, 0.5), metavar=("LOW", "HIGH"), help="sweep")
    parser.add_argument("--grid-points", type=int, default=16, help="sweep: values of p (default 16)")
    parser.add_argument("--fit", default="mixture", help="sweep: mixture (default) | linear")
    parser.add_argument(
        "--sensitivity-batches",
        type=int,
        default=16,
        help="gradient: batches of --initial-replicas x 4 replicas for dp_c/dtheta (0: none; default 16)",
    )
    options.add_output(parser)


def run(args) -> dict:
    """The ``tipping`` command: the threshold of ``args.model`` by ``args.method``."""
    if args.method not in METHODS:
        raise ValueError(f"unknown method {args.method!r}; choose one of {list(METHODS)}")
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose one of {list(MODELS)}")
    for label, value, low in (("agents", args.agents, 2), ("rounds", args.rounds, 1)):
        if value < low:
            raise ValueError(f"{label} must be >= {low}, got {value}")
    if args.sensitivity_batches < 0 or args.sensitivity_batches == 1:
        raise ValueError(f"sensitivity-batches must be 0 or >= 2, got {args.sensitivity_batches}")
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    out = {"model": args.model, "method": args.method, "agents": args.agents, "rounds": args.rounds, "seed": args.seed}
    if args.model == "fitted":
        return out | {"fit": args.fit, "thresholds": _fitted(args)}
    out |= {"schedule": args.schedule}
    if args.model == "best-response":
        out["memory"] = args.memory
    if args.model == "binary-naming-game":
        out["beta"] = args.beta
    return out | _threshold(args, _game(args))


def _threshold(args, game) -> dict:
    """The threshold of ``game`` (committed name 1 against a population prepared on 0) by ``args.method``, with
    the sensitivities dp_c/dtheta to its float parameters."""
    import jax

    from jaxconv.estimate.tipping import threshold_by_gradient, threshold_by_sweep, threshold_sensitivities

    if args.method == "meanfield":
        return _meanfield(game)
    steps_per_round = max(1, args.agents // game.interactions_per_step)
    n_steps = args.rounds * steps_per_round
    key, sensitivity_key = jax.random.split(jax.random.key(args.seed))
    out = {"interactions_per_replica": n_steps * game.interactions_per_step}
    if args.method == "gradient":
        if not 0 < args.p0 < 1:
            raise ValueError(f"p0 must be in (0, 1), got {args.p0}")
        result = threshold_by_gradient(
            key,
            game,
            n_steps,
            p0=args.p0,
            target_se=args.target_se,
            initial_replicas=args.initial_replicas,
            max_replicas=args.max_replicas,
            max_iterations=args.max_iterations,
        )
        result["history"] = [
            {k: v for k, v in step.items() if k in ("p", "replicas", "P_flip", "gradient", "p_c", "p_c_se", "step")}
            for step in result["history"]
        ]
        if args.sensitivity_batches and 0 < result["p_c"] < 1:
            sensitivities = threshold_sensitivities(
                sensitivity_key,
                game,
                n_steps,
                result["p_c"],
                n_batches=args.sensitivity_batches,
                replicas_per_batch=4 * args.initial_replicas,
            )
            result["simulated_interactions"] += sensitivities.pop("simulated_interactions")
            result |= sensitivities
    else:
        low, high = args.grid
        if not 0 <= low < high <= 1:
            raise ValueError(f"--grid must satisfy 0 <= LOW < HIGH <= 1, got {low} {high}")
        if args.grid_points < 2:
            raise ValueError(f"grid-points must be >= 2, got {args.grid_points}")
        result = threshold_by_sweep(
            key, game, n_steps, grid=np.linspace(low, high, args.grid_points), n_replicas=args.replicas, fit=args.fit
        )
    return out | {k: _plain(v) for k, v in result.items() if k != "method"}


def _meanfield(game) -> dict:
    """Mean-field critical mass (``jaxconv.meanfield``): the fold of the incumbent branch."""
    from jaxconv.games.naming import NamingGame
    from jaxconv.meanfield import binary_naming_threshold, memory_threshold

    if isinstance(game, NamingGame):
        result = binary_naming_threshold(beta=float(game.beta))
        return {"p_c": float(result["p_c"]), "sensitivities": {"beta": float(result["dp_c_dbeta"])}}
    result = memory_threshold(game)
    return {
        "p_c": float(result["p_c"]),
        "sensitivities": {
            f"policy.{name}": _plain(np.asarray(value)) for name, value in result["sensitivities"].items()
        },
        "window_types": result["n_types"],
    }


MAX_WINDOW_TYPES = 4096  # the mean field's fold solves dense (2K + 1)-square systems


def _fitted(args) -> list[dict]:
    """One threshold per model, name set and incumbent of the fit: the memory game of the LLM protocol (memory H,
    payoffs of the logs) with the fitted policy, the population prepared on one name and the committed agents
    answering another (each ordered pair of the first two names)."""
    import json
    from pathlib import Path

    from jaxconv.estimate.fit import policy_from_parameters
    from jaxconv.games.memory import MemoryGame

    path = Path(args.fit)
    try:
        fit = json.loads(path.read_text())
        models = fit["models"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not the JSON of `jaxconv fit --json` ({type(error).__name__}: {error})") from None
    if args.llm is not None and args.llm not in models:
        raise ValueError(f"model {args.llm!r} is not in {path}; it has {sorted(models)}")
    thresholds = []
    for llm, found in models.items():
        if args.llm not in (None, llm):
            continue
        for group in found.get("groups", []):
            names, memory = group["names"], group["memory"]
            policy = policy_from_parameters(group["policy"], group["parameters"], group.get("fixed", {}), names)
            for incumbent, pushed in ((0, 1), (1, 0)):
                game = MemoryGame(
                    args.agents,
                    len(names),
                    memory,
                    policy=policy,
                    initial="prepared",
                    prepared_name=incumbent,
                    committed_name=pushed,
                    stop=None,
                    schedule=args.schedule,
                )
                row = {"llm": llm, "names": names, "memory": memory, "incumbent": names[incumbent]}
                row["pushed"] = names[pushed]
                windows = len(names) ** (2 * memory)
                if args.method == "meanfield" and windows > MAX_WINDOW_TYPES:
                    row["skipped"] = (
                        f"{windows} memory windows: too many for the mean field (at most {MAX_WINDOW_TYPES})"
                    )
                else:
                    row |= _threshold(args, game)
                thresholds.append(row)
    if not thresholds:
        raise ValueError(f"{path} holds no fitted group" + ("" if args.llm is None else f" for {args.llm}"))
    return thresholds


def _game(args):
    if args.model == "binary-naming-game":
        from jaxconv.games.naming import NamingGame

        return NamingGame(
            args.agents,
            vocabulary=2,
            beta=args.beta,
            committed_mode="converted",
            committed_name=1,
            initial="prepared",
            prepared_name=0,
            schedule=args.schedule,
        )
    from jaxconv.games.memory import best_response_game

    return best_response_game(args.agents, memory=args.memory, schedule=args.schedule)


def _plain(value):
    """JSON-ready: numpy scalars and arrays to Python numbers and lists, nan/inf to None."""

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def text(result: dict) -> str:
    """A short readable summary."""
    if "thresholds" in result:
        lines = []
        for row in result["thresholds"]:
            label = (
                f"{row['llm']} {','.join(row['names'])} H={row['memory']}: {row['pushed']} against {row['incumbent']}"
            )
            lines.append(f"{label}: {row['skipped']}" if "skipped" in row else f"{label}: {_p_c(row)}")
        return "\n".join(lines)
    size = "" if result["method"] == "meanfield" else f" N={result['agents']}, {result['rounds']} rounds"
    return f"{result['model']}{size} ({result['method']}): {_p_c(result)}"


def _p_c(result: dict) -> str:
    if result.get("p_c_se") is None:
        return f"p_c = {result['p_c']:.4f}"
    low, high = result["p_c_interval"]
    return (
        f"p_c = {result['p_c']:.4f} +- {result['p_c_se']:.4f} (95% {low:.4f}..{high:.4f}), "
        f"{result['simulated_interactions']:.3g} simulated interactions"
    )
