"""``jaxconv sweep naming-game|memory-game|best-response --vary NAME=V1,V2,... [--vary ...] <the game's options>
--out table.csv``: every combination of the varied options (the full grid), ``--replicas`` replicas each, as one
tidy table (one row per grid point and replica: the varied options, ``replica``, ``seed`` and the per-replica
outcomes), the layout of Mesa's ``batch_run`` or NetLogo's BehaviorSpace.

Any option of the game with one value can be varied, static ones (``agents``, ``memory``, ``graph``, ...) as well
as array parameters of the game (``beta``, ``committed``, ``committed-fraction``, the softmax weights, ...). Grid
points whose games differ only in scalar array parameters run together through :func:`jaxconv.engine.sweep` (one
compiled program, the values vmapped); every other combination runs through :func:`jaxconv.engine.ensemble` (a
program is compiled once per static structure). Every grid point uses the same replica keys (split from
``--seed``), so its rows equal those of ``jaxconv simulate GAME ... --replicas-out`` with the same options.

``add_parser(commands)`` adds the command; ``run(args)`` returns one JSON-ready dict (a summary per grid point:
means with standard errors) and writes the table; ``text(result)`` is a readable version.
"""

import argparse
import copy
import itertools
import time

import numpy as np

from jaxconv.cli import memory as cli_memory
from jaxconv.cli import naming as cli_naming
from jaxconv.cli import options

GAMES = {"naming-game": cli_naming, "memory-game": cli_memory, "best-response": cli_memory}
# options that are not part of a grid: the run's size and how it is executed or written
FIXED = options.NOT_PARAMETERS | {"replicas", "vary"}


def add_parser(commands) -> None:
    """Add ``sweep`` to the top-level subparsers ``commands``."""
    sweep = commands.add_parser(
        "sweep",
        help="a grid of options of a game, one tidy table of every replica (as Mesa batch_run, BehaviorSpace)",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    games = sweep.add_subparsers(dest="game", required=True, parser_class=type(sweep))
    for name in GAMES:
        parser = games.add_parser(name, help=f"sweep the options of `jaxconv simulate {name}`")
        _add_game_arguments(parser, name, sweep=True)
        parser.add_argument(
            "--vary",
            action="append",
            required=True,
            metavar="NAME=V1,V2,...",
            help="an option of the game (without its dashes) and its values; repeat for a grid (e.g. --vary "
            "agents=50,100 --vary beta=0.5,1)",
        )


def _add_game_arguments(parser, game: str, sweep: bool) -> None:
    if game == "naming-game":
        cli_naming.add_arguments(parser, sweep=sweep)
    else:
        cli_memory.add_arguments(parser, game, sweep=sweep)


def varied(args) -> dict:
    """The varied options of ``args.vary``: option dest -> its values, parsed as the option parses them.
    ValueError naming an unknown option, one that cannot be varied, or a bad value."""
    probe = argparse.ArgumentParser(add_help=False)
    _add_game_arguments(probe, args.game, sweep=True)
    actions = probe._option_string_actions
    out = {}
    for item in args.vary:
        name, given, text = item.partition("=")
        option = "--" + name.lstrip("-")
        if not given or not text:
            raise ValueError(f"--vary {item!r}: expected NAME=V1,V2,...")
        action = actions.get(option)
        if action is None or action.dest in FIXED:
            choices = sorted(a.lstrip("-") for a, act in actions.items() if act.dest not in FIXED and a != "-h")
            raise ValueError(f"--vary {item!r}: {name!r} is not an option that can be varied; options: {choices}")
        if action.dest in out:
            raise ValueError(f"--vary {item!r}: {name!r} is varied twice")
        out[action.dest] = [_value(action, value, item) for value in text.split(",")]
    return out


def grid(values: dict) -> list[dict]:
    """Every combination of ``values`` (dest -> values), one dict per grid point, the first option varying
    slowest."""
    return [dict(zip(values, combination, strict=True)) for combination in itertools.product(*values.values())]


def _value(action: argparse.Action, text: str, item: str):
    """``text`` as the option of ``action`` would parse it; ValueError naming it."""
    if isinstance(action, argparse._AppendAction):
        return [text]  # --graph-param: the value replaces the list
    if isinstance(action, argparse._StoreTrueAction):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"--vary {item!r}: {action.dest} takes true or false, got {text!r}")
        return text.lower() == "true"
    if action.nargs not in (None, argparse.OPTIONAL) or action.const is not None:
        raise ValueError(f"--vary {item!r}: an option of several values cannot be varied")
    try:
        return (action.type or str)(text.strip())
    except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
        raise ValueError(f"--vary {item!r}: bad value {text!r} ({error})") from None


def _label(point: dict) -> str:
    return " ".join(f"{name.replace('_', '-')}={_cell(value)}" for name, value in point.items())


def _cell(value):
    """A grid value as a table cell (``--graph-param`` values, lists of one item, as that item)."""
    return " ".join(value) if isinstance(value, list) else value


def run(args) -> dict:
    """``jaxconv sweep``: the grid of ``args``, its table written to ``--out``, a summary per grid point."""
    module = GAMES[args.game]
    values = varied(args)
    points = grid(values)
    options.check_run_options(args)
    used = options.configure_devices(args)
    plans = []
    for point in points:
        point_args = copy.copy(args)
        vars(point_args).update(point)
        try:
            plans.append((point_args, module.plan(point_args)))
        except ValueError as error:
            raise ValueError(f"grid point {_label(point)}: {error}") from None
    checkpoints = options.Checkpoints(args.checkpoint)
    start = time.perf_counter()
    groups = _groups(plans)
    results, n_sweeps = {}, 0
    for members in groups:
        n_sweeps += _run_group(args, plans, members, results, checkpoints)
    run_seconds = time.perf_counter() - start
    summaries = []
    tables = []
    for index, (point, (point_args, plan)) in enumerate(zip(points, plans, strict=True)):
        result = results[index]
        outcome = module.outcomes(point_args, plan, result)
        summaries.append({"point": {k: options.plain(v) for k, v in point.items()}} | _scalars(outcome))
        first = {name: np.full(args.replicas, _cell(value)) for name, value in point.items()}
        tables.append(options.replica_columns(result.summary, point_args.seed, first))
    out = {
        "game": args.game,
        "vary": {name: [options.plain(v) for v in column] for name, column in values.items()},
        "grid_points": len(points),
        "replicas": args.replicas,
        "rows": len(points) * args.replicas,
        "static_combinations": len(groups),
        "vectorized_sweeps": n_sweeps,
        "devices": used["devices"],
        "processes": used["processes"],
        "run_seconds": run_seconds,
        "points": summaries,
    }
    if checkpoints.report() is not None:
        out["checkpoint"] = checkpoints.report()
    if args.replicas_out is not None:
        options.write_replicas(args.replicas_out, _concatenated(tables))
        out["table"] = args.replicas_out
    return out


def _groups(plans: list) -> list[list[int]]:
    """Indices of the grid points that share a static structure: the same game apart from its array values (same
    shapes), the same steps and stop rule and the same seed."""
    import jax

    groups, keys = [], []
    for index, (point_args, plan) in enumerate(plans):
        leaves, structure = jax.tree.flatten(plan.game)
        key = (
            structure,
            [(np.shape(leaf), np.asarray(leaf).dtype) for leaf in leaves],
            plan.n_steps,
            plan.record_every,
            plan.until_done,
            point_args.seed,
        )
        if key in keys:
            groups[keys.index(key)].append(index)
        else:
            keys.append(key)
            groups.append([index])
    return groups


def _run_group(args, plans, members: list[int], results: dict, checkpoints) -> int:
    """Run the grid points ``members`` (one static structure) into ``results[index]``; returns 1 when they ran as
    one :func:`jaxconv.engine.sweep` (they differ only in scalar array parameters), else 0."""
    import jax

    from jaxconv import engine

    point_args, plan = plans[members[0]]
    key = jax.random.key(point_args.seed)
    size = options.chunk_size(args) if options.chunked(args) else None
    common = dict(
        until_done=plan.until_done,
        chunk_size=size,
        checkpoint_dir=args.checkpoint,
        progress=options.progress_enabled(args),
    )
    swept = _differing_scalars([plans[i][1].game for i in members])
    if len(members) > 1 and swept is not None:
        values = {name: np.stack(column) for name, column in swept.items()}
        result = checkpoints.run(
            lambda: engine.sweep(key, plan.game, values, args.replicas, plan.n_steps, plan.record_every, **common),
            args.replicas,
            size or args.replicas,
        )
        for row, index in enumerate(members):
            results[index] = jax.tree.map(lambda x, row=row: x[row], result)
        return 1
    for index in members:
        game = plans[index][1].game
        results[index] = checkpoints.run(
            lambda game=game: engine.ensemble(key, game, args.replicas, plan.n_steps, plan.record_every, **common),
            args.replicas,
            size or args.replicas,
        )
    return 0


def _differing_scalars(games: list) -> dict | None:
    """Field path -> per-game values of the array leaves in which ``games`` (one static structure) differ, when
    they are all scalars reachable by attribute names (what ``engine.sweep`` takes); None otherwise."""
    import jax

    paths = [
        jax.tree_util.keystr(path, simple=True, separator=".")
        for path, _ in jax.tree_util.tree_flatten_with_path(games[0])[0]
    ]
    columns = list(zip(*[jax.tree.leaves(game) for game in games], strict=True))
    swept = {}
    for path, column in zip(paths, columns, strict=True):
        arrays = [np.asarray(value) for value in column]
        if all(np.array_equal(arrays[0], a) for a in arrays[1:]):
            continue
        if arrays[0].ndim != 0 or not path.replace("_", "").replace(".", "").isalnum():
            return None
        swept[path] = arrays
    return swept


def _scalars(outcome: dict) -> dict:
    """The outcomes without their per-round curves."""
    return {k: v for k, v in outcome.items() if not isinstance(v, list)}


def _concatenated(tables: list[dict]) -> dict:
    """One table from the grid points' tables; a column some points lack (e.g. ``overflow`` of slot inventories)
    is NaN there."""
    names = list(dict.fromkeys(name for table in tables for name in table))
    out = {}
    for name in names:
        if all(name in table for table in tables):
            out[name] = np.concatenate([np.asarray(table[name]) for table in tables])
        else:
            out[name] = np.concatenate(
                [
                    np.asarray(table[name], np.float64) if name in table else np.full(len(table["replica"]), np.nan)
                    for table in tables
                ]
            )
    return out


def text(result: dict) -> str:
    """One line per grid point: its values and the outcomes that have a standard error, as mean +- se."""
    lines = []
    for point in result["points"]:
        shown = [
            f"{key} {_number(value)} +- {_number(point[key + '_se'])}"
            for key, value in point.items()
            if key + "_se" in point and value is not None
        ]
        lines.append(f"{_label(point['point'])}: " + ", ".join(shown))
    lines.append(
        f"{result['grid_points']} grid points x {result['replicas']} replicas, {result['static_combinations']} "
        f"static combination(s), {result['run_seconds']:.3g} s"
        + (f"; table in {result['table']}" if "table" in result else "")
    )
    return "\n".join(lines)


def _number(value) -> str:
    return "null" if value is None else f"{value:.4g}"
