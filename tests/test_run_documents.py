"""The run codec (``store/run_documents.py``): one mapping between a run's stored documents
and ``Run``, so a run reads the same by id, by search, live and committed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.data import from_numpy
from gittrack.errors import CorruptDataError
from gittrack.store.run_documents import (
    ARTIFACT_URI_PREFIX,
    decode_summaries,
    encode_summaries,
    meta_for_disk,
    run_from_documents,
    summarize_metrics,
)


def _log_everything(experiment_id: str | None = None) -> str:
    import numpy as np

    with mlflow.start_run(experiment_id=experiment_id, description="a note") as run:
        mlflow.log_params({"alpha": 0.5, "layers": 3})
        mlflow.set_tags({"team": "vision"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.25, step=1)
        mlflow.log_metric("nan_metric", math.nan)
        mlflow.log_metric("up", math.inf)
        mlflow.log_metric("down", -math.inf)
        mlflow.log_input(from_numpy(np.arange(6.0), name="numbers"), context="train")
    return run.info.run_id


def test_a_committed_run_reads_the_same_by_id_and_by_search(repo: Path) -> None:
    run_id = _log_everything()

    by_id = Client().get_run(run_id)
    (by_search,) = Client().search_runs(["0"])

    assert by_search.info == by_id.info
    assert by_search.data.params == by_id.data.params == {"alpha": "0.5", "layers": "3"}
    assert by_search.data.tags == by_id.data.tags
    assert by_search.source == by_id.source
    assert by_search.parent_run_id == by_id.parent_run_id
    assert by_search.inputs == by_id.inputs
    assert [d.dataset.name for d in by_id.inputs.dataset_inputs] == ["numbers"]
    assert by_id.info.artifact_uri == f"{ARTIFACT_URI_PREFIX}{run_id}"
    for run in (by_id, by_search):
        metrics = run.data.metrics
        assert metrics["loss"] == 0.25 and metrics["up"] == math.inf
        assert metrics["down"] == -math.inf and math.isnan(metrics["nan_metric"])
        assert run.metric_summaries["loss"].min == 0.25 and run.metric_summaries["loss"].count == 2


def test_a_live_run_reads_the_same_by_id_and_by_search(repo: Path) -> None:
    run = mlflow.start_run()
    try:
        mlflow.log_param("p", "x")
        mlflow.log_metric("m", math.nan)
        mlflow.log_metric("m", 2.0, step=3)
        by_id = Client().get_run(run.info.run_id)
        (by_search,) = Client().search_runs(["0"])
        assert by_search.info == by_id.info
        assert by_search.data.params == by_id.data.params == {"p": "x"}
        assert by_search.data.metrics == by_id.data.metrics == {"m": 2.0}
        assert by_search.metric_summaries == by_id.metric_summaries
    finally:
        mlflow.end_run()


def test_a_run_with_an_external_artifact_location_keeps_its_uri_everywhere(
    repo: Path, tmp_path: Path
) -> None:
    experiment_id = mlflow.create_experiment("outside", artifact_location=str(tmp_path / "store"))
    run_id = _log_everything(experiment_id)
    expected = f"{tmp_path / 'store'}/{run_id}/artifacts"

    assert Client().get_run(run_id).info.artifact_uri == expected
    (found,) = Client().search_runs([experiment_id])
    assert found.info.artifact_uri == expected


def test_summaries_survive_encoding_with_nan_and_the_infinities() -> None:
    points = [
        ("a", math.nan, 0, 1),
        ("a", 3.0, 1, 2),
        ("b", math.inf, 0, 1),
        ("b", -math.inf, 1, 1),
    ]
    stored = encode_summaries(summarize_metrics(points))

    assert stored["a"] == {
        "value": 3.0,
        "step": 1,
        "timestamp": 2,
        "min": 3.0,
        "max": 3.0,
        "count": 2,
    }
    assert stored["b"]["value"] == "-Infinity" and stored["b"]["max"] == "Infinity"
    decoded = decode_summaries({"metrics": stored}, "meta.yaml")
    assert decoded["b"]["value"] == -math.inf and decoded["b"]["max"] == math.inf
    assert list(stored) == ["a", "b"]


def test_an_unreadable_summary_is_a_corrupt_data_error_naming_the_file() -> None:
    with pytest.raises(CorruptDataError, match="runs/x/meta.yaml"):
        decode_summaries({"metrics": {"m": {"value": "lots"}}}, "runs/x/meta.yaml")


def test_the_committed_meta_drops_private_keys_and_puts_fields_in_order() -> None:
    meta = {"tags": {}, "_parents": ["abc"], "run_id": "r", "format": 1, "extra": 2}

    assert list(meta_for_disk(meta)) == ["format", "run_id", "tags", "extra"]


def test_stored_inputs_in_the_wrong_shape_name_the_run() -> None:
    meta = {
        "run_id": "0" * 32,
        "experiment_id": "0",
        "run_name": "n",
        "user": "u",
        "status": "FINISHED",
        "start_time": "2024-01-01T00:00:00.000Z",
        "end_time": None,
        "lifecycle": "active",
        "tags": {},
        "inputs": [{"no dataset": 1}],
    }
    with pytest.raises(CorruptDataError, match=f"run {'0' * 32}: meta.yaml: inputs"):
        run_from_documents(meta, {}, {})
