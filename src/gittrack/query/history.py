"""Metric histories: one run's points of one key, or several runs' in a long DataFrame.

A committed run's ``metrics.jsonl`` is one blob on the branch, a live run's is a file in the
staging area; either is read whole and parsed by ``store.fast_metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gittrack.entities import Metric
from gittrack.errors import NotFoundError, warn_skipped
from gittrack.query.run_tree import diff_run_dirs, runs_tree
from gittrack.store import layout
from gittrack.store.fast_metrics import MetricColumns, read_metric_columns
from gittrack.store.staging import META, METRICS
from gittrack.tracking import validation

if TYPE_CHECKING:
    from gittrack.store.branch import BranchSnapshot
    from gittrack.tracking.repository import TrackingRepository

HISTORY_COLUMNS = ["run_id", "key", "step", "timestamp", "value"]
_BATCH_FROM = 200  # from this many runs on, list the branch once and read in batches
_BATCH = 2_000


def read_points(
    repository: TrackingRepository, run_id: str, snap: BranchSnapshot | None = None
) -> MetricColumns:
    """Every metric point of a run, live or committed; ``NotFoundError`` when there is none."""
    validation.check_run_id(run_id)
    staging = repository.staging
    if staging.exists(run_id):
        try:
            live = staging.open(run_id)
            data = live.read(METRICS) or b""
            return read_metric_columns(data, f"{live.path}/{METRICS}")
        except NotFoundError:
            pass  # committed while we looked: read it from the branch
    snap = snap or repository.branch.snapshot()
    base = layout.run_dir(run_id)
    run_dir = snap.listdir(base)
    if not any(entry.name == META for entry in run_dir):
        raise NotFoundError(f"run {run_id} does not exist on branch {repository.branch.name}")
    blob = next((e for e in run_dir if e.name == METRICS and not e.is_tree), None)
    data = repository.repo.read_blob(blob.sha) if blob is not None else b""
    return read_metric_columns(data, f"{base}/{METRICS}")


def metric_history(repository: TrackingRepository, run_id: str, key: str) -> list[Metric]:
    """The points of one metric of one run, in logging order (``Client.get_metric_history``);
    lines that are not points are skipped with a warning naming the file."""
    points = read_points(repository, run_id)
    if points.problem is not None:
        warn_skipped(points.problem)
    keys = points.keys
    values = points.values.tolist()
    steps = points.steps.tolist()
    stamps = points.timestamps.tolist()
    return [Metric(key, values[i], stamps[i], steps[i]) for i, k in enumerate(keys) if k == key]


def metric_history_frame(
    repository: TrackingRepository,
    run_ids: Sequence[str] | str,
    keys: Iterable[str] | str | None = None,
) -> pd.DataFrame:
    """The histories of several runs as one long DataFrame, for plotting.

    Columns ``run_id, key, step, timestamp, value``; rows in run order, then logging order.
    ``keys`` limits the metrics (default: all).
    """
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    wanted = {keys} if isinstance(keys, str) else (set(keys) if keys is not None else None)
    snap = repository.branch.snapshot()
    columns: dict[str, list[np.ndarray]] = {name: [] for name in HISTORY_COLUMNS}
    for run_id, points in _points_of_runs(repository, list(dict.fromkeys(run_ids)), snap):
        keys_array = np.asarray(points.keys, dtype=object)
        mask = (
            np.isin(keys_array, list(wanted))
            if wanted is not None
            else np.ones(len(keys_array), dtype=bool)
        )
        columns["run_id"].append(np.full(int(mask.sum()), run_id, dtype=object))
        columns["key"].append(keys_array[mask])
        columns["step"].append(points.steps[mask])
        columns["timestamp"].append(points.timestamps[mask])
        columns["value"].append(points.values[mask])
    dtypes = {"run_id": object, "key": object, "step": np.int64, "timestamp": np.int64}
    return pd.DataFrame(
        {
            name: np.concatenate(parts).astype(dtypes.get(name, np.float64))
            if parts
            else np.array([], dtype=dtypes.get(name, np.float64))
            for name, parts in columns.items()
        }
    )


def _points_of_runs(
    repository: TrackingRepository, run_ids: list[str], snap: BranchSnapshot
) -> Iterator[tuple[str, MetricColumns]]:
    """Each run's points; many committed runs are read with batched object reads."""
    if len(run_ids) < _BATCH_FROM:
        for run_id in run_ids:
            yield run_id, read_points(repository, run_id, snap)
        return
    repo = repository.repo
    live = set(repository.staging.run_ids())
    tree = runs_tree(repo, snap.tree)
    dirs = diff_run_dirs(repo, None, tree).changed
    for start in range(0, len(run_ids), _BATCH):
        chunk = run_ids[start : start + _BATCH]
        committed = [r for r in chunk if r not in live and r in dirs]
        blobs: dict[str, str | None] = {}
        for run_id, entries in zip(committed, repo.read_trees([dirs[r] for r in committed])):
            blobs[run_id] = next((e.sha for e in entries if e.name == METRICS), None)
        wanted = [sha for sha in blobs.values() if sha is not None]
        bodies = dict(zip(wanted, (body for _kind, body in repo.read_objects(wanted))))
        for run_id in chunk:
            if run_id not in blobs:
                yield run_id, read_points(repository, run_id, snap)
                continue
            sha = blobs[run_id]
            where = f"{layout.run_dir(run_id)}/{METRICS}"
            yield run_id, read_metric_columns(bodies[sha] if sha else b"", where)
