"""``gittrack bisect --metric M --good REV --bad REV``: the commit that moved a metric."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from gittrack.cli.main import add_format_options, experiment_ids_named
from gittrack.cli.output import emit, visible
from gittrack.client import Client
from gittrack.errors import InvalidInputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bisect`` to the command line."""
    parser = sub.add_parser(
        "bisect",
        help="find the first commit where a metric crossed a threshold, from logged runs",
        description="Binary search over the first-parent commits after --good up to --bad, "
        "using the runs logged on them. A value is bad beyond the threshold (default: midway "
        "between the good and bad commits' values) in the direction of the regression "
        "(default: the way the metric moved). Exit status 1 when commits without runs keep "
        "it from deciding; they are listed.",
    )
    parser.add_argument("--metric", "-m", required=True, help="the metric key")
    parser.add_argument("--good", required=True, metavar="REV", help="a commit with good values")
    parser.add_argument("--bad", required=True, metavar="REV", help="a later commit, bad values")
    parser.add_argument("--threshold", type=float, metavar="T", help="a bad value is beyond T")
    parser.add_argument(
        "--direction",
        choices=("up", "down"),
        help="the regression is the metric going up (a loss) or down (an accuracy); with "
        "--threshold too, --good and --bad need no runs",
    )
    parser.add_argument(
        "--select",
        choices=("latest", "min", "max", "mean"),
        default="latest",
        help="a commit's value from its runs (default: the latest run's)",
    )
    parser.add_argument(
        "--experiment", "-e", action="append", help="only runs of this experiment (repeatable)"
    )
    parser.add_argument(
        "--run",
        metavar="CMD",
        help="run CMD (one shell-quoted string) in a temporary worktree on each commit that "
        "lacks runs, to log them",
    )
    add_format_options(parser)
    parser.set_defaults(handler=bisect)


def _split(command: str | None) -> list[str] | None:
    if command is None:
        return None
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise InvalidInputError(f"--run {command!r} is not a valid command line: {exc}") from None


def bisect(args: argparse.Namespace) -> int:
    """``gittrack bisect``: the steps and the answer; exit status 1 when undecided."""
    client = Client(args.repo)
    result = client.bisect_metric(
        args.metric,
        args.good,
        args.bad,
        threshold=args.threshold,
        direction=args.direction,
        select=args.select,
        experiment_ids=experiment_ids_named(client, args.experiment),
        command=_split(args.run),
    )
    steps = [
        {
            "step": index,
            "commit": step.commit,
            "value": step.value,
            "verdict": step.verdict,
            "filled": step.filled,
        }
        for index, step in enumerate(result.steps, 1)
    ]
    if args.format != "table":
        record: dict[str, Any] = {
            "metric": result.metric,
            "good": result.good,
            "bad": result.bad,
            "threshold": result.threshold,
            "direction": result.direction,
            "candidates": result.candidates,
            "steps": steps,
            "first_bad": result.first_bad,
            "last_good": result.last_good,
            "undecided": result.undecided,
            "missing": result.missing,
        }
        if args.format == "json":
            emit(record, fmt="json")
        else:
            emit(steps, ["step", "commit", "value", "verdict", "filled"], "csv")
        return 0 if result.decided else 1
    side = "above" if result.direction == "up" else "below"
    print(
        f"bisecting {result.metric} over {result.candidates} commits after "
        f"{result.good[:12]}: bad is {side} {result.threshold:.6g}"
    )
    for row in steps:
        value = "no runs" if row["value"] is None else f"{result.metric}={row['value']:.6g}"
        print(f"step {row['step']}: {row['commit'][:12]}  {value}  {row['verdict']}")
    if result.decided:
        assert result.first_bad is not None and result.last_good is not None
        before = result.values.get(result.last_good)
        after = result.values[result.first_bad]
        was = "" if before is None else f"{before:.6g} at {result.last_good[:12]} -> "
        print(
            f"first bad commit: {result.first_bad} {visible(result.subjects.get(result.first_bad, ''))}"
        )
        print(f"  {result.metric}: {was}{after:.6g} ({result.step_count} steps)")
        return 0
    print(
        f"undecided: the first bad commit is one of these {len(result.undecided)}; "
        f"those marked 'no runs' need runs with {result.metric} (log them, or use --run CMD):"
    )
    for commit in result.undecided:
        mark = "no runs" if commit in result.missing else "bad"
        print(f"  {commit[:12]}  {mark:<7}  {visible(result.subjects.get(commit, ''))}")
    return 1
