"""``gittrack demo``: a fresh repository with real tracked scikit-learn runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train a few real models into a fresh demo repository")
    parser.add_argument("--dir", default=None, help="folder to create (default: ./gittrack-demo)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from gittrack.cli.demo import run_demo

    run_demo(Path(args.dir) if args.dir else None)
    return 0
