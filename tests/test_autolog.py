"""scikit-learn autologging: params, training metrics, tags and the model on every fit."""

from __future__ import annotations

from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import RunStatus

pytest.importorskip("sklearn")

import gittrack.sklearn  # noqa: E402
from gittrack.autologging import sklearn as sklearn_autolog  # noqa: E402


@pytest.fixture(autouse=True)
def _autolog_off_afterwards():
    yield
    sklearn_autolog.autolog(disable=True)


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def all_runs() -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def artifacts(run_id: str, path: str | None = None) -> set[str]:
    return {info.path for info in Client().list_artifacts(run_id, path)}


def test_a_fit_without_an_active_run_logs_one_finished_run(repo: Path, iris) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    mlflow.sklearn.autolog()
    RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)

    [run] = all_runs()
    assert run.info.status == RunStatus.FINISHED
    assert mlflow.active_run() is None
    assert run.data.params["n_estimators"] == "5"
    assert run.data.params["max_depth"] == "3"
    assert run.data.tags["estimator_name"] == "RandomForestClassifier"
    assert run.data.tags["estimator_class"].endswith("RandomForestClassifier")
    metrics = run.data.metrics
    assert {
        "training_score",
        "training_accuracy_score",
        "training_precision_score",
        "training_recall_score",
        "training_f1_score",
    } <= set(metrics)
    assert metrics["training_score"] == metrics["training_accuracy_score"]
    assert "model/MLmodel" in artifacts(run.info.run_id, "model")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert len(loaded.predict(X.head(3))) == 3


def test_a_regressor_logs_regression_metrics(repo: Path, iris) -> None:
    from sklearn.linear_model import Ridge

    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    with mlflow.start_run() as run:
        Ridge(alpha=0.5).fit(X, y.astype(float))
    logged = mlflow.get_run(run.info.run_id)
    assert {
        "training_mean_squared_error",
        "training_root_mean_squared_error",
        "training_mean_absolute_error",
        "training_r2_score",
        "training_score",
    } <= set(logged.data.metrics)
    assert logged.data.params["alpha"] == "0.5"
    assert "model" not in artifacts(run.info.run_id)


def test_an_active_run_receives_the_logs_and_stays_open(repo: Path, iris) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    with mlflow.start_run() as run:
        DecisionTreeClassifier(max_depth=2).fit(X, y)
        assert mlflow.active_run().info.run_id == run.info.run_id
        mlflow.log_metric("extra", 1.0)
    [logged] = all_runs()
    assert logged.info.run_id == run.info.run_id
    assert {"training_accuracy_score", "extra"} <= set(logged.data.metrics)


def test_a_pipeline_logs_once_with_its_steps_params(repo: Path, iris) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=2.0))])
    pipeline.fit(X, y)

    [run] = all_runs()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["clf__C"] == "2.0"
    assert "training_accuracy_score" in run.data.metrics
    assert not hasattr(pipeline, "fit_transform")  # still hidden where sklearn hides it
    reduced = Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=2))])
    assert reduced.fit_transform(X).shape == (len(X), 2)
    assert len(all_runs()) == 2


def test_grid_search_logs_best_params_and_one_child_run_per_candidate(repo: Path, iris) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    mlflow.sklearn.autolog()
    grid = {"max_depth": [1, 2, 3], "criterion": ["gini", "entropy"]}
    with mlflow.start_run() as run:
        search = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=2).fit(X, y)

    runs = all_runs()
    parent = next(r for r in runs if r.info.run_id == run.info.run_id)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
    assert len(runs) == 1 + 6 and len(children) == 6
    assert parent.data.params["best_max_depth"] == str(search.best_params_["max_depth"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    assert {"cv_results.csv", "model", "best_estimator"} <= artifacts(run.info.run_id)
    candidates = {(c.data.params["max_depth"], c.data.params["criterion"]) for c in children}
    assert candidates == {(str(d), c) for d in grid["max_depth"] for c in grid["criterion"]}
    assert all("mean_test_score" in c.data.metrics for c in children)


def test_disable_restores_the_original_methods(repo: Path, iris) -> None:
    from sklearn.base import TransformerMixin
    from sklearn.linear_model import LogisticRegression

    original_fit = LogisticRegression.fit
    original_fit_transform = TransformerMixin.fit_transform
    mlflow.sklearn.autolog()
    assert LogisticRegression.fit is not original_fit
    mlflow.sklearn.autolog(disable=True)
    assert LogisticRegression.fit is original_fit
    assert TransformerMixin.fit_transform is original_fit_transform
    X, y = iris
    LogisticRegression(max_iter=300).fit(X, y)
    assert all_runs() == []


def test_the_top_level_autolog_turns_on_sklearn(repo: Path, iris) -> None:
    from sklearn.tree import DecisionTreeRegressor

    X, y = iris
    mlflow.autolog(log_models=False)
    mlflow.autolog(log_models=False)  # twice: patched once
    DecisionTreeRegressor(max_depth=2).fit(X, y)
    assert len(all_runs()) == 1


def test_a_failing_fit_fails_the_run_autolog_started(repo: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    mlflow.sklearn.autolog(log_models=False)
    with pytest.raises(ValueError):
        LogisticRegression().fit([[0.0], [1.0]], [0, 0])
    [run] = all_runs()
    assert run.info.status == RunStatus.FAILED
    assert mlflow.active_run() is None


def test_outside_a_git_repository_the_fit_still_runs(tmp_path: Path, monkeypatch, iris) -> None:
    from sklearn.tree import DecisionTreeClassifier

    monkeypatch.chdir(tmp_path)
    X, y = iris
    mlflow.sklearn.autolog()
    with pytest.warns(RuntimeWarning, match="could not log anything"):
        model = DecisionTreeClassifier(max_depth=1).fit(X, y)
    assert model.predict(X[:1]).shape == (1,)


# ------------------------------------------------------------- MLflow's autolog details
@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store in tmp_path; autolog off and state clean after."""
    import logging
    import os

    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    yield ml
    ml.sklearn.autolog(disable=True)
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _pipeline_scenario(ml) -> dict:
    """MLflow's autolog pipeline example: a managed run, then a fit inside the user's run."""
    import warnings

    import numpy as np
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
    y = np.dot(X, np.array([1, 2])) + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml.sklearn.autolog(extra_tags={"team": "vision"})
        Pipeline([("scaler", StandardScaler()), ("lr", LinearRegression())]).fit(X, y)
        managed = ml.last_active_run()
        with ml.start_run() as own:
            LinearRegression().fit(X, y)
        ml.sklearn.autolog(disable=True)
    client = ml.MlflowClient()
    out = {}
    for name, run_id in (("managed", managed.info.run_id), ("own", own.info.run_id)):
        tags = ml.get_run(run_id).data.tags
        out[name] = {
            "tags": {k: tags[k] for k in tags if k in ("mlflow.autologging", "team")},
            "tag_keys": {k for k in tags if not k.startswith(("mlflow.source", "mlflow.user"))},
            "artifacts": {f.path for f in client.list_artifacts(run_id)} - {"model"},
            "inputs": [
                (
                    d.dataset.name,
                    d.dataset.digest,
                    d.dataset.source_type,
                    d.dataset.profile,
                    [(t.key, t.value) for t in d.tags],
                )
                for d in ml.get_run(run_id).inputs.dataset_inputs
            ],
        }
    return out


def test_autologged_runs_carry_mlflows_tag_estimator_html_and_training_dataset(
    repo: Path, real_mlflow
) -> None:
    ours, theirs = _pipeline_scenario(mlflow), _pipeline_scenario(real_mlflow)
    assert ours == theirs
    assert ours["managed"]["tags"] == {"mlflow.autologging": "sklearn", "team": "vision"}
    assert ours["managed"]["artifacts"] == {"estimator.html"}
    assert [i[4] for i in ours["managed"]["inputs"]] == [[("mlflow.data.context", "train")]]


def test_a_training_dataframe_is_logged_as_the_train_input(repo: Path, iris) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    mlflow.sklearn.autolog(log_models=False, log_datasets=False)
    DecisionTreeClassifier(max_depth=3).fit(X, y)
    runs = {r.data.params["max_depth"]: r for r in all_runs()}
    [logged] = runs["2"].inputs.dataset_inputs
    assert logged.dataset.digest == mlflow.data.from_pandas(X).digest
    assert runs["3"].inputs.dataset_inputs == []


def test_estimator_html_is_sklearns_diagram_of_the_fitted_pipeline(repo: Path, iris) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
    [run] = all_runs()
    path = Path(Client().download_artifacts(run.info.run_id, "estimator.html"))
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="UTF-8"/>' in page
    assert "StandardScaler" in page and "LogisticRegression" in page


def test_an_extra_tag_cannot_replace_the_autologging_tag(repo: Path, iris) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    mlflow.sklearn.autolog(log_models=False, extra_tags={"mlflow.autologging": "mine"})
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    [run] = all_runs()
    assert run.data.tags["mlflow.autologging"] == "sklearn"
