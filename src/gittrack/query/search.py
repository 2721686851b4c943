"""``search_runs``: runs of the tracking branch (and this clone's live runs) in pandas."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gittrack.entities import LifecycleStage, Run, ViewType
from gittrack.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from gittrack.tracking.repository import TrackingRepository

ATTRIBUTE_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


class PagedList(list):
    """A page of results; ``token`` continues the search (None on the last page)."""

    def __init__(self, items: Sequence[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


def run_row(run: Run) -> dict[str, Any]:
    """One run as a row of the internal frame the filter engine reads."""
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "user_id": run.info.user_id,
        "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
        "start_time": run.info.start_time,
        "end_time": float("nan") if run.info.end_time is None else run.info.end_time,
        "lifecycle_stage": run.info.lifecycle_stage,
    }
    for key, value in run.data.metrics.items():
        row[f"metrics.{key}"] = value
    for key, value in run.data.params.items():
        row[f"params.{key}"] = value
    for key, value in run.data.tags.items():
        row[f"tags.{key}"] = value
    return row


def runs_frame(repository: TrackingRepository) -> tuple[pd.DataFrame, dict[str, Run]]:
    """Every run as the internal frame, plus the runs by id."""
    import pandas as pd

    runs = {}
    for run_id in repository.runs.run_ids():
        runs[run_id] = repository.runs.get(run_id)
    frame = pd.DataFrame([run_row(r) for r in runs.values()])
    if frame.empty:
        frame = pd.DataFrame(columns=[*ATTRIBUTE_COLUMNS, "run_name", "user_id", "lifecycle_stage"])
    return frame, runs


def _select(
    repository: TrackingRepository,
    experiment_ids: Sequence[str] | str | None,
    filter_string: str | None,
    run_view_type: ViewType,
    order_by: list[str] | None,
) -> tuple[pd.DataFrame, dict[str, Run]]:
    from gittrack.query.filter_parser import apply_filter
    from gittrack.query.ordering import parse_order_by, sort_runs

    frame, runs = runs_frame(repository)
    if experiment_ids is not None:
        ids = [experiment_ids] if isinstance(experiment_ids, (str, int)) else list(experiment_ids)
        frame = frame[frame["experiment_id"].isin([str(i) for i in ids])]
    view = ViewType(run_view_type)
    if view == ViewType.ACTIVE_ONLY:
        frame = frame[frame["lifecycle_stage"] == LifecycleStage.ACTIVE]
    elif view == ViewType.DELETED_ONLY:
        frame = frame[frame["lifecycle_stage"] == LifecycleStage.DELETED]
    frame = apply_filter(frame, filter_string)
    frame = sort_runs(frame, parse_order_by(order_by))
    return frame, runs


def _offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        return int(json.loads(base64.b64decode(page_token))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"page token {page_token!r} is not one search_runs returned"
        ) from exc


def search_run_objects(
    repository: TrackingRepository,
    *,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> PagedList:
    frame, runs = _select(repository, experiment_ids, filter_string, run_view_type, order_by)
    start = _offset(page_token)
    ids = list(frame["run_id"])
    page = ids[start : start + max_results]
    token = None
    if start + max_results < len(ids):
        token = base64.b64encode(json.dumps({"offset": start + max_results}).encode()).decode()
    return PagedList([runs[i] for i in page], token)


def public_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """MLflow's columns in MLflow's order, times as UTC datetimes."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for column in ATTRIBUTE_COLUMNS:
        out[column] = frame.get(column, None)
    out["start_time"] = pd.to_datetime(out["start_time"], unit="ms", utc=True)
    out["end_time"] = pd.to_datetime(out["end_time"], unit="ms", utc=True)
    for prefix in ("metrics.", "params.", "tags."):
        for column in sorted(c for c in frame.columns if c.startswith(prefix)):
            out[column] = frame[column]
    return out.reset_index(drop=True)


def search_runs(
    repository: TrackingRepository,
    *,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
) -> Any:
    if output_format not in ("pandas", "list"):
        raise InvalidInputError(f"output_format {output_format!r} must be 'pandas' or 'list'")
    frame, runs = _select(repository, experiment_ids, filter_string, run_view_type, order_by)
    frame = frame.head(max_results)
    if output_format == "list":
        return [runs[i] for i in frame["run_id"]]
    return public_frame(frame)
