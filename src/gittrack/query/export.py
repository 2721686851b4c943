"""Export runs and their metric histories as Parquet or CSV, for DuckDB, Spark or a notebook.

Two files go into the output directory: ``runs.<ext>``, one row per run with MLflow's
``search_runs`` columns plus ``run_name``, ``user_id``, ``lifecycle_stage`` and
``parent_run_id``, and ``metric_history.<ext>``, every metric point of those runs
(``run_id, key, step, timestamp, value``). Each file is written under a temporary name and
renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gittrack.entities import ViewType
from gittrack.errors import InvalidInputError
from gittrack.query.history import metric_history_frame
from gittrack.query.search import public_frame, select_runs
from gittrack.store.codecs import format_datetime
from gittrack.store.files import replacing

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

FORMATS = ("parquet", "csv")
_EXTRA_COLUMNS = ("run_name", "user_id", "lifecycle_stage", "parent_run_id")


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """MLflow's columns, then the extra attributes a data user wants next to them."""
    table = public_frame(frame)
    position = table.columns.get_loc("end_time") + 1
    for offset, column in enumerate(_EXTRA_COLUMNS):
        table.insert(position + offset, column, frame[column].reset_index(drop=True))
    return table


def export_runs(
    repository: TrackingRepository,
    directory: str | os.PathLike[str],
    fmt: str = "parquet",
    *,
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType = ViewType.ALL,
    with_history: bool = True,
) -> dict[str, Path]:
    """Write ``runs.<fmt>`` (and ``metric_history.<fmt>``); returns the paths by table name."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _require_pyarrow()
    frame = select_runs(repository, experiment_ids, filter_string, run_view_type)
    tables = {"runs": runs_table(frame)}
    if with_history:
        tables["metric_history"] = metric_history_frame(repository, list(frame["run_id"]))
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in tables.items():
        path = target / f"{name}.{fmt}"
        _write(table, path, fmt)
        written[name] = path
    return written


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise InvalidInputError(
            "exporting Parquet needs pyarrow (pip install pyarrow), or use --format csv"
        ) from exc


def _write(table: pd.DataFrame, path: Path, fmt: str) -> None:
    with replacing(path) as tmp:
        if fmt == "parquet":
            table.to_parquet(tmp, index=False)
        else:
            _csv_ready(table).to_csv(tmp, index=False)


def _csv_ready(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its times in gittrack's one spelling (``format_datetime``: ISO-8601
    with milliseconds), as every CSV gittrack writes carries them."""
    ready = table.copy()
    for column in ("start_time", "end_time"):
        if column in ready:
            ready[column] = ready[column].map(format_datetime, na_action="ignore")
    return ready


def runs_csv(
    repository: TrackingRepository,
    *,
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] | str | None = None,
) -> str:
    """The matching runs as the text of the ``runs.csv`` that ``export_runs`` writes (the
    web UI's CSV download); ``order_by`` as for ``search_runs``."""
    frame = select_runs(repository, experiment_ids, filter_string, run_view_type, order_by)
    buffer = io.StringIO()
    _csv_ready(runs_table(frame)).to_csv(buffer, index=False)
    return buffer.getvalue()
