"""``search_runs``: runs of the tracking branch (and this clone's live runs) in pandas.

Searches run on the run index (``index``): the filter is compiled to one boolean mask over the
whole frame, the order is a vectorised sort, and only the rows returned are turned into
MLflow's DataFrame or into ``Run`` objects.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gittrack.entities import (
    LifecycleStage,
    MetricSummary,
    Run,
    RunInfo,
    ViewType,
)
from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import MatchAll, filter_mask, parse_filter
from gittrack.query.index import run_index
from gittrack.query.ordering import parse_order_by, sort_runs
from gittrack.query.paging import PagedList, decode_page_token, encode_page_token
from gittrack.query.run_rows import details, key_columns, nan_metric_keys
from gittrack.store.run_documents import build_run
from gittrack.tracking import validation

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

ATTRIBUTE_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
MAX_RESULTS_PER_PAGE = 50_000  # MLflow's limit for one page of Client.search_runs


def view_type(value: ViewType | int | str) -> ViewType:
    """A ``ViewType`` from its value or name (``"ACTIVE_ONLY"``, ``"deleted_only"``, ``"all"``)."""
    try:
        if isinstance(value, str):
            return ViewType.from_string(value)
        return ViewType(value)
    except (KeyError, ValueError) as exc:
        raise InvalidInputError(
            f"run_view_type {value!r} must be ViewType.ACTIVE_ONLY, DELETED_ONLY or ALL"
        ) from exc


def _experiment_ids(experiment_ids: Sequence[str] | str | int | None) -> list[str] | None:
    if experiment_ids is None:
        return None
    if isinstance(experiment_ids, (str, int)):
        return [str(experiment_ids)]
    return [str(i) for i in experiment_ids]


def select_runs(
    repository: TrackingRepository,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """The matching runs as rows of the run frame, in order.

    The filter and the order are parsed before any run is read, so a syntax error costs
    nothing.
    """
    expression = parse_filter(filter_string)
    keys = parse_order_by(order_by)
    view = view_type(run_view_type)
    ids = _experiment_ids(experiment_ids)
    frame = run_index(repository).frame()
    mask = np.ones(len(frame), dtype=bool)
    if ids is not None:
        mask &= frame["experiment_id"].isin(ids).to_numpy(dtype=bool)
    if view == ViewType.ACTIVE_ONLY:
        mask &= (frame["lifecycle_stage"] == LifecycleStage.ACTIVE).to_numpy(dtype=bool)
    elif view == ViewType.DELETED_ONLY:
        mask &= (frame["lifecycle_stage"] == LifecycleStage.DELETED).to_numpy(dtype=bool)
    if not isinstance(expression, MatchAll):
        mask &= filter_mask(expression, frame).to_numpy(dtype=bool)
    selected = frame if mask.all() else frame[mask]
    return sort_runs(selected, keys)


def _check_max_results(max_results: int, limit: int | None = None) -> int:
    max_results = validation.check_max_results(max_results)
    if limit is not None and max_results > limit:
        raise InvalidInputError(
            f"max_results {max_results} is too large: at most {limit} runs per page; "
            "use page_token to read further pages"
        )
    return int(max_results)


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
    """One page of matching runs as ``Run`` objects (``Client.search_runs``)."""
    max_results = _check_max_results(max_results, MAX_RESULTS_PER_PAGE)
    start = decode_page_token(page_token)
    frame = select_runs(repository, experiment_ids, filter_string, run_view_type, order_by)
    page = frame.iloc[start : start + max_results]
    token = encode_page_token(start + max_results) if start + max_results < len(frame) else None
    return PagedList(runs_from_frame(page), token)


@dataclass(frozen=True)
class RunPage:
    """One page of a search with what a table around it needs: the total number of matching
    runs and every metric, param and tag key those runs have (for a column chooser)."""

    runs: list[Run]
    total: int
    offset: int
    metric_keys: list[str]
    param_keys: list[str]
    tag_keys: list[str]


def search_run_page(
    repository: TrackingRepository,
    *,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] | str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> RunPage:
    """Runs ``offset`` to ``offset + limit`` of a search, their total and their keys.

    Only the rows of the page become ``Run`` objects, so a page of a 10,000-run search costs
    the vectorised filter and sort plus ``limit`` rows."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset {offset!r} must be a whole number of runs, 0 or more")
    limit = _check_max_results(limit, MAX_RESULTS_PER_PAGE)
    frame = select_runs(repository, experiment_ids, filter_string, run_view_type, order_by)
    keys = key_columns(frame.columns)
    present = frame[keys].notna().to_numpy().any(axis=0) if keys and len(frame) else []
    found = [column for column, keep in zip(keys, present) if keep]
    by_kind: dict[str, list[str]] = {"metrics": [], "params": [], "tags": []}
    for column in found:
        prefix, key = column.split(".", 1)
        by_kind[prefix].append(key)
    return RunPage(
        runs=runs_from_frame(frame.iloc[offset : offset + limit]),
        total=len(frame),
        offset=offset,
        metric_keys=sorted(by_kind["metrics"]),
        param_keys=sorted(by_kind["params"]),
        tag_keys=sorted(by_kind["tags"]),
    )


def search_runs(
    repository: TrackingRepository,
    *,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int | None = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
) -> Any:
    """Matching runs as MLflow's DataFrame (``output_format="pandas"``) or a list of ``Run``;
    every match for a ``max_results`` of None, none for 0 or less (as MLflow's fluent API)."""
    if output_format not in ("pandas", "list"):
        raise InvalidInputError(
            f"output_format {output_format!r} is not supported: use 'pandas' or 'list'"
        )
    frame = select_runs(repository, experiment_ids, filter_string, run_view_type, order_by)
    if validation.asks_for_no_results(max_results):
        frame = frame.iloc[:0]  # MLflow's fluent search_runs answers 0 or less with no runs
    elif max_results is not None:
        frame = frame.iloc[: _check_max_results(max_results)]
    if output_format == "list":
        return runs_from_frame(frame)
    return public_frame(frame)


# ------------------------------------------------------------------ output shapes


@functools.cache
def _time_dtype() -> Any:
    """The dtype MLflow's DataFrame gets for times with this pandas (ns before 3.0, us after)."""
    return pd.DataFrame({"t": [pd.to_datetime(0, unit="ms", utc=True)]})["t"].dtype


def _times(values: pd.Series) -> pd.Series:
    times = pd.to_datetime(values.to_numpy(dtype=np.float64), unit="ms", utc=True)
    return pd.Series(times, dtype=_time_dtype())


def public_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """MLflow's columns in MLflow's order, times as UTC datetimes.

    As in MLflow, a ``metrics.``/``params.``/``tags.`` column is there when at least one of the
    returned runs has that key.
    """
    keys = key_columns(frame.columns)
    if keys and len(frame):
        present = frame[keys].notna().to_numpy().any(axis=0)
        nan_metrics = _metrics_logged_as_nan(
            frame, [c for c, p in zip(keys, present) if not p and c.startswith("metrics.")]
        )
        keys = [column for column, keep in zip(keys, present) if keep or column in nan_metrics]
    else:
        keys = []
    out = frame[[*ATTRIBUTE_COLUMNS[:4], *keys]].reset_index(drop=True)
    out.insert(4, "start_time", _times(frame["start_time"]))
    out.insert(5, "end_time", _times(frame["end_time"]))
    return out


def _metrics_logged_as_nan(frame: pd.DataFrame, columns: list[str]) -> set[str]:
    """Of metric columns that are all NaN, those some run has (its latest value is NaN)."""
    if not columns:
        return set()
    logged = nan_metric_keys(frame["_nan_metrics"])
    return {column for column in columns if column[len("metrics.") :] in logged}


def runs_from_frame(frame: pd.DataFrame) -> list[Run]:
    """``Run`` objects for the rows of a run frame."""
    if frame.empty:
        return []
    n = len(frame)
    metrics: list[dict[str, float]] = [{} for _ in range(n)]
    params: list[dict[str, str]] = [{} for _ in range(n)]
    tags: list[dict[str, str]] = [{} for _ in range(n)]
    targets = {"metrics.": metrics, "params.": params, "tags.": tags}
    for column in key_columns(frame.columns):
        prefix, key = column.split(".", 1)
        target = targets[prefix + "."]
        series = frame[column]
        values = series.to_numpy(dtype=object)
        for position in np.flatnonzero(series.notna().to_numpy()):
            target[position][key] = values[position]
    runs = []
    columns = ("run_id", "experiment_id", "run_name", "user_id", "status", "artifact_uri")
    infos = zip(*(frame[c].to_numpy(dtype=object) for c in columns))
    rest = zip(
        frame["start_time"].to_numpy(),
        frame["end_time"].to_numpy(),
        frame["lifecycle_stage"].to_numpy(dtype=object),
        frame["parent_run_id"].to_numpy(dtype=object),
        frame["_details"].to_numpy(dtype=object),
        _column_or_none(frame, "_inputs"),
    )
    for position, (info, (start, end, lifecycle, parent, raw, inputs)) in enumerate(
        zip(infos, rest)
    ):
        source, summaries = details(raw)
        run_metrics = metrics[position]
        for key in summaries.keys() - run_metrics.keys():
            run_metrics[key] = math.nan  # a metric whose latest value is NaN
        runs.append(
            build_run(
                RunInfo(
                    **dict(zip(columns, info)),
                    start_time=int(start),
                    end_time=None if math.isnan(end) else int(end),
                    lifecycle_stage=lifecycle,
                ),
                params=params[position],
                tags=tags[position],
                summaries={
                    k: MetricSummary(k, float(run_metrics[k]), *summary)
                    for k, summary in sorted(summaries.items())
                },
                parent_run_id=parent if isinstance(parent, str) else None,
                source=source,
                inputs=json.loads(inputs) if isinstance(inputs, str) else None,
            )
        )
    return runs


def _column_or_none(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column's cells, or None for each row of a frame built without it."""
    if column in frame:
        return frame[column].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)
