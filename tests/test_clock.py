"""One clock: every time gittrack stamps on what it writes comes from ``utils.clock.now_ms``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.utils import clock

# 2001-09-09T01:46:40Z: far from today, so a stamp taken from another clock cannot match it.
FIXED_MS = 1_000_000_000_000


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(clock, "now_ms", lambda: FIXED_MS)
    return FIXED_MS


def test_the_clock_reads_epoch_milliseconds_now() -> None:
    before = int(time.time() * 1000)
    now = clock.now_ms()
    after = int(time.time() * 1000)
    assert before <= now <= after + 1


def test_a_run_takes_its_start_end_and_metric_times_from_the_one_clock(
    repo: Path, frozen: int
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5)
        mlflow.log_metrics({"acc": 0.9})
    stored = Client().get_run(run.info.run_id)
    assert (stored.info.start_time, stored.info.end_time) == (frozen, frozen)
    history = Client().get_metric_history(run.info.run_id, "loss")
    assert [m.timestamp for m in history] == [frozen]
    assert [m.timestamp for m in Client().get_metric_history(run.info.run_id, "acc")] == [frozen]


def test_experiments_created_within_one_millisecond_still_get_increasing_creation_times(
    repo: Path, frozen: int
) -> None:
    client = Client()
    first = client.get_experiment(client.create_experiment("first"))
    second = client.get_experiment(client.create_experiment("second"))
    assert first.creation_time >= frozen
    assert second.creation_time == first.creation_time + 1
    assert second.last_update_time == second.creation_time


def test_registered_models_and_versions_take_their_times_from_the_one_clock(
    repo: Path, frozen: int
) -> None:
    client = Client()
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    client.create_registered_model("churn")
    version = client.create_model_version("churn", f"runs:/{run.info.run_id}/model")
    assert client.get_registered_model("churn").creation_timestamp == frozen
    assert version.creation_timestamp == frozen
    assert client.get_model_version("churn", version.version).creation_timestamp == frozen


def test_autologged_training_metrics_take_their_time_from_the_one_clock(
    repo: Path, frozen: int
) -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gittrack.sklearn  # noqa: F401
    from gittrack.autologging import sklearn as sklearn_autolog

    X, y = load_iris(return_X_y=True)
    mlflow.sklearn.autolog(log_models=False)
    try:
        LogisticRegression(max_iter=200).fit(X, y)
    finally:
        sklearn_autolog.autolog(disable=True)
    [run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    history = Client().get_metric_history(run.info.run_id, "training_score")
    assert [m.timestamp for m in history] == [frozen]
