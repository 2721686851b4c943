"""Runs as rows of the run frame the filter engine reads, built column by column.

The frame has one row per run: the attribute columns of :data:`INFO_COLUMNS`, then one column
per key, ``metrics.<key>`` (latest value, float), ``params.<key>`` and ``tags.<key>``
(strings, missing as NaN). ``parent_run_id`` and ``_details`` (JSON: source and the metric
summaries' step, timestamp, min, max and count) complete what a ``Run`` object needs;
``_nan_metrics`` (JSON list, missing when empty) names the metrics whose latest value is NaN,
which the frame cannot tell from absent ones. ``_inputs`` (JSON, missing when the run has
none) holds the run's dataset inputs as stored, for ``dataset.*`` filters and ``Run.inputs``.

Documents are checked field by field as they are turned into rows; a document that fails is
checked against its JSON Schema so that the error names the file and the field. A run that
cannot be a row adds nothing: ``try_add`` and ``frame`` set it aside in ``skipped`` with the
message, so one corrupt run never stops a search of the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from gittrack.entities import LifecycleStage, RunStatus
from gittrack.errors import CorruptDataError
from gittrack.store.run_documents import artifact_uri, decode_summaries
from gittrack.store.schemas import check_stored
from gittrack.tracking.inputs import search_triples

INFO_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "user_id",
    "status",
    "artifact_uri",
    "start_time",
    "end_time",
    "lifecycle_stage",
    "parent_run_id",
    "_details",
    "_nan_metrics",
    "_inputs",
)
KEY_PREFIXES = ("metrics.", "params.", "tags.")
_STATUSES = frozenset(RunStatus.ALL)
_LIFECYCLES = frozenset((LifecycleStage.ACTIVE, LifecycleStage.DELETED))


class RunRow(NamedTuple):
    """The cells of one run's row before they become columns: the attribute columns in the
    order of :data:`INFO_COLUMNS`, the times as stored, and the key columns by kind."""

    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    artifact_uri: str
    lifecycle_stage: str
    parent_run_id: str | None
    details: str
    nan_metrics: str | None
    inputs: str | None
    start_time: str
    end_time: str | None
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]


# Where each attribute column's cells are in a ``RunRow``.
_ROW_FIELDS = {name: RunRow._fields.index(name.lstrip("_")) for name in INFO_COLUMNS}
_START, _END = RunRow._fields.index("start_time"), RunRow._fields.index("end_time")
_KEY_FIELDS = tuple(RunRow._fields.index(kind) for kind in ("metrics", "params", "tags"))
_KEY_DTYPES = (float, object, object)
_CELL_FIELDS = tuple(i for i in range(len(RunRow._fields)) if i not in _KEY_FIELDS)
_TIME_FIELDS = (_START, _END)


class RowBatch(NamedTuple):
    """Runs turned into columns, ready to join others (it pickles: a forked child's share of
    an index build comes back as one).

    ``cells`` holds the cells of each ``RunRow`` field that is not a mapping, field by
    field; ``keys`` one array per key for each of metrics, params and tags (NaN or None where
    a run lacks the key); ``where`` each run's directory; ``skipped`` the runs set aside.
    Text cells (all but the times, and the params and tags) are Arrow string arrays (null
    where missing; ``_texts``): they join and pickle as buffers, and become the frame's
    string columns without a pass over their cells.
    """

    count: int
    cells: list[Any]
    keys: tuple[dict[str, Any], ...]
    where: list[str]
    skipped: dict[str, str]


class FrameBuilder:
    """Accumulates runs and turns them into the run frame in one go."""

    def __init__(self) -> None:
        self._batches: list[RowBatch] = []
        self._rows: list[RunRow] = []  # added since the last batch
        self._where: list[str] = []
        self.skipped: dict[str, str] = {}  # run id -> why it is not a row

    def __len__(self) -> int:
        return sum(batch.count for batch in self._batches) + len(self._rows)

    def try_add(
        self,
        run_id: str,
        read: Callable[..., tuple[Any, Any, Mapping[str, Mapping[str, Any]] | None, str]],
        *args: Any,
    ) -> bool:
        """Add the run ``read(*args)`` returns as (meta, params, summaries, where); when
        reading or checking it raises ``CorruptDataError``, set the run aside in ``skipped``."""
        try:
            meta, params, summaries, where = read(*args)
            self.add(meta, params, summaries, where, run_id)
        except CorruptDataError as exc:
            self.skipped[run_id] = exc.message
            return False
        return True

    def add(
        self,
        meta: Any,
        params: Any,
        summaries: Mapping[str, Mapping[str, Any]] | None,
        where: str,
        run_id: str | None = None,
    ) -> None:
        """Add one run from its ``meta.yaml`` and ``params.yaml`` documents.

        ``where`` is the run's directory, for error messages; ``summaries`` are the decoded
        metric summaries (None: read them from ``meta``); ``run_id`` is the id of the
        directory the documents were read from. Every check runs before the row is added:
        a ``CorruptDataError`` leaves the builder as it was.
        """
        meta = _checked_meta(meta, f"{where}/meta.yaml", run_id)
        params = _checked_params(params, f"{where}/params.yaml")
        if summaries is None:
            summaries = decode_summaries(meta, f"{where}/meta.yaml")
        nan_keys = [k for k, s in summaries.items() if s["value"] != s["value"]]
        row = RunRow(
            meta["run_id"],
            meta["experiment_id"],
            meta["run_name"],
            meta["user"],
            meta["status"],
            artifact_uri(meta),
            meta["lifecycle"],
            meta.get("parent_run_id"),
            _details(meta, summaries, f"{where}/meta.yaml"),
            json.dumps(nan_keys) if nan_keys else None,
            _inputs_cell(meta, f"{where}/meta.yaml"),
            meta["start_time"],
            meta.get("end_time"),
            {k: s["value"] for k, s in summaries.items()},
            params,
            meta["tags"],
        )
        self.add_row(row, where)

    def add_row(self, row: RunRow, where: str) -> None:
        """Add a run whose cells were read and checked already (``canonical_rows``).

        Args:
            row: the run's cells.
            where: the run's directory, for error messages.
        """
        self._rows.append(row)
        self._where.append(where)

    def batch(self) -> RowBatch:
        """Everything added so far as one batch of columns, for ``extend`` of another
        builder."""
        self._seal()
        batches = self._batches
        if len(batches) == 1:
            return batches[0]._replace(skipped=self.skipped)
        count = sum(batch.count for batch in batches)
        cells = [
            _join_texts([(batch.cells[field], batch.count) for batch in batches])
            for field in range(len(_CELL_FIELDS))
        ]
        keys = tuple(
            _joined_columns([batch.keys[kind] for batch in batches], batches, count, dtype)
            for kind, dtype in enumerate(_KEY_DTYPES)
        )
        where = [w for batch in batches for w in batch.where]
        return RowBatch(count, cells, keys, where, self.skipped)

    def extend(self, batch: RowBatch) -> None:
        """Add the runs of another builder's ``batch``, after the ones added so far.

        Args:
            batch: the runs, as ``batch()`` returns them.
        """
        self._seal()
        self._batches.append(batch)
        self.skipped.update(batch.skipped)

    def _seal(self) -> None:
        """Turn the rows added since the last batch into one."""
        rows = self._rows
        if not rows and self._batches:
            return
        columns = list(zip(*rows)) if rows else [()] * len(RunRow._fields)
        cells = [
            columns[field] if field in _TIME_FIELDS else _texts(columns[field])
            for field in _CELL_FIELDS
        ]
        keys = tuple(
            _key_columns(columns[field], len(rows), dtype)
            for field, dtype in zip(_KEY_FIELDS, _KEY_DTYPES)
        )
        keys = tuple(
            columns if dtype is float else {key: _texts(v) for key, v in columns.items()}
            for columns, dtype in zip(keys, _KEY_DTYPES)
        )
        self._batches.append(RowBatch(len(rows), cells, keys, self._where, {}))
        self._rows, self._where = [], []

    def frame(self) -> pd.DataFrame:
        """The run frame; a run whose times are not real UTC times is set aside in
        ``skipped`` (its row is dropped)."""
        batch = self.batch()
        cells = dict(zip(_CELL_FIELDS, batch.cells))
        strings = _inferred_strings()
        data: dict[str, Any] = {
            name: _text_column(cells[field], strings) for name, field in _ROW_FIELDS.items()
        }
        starts, bad = _times(cells[_START])
        ends, bad_ends = _times([t or "NaT" for t in cells[_END]])
        bad |= bad_ends
        data["start_time"] = starts.astype(np.int64)
        data["end_time"] = np.where(np.isnat(ends), np.nan, ends.astype(np.int64)).astype(float)
        for prefix, columns, dtype in zip(KEY_PREFIXES, batch.keys, _KEY_DTYPES):
            for key in sorted(columns):
                values = columns[key]
                data[prefix + key] = values if dtype is float else _text_column(values, strings)
        frame = pd.DataFrame(data)
        if bad:
            run_ids = _text_column(cells[_ROW_FIELDS["run_id"]], None)
            for row in sorted(bad):
                self.skipped[run_ids[row]] = (
                    f"{batch.where[row]}/meta.yaml: start_time {cells[_START][row]!r} or "
                    f"end_time {cells[_END][row]!r} is not a UTC time"
                )
            frame = frame.drop(index=sorted(bad)).reset_index(drop=True)
        return normalize(frame)


def _joined_columns(
    parts: list[dict[str, Any]], batches: list[RowBatch], count: int, dtype: type
) -> dict[str, Any]:
    """The key columns of consecutive batches, joined (NaN or None where a batch lacks a
    key)."""
    if dtype is not float:
        names = dict.fromkeys(key for part in parts for key in part)
        return {
            key: _join_texts([(part.get(key), batch.count) for part, batch in zip(parts, batches)])
            for key in names
        }
    columns: dict[str, np.ndarray] = {}
    offset = 0
    for part, batch in zip(parts, batches):
        for key, values in part.items():
            array = columns.get(key)
            if array is None:
                array = columns[key] = _empty_column(count, dtype)
            array[offset : offset + batch.count] = values
        offset += batch.count
    return columns


def _empty_column(n: int, dtype: type) -> np.ndarray:
    return np.full(n, np.nan) if dtype is float else np.full(n, None, dtype=object)


def _key_columns(mappings: tuple[Mapping[str, Any], ...], n: int, kind: type) -> dict:
    """One array per key of the rows' mappings (NaN or None where a row lacks the key).

    Rows with the same keys in the same order (most runs of a project) are handled as one
    group, so the values are moved column by column rather than cell by cell.
    """
    groups: dict[tuple[str, ...], tuple[list[int], list[tuple]]] = {}
    for number, mapping in enumerate(mappings):
        shape = tuple(mapping)
        group = groups.get(shape)
        if group is None:
            group = groups[shape] = ([], [])
        group[0].append(number)
        group[1].append(tuple(mapping.values()))
    columns: dict[str, np.ndarray] = {}
    for shape, (numbers, values) in groups.items():
        rows = slice(None) if len(numbers) == n else np.array(numbers, dtype=np.intp)
        for key, column_values in zip(shape, zip(*values)):
            array = columns.get(key)
            if array is None:
                array = columns[key] = _empty_column(n, kind)
            array[rows] = column_values
    return columns


def _texts(values: Any) -> Any:
    """Text cells (strings, None where missing) as one Arrow string array; cells that are
    not all strings or None are returned as they are (the frame leaves them to pandas)."""
    # From a NumPy object array: pyarrow converts one six times faster than a tuple.
    array = values if isinstance(values, np.ndarray) else _object_array(values)
    try:
        return pa.array(array, type=pa.large_string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return values


def _join_texts(parts: list[tuple[Any, int]]) -> Any:
    """Consecutive parts of one text column as one, each part given with its length (a part
    None is that many missing cells): an Arrow array when every part is one, else a tuple."""
    if all(part is None or isinstance(part, pa.Array) for part, _ in parts):
        return pa.concat_arrays(
            [pa.nulls(n, pa.large_string()) if part is None else part for part, n in parts]
        )
    cells: list[Any] = []
    for part, n in parts:
        if part is None:
            cells.extend([None] * n)
        else:
            cells.extend(part.to_pylist() if isinstance(part, pa.Array) else part)
    return tuple(cells)


def _inferred_strings() -> pd.StringDtype | None:
    """The Arrow-backed string type pandas infers for strings (pandas 3), or None (pandas
    infers object columns)."""
    inferred = pd.Series(np.array(["", None], dtype=object)).dtype
    if isinstance(inferred, pd.StringDtype) and inferred.storage == "pyarrow":
        return inferred
    return None


def _text_column(values: Any, strings: pd.StringDtype | None) -> Any:
    """A text column as the frame holds it: the string array pandas would infer for the
    cells (``strings``), built from the Arrow array without a pass over its cells, or an
    object array (None where missing) for pandas to infer, as for a column of no string."""
    if isinstance(values, pa.Array):
        if strings is not None and values.null_count < len(values):
            return pd.array(values, dtype=strings)
        return values.to_numpy(zero_copy_only=False)
    if isinstance(values, np.ndarray):
        return values
    return _object_array(values)


def _object_array(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _times(texts: list[str]) -> tuple[np.ndarray, set[int]]:
    """ISO-8601 UTC times with milliseconds as datetime64[ms], and the positions of the texts
    that are no time (a month 13 passes the checks of ``add``): NaT there."""
    stripped = [t[:-1] if t.endswith("Z") else t for t in texts]
    try:
        return np.array(stripped, dtype="datetime64[ms]"), set()
    except ValueError:
        pass
    values, bad = [], set()
    for position, text in enumerate(stripped):
        try:
            values.append(np.datetime64(text, "ms"))
        except ValueError:
            values.append(np.datetime64("NaT", "ms"))
            bad.add(position)
    return np.array(values, dtype="datetime64[ms]"), bad


def _details(meta: dict, summaries: Mapping[str, Mapping[str, Any]], where: str) -> str:
    """The ``_details`` cell: source and summaries as JSON (a YAML date in ``source`` is not
    JSON, and the schema names it)."""
    try:
        return json.dumps(
            {
                "source": meta.get("source") or {},
                "summaries": {
                    k: [s["step"], s["timestamp"], s["min"], s["max"], s["count"]]
                    for k, s in summaries.items()
                },
            },
            separators=(",", ":"),
        )
    except (TypeError, ValueError):
        check_stored(meta, "meta", where)
        raise CorruptDataError(f"{where}: source: not readable as JSON") from None


def _inputs_cell(meta: dict, where: str) -> str | None:
    """The ``_inputs`` cell: the stored inputs list as JSON (None when there is none)."""
    entries = meta.get("inputs")
    if entries is None:
        return None
    try:
        search_triples(entries)  # the fields filters read are there
        return json.dumps(entries, separators=(",", ":"))
    except (TypeError, KeyError, AttributeError, ValueError):
        check_stored(meta, "meta", where)
        raise CorruptDataError(f"{where}: inputs: not a list of dataset inputs") from None


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Column types the filter engine and the cache rely on, whatever built the frame."""
    for column in frame.columns:
        if column.startswith("metrics.") or column == "end_time":
            wanted: type | None = np.float64
        else:
            wanted = np.int64 if column == "start_time" else None
        if wanted is not None and frame[column].dtype != wanted:
            frame[column] = frame[column].astype(wanted)
    return frame


def empty_frame() -> pd.DataFrame:
    return FrameBuilder().frame()


def _checked_meta(meta: Any, where: str, run_id: str | None) -> dict:
    if (
        isinstance(meta, dict)
        and meta.get("format") == 1
        and isinstance(meta.get("run_id"), str)
        and (run_id is None or meta["run_id"] == run_id)
        and isinstance(meta.get("experiment_id"), str)
        and isinstance(meta.get("run_name"), str)
        and isinstance(meta.get("user"), str)
        and isinstance(meta.get("status"), str)  # a list would not hash
        and meta["status"] in _STATUSES
        and isinstance(meta.get("lifecycle"), str)
        and meta["lifecycle"] in _LIFECYCLES
        and _is_time(meta.get("start_time"))
        and (meta.get("end_time") is None or _is_time(meta["end_time"]))
        and (meta.get("parent_run_id") is None or isinstance(meta["parent_run_id"], str))
        and isinstance(meta.get("tags"), dict)
        and _is_str_mapping(meta["tags"])
        and isinstance(meta.get("metrics"), dict)
        and (meta.get("source") is None or isinstance(meta["source"], dict))
    ):
        return meta
    check_stored(meta, "meta", where)
    if isinstance(meta, dict) and run_id is not None and meta.get("run_id") != run_id:
        raise CorruptDataError(
            f"{where}: run_id {meta.get('run_id')!r} does not match its directory {run_id}"
        )
    raise CorruptDataError(f"{where}: not a run's meta.yaml")


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 24 and value[10] == "T" and value[-1] == "Z"


def _checked_params(params: Any, where: str) -> dict:
    if params is None:
        return {}
    if isinstance(params, dict) and _is_str_mapping(params):
        return params
    check_stored(params, "params", where)
    raise CorruptDataError(f"{where}: not a run's params.yaml (keys and values are strings)")


def _is_str_mapping(doc: dict) -> bool:
    """Keys and values all strings (YAML reads ``1: x`` with an int key)."""
    return all(type(k) is str and type(v) is str for k, v in doc.items())


def nan_metric_keys(cells: pd.Series) -> set[str]:
    """The keys named by ``_nan_metrics`` cells."""
    present = cells.notna().to_numpy(dtype=bool)
    keys: set[str] = set()
    if present.any():
        for raw in cells[present]:
            keys.update(json.loads(raw))
    return keys


def logged_as_nan(frame: pd.DataFrame, metric: str, candidates: np.ndarray) -> np.ndarray:
    """Of the rows where ``candidates`` is True, those whose latest value of ``metric`` is NaN
    (the run has the metric), as opposed to runs without it: read from ``_nan_metrics``.

    Args:
        frame: rows of the run frame.
        metric: the metric's key (without ``metrics.``).
        candidates: one bool per row, True where the metric column holds NaN.

    Returns:
        One bool per row of ``frame``.
    """
    found = np.zeros(len(frame), dtype=bool)
    cells = frame.get("_nan_metrics")
    if cells is None or not candidates.any():
        return found
    for position in np.flatnonzero(candidates & cells.notna().to_numpy(dtype=bool)):
        found[position] = metric in json.loads(cells.iloc[position])
    return found


def details(raw: str | None) -> tuple[dict, dict[str, list]]:
    """(source, summaries) from a ``_details`` cell."""
    if not raw:
        return {}, {}
    doc = json.loads(raw)
    return doc.get("source") or {}, doc.get("summaries") or {}


def key_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c.startswith(KEY_PREFIXES)]
