"""``gittrack budgets list|set|unset``: the metric budgets in ``.tracking/config.yaml``.

The tracking branch is never checked out, so this is how a user edits its ``budgets:``
section; ``gittrack diff`` judges HEAD's runs against them (DESIGN §11).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit
from gittrack.client import Client

if TYPE_CHECKING:
    from gittrack.client import Budget

_LIMIT_OPTIONS = (
    "min",
    "max",
    "max_decrease",
    "max_increase",
    "max_decrease_pct",
    "max_increase_pct",
)
_COLUMNS = ["metric", "goal", *_LIMIT_OPTIONS]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``gittrack budgets list|set|unset`` to the command line's sub-commands."""
    parser = sub.add_parser("budgets", help="metric budgets that gittrack diff checks")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="every metric's budget")
    add_format_options(listing)
    listing.set_defaults(handler=list_budgets)
    setting = actions.add_parser(
        "set", help="add or change a metric's budget (the rules given replace its own)"
    )
    setting.add_argument("metric", metavar="METRIC")
    setting.add_argument("--goal", choices=("maximize", "minimize"))
    for rule in _LIMIT_OPTIONS:
        setting.add_argument(f"--{rule.replace('_', '-')}", dest=rule, type=float)
    setting.set_defaults(handler=set_budget)
    unset = actions.add_parser("unset", help="remove a metric's budget")
    unset.add_argument("metric", metavar="METRIC")
    unset.set_defaults(handler=unset_budget)


def _row(budget: Budget) -> dict:
    return {"metric": budget.metric, "goal": budget.goal, **budget.limits}


def list_budgets(args: argparse.Namespace) -> int:
    """Print every metric's budget (table, ``--json`` or ``--csv``); returns 0."""
    budgets = Client(args.repo).get_budgets()
    emit([_row(budgets[metric]) for metric in sorted(budgets)], _COLUMNS, args.format)
    return 0


def set_budget(args: argparse.Namespace) -> int:
    """Add or change one metric's budget and print it; returns 0 (bad input raises
    ``InvalidInputError`` before anything is written)."""
    limits = {rule: getattr(args, rule) for rule in _LIMIT_OPTIONS}
    limits = {rule: value for rule, value in limits.items() if value is not None}
    budget = Client(args.repo).set_budget(args.metric, args.goal, limits)
    emit(_row(budget), _COLUMNS)
    return 0


def unset_budget(args: argparse.Namespace) -> int:
    """Remove one metric's budget; returns 0 (``NotFoundError`` when it has none)."""
    Client(args.repo).delete_budget(args.metric)
    return 0
