"""``gittrack push|pull|sync [REMOTE]``: share runs, registry tags and notes through a remote."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gittrack.client import Client
from gittrack.gitflow import sync
from gittrack.gitflow.sync import SyncReport
from gittrack.tracking.repository import TrackingRepository

_COMMANDS: dict[str, tuple[str, Callable[[TrackingRepository, str | None], SyncReport]]] = {
    "push": ("push the tracking branch, registry tags and notes (merging the remote's)", sync.push),
    "pull": ("fetch and merge the remote's tracking branch, registry tags and notes", sync.pull),
    "sync": ("pull, then push: local and remote end identical", sync.sync),
}


def register(sub: argparse._SubParsersAction) -> None:
    for name, (help_text, _action) in _COMMANDS.items():
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument(
            "remote", nargs="?", default=None, help="git remote (default: origin, or the only one)"
        )
        parser.set_defaults(handler=handle, sync_command=name)


def handle(args: argparse.Namespace) -> int:
    repository = Client(args.repo).repository
    _help, action = _COMMANDS[args.sync_command]
    report = action(repository, args.remote)
    for line in report.lines():
        print(line)
    verb = "pushed to" if report.pushed else "up to date with"
    if args.sync_command == "pull":
        verb = "pulled from"
    print(f"{repository.branch.ref} {verb} {report.remote}")
    return 0
