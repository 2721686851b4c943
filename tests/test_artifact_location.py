"""``create_experiment(artifact_location=...)``: the artifacts of the experiment's runs live in
that local directory, under ``<location>/<run_id>/artifacts`` as in MLflow, and not in git.
The comparison with MLflow itself is in ``test_mlflow_differential.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    InvalidStateError,
)

from .conftest import SRC, git, tree_fingerprint
from .hostile_branch import put_file


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


# ------------------------------------------------------------------ locations from a pull
def _clone_with_branch(origin: Path, target: Path) -> Path:
    """Another clone of ``origin`` that fetched its tracking branch, as a teammate's would."""
    git(origin.parent, "clone", "-q", str(origin), str(target))
    git(target, "fetch", "-q", "origin", "gittrack:gittrack")
    git(target, "config", "user.name", "Teammate")
    git(target, "config", "user.email", "teammate@example.com")
    return target


def _meta_path(run_id: str) -> str:
    return f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/meta.yaml"


def _finished_run_with(repo: Path, store: Path, experiment: str = "external") -> str:
    experiment_id = mlflow.create_experiment(experiment, artifact_location=str(store))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("hello", "notes/hello.txt")
    return run.info.run_id


def test_a_teammates_location_reads_but_writes_only_once_this_clone_trusts_it(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    run_id = _finished_run_with(repo, store)
    experiment_id = mlflow.get_experiment_by_name("external").experiment_id
    mate = _clone_with_branch(repo, tmp_path / "mate")
    client = Client(str(mate))
    assert client.read_artifact(run_id, "notes/hello.txt")[0] == b"hello"

    tip = _tip(mate)
    before = sorted(p.name for p in store.iterdir())
    with pytest.raises(
        InvalidStateError, match=r"no record of trusting.*git config --add gittrack\."
    ):
        client.create_run(experiment_id)
    with pytest.raises(InvalidStateError, match="no record of trusting"):
        client.log_text(run_id, "late", "late.txt")
    assert _tip(mate) == tip
    assert sorted(p.name for p in store.iterdir()) == before
    assert not (store / run_id / "artifacts" / "late.txt").exists()

    git(mate, "config", "--add", "gittrack.artifactRoot", str(store))
    Client(str(mate)).log_text(run_id, "late", "late.txt")
    assert (store / run_id / "artifacts" / "late.txt").read_text() == "late"
    new_run = Client(str(mate)).create_run(experiment_id)
    assert new_run.info.artifact_uri == str(store / new_run.info.run_id / "artifacts")


def test_a_pulled_run_naming_another_directory_of_the_puller_is_refused_not_read(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "home" / ".ssh"
    secret_dir.mkdir(parents=True)
    (secret_dir / "id_ed25519").write_text("private key")
    run_id = _finished_run_with(repo, store)
    other = _finished_run_with(repo, tmp_path / "second-store", "second")
    meta = git(repo, "show", f"gittrack:{_meta_path(run_id)}")
    crafted = {
        "a directory of the user": str(secret_dir),
        "a path climbing out": f"{store}/{run_id}/artifacts/../../../home/.ssh",
        "another run's directory": str(tmp_path / "second-store" / other / "artifacts"),
        "a relative path": f"home/{run_id}/artifacts",
    }
    client = Client()
    for why, uri in crafted.items():
        put_file(
            repo,
            _meta_path(run_id),
            meta.replace(str(store / run_id / "artifacts"), uri).encode(),
        )
        for read in (
            lambda: client.list_artifacts(run_id),
            lambda: client.download_artifacts(run_id, "", tmp_path / "out"),
            lambda: client.read_artifact(run_id, "id_ed25519"),
        ):
            with pytest.raises(CorruptDataError, match=f"run {run_id}: artifact_uri"):
                read()
        assert not (tmp_path / "out").exists(), why
        # One bad run is reported and skipped: the others still read.
        assert client.read_artifact(other, "notes/hello.txt")[0] == b"hello"
        second = client.get_run(other).info.experiment_id
        assert [r.info.run_id for r in client.search_runs([second])] == [other]


def test_a_pulled_location_inside_the_working_tree_is_never_written(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    run_id = _finished_run_with(repo, store)
    experiment_id = mlflow.get_experiment_by_name("external").experiment_id
    experiment_file = f".tracking/experiments/{experiment_id}.yaml"
    inside = repo / "src"
    document = git(repo, "show", f"gittrack:{experiment_file}")
    put_file(repo, experiment_file, document.replace(str(store), str(inside)).encode())
    meta = git(repo, "show", f"gittrack:{_meta_path(run_id)}")
    put_file(repo, _meta_path(run_id), meta.replace(str(store), str(inside)).encode())
    git(repo, "config", "--add", "gittrack.artifactRoot", str(inside))  # even when declared
    before = tree_fingerprint(repo)
    client = Client()

    with pytest.raises(CorruptDataError, match="inside the repository's working tree"):
        client.create_run(experiment_id)
    with pytest.raises(CorruptDataError, match="inside the repository"):
        client.log_text(run_id, "planted", "planted.txt")
    with pytest.raises(CorruptDataError, match="inside the repository"):
        client.list_artifacts(run_id)
    assert tree_fingerprint(repo) == before
    assert not inside.exists()


def test_a_pulled_run_reaching_a_secret_through_a_link_in_the_working_tree_is_refused(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "home" / ".ssh"
    secret.mkdir(parents=True)
    (secret / "id_ed25519").write_text("private key")
    run_id = _finished_run_with(repo, store)
    # A link committed on the user's branch, and a run pointing through it, by its path in
    # the working tree or through /proc/self/cwd (no need to know where the clone is).
    link = repo / "vendor" / run_id / "artifacts"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret, target_is_directory=True)
    git(repo, "add", "vendor")
    git(repo, "commit", "-qm", "vendored files")
    meta = git(repo, "show", f"gittrack:{_meta_path(run_id)}")
    client = Client()
    for uri in (str(link), f"/proc/self/cwd/vendor/{run_id}/artifacts"):
        put_file(
            repo, _meta_path(run_id), meta.replace(str(store / run_id / "artifacts"), uri).encode()
        )
        with pytest.raises(CorruptDataError, match="symbolic link|inside the repository"):
            client.download_artifacts(run_id, "", tmp_path / "out")
        with pytest.raises(CorruptDataError, match="symbolic link|inside the repository"):
            client.list_artifacts(run_id)
    assert not (tmp_path / "out").exists()


def test_a_location_written_with_dots_works_for_its_runs(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    experiment_id = mlflow.create_experiment("dots", artifact_location="../store")
    assert mlflow.get_experiment(experiment_id).artifact_location == str(repo / ".." / "store")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("hello", "hello.txt")
    assert (tmp_path / "store" / run.info.run_id / "artifacts" / "hello.txt").read_text() == "hello"
    assert Client().read_artifact(run.info.run_id, "hello.txt")[0] == b"hello"


def test_experiments_created_at_once_by_several_processes_all_keep_their_trust(
    repo: Path, tmp_path: Path
) -> None:
    Client().init()
    code = (
        "import sys\n"
        "from gittrack import Client\n"
        "c = Client()\n"
        "for i in range(6):\n"
        "    c.create_experiment(f'{sys.argv[1]}-{i}', "
        "artifact_location=f'{sys.argv[2]}/{sys.argv[1]}-{i}')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"p{n}", str(tmp_path / "stores")],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )
        for n in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    client = Client()
    for n in range(3):
        for i in range(6):
            experiment = client.get_experiment_by_name(f"p{n}-{i}")
            run = client.create_run(experiment.experiment_id)  # trusted: no refusal
            client.log_text(run.info.run_id, "x", "x.txt")


def test_an_unreadable_line_in_the_trust_record_costs_only_that_line(
    repo: Path, store: Path, tmp_path: Path
) -> None:
    experiment_id = mlflow.create_experiment("external", artifact_location=str(store))
    record = repo / ".git" / "gittrack" / "artifact-roots"
    record.write_bytes(record.read_bytes() + "/tmp/caf\xe9\n".encode("latin-1"))
    mlflow.create_experiment("second", artifact_location=str(tmp_path / "second"))
    Client().create_run(experiment_id)  # the first root is still trusted
    assert str(store).encode() in record.read_bytes()
    assert "/tmp/caf\xe9".encode("latin-1") in record.read_bytes()


def test_a_name_conflict_trusts_nothing(repo: Path, store: Path, tmp_path: Path) -> None:
    mlflow.create_experiment("external", artifact_location=str(store))
    with pytest.raises(ConflictError):
        mlflow.create_experiment("external", artifact_location=str(tmp_path / "other"))
    record = (repo / ".git" / "gittrack" / "artifact-roots").read_text()
    assert str(tmp_path / "other") not in record


def test_a_location_in_a_linked_worktree_is_refused(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", str(tmp_path / "linked"), "-b", "side")
    client = Client(str(tmp_path / "linked"))
    before = tree_fingerprint(repo)
    for location in (str(repo / "src"), str(tmp_path / "linked" / "out")):
        with pytest.raises(InvalidInputError, match="inside the repository's working tree"):
            client.create_experiment("inside", artifact_location=location)
    assert tree_fingerprint(repo) == before


@pytest.mark.parametrize(
    "uri",
    [
        "file:///tmp/x%00/{run_id}/artifacts",
        "file://server/share/{run_id}/artifacts",
        "relative/{run_id}/artifacts",
        "/tmp/x\x1b/{run_id}/artifacts",
    ],
)
def test_a_crafted_artifact_uri_is_one_clear_error(repo: Path, store: Path, uri: str) -> None:
    run_id = _finished_run_with(repo, store)
    meta = yaml.safe_load(git(repo, "show", f"gittrack:{_meta_path(run_id)}"))
    meta["artifact_uri"] = uri.format(run_id=run_id)
    put_file(repo, _meta_path(run_id), yaml.safe_dump(meta).encode())
    client = Client()
    for call in (
        lambda: client.list_artifacts(run_id),
        lambda: client.log_text(run_id, "x", "x.txt"),
    ):
        with pytest.raises(CorruptDataError, match=f"run {run_id}: artifact_uri"):
            call()
