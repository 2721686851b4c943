"""``gittrack runs list|show|delete|restore`` and ``gittrack recover``."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit, visible
from gittrack.client import Client
from gittrack.entities import Run, ViewType
from gittrack.errors import NotFoundError
from gittrack.store.codecs import format_time
from gittrack.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="list, show, delete and restore runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    runs_sub.required = True

    listing = runs_sub.add_parser("list", help="list runs, newest first")
    listing.add_argument("--experiment", "-e", action="append", help="experiment name (repeatable)")
    listing.add_argument("--filter", default="", help='search filter, e.g. "metrics.acc > 0.9"')
    listing.add_argument("--max", type=int, default=50, help="at most this many runs (default 50)")
    listing.add_argument("--deleted", action="store_true", help="only deleted runs")
    listing.add_argument("--all", action="store_true", help="active and deleted runs")
    listing.add_argument("--commit", metavar="REV", help="only runs made on this code commit")
    add_format_options(listing)
    listing.set_defaults(handler=list_runs)

    show = runs_sub.add_parser("show", help="show one run: info, params, metrics, tags, source")
    show.add_argument("run_id")
    show.add_argument(
        "--code",
        action="store_true",
        help="print the run's uncommitted change against the commit it started on (a patch)",
    )
    add_format_options(show)
    show.set_defaults(handler=show_run)

    for action, verb in (("delete", "mark a run deleted"), ("restore", "restore a deleted run")):
        parser = runs_sub.add_parser(action, help=verb)
        parser.add_argument("run_ids", nargs="+", metavar="RUN_ID")
        parser.set_defaults(handler=delete_runs if action == "delete" else restore_runs)

    recover = sub.add_parser("recover", help="commit live runs whose process died, as KILLED")
    add_format_options(recover)
    recover.set_defaults(handler=recover_runs)


def _summary_row(run: Run, experiment_names: dict[str, str]) -> dict[str, Any]:
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.data.metrics.items())[:4])
    return {
        "run_id": run.info.run_id,
        "experiment": experiment_names.get(run.info.experiment_id, run.info.experiment_id),
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": format_time(run.info.start_time),
        "metrics": metrics,
    }


def list_runs(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    view = (
        ViewType.ALL
        if args.all
        else ViewType.DELETED_ONLY
        if args.deleted
        else ViewType.ACTIVE_ONLY
    )
    experiments = client.search_experiments(view_type=ViewType.ALL)
    names = {e.experiment_id: e.name for e in experiments}
    ids = None
    if args.experiment:
        by_name = {e.name: e.experiment_id for e in experiments}
        missing = [n for n in args.experiment if n not in by_name]
        if missing:
            raise NotFoundError(f"no experiment named {missing[0]!r}")
        ids = [by_name[n] for n in args.experiment]
    runs = client.search_runs_frame(
        experiment_ids=ids,
        filter_string=args.filter,
        run_view_type=view,
        max_results=args.max,
        output_format="list",
        commit=args.commit,
    )
    if args.format == "json":
        emit([_run_record(r) for r in runs], fmt="json")
        return 0
    emit(
        [_summary_row(r, names) for r in runs],
        ["run_id", "experiment", "run_name", "status", "start_time", "metrics"],
        args.format,
    )
    return 0


def _run_record(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "lifecycle_stage": run.info.lifecycle_stage,
        "user_id": run.info.user_id,
        "start_time": format_time(run.info.start_time),
        "end_time": format_time(run.info.end_time),
        "artifact_uri": run.info.artifact_uri,
        "parent_run_id": run.parent_run_id,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
        "source": {
            "commit": run.source.commit,
            "branch": run.source.branch,
            "dirty": run.source.dirty,
            "snapshot": run.source.snapshot,
            "untracked_skipped": list(run.source.untracked_skipped),
            "entry_point": run.source.entry_point,
        },
        "inputs": [
            {**item.dataset.to_dictionary(), "tags": {t.key: t.value for t in item.tags}}
            for item in run.inputs.dataset_inputs
        ],
    }


def show_run(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    if args.code:
        return show_code(client, args.run_id)
    run = client.get_run(args.run_id)
    record = _run_record(run)
    if args.format != "table":
        emit(record, fmt=args.format)
        return 0
    info = {k: v for k, v in record.items() if not isinstance(v, (dict, list))}
    emit(info)
    for section in ("source", "params", "metrics", "tags"):
        print(f"\n[{section}]")
        if record[section]:
            emit(record[section])
    if record["inputs"]:
        print("\n[inputs]")
        rows = [
            {**item, "context": item["tags"].get(MLFLOW_DATASET_CONTEXT, "")}
            for item in record["inputs"]
        ]
        emit(rows, ["name", "digest", "source_type", "source", "context"])
    artifacts = client.list_artifacts(run.info.run_id)
    if artifacts:
        print("\n[artifacts]")
        for item in artifacts:
            print(f"{visible(item.path)}{'/' if item.is_dir else ''}")
    return 0


def show_code(client: Client, run_id: str, other_run_id: str | None = None) -> int:
    """Print the patch of one run's uncommitted change (or between two runs' code); an
    empty change is said on stderr, so stdout stays a patch ``git apply`` takes."""
    code = client.get_run_code(run_id)
    if not code.captured:
        print(
            f"gittrack: warning: run {run_id} ran on a dirty tree whose changes were not "
            "captured (source capture 'commit')",
            file=sys.stderr,
        )
    patch = client.get_code_diff(run_id, other_run_id)
    if not patch:
        what = (
            f"runs {run_id} and {other_run_id} ran on the same code"
            if other_run_id
            else f"run {run_id} ran on commit {code.base} with no uncommitted change"
        )
        print(f"gittrack: {what}", file=sys.stderr)
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(patch)
    sys.stdout.buffer.flush()
    return 0


def _change_lifecycle(args: argparse.Namespace, method: str, verb: str) -> int:
    client = Client(args.repo)
    for run_id in args.run_ids:
        getattr(client, method)(run_id)
        print(f"{verb} {run_id}")
    return 0


def delete_runs(args: argparse.Namespace) -> int:
    return _change_lifecycle(args, "delete_run", "deleted")


def restore_runs(args: argparse.Namespace) -> int:
    return _change_lifecycle(args, "restore_run", "restored")


def recover_runs(args: argparse.Namespace) -> int:
    """Exit code 1 when an orphan could not be committed: it is listed, with why, as kept."""
    client = Client(args.repo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the kept runs are listed below instead
        opened = client.repository.recovered
    # A write of this process may have recovered already; a run it kept is tried again, the
    # latest word wins.
    found = {r.run_id: r for r in [*opened, *client.recover()]}
    rows = [
        {"run_id": r.run_id, "result": "committed" if r.committed else "kept", "note": r.note or ""}
        for r in found.values()
    ]
    if args.format == "table" and not rows:
        print("no orphaned live runs")
        return 0
    emit(rows, ["run_id", "result", "note"], args.format)
    kept = [r for r in found.values() if not r.committed]
    for r in kept:
        print(
            f"gittrack: error: live run {r.run_id} could not be committed: {visible(r.note or '')}",
            file=sys.stderr,
        )
    return 1 if kept else 0
