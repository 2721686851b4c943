"""``gittrack log [REV] [-n N] [--metric M]``: the code's history with each commit's runs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit
from gittrack.client import Client
from gittrack.store.codecs import format_number

if TYPE_CHECKING:
    from gittrack.client import CommitRuns, RunSummary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "log", help="first-parent history of the code, each commit with its runs and metrics"
    )
    parser.add_argument("rev", nargs="?", default="HEAD", metavar="REV", help="default HEAD")
    parser.add_argument(
        "-n", "--max-count", type=int, default=20, dest="limit", help="commits (default 20)"
    )
    parser.add_argument("--metric", "-m", action="append", help="show this metric (repeatable)")
    add_format_options(parser)
    parser.set_defaults(handler=show_log)


def _metrics(run: RunSummary, wanted: list[str] | None) -> dict[str, float]:
    """The run's metrics: the ``wanted`` ones in their order (the client kept only those),
    else all of them by name."""
    return dict(run.metrics) if wanted else dict(sorted(run.metrics.items()))


def show_log(args: argparse.Namespace) -> int:
    entries = Client(args.repo).commit_history(
        args.rev, args.limit, metrics=args.metric, refresh_notes=True
    )
    if args.format == "table":
        sys.stdout.write("".join(_entry_lines(entry, args.metric) for entry in entries))
        return 0
    if args.format == "csv":
        emit(_csv_rows(entries, args.metric), list(_CSV_COLUMNS), "csv")
        return 0
    records = [
        {
            "commit": entry.commit,
            "subject": entry.subject,
            "runs": [
                {
                    "run_id": run.run_id,
                    "run_name": run.run_name,
                    "experiment_id": run.experiment_id,
                    "status": run.status,
                    "metrics": _metrics(run, args.metric),
                }
                for run in entry.runs
            ],
        }
        for entry in entries
    ]
    emit(records, fmt="json")
    return 0


_CSV_COLUMNS = ("commit", "subject", "run_id", "run_name", "status", "metrics")


def _csv_rows(entries: list[CommitRuns], wanted: list[str] | None) -> list[dict]:
    """One row per run, and one with empty run fields for a commit without runs."""
    rows = []
    for entry in entries:
        for run in entry.runs or [None]:
            row = {"commit": entry.commit, "subject": entry.subject}
            if run is not None:
                metrics = _metrics(run, wanted)
                row.update(run_id=run.run_id, run_name=run.run_name, status=run.status)
                row["metrics"] = " ".join(f"{k}={format_number(v, 4)}" for k, v in metrics.items())
            rows.append(row)
    return rows


def _entry_lines(entry: CommitRuns, wanted: list[str] | None) -> str:
    lines = [f"{entry.commit[:7]} {entry.subject}\n"]
    for run in entry.runs:
        metrics = " ".join([f"{k}={format_number(v, 4)}" for k, v in _metrics(run, wanted).items()])
        lines.append(f"    {run.run_id}  {run.status:<8} {run.run_name}  {metrics}".rstrip() + "\n")
    return "".join(lines)
