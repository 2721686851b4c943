"""``gittrack checkout RUN`` and ``gittrack reproduce RUN -- CMD…`` (DESIGN §13)."""

from __future__ import annotations

import argparse
import sys

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit, visible
from gittrack.client import Client


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``checkout`` and ``reproduce`` to the command line."""
    checkout = sub.add_parser(
        "checkout",
        help="a linked worktree holding a run's exact code, with its params",
        description="Add a linked git worktree holding the run's exact code (its commit, or "
        "its snapshot when the tree was dirty) and write the run's params to "
        "DIR/.gittrack-run.yaml. Your own work tree, index, HEAD and branch are untouched.",
    )
    checkout.add_argument("run_id", metavar="RUN_ID")
    checkout.add_argument(
        "--path", metavar="DIR", help="where (default: ../<repository>-run-<id>); must not exist"
    )
    add_format_options(checkout)
    checkout.set_defaults(handler=checkout_run)

    reproduce = sub.add_parser(
        "reproduce",
        help="run a command again on a run's exact code and compare the metrics",
        description="Check out the run's code in a linked worktree, run CMD there as a new "
        "run (tag gittrack.reproduces=RUN_ID, the run's params logged and in the environment "
        "as GITTRACK_PARAM_<KEY> and GITTRACK_PARAMS; MLFLOW_RUN_ID names the new run, so "
        "the script's start_run() resumes it) and print its metrics against the original's.",
    )
    reproduce.add_argument("run_id", metavar="RUN_ID")
    reproduce.add_argument(
        "--path", metavar="DIR", help="keep the worktree there (default: a temporary one)"
    )
    add_format_options(reproduce)
    reproduce.add_argument(
        "command",
        nargs="*",
        metavar="-- CMD",
        help="the command, after -- (e.g. -- python train.py)",
    )
    reproduce.set_defaults(handler=reproduce_run, takes_command=True)


def checkout_run(args: argparse.Namespace) -> int:
    """``gittrack checkout``: where the worktree is; warnings for what its code lacks."""
    client = Client(args.repo)
    checkout = client.checkout_run(args.run_id, args.path)
    code = checkout.code
    record = {
        "run_id": code.run_id,
        "path": str(checkout.path),
        "commit": code.commit,
        "base": code.base,
        "from_snapshot": code.has_change,
        "run_file": str(checkout.run_file),
        "untracked_skipped": list(code.untracked_skipped),
        "uncommitted_change_captured": code.captured,
    }
    if args.format != "table":
        emit(record, fmt=args.format)
    else:
        what = (
            f"snapshot {code.commit[:12]} (on {code.base[:12]})"
            if code.has_change
            else code.commit[:12]
        )
        print(f"checked out run {code.run_id} ({what}) in {visible(str(checkout.path))}")
        print(f"params in {visible(str(checkout.run_file))}")
    _warn_incomplete(code.run_id, code.captured, code.untracked_skipped)
    return 0


def _warn_incomplete(run_id: str, captured: bool, skipped: tuple[str, ...]) -> None:
    if not captured:
        print(
            f"gittrack: warning: run {run_id} ran on a dirty tree whose changes were not "
            "captured (source capture 'commit'): this is the commit it started on",
            file=sys.stderr,
        )
    for path in skipped:
        print(
            f"gittrack: warning: untracked file {visible(path)} was too large for the "
            "snapshot and is missing",
            file=sys.stderr,
        )


def reproduce_run(args: argparse.Namespace) -> int:
    """``gittrack reproduce``: the metric comparison; exits with the command's status."""
    client = Client(args.repo)
    result = client.reproduce_run(args.run_id, args.command, args.path)
    rows = result.metric_changes()
    if args.format != "table":
        emit(rows, ["metric", "original", "reproduced", "change"], args.format)
    else:
        print(
            f"reproduced run {result.original.info.run_id} as run {result.new.info.run_id} "
            f"({result.new.info.status}, command exit status {result.exit_code})"
        )
        if result.kept:
            print(f"worktree kept in {visible(str(result.path))}")
        emit(rows, ["metric", "original", "reproduced", "change"])
    _warn_incomplete(result.original.info.run_id, True, result.untracked_skipped)
    return result.exit_code if result.exit_code else 0
