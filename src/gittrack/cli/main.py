"""``gittrack`` command line: argparse sub-commands, errors as one line on stderr.

Each command module exposes ``register(subparsers)``, adding its parsers with a ``handler``
default that takes the parsed arguments and returns an exit code. Commands call ``Client`` and
hold no logic of their own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from gittrack.cli.output import visible
from gittrack.entities import ViewType
from gittrack.errors import GittrackError, NotFoundError

if TYPE_CHECKING:
    from gittrack.client import Client

COMMAND_MODULES = (
    "gittrack.cli.init_cmd",
    "gittrack.cli.runs_cmd",
    "gittrack.cli.experiments_cmd",
    "gittrack.cli.doctor_cmd",
    "gittrack.cli.demo_cmd",
    "gittrack.cli.sync_cmd",
    "gittrack.cli.log_cmd",
    "gittrack.cli.hooks_cmd",
    "gittrack.cli.reproduce_cmd",
    "gittrack.cli.bisect_cmd",
    "gittrack.cli.ui_cmd",
    "gittrack.cli.diff_cmd",
    "gittrack.cli.budgets_cmd",
)
# Commands of later domains register here too when their module is present.
OPTIONAL_COMMAND_MODULES = (
    "gittrack.cli.search_cmd",
    "gittrack.cli.models_cmd",
)


def add_format_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json", dest="format", action="store_const", const="json", help="print JSON"
    )
    group.add_argument("--csv", dest="format", action="store_const", const="csv", help="print CSV")
    parser.set_defaults(format="table")


def experiment_ids_named(
    client: Client, names: list[str] | None, view_type: int = ViewType.ACTIVE_ONLY
) -> list[str] | None:
    """The ids of the experiments an ``--experiment NAME`` option names.

    Args:
        client: the client to look them up with.
        names: the names given, or None.
        view_type: which experiments a name may find (active ones by default).

    Returns:
        The ids in the order of ``names``, or None (every experiment) when none is given.

    Raises:
        NotFoundError: no experiment of ``view_type`` has one of the names.
    """
    if not names:
        return None
    found = {e.name: e.experiment_id for e in client.search_experiments(view_type=view_type)}
    missing = [name for name in names if name not in found]
    if missing:
        raise NotFoundError(f"no experiment named {missing[0]!r}")
    return [found[name] for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gittrack",
        description="Track ML experiments and models inside your git repository.",
    )
    parser.add_argument(
        "-C",
        "--repo",
        default=None,
        help="the tracking repository (default: the one containing the current directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for name in OPTIONAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as one line on stderr, like errors (no source file and line)."""
    print(f"gittrack: warning: {visible(str(message))}", file=file or sys.stderr)


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``. A command that runs another one (``reproduce RUN [options] -- CMD…``)
    sets the default ``takes_command``: everything after the first ``--`` is then its
    ``command``, untouched (argparse alone would read CMD's options as its own)."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if getattr(args, "takes_command", False):
            args.command = argv[cut + 1 :]
            return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_arguments(parser, sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _one_line_warning
    try:
        return int(args.handler(args) or 0)
    except GittrackError as exc:
        print(f"gittrack: error: {visible(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gittrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
