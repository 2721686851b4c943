"""The run codec: a run's stored documents turned into ``Run`` entities, and back.

A run is stored as ``meta.yaml`` (info, tags, source, metric summaries, dataset inputs),
``params.yaml`` and ``metrics.jsonl`` (DESIGN §3). This module is the one place that knows
how those documents map onto ``Run``/``RunInfo``/``RunData``: the run store reads runs
through it, the query engine builds its rows and its ``Run`` objects with it, and live runs
are read with it. Metric numbers are spelled by ``store.codecs`` (NaN and the infinities as
strings); this module only applies that spelling to whole summaries.

A run whose experiment has an ``artifact_location`` keeps its artifacts outside git and its
``meta.yaml`` says where (``artifact_uri``); every other run's artifacts are in the run itself,
at ``runs:/<run_id>``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gittrack.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    MetricSummary,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    SourceInfo,
)
from gittrack.errors import CorruptDataError
from gittrack.store.codecs import (
    decode_metric_value,
    dump_yaml,
    parse_time,
    stored_metric_value,
)
from gittrack.store.schemas import check_stored

ARTIFACT_URI_PREFIX = "runs:/"
"""The artifact URI of a run that keeps its artifacts in itself: this prefix and its id."""

META_ORDER = (
    "format",
    "run_id",
    "run_name",
    "experiment_id",
    "status",
    "lifecycle",
    "start_time",
    "end_time",
    "parent_run_id",
    "user",
    "description",
    "tags",
    "source",
    "metrics",
    "inputs",
)
"""The order of the fields of a committed ``meta.yaml`` (others follow, private ones go)."""

_DATASET_FIELDS = tuple(field.name for field in dataclasses.fields(Dataset))

Point = tuple[str, float, int, int]  # key, value, step, timestamp


def artifact_uri(meta: Mapping[str, Any]) -> str:
    """A run's artifact URI: the ``artifact_uri`` its ``meta.yaml`` records (artifacts outside
    git), else ``runs:/<run_id>``.

    Args:
        meta: the run's ``meta.yaml`` document (``run_id`` is read).

    Returns:
        The URI.
    """
    return meta.get("artifact_uri") or ARTIFACT_URI_PREFIX + meta["run_id"]


def summarize_metrics(points: Iterable[Point]) -> dict[str, dict]:
    """The metric summaries of a run's points, as ``meta.yaml`` keeps them (numbers decoded).

    Args:
        points: (key, value, step, timestamp) in logging order.

    Returns:
        Per key: the latest point (highest step, then latest timestamp) as ``value``,
        ``step`` and ``timestamp``, and ``min``, ``max`` (NaN ignored) and ``count``.
    """
    summary: dict[str, dict] = {}
    for key, value, step, timestamp in points:
        entry = summary.get(key)
        if entry is None:
            summary[key] = {
                "value": value,
                "step": step,
                "timestamp": timestamp,
                "min": value,
                "max": value,
                "count": 1,
            }
            continue
        if (step, timestamp) >= (entry["step"], entry["timestamp"]):
            entry.update(value=value, step=step, timestamp=timestamp)
        if not math.isnan(value):
            if math.isnan(entry["min"]) or value < entry["min"]:
                entry["min"] = value
            if math.isnan(entry["max"]) or value > entry["max"]:
                entry["max"] = value
        entry["count"] += 1
    return summary


def encode_summaries(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """Metric summaries as ``meta.yaml`` stores them: sorted by key, NaN and the infinities
    spelled as strings (DESIGN §3).

    Args:
        summary: decoded summaries, as ``summarize_metrics`` returns them.

    Returns:
        The ``metrics`` field of a committed ``meta.yaml``.
    """
    encode = stored_metric_value
    return {
        k: {**e, "value": encode(e["value"]), "min": encode(e["min"]), "max": encode(e["max"])}
        for k, e in sorted(summary.items())
    }


def decode_summaries(meta: Mapping[str, Any], where: str) -> dict[str, dict]:
    """The metric summaries of a committed ``meta.yaml``, numbers decoded.

    Args:
        meta: the document (its ``metrics`` field is read).
        where: the file, for error messages.

    Returns:
        Per key: ``value``, ``step``, ``timestamp``, ``min``, ``max`` and ``count``.

    Raises:
        CorruptDataError: a summary is not readable; names ``where`` (and the field, when the
            document's schema can tell).
    """
    try:
        if not all(type(key) is str for key in meta["metrics"]):
            raise TypeError("a metric key is not a string")
        return {
            key: {
                "value": decode_metric_value(entry["value"]),
                "step": int(entry["step"]),
                "timestamp": int(entry["timestamp"]),
                "min": decode_metric_value(entry["min"]),
                "max": decode_metric_value(entry["max"]),
                "count": int(entry["count"]),
            }
            for key, entry in meta["metrics"].items()
        }
    except (TypeError, KeyError, ValueError, AttributeError):
        check_stored(meta, "meta", where)
        raise CorruptDataError(f"{where}: metrics: a summary is not readable") from None


def meta_for_disk(meta: Mapping[str, Any]) -> dict:
    """The ``meta.yaml`` a run commit writes: private keys (``_parents``: kept by the process
    that owns a live run) dropped, fields in the order of ``META_ORDER``.

    Args:
        meta: a run's meta document as a live run keeps it.

    Returns:
        A new mapping.
    """
    ordered = {k: meta[k] for k in META_ORDER if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered and not k.startswith("_")})
    return ordered


def live_meta_bytes(meta: Mapping[str, Any]) -> bytes:
    """The live ``meta.yaml``: as a live run keeps it, but with ``tags`` last so new tags can
    be appended to the file.

    Args:
        meta: the run's meta document (with ``tags``).

    Returns:
        The YAML bytes.
    """
    ordered = {k: v for k, v in meta.items() if k != "tags"}
    ordered["tags"] = meta["tags"]
    return dump_yaml(ordered)


def source_document(source: SourceInfo) -> dict[str, Any]:
    """The ``source`` field of ``meta.yaml`` for a run's source (DESIGN §5).

    Args:
        source: the code the run ran on.

    Returns:
        The mapping to store.
    """
    return {
        "commit": source.commit,
        "branch": source.branch,
        "dirty": source.dirty,
        "snapshot": source.snapshot,
        "untracked_skipped": list(source.untracked_skipped),
        "entry_point": source.entry_point,
    }


def source_info(doc: Mapping[str, Any] | None) -> SourceInfo:
    """A run's ``SourceInfo`` from the ``source`` field of its ``meta.yaml``.

    Args:
        doc: the stored mapping (None or empty: nothing is known).

    Returns:
        The entity; absent fields take their defaults.
    """
    doc = doc or {}
    return SourceInfo(
        commit=doc.get("commit"),
        branch=doc.get("branch"),
        dirty=bool(doc.get("dirty")),
        snapshot=doc.get("snapshot"),
        untracked_skipped=tuple(doc.get("untracked_skipped") or ()),
        entry_point=doc.get("entry_point"),
    )


def run_inputs(entries: object, where: str = "meta.yaml") -> RunInputs:
    """``Run.inputs`` from the stored ``inputs`` list of a ``meta.yaml``.

    Args:
        entries: the stored list (None: the run has no inputs).
        where: the document, for error messages.

    Returns:
        The run's inputs.

    Raises:
        CorruptDataError: the list is not in the stored shape; names ``where``.
    """
    if entries is None:
        return RunInputs()
    try:
        return RunInputs(
            dataset_inputs=[
                DatasetInput(
                    dataset=Dataset(
                        **{name: entry["dataset"].get(name) for name in _DATASET_FIELDS}
                    ),
                    tags=[InputTag(str(k), str(v)) for k, v in (entry.get("tags") or {}).items()],
                )
                for entry in entries  # type: ignore[union-attr]
            ]
        )
    except (TypeError, KeyError, AttributeError) as exc:
        raise CorruptDataError(f"{where}: inputs: not a list of dataset inputs ({exc})") from None


def build_run(
    info: RunInfo,
    *,
    params: dict[str, str],
    tags: dict[str, str],
    summaries: dict[str, MetricSummary],
    parent_run_id: str | None,
    source: Mapping[str, Any] | None,
    inputs: object,
    where: str = "meta.yaml",
) -> Run:
    """A ``Run`` from its parts as stored: the one constructor of runs read back.

    Args:
        info: the run's info.
        params: its params, keys and values strings (the run keeps this mapping).
        tags: its tags (the run keeps this mapping).
        summaries: its metric summaries, in the order ``Run.data.metrics`` lists them; each
            metric's latest value is the summary's.
        parent_run_id: the parent run, if any.
        source: the ``source`` field of its ``meta.yaml``.
        inputs: the stored ``inputs`` list (None: none).
        where: the run's ``meta.yaml``, for error messages.

    Returns:
        The run.

    Raises:
        CorruptDataError: the inputs are not in the stored shape.
    """
    return Run(
        info=info,
        data=RunData(
            metrics={k: s.value for k, s in summaries.items()},
            params=params,
            tags=tags,
        ),
        parent_run_id=parent_run_id,
        source=source_info(source),
        metric_summaries=summaries,
        inputs=run_inputs(inputs, where),
    )


def run_from_documents(
    meta: Mapping[str, Any], params: Mapping[str, Any], summaries: Mapping[str, Mapping]
) -> Run:
    """A ``Run`` from its documents: ``meta.yaml``, ``params.yaml`` and decoded summaries.

    Args:
        meta: the run's checked ``meta.yaml`` document (live or committed).
        params: its ``params.yaml`` document.
        summaries: its decoded metric summaries (``decode_summaries`` of a committed run,
            ``summarize_metrics`` of a live run's points).

    Returns:
        The run.

    Raises:
        CorruptDataError: the stored dataset inputs are not in their shape.
    """
    run_id = meta["run_id"]
    info = RunInfo(
        run_id=run_id,
        experiment_id=str(meta["experiment_id"]),
        run_name=meta["run_name"],
        user_id=meta["user"],
        status=meta["status"],
        start_time=parse_time(meta["start_time"]) or 0,
        end_time=parse_time(meta["end_time"]),
        artifact_uri=artifact_uri(meta),
        lifecycle_stage=meta["lifecycle"],
    )
    return build_run(
        info,
        params={str(k): str(v) for k, v in params.items()},
        tags=dict(meta.get("tags") or {}),
        summaries={
            k: MetricSummary(
                k, v["value"], v["step"], v["timestamp"], v["min"], v["max"], v["count"]
            )
            for k, v in summaries.items()
        },
        parent_run_id=meta.get("parent_run_id"),
        source=meta.get("source"),
        inputs=meta.get("inputs"),
        where=f"run {run_id}: meta.yaml",
    )
