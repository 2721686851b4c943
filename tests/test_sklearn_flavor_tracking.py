"""``gittrack.sklearn`` and ``gittrack.pyfunc`` with runs and the registry: log, resolve, load."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import InvalidInputError, NotFoundError
from gittrack.models.resolve import UntrustedPickleWarning

from .conftest import git, make_repo

pytest.importorskip("sklearn")

import gittrack.pyfunc  # noqa: E402
import gittrack.sklearn  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def fitted(iris):
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


def artifact_files(run_id: str, path: str) -> set[str]:
    return {info.path for info in Client().list_artifacts(run_id, path)}


# --------------------------------------------------------------------------- logging


def test_log_model_stores_an_mlflow_model_directory_in_the_run(repo: Path, fitted, iris) -> None:
    X, _ = iris
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(fitted, "model", input_example=X.head(3))
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/model"
    assert info.registered_model_version is None
    files = artifact_files(run_id, "model")
    assert {
        "model/MLmodel",
        "model/model.pkl",
        "model/requirements.txt",
        "model/python_env.yaml",
        "model/input_example.json",
    } <= files
    base = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/artifacts/model"
    mlmodel = yaml.safe_load(git(repo, "show", f"gittrack:{base}/MLmodel"))
    assert set(mlmodel["flavors"]) == {"python_function", "sklearn"}
    assert (mlmodel["run_id"], mlmodel["artifact_path"]) == (run_id, "model")
    assert [c["name"] for c in yaml.safe_load(mlmodel["signature"]["inputs"])] == list(X.columns)


def test_name_is_mlflow_3s_spelling_of_artifact_path(repo: Path, fitted) -> None:
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, name="clf")
        with pytest.raises(InvalidInputError, match="give one of them"):
            mlflow.sklearn.log_model(fitted, "a", name="b")
    assert "clf/MLmodel" in artifact_files(run.info.run_id, "clf")


def test_log_model_starts_a_run_when_none_is_active(repo: Path, fitted) -> None:
    info = mlflow.sklearn.log_model(fitted, "model")
    active = mlflow.active_run()
    assert active is not None and info.run_id == active.info.run_id
    mlflow.end_run()
    assert mlflow.get_run(info.run_id).info.status == "FINISHED"


def test_log_model_with_a_registered_model_name_registers_a_version(repo: Path, fitted) -> None:
    with mlflow.start_run():
        first = mlflow.sklearn.log_model(fitted, "model", registered_model_name="IrisLR")
        second = mlflow.sklearn.log_model(fitted, "again", registered_model_name="IrisLR")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    assert Client().get_model_version("IrisLR", 2).source == second.model_uri


# --------------------------------------------------------------------------- loading


@pytest.fixture
def registry(repo: Path, fitted, iris) -> dict[str, str]:
    """IrisLR v1 (Production), v2 (Staging, alias champion); returns their run ids."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    runs = {}
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            fitted, "model", registered_model_name="IrisLR", input_example=X.head(2)
        )
    runs["v1"] = run.info.run_id
    with mlflow.start_run() as run:
        tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
        mlflow.sklearn.log_model(tree, "model", registered_model_name="IrisLR")
    runs["v2"] = run.info.run_id
    client = Client()
    client.transition_model_version_stage("IrisLR", 1, "Production")
    client.transition_model_version_stage("IrisLR", 2, "Staging")
    client.set_registered_model_alias("IrisLR", "champion", 2)
    return runs


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/IrisLR/1", "v1"),
        ("models:/IrisLR/Production", "v1"),
        ("models:/IrisLR/production", "v1"),
        ("models:/IrisLR/Staging", "v2"),
        ("models:/IrisLR@champion", "v2"),
        ("models:/IrisLR/latest", "v2"),
    ],
)
def test_model_uris_resolve_to_the_right_version(registry, iris, uri, expected) -> None:
    X, _ = iris
    loaded = mlflow.sklearn.load_model(uri)
    reference = mlflow.sklearn.load_model(f"runs:/{registry[expected]}/model")
    np.testing.assert_array_equal(loaded.predict(X), reference.predict(X))
    assert type(loaded).__name__ == type(reference).__name__


def test_pyfunc_predicts_on_a_dataframe_and_an_ndarray(registry, fitted, iris) -> None:
    X, _ = iris
    model = mlflow.pyfunc.load_model("models:/IrisLR/Production")
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(model.predict(X.to_numpy()[:5]), fitted.predict(X[:5]))


def test_a_stage_no_version_holds_is_a_clear_error(registry) -> None:
    with pytest.raises(NotFoundError, match=r"No version of model 'IrisLR' is in stage 'Archived'"):
        mlflow.pyfunc.load_model("models:/IrisLR/Archived")
    with pytest.raises(NotFoundError, match="no alias 'gold'"):
        mlflow.pyfunc.load_model("models:/IrisLR@gold")
    with pytest.raises(NotFoundError, match="does not exist"):
        mlflow.pyfunc.load_model("models:/Nope/1")
    with pytest.raises(NotFoundError, match="version 9 does not exist"):
        mlflow.pyfunc.load_model("models:/IrisLR/9")


def test_a_committed_model_is_materialized_once_in_the_cache(repo: Path, registry) -> None:
    run_id = registry["v1"]
    tree = git(
        repo,
        "rev-parse",
        f"gittrack:.tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/artifacts/model",
    ).strip()
    first = gittrack.pyfunc.local_model_dir("models:/IrisLR/1")
    assert first == repo / ".git" / "gittrack" / "cache" / "models" / tree
    stamp = (first / "model.pkl").stat().st_mtime_ns
    assert gittrack.pyfunc.local_model_dir(f"runs:/{run_id}/model") == first
    assert (first / "model.pkl").stat().st_mtime_ns == stamp


def test_a_model_of_a_live_run_loads_before_the_run_ends(repo: Path, fitted, iris) -> None:
    X, _ = iris
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, "model")
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_skops_models_round_trip_through_a_run(repo: Path, fitted, iris) -> None:
    X, _ = iris
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, "model", serialization_format="skops")
    assert "model/model.skops" in artifact_files(run.info.run_id, "model")
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_a_local_directory_loads_without_a_repository(tmp_path: Path, fitted, iris) -> None:
    X, _ = iris
    mlflow.sklearn.save_model(fitted, tmp_path / "saved")
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_a_pickled_model_from_a_fetched_branch_says_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fitted, capsys
) -> None:
    origin = make_repo(tmp_path / "origin")
    monkeypatch.chdir(origin)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, "model", registered_model_name="IrisLR")
        mlflow.sklearn.log_model(fitted, "safe", serialization_format="skops")
    with no_untrusted_pickle_warning():
        mlflow.pyfunc.load_model("models:/IrisLR/1")  # made here: nothing to say

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "branch", "gittrack", "origin/gittrack")
    git(clone, "config", "user.email", "someone.else@example.com")
    monkeypatch.chdir(clone)
    mlflow.set_tracking_uri(str(clone))

    with pytest.warns(UntrustedPickleWarning) as warned:
        mlflow.pyfunc.load_model("models:/IrisLR/1")

    [notice] = [str(w.message) for w in warned]
    commit = git(clone, "log", "-1", "--format=%H", "origin/gittrack").strip()
    assert f"run {run.info.run_id}" in notice
    assert "origin/gittrack" in notice and commit[:12] in notice
    with no_untrusted_pickle_warning():
        mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/safe")


# ----------------------------------------------------------------- pickles from other people


def alice_logs_a_model(tmp_path: Path, monkeypatch, fitted, **kwargs) -> tuple[Path, str]:
    """Another person's clone, where a model is logged; returns (its path, the run id)."""
    from gittrack.fluent import _reset_state
    from gittrack.tracking.repository import forget_repositories

    back = Path.cwd()
    alice = make_repo(tmp_path / "alice")
    git(alice, "config", "user.name", "Alice")
    git(alice, "config", "user.email", "alice@example.com")
    monkeypatch.chdir(alice)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, "model", **kwargs)
    monkeypatch.chdir(back)
    _reset_state()
    forget_repositories()
    return alice, run.info.run_id


@contextmanager
def no_untrusted_pickle_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrustedPickleWarning)
        yield


def test_a_pickle_fetched_straight_into_the_local_branch_is_loaded_with_a_warning(
    repo: Path, tmp_path: Path, monkeypatch, fitted, iris
) -> None:
    alice, run_id = alice_logs_a_model(tmp_path, monkeypatch, fitted)
    git(repo, "fetch", "-q", str(alice), "gittrack:gittrack")

    with pytest.warns(UntrustedPickleWarning) as warned:
        model = gittrack.sklearn.load_model(f"runs:/{run_id}/model")
    [message] = [str(w.message) for w in warned]
    assert f"run {run_id}" in message and "Alice <alice@example.com>" in message
    assert "test@example.com" in message and "serialization_format='skops'" in message
    assert list(model.predict(iris[0].head(2))) == list(fitted.predict(iris[0].head(2)))


def test_a_downloaded_directory_of_someone_elses_pickle_is_loaded_with_a_warning(
    repo: Path, tmp_path: Path, monkeypatch, fitted
) -> None:
    alice, run_id = alice_logs_a_model(tmp_path, monkeypatch, fitted)
    git(repo, "fetch", "-q", str(alice), "gittrack:gittrack")
    copy = Client().download_artifacts(run_id, "model", tmp_path / "copy")

    with pytest.warns(UntrustedPickleWarning, match=f"run {run_id}, committed by Alice"):
        gittrack.sklearn.load_model(copy)
    with pytest.warns(UntrustedPickleWarning, match="alice@example.com"):
        gittrack.pyfunc.load_model(copy)


def test_ones_own_pickles_and_someone_elses_skops_models_load_without_a_warning(
    repo: Path, tmp_path: Path, monkeypatch, fitted
) -> None:
    alice, theirs = alice_logs_a_model(tmp_path, monkeypatch, fitted, serialization_format="skops")
    git(repo, "fetch", "-q", str(alice), "gittrack:gittrack")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(fitted, "model")
    mine = run.info.run_id
    copy = Client().download_artifacts(mine, "model", tmp_path / "copy")

    with no_untrusted_pickle_warning():
        gittrack.sklearn.load_model(f"runs:/{mine}/model")
        gittrack.sklearn.load_model(copy)
        gittrack.pyfunc.load_model(f"runs:/{theirs}/model")
