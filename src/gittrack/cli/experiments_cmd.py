"""``gittrack experiments list|create|rename|delete|restore``."""

from __future__ import annotations

import argparse

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit, visible
from gittrack.client import Client
from gittrack.entities import ViewType
from gittrack.store.codecs import format_time


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("experiments", help="list and manage experiments")
    actions = parser.add_subparsers(dest="experiments_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="list experiments")
    listing.add_argument("--all", action="store_true", help="include deleted experiments")
    add_format_options(listing)
    listing.set_defaults(handler=list_experiments)

    create = actions.add_parser("create", help="create an experiment")
    create.add_argument("name")
    create.set_defaults(handler=lambda a: _print(Client(a.repo).create_experiment(a.name)))

    rename = actions.add_parser("rename", help="rename an experiment (its id stays)")
    rename.add_argument("experiment_id")
    rename.add_argument("new_name")
    rename.set_defaults(
        handler=lambda a: Client(a.repo).rename_experiment(a.experiment_id, a.new_name)
    )

    for action in ("delete", "restore"):
        p = actions.add_parser(action, help=f"{action} an experiment")
        p.add_argument("experiment_id")
        method = "delete_experiment" if action == "delete" else "restore_experiment"
        p.set_defaults(handler=lambda a, m=method: getattr(Client(a.repo), m)(a.experiment_id))


def _print(value: str) -> int:
    print(visible(value))
    return 0


def list_experiments(args: argparse.Namespace) -> int:
    view = ViewType.ALL if args.all else ViewType.ACTIVE_ONLY
    experiments = Client(args.repo).search_experiments(view_type=view)
    rows = [
        {
            "experiment_id": e.experiment_id,
            "name": e.name,
            "lifecycle_stage": e.lifecycle_stage,
            "creation_time": format_time(e.creation_time),
            "tags": e.tags
            if args.format == "json"
            else ", ".join(f"{k}={v}" for k, v in e.tags.items()),
        }
        for e in experiments
    ]
    emit(rows, ["experiment_id", "name", "lifecycle_stage", "creation_time", "tags"], args.format)
    return 0
