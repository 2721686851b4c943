"""Entities as the JSON the pages read: plain dicts, times in epoch milliseconds, and
non-finite numbers spelled as DESIGN §3 spells them (``"NaN"``, ``"Infinity"``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from gittrack.entities import ModelVersion, RegisteredModel, Run
from gittrack.utils import clock, non_finite

DESCRIPTION_TAG = "mlflow.note.content"
PARENT_TAG = "mlflow.parentRunId"


def jsonable(value: Any) -> Any:
    """``value`` ready for JSON: non-finite floats spelled by ``utils/non_finite`` (as
    DESIGN §3 spells them), times as epoch milliseconds, recursively."""
    return non_finite.json_ready(value, clock.to_ms)


def run_row(run: Run) -> dict[str, Any]:
    """One run as a row of the runs table (every metric, param and tag; the page picks)."""
    info = run.info
    end = info.end_time
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "user": info.user_id,
        "start_time": info.start_time,
        "end_time": end,
        "duration_ms": None if end is None else end - info.start_time,
        "parent_run_id": run.parent_run_id or run.data.tags.get(PARENT_TAG),
        "commit": run.source.commit,
        "branch": run.source.branch,
        "dirty": run.source.dirty,
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
    }


def run_detail(run: Run) -> dict[str, Any]:
    """One run for its page: the row plus the metric summaries, description and source."""
    out = run_row(run)
    out["description"] = run.data.tags.get(DESCRIPTION_TAG)
    out["artifact_uri"] = run.info.artifact_uri
    out["metric_summaries"] = {
        key: {
            "value": s.value,
            "step": s.step,
            "timestamp": s.timestamp,
            "min": s.min,
            "max": s.max,
            "count": s.count,
        }
        for key, s in run.metric_summaries.items()
    }
    out["source"] = asdict(run.source)
    return out


def version_json(version: ModelVersion) -> dict[str, Any]:
    """A model version: number, stage, aliases, source run and URI, who and when."""
    return {
        "name": version.name,
        "version": version.version,
        "current_stage": version.current_stage,
        "aliases": list(version.aliases),
        "run_id": version.run_id,
        "source": version.source,
        "user": version.user_id,
        "description": version.description,
        "creation_timestamp": version.creation_timestamp,
        "tags": dict(version.tags),
    }


def model_json(model: RegisteredModel) -> dict[str, Any]:
    """A registered model with its latest version per stage and its aliases."""
    return {
        "name": model.name,
        "description": model.description,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "tags": dict(model.tags),
        "aliases": dict(model.aliases),
        "latest_versions": [version_json(v) for v in model.latest_versions],
    }
