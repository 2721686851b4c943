"""The scripts in ``examples/`` run as a user would run them and leave what they promise."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gittrack
from gittrack.entities import Run, RunStatus

from .conftest import SRC, git, make_repo, tree_fingerprint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RUN_ID_LINE = re.compile(r"^run_id=([0-9a-f]{32})$", re.MULTILINE)
HAS_SKLEARN_FLAVOR = importlib.util.find_spec("gittrack.sklearn") is not None

pytest.importorskip("sklearn")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's repository with one commit, an uncommitted edit and an untracked file."""
    path = make_repo(tmp_path / "project")
    (path / "train.py").write_text("print('train, edited')\n")
    (path / "notes.txt").write_text("not committed\n")
    git(path, "status", "--porcelain")  # settle the index's stat data before comparing
    return path


def run_example(
    name: str, cwd: Path, *args: str, extra_path: Path | None = None
) -> tuple[list[str], str]:
    """Run ``examples/<name>`` in a fresh interpreter; return the printed run ids and stdout."""
    paths = [str(p) for p in (extra_path, SRC) if p is not None]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return RUN_ID_LINE.findall(proc.stdout), proc.stdout


def artifact_paths(client: gittrack.Client, run_id: str, path: str | None = None) -> set[str]:
    return {info.path for info in client.list_artifacts(run_id, path)}


def assert_finished(run: Run) -> None:
    assert run.info.status == RunStatus.FINISHED
    assert run.info.end_time is not None


# ------------------------------------------------------------------------- iris
def test_iris_example_logs_one_finished_run_and_leaves_the_work_tree_alone(
    project: Path,
) -> None:
    before = tree_fingerprint(project)
    status_before = git(project, "status", "--porcelain")

    run_ids, stdout = run_example("iris_random_forest.py", project)

    assert git(project, "status", "--porcelain") == status_before
    assert tree_fingerprint(project) == before
    assert len(run_ids) == 1
    assert "accuracy=" in stdout
    client = gittrack.Client(tracking_uri=str(project))
    run = client.get_run(run_ids[0])
    assert_finished(run)
    assert client.get_experiment(run.info.experiment_id).name == "iris_random_forest"
    assert run.info.run_name == "random_forest_v1"
    assert run.data.params == {
        "n_estimators": "100",
        "max_depth": "5",
        "random_state": "42",
        "test_size": "0.2",
    }
    for key in ("accuracy", "precision", "recall", "f1_score"):
        assert 0.8 <= run.data.metrics[key] <= 1.0, key
    assert run.data.tags["data_version"].startswith("iris@scikit-learn-")
    assert run.data.tags["model_family"] == "random_forest"
    assert run.data.tags["mlflow.source.git.branch"] == "main"

    artifacts = artifact_paths(client, run.info.run_id)
    assert {"confusion_matrix.png", "feature_importance.json"} <= artifacts
    assert ("random_forest_model" in artifacts) == HAS_SKLEARN_FLAVOR


def test_iris_example_without_matplotlib_skips_only_the_figure(
    project: Path, tmp_path: Path
) -> None:
    hidden = tmp_path / "hide_matplotlib"
    (hidden / "matplotlib").mkdir(parents=True)
    (hidden / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('matplotlib is hidden for this test')\n"
    )

    run_ids, stdout = run_example("iris_random_forest.py", project, extra_path=hidden)

    assert "matplotlib is not installed" in stdout
    client = gittrack.Client(tracking_uri=str(project))
    run = client.get_run(run_ids[0])
    assert_finished(run)
    artifacts = artifact_paths(client, run.info.run_id)
    assert "confusion_matrix.png" not in artifacts
    assert "feature_importance.json" in artifacts
    assert "accuracy" in run.data.metrics


# ------------------------------------------------------------ anomaly detection
def test_anomaly_example_logs_a_workflow_with_two_nested_runs(
    project: Path, tmp_path: Path
) -> None:
    before = tree_fingerprint(project)
    status_before = git(project, "status", "--porcelain")

    run_ids, stdout = run_example("anomaly_detection.py", project)

    assert git(project, "status", "--porcelain") == status_before
    assert tree_fingerprint(project) == before
    assert len(run_ids) == 3
    assert "best_f1_score=" in stdout
    client = gittrack.Client(tracking_uri=str(project))
    runs = {run.info.run_name: run for run in map(client.get_run, run_ids)}
    parent = runs.pop(next(name for name in runs if name.startswith("workflow_")))
    assert set(runs) == {"feature_engineering", "model_training"}
    for run in (parent, *runs.values()):
        assert_finished(run)
    for child in runs.values():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.experiment_id == parent.info.experiment_id
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "breast_cancer_anomaly_detection"

    check_workflow_parent(client, parent, tmp_path)
    check_feature_engineering(client, runs["feature_engineering"])
    check_model_training(client, runs["model_training"])


def check_workflow_parent(client: gittrack.Client, parent: Run, tmp_path: Path) -> None:
    match = re.fullmatch(r"workflow_\d{8}_([0-9a-f]{8})", parent.info.run_name)
    assert match, parent.info.run_name
    assert "mlflow.parentRunId" not in parent.data.tags
    config = Path(
        client.download_artifacts(
            parent.info.run_id, "config/workflow_config.json", tmp_path / "dl"
        )
    )
    config_hash = hashlib.md5(config.read_bytes()).hexdigest()[:8]
    assert match.group(1) == config_hash == parent.data.params["config_hash"]

    assert parent.data.params["data_shape"] == "(397, 30)"
    assert parent.data.params["anomaly_count"] == "40"
    assert "data_version" in parent.data.params
    assert float(parent.data.params["optimal_threshold"]) in (0.45, 0.5, 0.55, 0.6)
    metrics = parent.data.metrics
    assert 0.0 < metrics["best_f1_score"] <= 1.0
    assert 0.5 < metrics["test_roc_auc"] <= 1.0
    for threshold in ("0.45", "0.5", "0.55", "0.6"):
        assert f"precision_threshold_{threshold}" in metrics
        assert f"recall_threshold_{threshold}" in metrics
    tags = parent.data.tags
    assert tags["project_name"] == "tumour anomaly detection"
    assert tags["candidate"] in ("production_ready", "needs_work")
    assert tags["workflow_status"] == "completed"

    assert {"config", "threshold_analysis.csv"} <= artifact_paths(client, parent.info.run_id)
    assert artifact_paths(client, parent.info.run_id, "config") == {"config/workflow_config.json"}
    csv = Path(client.download_artifacts(parent.info.run_id, "threshold_analysis.csv", tmp_path))
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("threshold,precision,recall,f1,")
    assert len(lines) == 1 + 4


def check_feature_engineering(client: gittrack.Client, run: Run) -> None:
    assert run.data.params["feature_engineer"] == "standard_scaling_pca"
    assert run.data.params["pca_components"] == "3"
    assert run.data.params["raw_features"] == "30"
    assert run.data.params["processed_features"] == "3"
    assert 0.0 < run.data.metrics["pca_explained_variance_total"] < 1.0
    history = client.get_metric_history(run.info.run_id, "pca_explained_variance_ratio")
    assert [m.step for m in history] == [0, 1, 2]
    assert artifact_paths(client, run.info.run_id) == {"feature_importance.json", "pipelines"}
    assert artifact_paths(client, run.info.run_id, "pipelines") == {
        "pipelines/feature_pipeline.pkl"
    }


def check_model_training(client: gittrack.Client, run: Run) -> None:
    params = run.data.params
    assert params["model_type"] == "IsolationForest"
    assert params["n_estimators"] == "100"
    assert params["contamination"] == "0.1"
    for key in ("val_roc_auc", "val_average_precision", "train_anomaly_score_mean"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [0, 1, 2, 3, 4], key
    trees = client.get_metric_history(run.info.run_id, "n_trees")
    assert [m.value for m in trees] == [20, 40, 60, 80, 100]
    metrics = run.data.metrics
    for name in ("roc_auc", "average_precision", "precision", "recall", "f1"):
        folds = [metrics[f"cv_{name}_fold_{i}"] for i in range(5)]
        assert metrics[f"avg_{name}"] == pytest.approx(sum(folds) / 5)
    assert run.data.tags["performance_tier"] in ("high_recall", "balanced")
    artifacts = artifact_paths(client, run.info.run_id)
    assert "training_history.json" in artifacts
    assert ("isolation_forest_model" in artifacts) == HAS_SKLEARN_FLAVOR


# ----------------------------------------------------------------------- --repo
@pytest.mark.parametrize(
    ("script", "n_runs"), [("iris_random_forest.py", 1), ("anomaly_detection.py", 3)]
)
def test_examples_track_into_the_repository_given_with_repo(
    script: str, n_runs: int, tmp_path: Path
) -> None:
    project = make_repo(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    run_ids, _ = run_example(script, elsewhere, "--repo", str(project))

    assert len(run_ids) == n_runs
    assert list(elsewhere.iterdir()) == []
    assert git(project, "status", "--porcelain") == ""
    client = gittrack.Client(tracking_uri=str(project))
    for run_id in run_ids:
        assert_finished(client.get_run(run_id))
