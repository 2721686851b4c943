"""``compare_runs``: several runs side by side, one row per field, with the rows that differ marked.

Rows are the run's info (``run_name``, ``experiment_id``, ``status``, ``start_time``,
``end_time``, ``source.commit``), then ``metrics.<key>``, ``params.<key>`` and ``tags.<key>``
for every key any of the runs has; columns are the run ids, in the order given, and
``differs``, true when the runs do not all hold the same value (a missing key differs from any
value; NaN equals NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from gittrack.entities import Run
from gittrack.errors import InvalidInputError

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

INFO_FIELDS = ("run_name", "experiment_id", "status", "start_time", "end_time", "source.commit")


def _time(ms: int | None) -> Any:
    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


def _fields(run: Run) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time": _time(run.info.start_time),
        "end_time": _time(run.info.end_time),
        "source.commit": run.source.commit,
    }
    for prefix, values in (
        ("metrics.", run.data.metrics),
        ("params.", run.data.params),
        ("tags.", run.data.tags),
    ):
        for key, value in values.items():
            fields[prefix + key] = value
    return fields


def _same(values: list[Any]) -> bool:
    first = values[0]
    for value in values[1:]:
        if value is None or first is None:
            if value is not first:
                return False
        elif isinstance(value, float) and isinstance(first, float):
            if not (value == first or (math.isnan(value) and math.isnan(first))):
                return False
        elif value != first:
            return False
    return True


def compare_frame(runs: Sequence[Run], diff_only: bool = False) -> pd.DataFrame:
    """The side-by-side frame of already loaded runs."""
    if not runs:
        raise InvalidInputError("compare_runs needs at least one run id")
    ids = [run.info.run_id for run in runs]
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"compare_runs got the same run twice: {ids}")
    per_run = [_fields(run) for run in runs]
    keys = sorted({k for fields in per_run for k in fields if k not in INFO_FIELDS})
    prefix_order = {"metrics": 0, "params": 1, "tags": 2}
    keys.sort(key=lambda k: (prefix_order[k.split(".", 1)[0]], k))
    rows = []
    for field in (*INFO_FIELDS, *keys):
        values = [fields.get(field) for fields in per_run]
        differs = not _same(values)
        if diff_only and not differs:
            continue
        rows.append((field, values, differs))
    frame = pd.DataFrame(
        [values for _, values, _ in rows],
        index=pd.Index([field for field, _, _ in rows], name="field"),
        columns=ids,
        dtype=object,
    )
    frame["differs"] = pd.Series([differs for _, _, differs in rows], index=frame.index, dtype=bool)
    return frame


def compare_run_ids(
    repository: TrackingRepository, run_ids: Sequence[str], diff_only: bool = False
) -> pd.DataFrame:
    """Load the runs of one repository and compare them."""
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    return compare_frame([repository.runs.get(run_id) for run_id in run_ids], diff_only)


def compare_runs(
    run_ids: Sequence[str], diff_only: bool = False, tracking_uri: str | None = None
) -> pd.DataFrame:
    """Params, metrics and tags of several runs side by side, with a ``differs`` column.

    ``gittrack.compare_runs([a, b])`` reads the current tracking repository (the one
    ``set_tracking_uri`` chose, else the one containing the working directory).
    """
    from gittrack.tracking.repository import open_repository

    return compare_run_ids(open_repository(tracking_uri), run_ids, diff_only)
