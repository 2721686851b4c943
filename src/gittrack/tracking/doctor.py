"""``gittrack doctor``: check every file of the tracking branch against its schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gittrack.errors import CorruptDataError
from gittrack.store import layout
from gittrack.store.branch import BranchSnapshot
from gittrack.store.codecs import is_real_time, load_yaml, parse_metric_lines
from gittrack.store.schemas import problems
from gittrack.store.staging import META
from gittrack.store.trees import TreeEntry

_KIND_BY_NAME = {"meta.yaml": "meta", "params.yaml": "params"}
_SHARD = re.compile(r"[0-9a-f]{2}")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _kind(path: str) -> str | None:
    if path == layout.CONFIG_PATH:
        return "config"
    if path.startswith(layout.EXPERIMENTS_DIR + "/") and path.endswith(".yaml"):
        return "experiment"
    if path.startswith(layout.RUNS_DIR + "/"):
        name = path.rpartition("/")[2]
        if "/artifacts/" in path:
            return None
        return _KIND_BY_NAME.get(name, "metrics" if name == "metrics.jsonl" else None)
    if path.startswith(layout.MODELS_DIR + "/"):
        if path.endswith("/model.yaml"):
            return "registered_model"
        if "/versions/" in path and path.endswith(".yaml"):
            return "model_version"
    return None


def _check_file(path: str, kind: str, data: bytes) -> Iterator[Problem]:
    if kind == "metrics":
        try:
            points, torn = parse_metric_lines(data, path)
        except CorruptDataError as exc:
            yield Problem(path, exc.message.removeprefix(f"{path}: "))
            return
        if torn:
            yield Problem(path, torn.removeprefix(f"{path}: "))
        return
    try:
        doc = load_yaml(data, path)
    except CorruptDataError as exc:
        yield Problem(path, exc.message.removeprefix(f"{path}:").strip())
        return
    for message in problems(doc, kind):
        yield Problem(path, message)
    if kind == "meta" and isinstance(doc, dict):
        run_id = doc.get("run_id")
        if isinstance(run_id, str) and not path.endswith(f"/{run_id}/meta.yaml"):
            yield Problem(path, f"run_id {run_id!r} does not match its directory")
        for field in ("start_time", "end_time"):
            value = doc.get(field)
            if isinstance(value, str) and not is_real_time(value):
                yield Problem(path, f"{field}: {value!r} is not a real time")
    if kind == "experiment" and isinstance(doc, dict):
        experiment_id = doc.get("experiment_id")
        if isinstance(experiment_id, str) and not path.endswith(f"/{experiment_id}.yaml"):
            yield Problem(path, f"experiment_id {experiment_id!r} does not match its file name")


def check_snapshot(snap: BranchSnapshot) -> list[Problem]:
    """Every problem of every known file on the branch, then of the run directories."""
    found: list[Problem] = []
    if snap.commit is None:
        return found

    def report(path: str, problem: str) -> None:
        found.append(Problem(path, problem))

    for rel, entry in snap.walk(layout.TRACKING_ROOT, layout.TRACKING_ROOT + "/", report):
        kind = _kind(rel)
        if kind is None:
            continue
        try:
            data = snap.repo.read_blob(entry.sha)
        except CorruptDataError as exc:  # e.g. a submodule entry where a file belongs
            found.append(Problem(rel, exc.message))
            continue
        found.extend(_check_file(rel, kind, data))
    config = snap.entry(layout.CONFIG_PATH)
    if config is None:
        found.append(Problem(layout.CONFIG_PATH, "missing"))
    elif config.is_tree:
        found.append(Problem(layout.CONFIG_PATH, "is a directory, not a file"))
    found.extend(_check_run_dirs(snap))
    return found


def _check_run_dirs(snap: BranchSnapshot) -> Iterator[Problem]:
    """Run directories the searches cannot see or read: outside their two-level shard, or
    without a ``meta.yaml`` file; and anything else where shards and runs belong."""
    runs = snap.entry(layout.RUNS_DIR)
    if runs is not None and not runs.is_tree:
        yield Problem(layout.RUNS_DIR, "is a file, not a directory")
    for first in snap.listdir(layout.RUNS_DIR):
        if not _is_shard(first):
            yield Problem(f"{layout.RUNS_DIR}/{first.name}", "not a shard directory")
            continue
        for second in snap.repo.read_tree(first.sha):
            shard = f"{layout.RUNS_DIR}/{first.name}/{second.name}"
            if not _is_shard(second):
                yield Problem(shard, "not a shard directory")
                continue
            for run in snap.repo.read_tree(second.sha):
                yield from _check_run_dir(snap, f"{shard}/{run.name}", run)


def _is_shard(entry: TreeEntry) -> bool:
    return entry.is_tree and _SHARD.fullmatch(entry.name) is not None


def _check_run_dir(snap: BranchSnapshot, path: str, run: TreeEntry) -> Iterator[Problem]:
    if not (run.is_tree and layout.is_run_id(run.name)):
        yield Problem(path, "not a run directory (a run id is 32 lowercase hex digits)")
        return
    expected = layout.run_dir(run.name)
    if path != expected:
        yield Problem(path, f"run in the wrong shard: it belongs in {expected}")
    meta = snap.repo.tree_entry(run.sha, META)
    if meta is None:
        yield Problem(path, f"run directory without {META}")
    elif meta.is_tree:
        yield Problem(f"{path}/{META}", "is a directory, not a file")
