"""The tracking tutorial's code, as its readers write it, runs with only the import changed.

The classes below are the tutorial's own (imports swapped for gittrack); where the tutorial
leaves a helper undefined, the test supplies the smallest stand-in, named as such.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

import gittrack as mlflow  # noqa: E402  (the tutorial's "import mlflow")
from gittrack import Client  # noqa: E402


class AnomalyDetectionExperiment:
    def __init__(self, experiment_name="Anomaly_Detection_v2"):
        mlflow.set_experiment(experiment_name)
        self.client = mlflow.tracking.MlflowClient()

    def create_run(self, run_name=None):
        if run_name is None:
            run_name = f"run_{datetime.now().strftime('%Y%m%d_%H%M%S')}"
        with mlflow.start_run(run_name=run_name) as run:
            self.current_run = run
            self.run_id = run.info.run_id
            mlflow.set_tag("mlflow.source.type", "LOCAL")
            mlflow.set_tag("mlflow.user", "data_scientist")
            mlflow.set_tag("project_phase", "optimization")
        return run

    def train_and_log_isolation_forest(self, X_train, contamination=0.1, n_estimators=100):
        from sklearn.ensemble import IsolationForest
        from sklearn.metrics import precision_recall_fscore_support

        with mlflow.start_run(nested=True):
            mlflow.log_param("contamination", contamination)
            mlflow.log_param("n_estimators", n_estimators)
            mlflow.log_param("model_type", "IsolationForest")
            mlflow.log_param("dataset_samples", X_train.shape[0])
            mlflow.log_param("dataset_features", X_train.shape[1])
            model = IsolationForest(
                contamination=contamination, n_estimators=n_estimators, random_state=42, n_jobs=-1
            )
            model.fit(X_train)
            for epoch in range(5):
                pseudo_loss = 0.1 * np.exp(-epoch / 2) + np.random.normal(0, 0.01)
                mlflow.log_metric("training_loss", pseudo_loss, step=epoch)
                mlflow.log_metric("epoch_time", np.random.normal(0.5, 0.1), step=epoch)
            y_pred = model.predict(X_train[:1000])
            y_true = np.random.choice([-1, 1], 1000, p=[0.1, 0.9])
            precision, recall, f1, _ = precision_recall_fscore_support(
                y_true, y_pred, average="binary", pos_label=-1
            )
            mlflow.log_metric("precision", precision)
            mlflow.log_metric("recall", recall)
            mlflow.log_metric("f1_score", f1)
            mlflow.log_metric("precision_recall_avg", (precision + recall) / 2)
            model_path = "isolation_forest_model"
            mlflow.sklearn.log_model(model, model_path)
            mlflow.set_tag("performance_tier", "high_recall" if recall > 0.8 else "balanced")
            mlflow.set_tag("data_split", "time_based_cv")
            return model, {"precision": precision, "recall": recall, "f1": f1}


class AdvancedAnomalyDetectionTracker:
    def __init__(self):
        mlflow.autolog()

    def train_with_advanced_logging(self, X_train, y_train, model_config):
        with mlflow.start_run(run_name="advanced_anomaly_detection"):
            mlflow.log_params(model_config)
            with mlflow.start_run(run_name="feature_engineering", nested=True):
                feature_importance = np.random.randn(X_train.shape[1])
                mlflow.log_dict(
                    {"feature_importance": feature_importance.tolist()}, "feature_importance.json"
                )
            with mlflow.start_run(run_name="model_training", nested=True):
                self._log_training_curves()
                mlflow.log_metrics({"f1": 0.95})
                mlflow.set_tag("candidate", "production_ready")

    def _log_training_curves(self):
        history = {
            "loss": [0.5, 0.3, 0.2, 0.15, 0.12],
            "val_loss": [0.6, 0.4, 0.3, 0.25, 0.22],
            "anomaly_score_mean": [0.1, 0.08, 0.07, 0.065, 0.06],
        }
        for epoch, (loss, val_loss, score) in enumerate(
            zip(history["loss"], history["val_loss"], history["anomaly_score_mean"])
        ):
            mlflow.log_metric("train_loss", loss, step=epoch)
            mlflow.log_metric("val_loss", val_loss, step=epoch)
            mlflow.log_metric("anomaly_score", score, step=epoch)
        import json

        with open("training_history.json", "w") as f:
            json.dump(history, f)
        mlflow.log_artifact("training_history.json")


def log_custom_business_metrics(y_true, y_pred, y_scores, thresholds=(0.5, 0.7, 0.9)):
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    metrics_summary = {}
    for threshold in thresholds:
        y_pred_threshold = (y_scores > threshold).astype(int)
        tn, fp, fn, tp = confusion_matrix(y_true, y_pred_threshold).ravel()
        precision = tp / (tp + fp) if (tp + fp) > 0 else 0
        recall = tp / (tp + fn) if (tp + fn) > 0 else 0
        fp_cost = fp * 100
        mlflow.log_metric(f"precision_threshold_{threshold}", precision)
        mlflow.log_metric(f"recall_threshold_{threshold}", recall)
        mlflow.log_metric(f"fp_cost_{threshold}", fp_cost)
        metrics_summary[f"threshold_{threshold}"] = {
            "precision": precision,
            "recall": recall,
            "fp_cost": fp_cost,
            "tp": int(tp),
            "fp": int(fp),
            "tn": int(tn),
            "fn": int(fn),
        }
    f1_scores = [
        2 * (m["precision"] * m["recall"]) / ((m["precision"] + m["recall"]) or 1)
        for m in metrics_summary.values()
    ]
    best_threshold = thresholds[int(np.argmax(f1_scores))]
    mlflow.log_param("optimal_threshold", best_threshold)
    mlflow.log_metric("best_f1_score", max(f1_scores))
    summary_df = pd.DataFrame(metrics_summary).T
    summary_path = "threshold_analysis.csv"
    summary_df.to_csv(summary_path)
    mlflow.log_artifact(summary_path)
    return metrics_summary, best_threshold


@pytest.fixture
def scratch(tmp_path: Path, repo: Path):
    """The tutorial writes files into the working directory: give it one outside the repo,
    while gittrack still tracks into ``repo``."""
    mlflow.set_tracking_uri(str(repo))
    work = tmp_path / "work"
    work.mkdir()
    previous = os.getcwd()
    os.chdir(work)
    yield repo
    os.chdir(previous)


def test_the_tracking_tutorial_runs_as_written(scratch: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4))
    experiment = AnomalyDetectionExperiment()
    run = experiment.create_run(run_name="tutorial_run")
    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags["mlflow.user"] == "data_scientist"
    assert got.data.tags["project_phase"] == "optimization"

    _, scores = experiment.train_and_log_isolation_forest(X)
    trained = mlflow.last_active_run()
    assert trained.data.params["model_type"] == "IsolationForest"
    assert {"precision", "recall", "f1_score", "training_loss"} <= set(trained.data.metrics)
    assert any(
        f.path == "isolation_forest_model" for f in Client().list_artifacts(trained.info.run_id)
    )

    tracker = AdvancedAnomalyDetectionTracker()
    try:
        tracker.train_with_advanced_logging(X, None, {"contamination": 0.1, "n_estimators": 50})
    finally:
        mlflow.autolog(disable=True)
    runs = mlflow.search_runs(experiment_names=["Anomaly_Detection_v2"], output_format="list")
    names = {r.info.run_name for r in runs}
    assert {"advanced_anomaly_detection", "feature_engineering", "model_training"} <= names

    with mlflow.start_run(run_name="business_metrics"):
        y_true = (rng.random(500) > 0.8).astype(int)
        y_scores = np.clip(y_true * 0.5 + rng.random(500) * 0.6, 0, 1)
        summary, best = log_custom_business_metrics(y_true, None, y_scores)
    business = mlflow.last_active_run()
    assert business.data.params["optimal_threshold"] == str(best)
    assert any(
        f.path == "threshold_analysis.csv" for f in Client().list_artifacts(business.info.run_id)
    )
