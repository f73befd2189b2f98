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

MODELS = ("binary-naming-game", "best-response")
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


def _common_arguments(parser) -> None:
    parser.add_argument("--agents", type=int, default=100, help="N (default 100)")
    parser.add_argument("--rounds", type=int, default=100, help="horizon in population rounds of N interactions")
    parser.add_argument("--method", default="gradient", help=" | ".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
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
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict:
    """The ``tipping`` command: the threshold of ``args.model`` by ``args.method``."""
    if args.method not in METHODS:
        raise ValueError(f"unknown method {args.method!r}; choose one of {list(METHODS)}")
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose one of {list(MODELS)}")
    if args.method == "meanfield":
        return _meanfield(args)
    for label, value, low in (("agents", args.agents, 2), ("rounds", args.rounds, 1)):
        if value < low:
            raise ValueError(f"{label} must be >= {low}, got {value}")
    from jaxconv.devices import use_cpu_cores

    use_cpu_cores()
    import jax
    import numpy as np

    from jaxconv.estimate.tipping import threshold_by_gradient, threshold_by_sweep

    game = _game(args)
    steps_per_round = max(1, args.agents // game.interactions_per_step)
    n_steps = args.rounds * steps_per_round
    key = jax.random.key(args.seed)
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
    else:
        low, high = args.grid
        if not 0 <= low < high <= 1:
            raise ValueError(f"--grid must satisfy 0 <= LOW < HIGH <= 1, got {low} {high}")
        if args.grid_points < 2:
            raise ValueError(f"grid-points must be >= 2, got {args.grid_points}")
        result = threshold_by_sweep(
            key, game, n_steps, grid=np.linspace(low, high, args.grid_points), n_replicas=args.replicas, fit=args.fit
        )
    out = {
        "model": args.model,
        "method": args.method,
        "agents": args.agents,
        "rounds": args.rounds,
        "seed": args.seed,
        "schedule": args.schedule,
        "interactions_per_replica": n_steps * game.interactions_per_step,
    }
    if args.model == "best-response":
        out["memory"] = args.memory
    return out | {k: _plain(v) for k, v in result.items() if k != "method"}


def _meanfield(args) -> dict:
    if args.model != "binary-naming-game":
        raise ValueError(f"--method meanfield is available for binary-naming-game only, not {args.model}")
    try:
        from jaxconv.meanfield import binary_naming_threshold
    except ImportError:
        raise ValueError(
            "--method meanfield is not available yet: jaxconv.meanfield.binary_naming_threshold is missing"
        ) from None
    result = binary_naming_threshold(beta=args.beta)
    out = {"model": args.model, "method": "meanfield", "beta": args.beta, "p_c": float(result["p_c"])}
    if "dp_c_dbeta" in result:
        out["dp_c_dbeta"] = float(result["dp_c_dbeta"])
    return out


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
    import numpy as np

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
    if result.get("p_c_se") is None:
        return f"{result['model']} ({result['method']}): p_c = {result['p_c']}"
    low, high = result["p_c_interval"]
    return (
        f"{result['model']} N={result['agents']}, {result['rounds']} rounds ({result['method']}): "
        f"p_c = {result['p_c']:.4f} +- {result['p_c_se']:.4f} (95% {low:.4f}..{high:.4f}), "
        f"{result['simulated_interactions']:.3g} simulated interactions"
    )
