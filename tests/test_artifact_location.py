"""``create_experiment(artifact_location=...)``: the artifacts of the experiment's runs live in
that local directory, under ``<location>/<run_id>/artifacts`` as in MLflow, and not in git.
The comparison with MLflow itself is in ``test_mlflow_differential.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import InvalidInputError

from .conftest import git, tree_fingerprint


def _branch_files(repo: Path) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", "gittrack").split()


def _tip(repo: Path) -> str:
    return git(repo, "rev-parse", "gittrack").strip()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A directory outside the repository for artifacts."""
    return tmp_path / "artifact-store"


def test_a_runs_artifacts_go_under_the_location_and_not_into_git(repo: Path, store: Path) -> None:
    before = tree_fingerprint(repo)
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"a": 1}, "config.json")
    run_id = run.info.run_id

    root = store / run_id / "artifacts"
    assert (root / "notes" / "hello.txt").read_text() == "hello"
    assert (root / "config.json").is_file()
    assert not [f for f in _branch_files(repo) if "/artifacts/" in f]
    meta = git(
        repo, "show", f"gittrack:.tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/meta.yaml"
    )
    assert f'artifact_uri: "{root}"' in meta
    assert mlflow.get_run(run_id).info.artifact_uri == str(root)
    assert mlflow.search_runs([experiment_id])["artifact_uri"].tolist() == [str(root)]
    assert (
        mlflow.search_runs([experiment_id], filter_string=f"artifact_uri = '{root}'").shape[0] == 1
    )
    assert mlflow.get_experiment(experiment_id).artifact_location == str(store)
    assert Client().doctor() == []
    assert tree_fingerprint(repo) == before


def test_list_and_download_read_the_artifacts_from_the_location(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("hello", "notes/hello.txt")
        live = [f.path for f in Client().list_artifacts(run.info.run_id)]
    client = Client()
    assert live == ["notes"]
    assert [
        (f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "notes")
    ] == [("notes/hello.txt", False, 5)]
    copied = client.download_artifacts(run.info.run_id, "notes", tmp_path / "out")
    assert (Path(copied) / "hello.txt").read_text() == "hello"


def test_a_model_logged_under_the_location_loads_from_runs_and_models_uris(
    repo: Path, store: Path
) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    model = sklearn.LogisticRegression(max_iter=500).fit(x, y)
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.sklearn.log_model(model, "model", registered_model_name="External")

    assert (store / run.info.run_id / "artifacts" / "model" / "MLmodel").is_file()
    expected = model.predict(x[:5]).tolist()
    assert (
        mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(x[:5]).tolist()
        == expected
    )
    assert mlflow.pyfunc.load_model("models:/External/1").predict(x[:5]).tolist() == expected


def test_logging_artifacts_to_a_finished_run_writes_to_the_location_and_commits_nothing(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    experiment_id = mlflow.create_experiment("external", artifact_location=store.as_uri())
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    tip = _tip(repo)
    source = tmp_path / "report.txt"
    source.write_text("late")
    Client().log_artifact(run.info.run_id, str(source), "reports")
    Client().log_text(run.info.run_id, "text", "late.txt")

    root = store / run.info.run_id / "artifacts"
    assert (root / "reports" / "report.txt").read_text() == "late"
    assert (root / "late.txt").read_text() == "text"
    assert _tip(repo) == tip
    got = Client().get_run(run.info.run_id).info
    assert got.status == "FINISHED"
    assert got.artifact_uri == f"{store.as_uri()}/{run.info.run_id}/artifacts"


def test_a_relative_location_is_made_absolute_against_the_working_directory(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client = Client(tracking_uri=str(repo))
    experiment_id = client.create_experiment("relative", artifact_location="rel/store")
    assert client.get_experiment(experiment_id).artifact_location == str(tmp_path / "rel" / "store")


@pytest.mark.parametrize(
    "location", ["s3://bucket/path", "gs://b/p", "https://host/artifacts", "mlflow-artifacts:/x"]
)
def test_an_artifact_location_in_a_remote_store_is_refused_before_anything_is_written(
    repo: Path, location: str
) -> None:
    Client().init()
    tip = _tip(repo)
    scheme = location.split(":")[0]
    with pytest.raises(
        InvalidInputError, match=f"scheme '{scheme}'.*only a local path or a file://"
    ):
        mlflow.create_experiment("remote", artifact_location=location)
    assert _tip(repo) == tip
    assert mlflow.get_experiment_by_name("remote") is None


def test_a_location_that_cannot_be_a_directory_is_refused_before_anything_is_written(
    repo: Path, tmp_path: Path
) -> None:
    Client().init()
    tip = _tip(repo)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InvalidInputError, match="cannot be a directory: .*a-file' is a file"):
        mlflow.create_experiment("blocked", artifact_location=str(blocker / "store"))
    assert _tip(repo) == tip
    assert mlflow.get_experiment_by_name("blocked") is None


def test_a_location_inside_the_repository_is_refused(repo: Path) -> None:
    before = tree_fingerprint(repo)
    for location in (str(repo / "artifacts"), "artifacts", str(repo / ".git" / "artifacts")):
        with pytest.raises(InvalidInputError, match="inside the repository's"):
            mlflow.create_experiment("inside", artifact_location=location)
    assert tree_fingerprint(repo) == before


def test_a_file_uri_naming_another_host_is_refused(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="names the host 'server'"):
        mlflow.create_experiment("remote file", artifact_location="file://server/share")


def test_an_artifact_path_leaving_the_run_is_refused_under_a_location(
    repo: Path, store: Path
) -> None:
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        with pytest.raises(InvalidInputError, match="escapes the run's artifact directory"):
            mlflow.log_text("x", "../escape.txt")
    assert not (store / run.info.run_id / "escape.txt").exists()


def test_a_link_in_the_location_to_a_file_outside_it_is_refused_not_read(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("hello", "notes/hello.txt")
    root = store / run.info.run_id / "artifacts"
    (root / "leak.txt").symlink_to(secret)
    (root / "notes" / "up").symlink_to(tmp_path, target_is_directory=True)
    client = Client()

    with pytest.raises(InvalidInputError, match="leak.txt.*outside"):
        client.read_artifact(run.info.run_id, "leak.txt")
    with pytest.raises(InvalidInputError, match="outside"):
        client.download_artifacts(run.info.run_id, "notes", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.txt"))
    assert client.read_artifact(run.info.run_id, "notes/hello.txt")[0] == b"hello"
