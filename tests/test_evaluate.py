"""``gittrack.evaluate``: MLflow's default evaluator on scikit-learn models; the same model
and data through MLflow give the same metric names and values and the same artifact names."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gittrack
from gittrack.errors import InvalidInputError
from tests.conftest import tree_fingerprint

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store in tmp_path; its fluent state is left clean."""
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["label"] = y
    return df


def _binary() -> tuple[Any, pd.DataFrame]:
    X, y = load_breast_cancer(return_X_y=True)
    df = _frame(X[:, :5], y)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(df.drop(columns="label"), y)
    return model, df


def _multiclass() -> tuple[Any, pd.DataFrame]:
    X, y = load_iris(return_X_y=True)
    df = _frame(X, y)
    return LogisticRegression(max_iter=1000).fit(df.drop(columns="label"), y), df


def _regression() -> tuple[Any, pd.DataFrame]:
    X, y = load_diabetes(return_X_y=True)
    df = _frame(X, y)
    return LinearRegression().fit(df.drop(columns="label"), y), df


CASES = {
    "binary classifier": (_binary, "classifier"),
    "multiclass classifier": (_multiclass, "classifier"),
    "regressor": (_regression, "regressor"),
}


def _mlflow_evaluate(ml: Any, model: Any, df: pd.DataFrame, model_type: str) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ml.start_run() as run:
            info = ml.sklearn.log_model(model, name="model")
            result = ml.models.evaluate(
                info.model_uri, df, targets="label", model_type=model_type, evaluators=["default"]
            )
        logged = ml.get_run(run.info.run_id).data.metrics
        files = {f.path for f in ml.MlflowClient().list_artifacts(run.info.run_id)}
    return result.metrics, set(result.artifacts), logged, files


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_metrics_and_artifacts_match_mlflows_default_evaluator(
    repo: Path, real_mlflow: Any, case: str
) -> None:
    build, model_type = CASES[case]
    model, df = build()
    result = gittrack.evaluate(model, df, targets="label", model_type=model_type)
    want_metrics, want_artifacts, want_logged, want_files = _mlflow_evaluate(
        real_mlflow, model, df, model_type
    )
    assert set(result.metrics) == set(want_metrics)
    for name, value in want_metrics.items():
        assert result.metrics[name] == pytest.approx(float(value), rel=1e-9), name
    assert set(result.artifacts) == want_artifacts
    run = gittrack.get_run(result.run_id)
    assert set(run.data.metrics) == set(want_logged)
    files = {f.path for f in gittrack.MlflowClient().list_artifacts(result.run_id)}
    assert files == want_files - {"model"}


def test_plots_are_png_images_in_the_active_run(repo: Path) -> None:
    model, df = _binary()
    with gittrack.start_run() as run:
        result = gittrack.evaluate(model, df, targets="label", model_type="classifier")
        assert result.run_id == run.info.run_id
    target = Path(gittrack.MlflowClient().download_artifacts(run.info.run_id, "roc_curve_plot.png"))
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert result.artifacts["roc_curve_plot"].uri == f"runs:/{run.info.run_id}/roc_curve_plot.png"
    assert gittrack.get_run(run.info.run_id).info.status == "FINISHED"


def test_without_an_active_run_a_new_run_is_made_and_ended(repo: Path) -> None:
    model, df = _regression()
    result = gittrack.evaluate(model, df, targets="label", model_type="regressor")
    assert gittrack.active_run() is None
    assert gittrack.get_run(result.run_id).info.status == "FINISHED"


def test_a_model_uri_and_array_data_give_the_same_metrics_as_the_estimator(repo: Path) -> None:
    model, df = _multiclass()
    with gittrack.start_run():
        info = gittrack.sklearn.log_model(model, "model")
    X, y = df.drop(columns="label"), df["label"].to_numpy()
    by_estimator = gittrack.evaluate(model, df, targets="label", model_type="classifier")
    by_uri = gittrack.evaluate(
        info.model_uri,
        X.to_numpy(),
        targets=y,
        feature_names=list(X.columns),
        model_type="classifier",
    )
    assert by_uri.metrics == pytest.approx(by_estimator.metrics)


def test_a_dataset_is_recorded_as_an_input_of_the_evaluation_run(repo: Path) -> None:
    model, df = _regression()
    dataset = gittrack.data.from_pandas(df, targets="label", name="diabetes")
    result = gittrack.evaluate(model, dataset, model_type="regressor")
    inputs = gittrack.get_run(result.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [("diabetes", dataset.digest)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_type": "ranker"}, "model_type"),
        ({"model_type": "classifier", "targets": "nope"}, "nope"),
        ({"model_type": "classifier", "evaluators": ["shap"]}, "evaluators"),
        ({"model_type": "classifier", "extra_metrics": ["x"]}, "extra_metrics"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_logged(
    repo: Path, kwargs: dict, message: str
) -> None:
    model, df = _binary()
    kwargs = {"targets": "label", **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        gittrack.evaluate(model, df, **kwargs)
    assert gittrack.search_runs(output_format="list") == []


class _AlwaysOne:
    """A model with only ``predict``, answering the class 1."""

    def predict(self, X: Any) -> np.ndarray:
        return np.ones(len(X), dtype=int)


def test_data_and_predictions_of_a_single_class_are_refused(repo: Path) -> None:
    _model, df = _binary()
    with pytest.raises(InvalidInputError, match="two classes"):
        gittrack.evaluate(
            _AlwaysOne(), df[df["label"] == 1], targets="label", model_type="classifier"
        )
    assert gittrack.search_runs(output_format="list") == []


def test_evaluating_leaves_the_users_repository_alone(repo: Path) -> None:
    model, df = _binary()
    before = tree_fingerprint(repo)
    gittrack.evaluate(model, df, targets="label", model_type="classifier")
    assert tree_fingerprint(repo) == before


def test_predictions_in_the_data_are_evaluated_without_a_model(repo: Path, real_mlflow) -> None:
    model, df = _binary()
    scored = df.assign(pred=model.predict(df.drop(columns="label")))
    ours = gittrack.evaluate(
        data=scored, targets="label", predictions="pred", model_type="classifier"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with real_mlflow.start_run():
            theirs = real_mlflow.models.evaluate(
                data=scored, targets="label", predictions="pred", model_type="classifier"
            )
    assert set(ours.metrics) == set(theirs.metrics)
    for name, value in theirs.metrics.items():
        assert ours.metrics[name] == pytest.approx(float(value)), name
    assert set(ours.artifacts) == set(theirs.artifacts)
