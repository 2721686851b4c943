"""``gittrack hooks install|uninstall|status|run``: git hooks that label and share runs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit
from gittrack.client import Client

if TYPE_CHECKING:
    from gittrack.client import HookState

_HOOK_NAMES = Client.hook_names()
_HOOKS_HELP = f"comma-separated hooks (default: all of {','.join(_HOOK_NAMES)})"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("hooks", help="install, remove or inspect gittrack's git hooks")
    actions = parser.add_subparsers(dest="hooks_command", metavar="ACTION")
    actions.required = True
    for action, text, handler in (
        ("install", "install the hooks, chaining any hook already there", install),
        ("uninstall", "remove the hooks, restoring the hooks they chained", uninstall),
        ("status", "show which hooks are installed", show_status),
    ):
        child = actions.add_parser(action, help=text)
        child.add_argument("--hooks", default=None, help=_HOOKS_HELP)
        add_format_options(child)
        child.set_defaults(handler=handler)
    run = actions.add_parser("run", help="run a hook's gittrack part (what the hooks call)")
    run.add_argument("hook_name", metavar="HOOK", help=", ".join(_HOOK_NAMES))
    run.add_argument("hook_args", nargs=argparse.REMAINDER, help="the arguments git gave")
    run.set_defaults(handler=run_hook)


def _rows(done: list[tuple[HookState, str]]) -> list[dict]:
    return [
        {
            "hook": state.name,
            "state": state.state,
            "result": action,
            "path": str(state.path),
            "chained": str(state.chained) if state.chained else "",
        }
        for state, action in done
    ]


def _client(args: argparse.Namespace) -> Client:
    """The repository the hooks go in: ``--repo``, else the current directory's (a tracking
    URI in the environment names where runs go, not where this clone's hooks live)."""
    return Client(args.repo if args.repo is not None else os.getcwd())


def install(args: argparse.Namespace) -> int:
    emit(_rows(_client(args).install_hooks(args.hooks)), fmt=args.format)
    return 0


def uninstall(args: argparse.Namespace) -> int:
    emit(_rows(_client(args).uninstall_hooks(args.hooks)), fmt=args.format)
    return 0


def show_status(args: argparse.Namespace) -> int:
    states = _client(args).hook_status(args.hooks)
    emit(_rows([(state, state.state) for state in states]), fmt=args.format)
    return 0


def run_hook(args: argparse.Namespace) -> int:
    sys.stdout.flush()
    return Client(args.repo).run_hook(args.hook_name, args.hook_args)
