"""``gittrack doctor``: report every schema or format problem on the tracking branch."""

from __future__ import annotations

import argparse
import sys

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit, visible
from gittrack.client import Client


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check the tracking branch's files against the schemas")
    add_format_options(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    found = client.doctor()
    if args.format != "table":
        emit(
            [{"path": p.path, "message": p.message} for p in found],
            ["path", "message"],
            args.format,
        )
    elif found:
        for problem in found:
            print(visible(str(problem)), file=sys.stderr)
        print(f"{len(found)} problem(s) on {client.repository.branch.ref}", file=sys.stderr)
    else:
        print(f"{client.repository.branch.ref}: all files valid")
    return 1 if found else 0
