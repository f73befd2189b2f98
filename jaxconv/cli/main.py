"""Command line: ``jaxconv simulate naming-game|memory-game|best-response ...``, ``jaxconv sweep GAME --vary ...``,
``jaxconv data fetch [NAME ...]``, ``jaxconv data summary [PATH]``, ``jaxconv fit [PATH]``, ``jaxconv tipping
MODEL ...``, ``jaxconv reproduce [NAME ...|all]``. This module builds the parser and dispatches; each command is a
module of this package (``naming``, ``memory``, ``sweep``, ``fit``, ``tipping``, ``reproduce``), and the options
the simulating commands share are in ``options``.

Every command prints one JSON object with ``--json`` (a short text summary otherwise) and writes that JSON object
to a file with ``--out FILE`` (``sweep``: the table); the object carries ``seed``, ``parameters`` and ``version``.
Without a PATH, ``data summary`` and ``fit`` read the logs fetched by ``jaxconv data fetch``
(:func:`jaxconv.data.fetch.logs_path`). Bad input ends with a one-line ``jaxconv: error: ...`` message and exit
status 2; ``jaxconv`` alone prints the help. The keys: docs/cli.md and docs/results.md.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from jaxconv import __version__
from jaxconv.cli import fit as cli_fit
from jaxconv.cli import memory as cli_memory
from jaxconv.cli import naming as cli_naming
from jaxconv.cli import options
from jaxconv.cli import reproduce as cli_reproduce
from jaxconv.cli import sweep as cli_sweep
from jaxconv.cli import tipping as cli_tipping
from jaxconv.cli.options import seed  # noqa: F401 (the --seed type, imported from here by jaxconv.cli.fit)

TEXT = {"fit": cli_fit, "tipping": cli_tipping, "sweep": cli_sweep, "reproduce": cli_reproduce}  # text(result)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option that has a default and does not already state it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or (isinstance(default, (list, tuple)) and not default)
            or (not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        ):
            return text
        return f"{text} (default: %(default)s)".strip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        default = kwargs.get("default")
        if kwargs.get("help") is None and not (default is None or default is False or default in ([], ())):
            kwargs["help"] = "(default: %(default)s)"  # argparse hides the help line of an option without help
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        command = self.prog.removeprefix("jaxconv").strip()  # "jaxconv: error: " is the prefix already
        raise SystemExit(_fail(f"{command}: {message}" if command else message))


def _fail(message: str) -> int:
    print(f"jaxconv: error: {message}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxconv",
        description="Dynamics of social conventions in JAX.",
        epilog="`jaxconv COMMAND --help` describes a command. Commands print one JSON object with --json and write "
        "it to a file with --out FILE (sweep: --out is its table; reproduce: its folder). docs/cli.md explains "
        "every key.",
    )
    parser.add_argument("--version", action="version", version=f"jaxconv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    simulate = commands.add_parser("simulate", help="run an ensemble of a game")
    games = simulate.add_subparsers(dest="game", required=True, parser_class=_Parser)
    cli_naming.add_parser(games)
    cli_memory.add_parsers(games)
    cli_sweep.add_parser(commands)

    data = commands.add_parser("data", help="LLM experiment logs: fetch the published ones, summarize")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    fetch = data_commands.add_parser(
        "fetch",
        help="download the published logs (SHA-256 verified, cached)",
        description="Download the LLM logs of Ashery, Aiello & Baronchelli (2025) from the authors' repository "
        "(pinned commit), check their SHA-256 and keep them in a cache; a file already cached is not downloaded "
        "again. Commands given no PATH read them from there.",
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="files to fetch (default: all four; e.g. claude)")
    fetch.add_argument("--to", metavar="DIR", help="folder to write to (default: $JAXCONV_AI_NORMS, else the cache)")
    fetch.add_argument(
        "--base-url", metavar="URL", help="repository root; file NAME is at URL/data/NAME (default: pinned commit)"
    )
    fetch.add_argument("--json", action="store_true", help="print one JSON object")
    summary = data_commands.add_parser("summary", help="metadata, winners, stop times and flips per file")
    summary.add_argument(
        "path", nargs="?", help="a zip file, a folder or a single log file (default: the fetched logs)"
    )
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    cli_fit.add_parser(commands)
    _optional_path(commands.choices["fit"])
    cli_tipping.add_parser(commands)
    cli_reproduce.add_parser(commands)
    for command in _leaf_parsers(parser):
        if "--json" in command._option_string_actions and "--out" not in command._option_string_actions:
            options.add_out(command)
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` that has no subcommands."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield parser
    for action in subcommands:
        for child in action.choices.values():
            yield from _leaf_parsers(child)


def _optional_path(parser: argparse.ArgumentParser) -> None:
    """Make the positional ``path`` of ``parser`` optional (missing: the fetched logs)."""
    for action in parser._actions:
        if action.dest == "path" and not action.option_strings and action.nargs is None:
            action.nargs, action.required, action.default = argparse.OPTIONAL, False, None
            action.help = f"{action.help} (default: the fetched logs, see `jaxconv data fetch`)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    out_file = getattr(args, "out", None)
    as_json = getattr(args, "json", False)
    try:
        if out_file is not None:
            options.check_writable(out_file)
        result = options.stamp(_run(args, as_json), args)
        if out_file is not None:
            _write_json(result, out_file)
    except (ValueError, OSError, OverflowError, MemoryError) as error:  # OSError includes FileNotFoundError
        return _fail((str(error).splitlines() or [type(error).__name__])[0][:500])
    if as_json:
        print(json.dumps(result))
    elif args.command in TEXT:
        print(TEXT[args.command].text(result))
    elif args.command == "data" and args.data_command == "summary":
        from jaxconv.data.summary import summary_text

        print(summary_text(result))
    elif args.command == "data":
        print(_fetch_text(result))
    else:
        _print(result)
    return 0


def _run(args, as_json: bool) -> dict:
    """The result of the command of ``args`` (one JSON-ready dict)."""
    if args.command == "simulate":
        return (cli_naming if args.game == "naming-game" else cli_memory).run(args)
    if args.command == "sweep":
        return cli_sweep.run(args)
    if args.command == "fit":
        from jaxconv.data.fetch import logs_path
        from jaxconv.devices import use_cpu_cores

        args.path = str(logs_path(args.path))
        use_cpu_cores()
        return cli_fit.run(args)
    if args.command == "tipping":
        return cli_tipping.run(args)
    if args.command == "reproduce":
        return cli_reproduce.run(args)
    if args.data_command == "fetch":
        return _fetch(args, progress=not as_json and sys.stderr.isatty())
    from jaxconv.data.fetch import logs_path
    from jaxconv.data.summary import summarize_path

    return summarize_path(logs_path(args.path))


def _write_json(result: dict, path: str) -> None:
    """Write ``result`` as one JSON object to ``path`` (through a temporary file, so a failure leaves no half file)."""
    target = Path(path).expanduser()
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        temporary.write_text(json.dumps(result) + "\n")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _fetch(args, progress: bool = False) -> dict:
    """``jaxconv data fetch``: download (or find cached) the logs; one entry per file."""
    from jaxconv.data import fetch

    report: list[dict] = []
    paths = fetch.fetch(args.names, to=args.to, base_url=args.base_url, progress=progress, report=report)
    return {
        "directory": str(paths[0].parent) if paths else str(fetch.default_dir()),
        "source": fetch.BASE_URL if args.base_url is None else args.base_url,
        "files": report,
    }


def _fetch_text(result: dict) -> str:
    lines = [
        f"{f['name']}: {'downloaded' if f['downloaded'] else 'already cached'}, {f['bytes']} bytes, SHA-256 verified"
        for f in result["files"]
    ]
    return "\n".join([*lines, f"in {result['directory']}"])


def _print(result: dict) -> None:
    """``key: value`` lines; long lists of numbers shortened."""
    for key, value in result.items():
        if isinstance(value, list) and len(value) > 8 and all(isinstance(v, (int, float, type(None))) for v in value):
            shown = ", ".join("null" if v is None else f"{v:.3g}" for v in value[:8])
            value = f"[{shown}, ...] ({len(value)} values)"
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
