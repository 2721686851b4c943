"""``gittrack hooks install|uninstall|status|run``: git hooks that label and share runs."""

from __future__ import annotations

import argparse
import sys

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit
from gittrack.client import Client
from gittrack.gitflow import hooks
from gittrack.store.git import GitRepo

_HOOKS_HELP = f"comma-separated hooks (default: all of {','.join(hooks.HOOK_NAMES)})"


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
    run.add_argument("hook_name", metavar="HOOK", help=", ".join(hooks.HOOK_NAMES))
    run.add_argument("hook_args", nargs=argparse.REMAINDER, help="the arguments git gave")
    run.set_defaults(handler=run_hook)


def _rows(done: list[tuple[hooks.HookState, str]]) -> list[dict]:
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


def install(args: argparse.Namespace) -> int:
    names = hooks.parse_hook_names(args.hooks)
    emit(_rows(hooks.install(GitRepo(args.repo), names)), fmt=args.format)
    return 0


def uninstall(args: argparse.Namespace) -> int:
    names = hooks.parse_hook_names(args.hooks)
    emit(_rows(hooks.uninstall(GitRepo(args.repo), names)), fmt=args.format)
    return 0


def show_status(args: argparse.Namespace) -> int:
    names = hooks.parse_hook_names(args.hooks)
    states = hooks.status(GitRepo(args.repo), names)
    emit(_rows([(state, state.state) for state in states]), fmt=args.format)
    return 0


def run_hook(args: argparse.Namespace) -> int:
    if args.hook_name not in hooks.HOOK_NAMES:
        hooks.parse_hook_names(args.hook_name)  # raises with the allowed names
    sys.stdout.flush()
    return hooks.run_hook(Client(args.repo).repository, args.hook_name, args.hook_args)
