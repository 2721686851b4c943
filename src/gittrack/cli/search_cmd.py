"""``gittrack search``, ``gittrack compare`` and ``gittrack export``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from gittrack.cli.main import add_format_options, experiment_ids_named
from gittrack.cli.output import emit
from gittrack.client import Client
from gittrack.entities import ViewType
from gittrack.errors import InvalidInputError
from gittrack.store.codecs import format_datetime

_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
_TABLE_INFO = ["run_id", "tags.mlflow.runName", "status", "start_time"]


def register(sub: argparse._SubParsersAction) -> None:
    search = sub.add_parser(
        "search",
        help="search runs with MLflow's filter language (plus OR, parentheses, IN)",
        description="Search runs, e.g. gittrack search \"metrics.acc > 0.9 and params.lr = '0.1'\"",
    )
    search.add_argument("filter", nargs="?", default="", help="filter string (default: all runs)")
    search.add_argument(
        "--experiment", "-e", action="append", help="experiment name (repeatable; default: all)"
    )
    search.add_argument(
        "--order-by",
        "-o",
        action="append",
        metavar="KEY [ASC|DESC]",
        help="sort key, e.g. 'metrics.acc DESC' (repeatable; default: start_time DESC)",
    )
    search.add_argument(
        "--columns",
        "-c",
        metavar="COL,COL...",
        help="columns to show, e.g. run_id,metrics.acc,params.lr "
        "(default: all for --json/--csv, a summary for the table)",
    )
    search.add_argument("--max", type=int, default=None, help="at most this many runs")
    search.add_argument(
        "--view", choices=sorted(_VIEWS), default="active", help="lifecycle (default: active)"
    )
    add_format_options(search)
    search.set_defaults(handler=search_runs)

    compare = sub.add_parser(
        "compare", help="params, metrics and tags of runs side by side, differences marked"
    )
    compare.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    compare.add_argument("--diff-only", action="store_true", help="only the rows that differ")
    compare.add_argument(
        "--code", action="store_true", help="the diff between two runs' code (a patch), A to B"
    )
    add_format_options(compare)
    compare.set_defaults(handler=compare_runs)

    export = sub.add_parser(
        "export", help="write runs and metric histories as Parquet or CSV files"
    )
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    export.add_argument(
        "--output",
        "-O",
        default="gittrack-export",
        help="directory for runs.<ext> and metric_history.<ext> (default: ./gittrack-export)",
    )
    export.add_argument("--experiment", "-e", action="append", help="experiment name (repeatable)")
    export.add_argument("--filter", default="", help="only runs matching this filter")
    export.add_argument("--view", choices=sorted(_VIEWS), default="all")
    export.add_argument(
        "--no-history", action="store_true", help="skip metric_history (runs table only)"
    )
    export.set_defaults(handler=export_runs)


def _plain(value: Any) -> Any:
    """Missing cells (NaN, None) as None; times as ISO-8601 UTC with milliseconds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "strftime"):
        if value != value:  # NaT
            return None
        return format_datetime(value)
    return value


def _columns(requested: str | None, available: list[str], fmt: str) -> list[str]:
    if requested:
        columns = [c.strip() for c in requested.split(",") if c.strip()]
        unknown = [
            c
            for c in columns
            if c not in available and not c.startswith(("metrics.", "params.", "tags."))
        ]
        if unknown:
            raise InvalidInputError(
                f"unknown column {unknown[0]!r}; columns are {', '.join(available[:6])} and "
                "metrics.<key>, params.<key>, tags.<key>"
            )
        return columns
    if fmt != "table":
        return available
    keys = [c for c in available if c.startswith(("metrics.", "params."))]
    return [c for c in _TABLE_INFO if c in available] + keys


def search_runs(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    frame = client.search_runs_frame(
        experiment_ids=experiment_ids_named(client, args.experiment, ViewType.ALL),
        filter_string=args.filter,
        run_view_type=_VIEWS[args.view],
        max_results=args.max if args.max is not None else 100_000,
        order_by=args.order_by,
    )
    columns = _columns(args.columns, list(frame.columns), args.format)
    rows = [{c: _plain(record.get(c)) for c in columns} for record in frame.to_dict("records")]
    emit(rows, columns, args.format)
    return 0


def compare_runs(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    if args.code:
        if len(args.run_ids) != 2:
            raise InvalidInputError(
                f"--code compares the code of exactly two runs, not {len(args.run_ids)}"
            )
        from gittrack.cli.runs_cmd import show_code

        return show_code(client, args.run_ids[0], args.run_ids[1])
    frame = client.compare_runs(args.run_ids, diff_only=args.diff_only)
    run_ids = [c for c in frame.columns if c != "differs"]
    if args.format == "json":
        emit(
            [
                {
                    "field": field,
                    "differs": bool(row["differs"]),
                    "values": {r: _plain(row[r]) for r in run_ids},
                }
                for field, row in frame.iterrows()
            ],
            fmt="json",
        )
        return 0
    labels = run_ids if args.format == "csv" else [r[:8] for r in run_ids]
    if args.format == "table" and len(set(labels)) != len(labels):
        labels = run_ids
    rows = []
    for field, row in frame.iterrows():
        record = {"field": field}
        record.update({label: _plain(row[r]) for label, r in zip(labels, run_ids)})
        record["differs"] = (
            ("*" if row["differs"] else "") if args.format == "table" else bool(row["differs"])
        )
        rows.append(record)
    emit(rows, ["field", *labels, "differs"], args.format)
    return 0


def export_runs(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    written = client.export_runs(
        args.output,
        args.format,
        experiment_ids=experiment_ids_named(client, args.experiment, ViewType.ALL),
        filter_string=args.filter,
        run_view_type=_VIEWS[args.view],
        with_history=not args.no_history,
    )
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
