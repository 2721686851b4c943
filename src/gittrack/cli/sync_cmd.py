"""``gittrack push|pull|sync [REMOTE]``: share runs, registry tags and notes through a remote."""

from __future__ import annotations

import argparse

from gittrack.cli.output import visible
from gittrack.client import Client

# command -> its help; the command's name is the ``Client`` method that does it.
_COMMANDS: dict[str, str] = {
    "push": "push the tracking branch, registry tags and notes (merging the remote's)",
    "pull": "fetch and merge the remote's tracking branch, registry tags and notes",
    "sync": "pull, then push: local and remote end identical",
}


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text in _COMMANDS.items():
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument(
            "remote", nargs="?", default=None, help="git remote (default: origin, or the only one)"
        )
        parser.set_defaults(handler=handle, sync_command=name)


def handle(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    report = getattr(client, args.sync_command)(args.remote)
    for line in report.lines():
        print(visible(line))
    verb = "pushed to" if report.pushed else "up to date with"
    if args.sync_command == "pull":
        verb = "pulled from"
    print(f"{client.tracking_ref} {verb} {report.remote}")
    return 0
