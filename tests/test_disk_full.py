"""A full disk (a small tmpfs holding the repository): logging, ``end_run``, registry writes
and ``recover`` each fail with a ``GittrackError`` that says so, lose nothing logged before,
and work again once space is freed."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import RunStatus
from gittrack.errors import GittrackError
from gittrack.tracking.repository import forget_repositories

from .conftest import git, make_repo, run_script
from .conftest import gittrack_cli as _gittrack


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted at the end; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: a small tmpfs cannot be made here")
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        forget_repositories()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of the disk with one file (deleting it frees the space)."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_fails_each_write_clearly_loses_nothing_and_recovers_once_freed(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(small_disk / "project")
    monkeypatch.chdir(repo)
    with mlflow.start_run() as model_run:
        mlflow.log_text("weights", "model/weights.txt")
    orphan = run_script(
        "import gittrack as m, os\nr = m.start_run()\n"
        "for i in range(20):\n    m.log_metric('o', float(i), step=i)\n"
        "print(r.info.run_id, flush=True)\nos._exit(0)\n",
        repo,
    )
    orphan_id = orphan.stdout.strip()
    run = mlflow.start_run()
    mlflow.log_param("p", "kept")
    returned = []
    for step in range(3):
        mlflow.log_metric("loss", float(step), step=step)
        returned.append(step)
    filler = _fill(small_disk)

    with pytest.raises(GittrackError) as logging_error:
        for step in range(3, 100_000):  # the file's last page fills up, then it fails
            mlflow.log_metric("loss", float(step), step=step)
            returned.append(step)
    assert "the disk is full" in str(logging_error.value)
    assert "nothing of this call was written" in str(logging_error.value)
    live = repo / ".git" / "gittrack" / "live" / run.info.run_id
    assert (live / "metrics.jsonl").read_bytes().endswith(b"}\n")

    with pytest.raises(GittrackError, match="the disk is full"):
        mlflow.log_text("x" * 1_000_000, "big.txt")
    artifacts = live / "artifacts"
    assert (list(artifacts.rglob("*")) if artifacts.exists() else []) == []  # no part left
    with pytest.raises(GittrackError, match="the disk is full"):
        mlflow.end_run()
    assert mlflow.active_run() is not None
    assert mlflow.active_run().info.run_id == run.info.run_id
    with pytest.raises(GittrackError, match="the disk is full"):
        mlflow.register_model(f"runs:/{model_run.info.run_id}/model", "disk")
    recover = _gittrack(repo, "recover")
    assert recover.returncode != 0
    assert "the disk is full" in recover.stderr
    assert "Traceback" not in recover.stderr
    assert not list((repo / ".git" / "refs").rglob("*.lock"))

    filler.unlink()
    mlflow.log_metric("loss", -1.0, step=len(returned))
    mlflow.end_run()
    assert mlflow.register_model(f"runs:/{model_run.info.run_id}/model", "disk").version == "1"
    recover = _gittrack(repo, "recover")
    assert recover.returncode == 0, recover.stderr
    assert orphan_id in recover.stdout

    forget_repositories()
    client = Client()
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == RunStatus.FINISHED
    assert ended.data.params == {"p": "kept"}
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [*returned, len(returned)]
    assert "gittrack.recovery" not in ended.data.tags
    assert client.list_artifacts(run.info.run_id) == []
    assert [m.step for m in client.get_metric_history(orphan_id, "o")] == list(range(20))
    assert "disk@v1.0.0" in git(repo, "tag", "--list")
    assert not list((repo / ".git" / "refs").rglob("*.lock"))
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_full_disk_while_trusting_a_location_says_the_experiment_exists_and_how_to_trust_it(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The experiment is committed, then the disk fills before this clone records that it
    trusts the location: one ``GittrackError`` says so and gives the ``git config`` command,
    which makes the location writable once space is freed."""
    repo = make_repo(small_disk / "project")
    store = tmp_path / "store"  # on another disk, with room
    monkeypatch.chdir(repo)
    client = Client()
    experiments = client.repository.experiments
    create = experiments.create
    filled: list[Path] = []

    def create_then_fill(*args: object, **kwargs: object) -> str:
        made = create(*args, **kwargs)
        filled.append(_fill(small_disk))
        return made

    with monkeypatch.context() as patch, pytest.raises(GittrackError) as error:
        patch.setattr(experiments, "create", create_then_fill)
        client.create_experiment("external", artifact_location=str(store))
    message = str(error.value)
    assert "the disk is full" in message
    assert "experiment 'external'" in message and "was created" in message
    assert f"git config --add gittrack.artifactRoot '{store}'" in message

    filled[0].unlink()
    experiment = client.get_experiment_by_name("external")
    assert experiment is not None and experiment.artifact_location == str(store)
    with pytest.raises(GittrackError, match="no record of trusting"):
        client.create_run(experiment.experiment_id)
    git(repo, "config", "--add", "gittrack.artifactRoot", str(store))
    run = Client().create_run(experiment.experiment_id)
    Client().log_text(run.info.run_id, "weights", "model/weights.txt")
    assert (
        store / run.info.run_id / "artifacts" / "model" / "weights.txt"
    ).read_text() == "weights"
