"""Source snapshots of dirty trees: taken while files come and go, kept while the run is live."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gittrack as mlflow

from .conftest import git


@contextmanager
def in_background(work: Callable[[threading.Event], None]) -> Iterator[None]:
    """Run ``work(stop)`` on a thread for the duration of the block."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            work(stop)
        except BaseException as exc:  # reported by the test, not lost on the thread
            failures.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failures, failures


def churn_untracked_files(root: Path) -> Callable[[threading.Event], None]:
    """Create and delete untracked files as fast as possible (a build, a data loader)."""

    def work(stop: threading.Event) -> None:
        scratch = root / "scratch"
        scratch.mkdir(exist_ok=True)
        n = 0
        while not stop.is_set():
            for i in range(20):
                (scratch / f"f{n}-{i}.tmp").write_text("x")
            for i in range(20):
                (scratch / f"f{n}-{i}.tmp").unlink()
            n += 1

    return work


def test_runs_start_while_untracked_files_appear_and_vanish(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    with in_background(churn_untracked_files(repo)):
        run_ids = []
        for _ in range(25):
            with mlflow.start_run() as run:
                mlflow.log_metric("loss", 0.5)
            run_ids.append(run.info.run_id)

    for run_id in run_ids:
        snapshot = mlflow.get_run(run_id).source.snapshot
        assert snapshot is not None
        assert git(repo, "show", f"{snapshot}:train.py") == "print('changed')\n"


def test_runs_start_while_the_user_stashes_and_pops_untracked_files(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "notes.txt").write_text("untracked\n")

    def stash_and_pop(stop: threading.Event) -> None:
        while not stop.is_set():
            subprocess.run(["git", "stash", "-u", "-q"], cwd=repo, check=True)
            subprocess.run(["git", "stash", "pop", "-q"], cwd=repo, check=True)

    with in_background(stash_and_pop):
        run_ids = []
        for _ in range(80):
            with mlflow.start_run() as run:
                pass
            run_ids.append(run.info.run_id)

    assert git(repo, "stash", "list") == ""
    assert (repo / "notes.txt").read_text() == "untracked\n"
    assert (repo / "train.py").read_text() == "print('changed')\n"
    head = git(repo, "rev-parse", "HEAD").strip()
    snapshots = {mlflow.get_run(run_id).source.snapshot for run_id in run_ids} - {None}
    assert snapshots  # some runs started while the changes were out, some while in
    for snapshot in snapshots:  # whatever moment of the stash each one caught
        assert git(repo, "rev-parse", f"{snapshot}^").strip() == head


# ------------------------------------------------------------------ snapshot kept while live


def live_refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gittrack/")
    return dict(line.split(" ", 1) for line in out.splitlines())


def second_parent(repo: Path) -> str | None:
    parents = git(repo, "log", "-1", "--format=%P", "gittrack").split()
    return parents[1] if len(parents) > 1 else None


def test_a_live_runs_snapshot_survives_git_gc_prune_now_and_becomes_its_second_parent(
    repo: Path,
) -> None:
    (repo / "train.py").write_text("print('uncommitted')\n")
    run = mlflow.start_run()
    snapshot = mlflow.get_run(run.info.run_id).source.snapshot
    assert live_refs(repo) == {f"refs/gittrack/live/{run.info.run_id}": snapshot}

    git(repo, "gc", "--prune=now", "-q")
    mlflow.end_run()

    assert second_parent(repo) == snapshot
    assert git(repo, "show", f"{snapshot}:train.py") == "print('uncommitted')\n"
    assert live_refs(repo) == {}
    git(repo, "fsck", "--strict", "--no-progress")


def test_a_dirty_run_leaves_no_ref_and_no_change_in_the_users_repository(repo: Path) -> None:
    from .conftest import tree_fingerprint

    (repo / "train.py").write_text("print('uncommitted')\n")
    mlflow.start_run()  # the branch exists before the user's state is recorded
    mlflow.end_run()
    before = tree_fingerprint(repo)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.1)
    assert mlflow.get_run(run.info.run_id).source.snapshot is not None
    assert tree_fingerprint(repo) == before
    assert live_refs(repo) == {}


def test_a_killed_dirty_run_recovered_after_gc_keeps_its_snapshot(repo: Path) -> None:
    from gittrack import Client

    from .conftest import run_script

    (repo / "train.py").write_text("print('uncommitted')\n")
    (repo / "notes.txt").write_text("untracked\n")
    started = run_script(
        "import os, gittrack as m\n"
        "run = m.start_run()\n"
        "m.log_metric('loss', 0.5)\n"
        "print(run.info.run_id, m.get_run(run.info.run_id).source.snapshot, flush=True)\n"
        "os.kill(os.getpid(), 9)\n",
        repo,
    )
    assert started.returncode == -9, started.stderr
    run_id, snapshot = started.stdout.split()
    git(repo, "gc", "--prune=now", "-q")

    Client().recover()

    got = Client().get_run(run_id)
    assert (got.info.status, got.source.snapshot) == ("KILLED", snapshot)
    assert second_parent(repo) == snapshot
    assert git(repo, "show", f"{snapshot}:notes.txt") == "untracked\n"
    assert live_refs(repo) == {}
    git(repo, "fsck", "--strict", "--no-progress")


def test_a_snapshot_missing_at_commit_is_warned_about_and_recorded_in_a_tag(repo: Path) -> None:
    import pytest

    (repo / "train.py").write_text("print('uncommitted')\n")
    run = mlflow.start_run()
    run_id = run.info.run_id
    snapshot = mlflow.get_run(run_id).source.snapshot
    git(repo, "update-ref", "-d", f"refs/gittrack/live/{run_id}")  # as an older gittrack
    git(repo, "gc", "--prune=now", "-q")

    with pytest.warns(RuntimeWarning, match=f"run {run_id}: its source commit {snapshot}"):
        mlflow.end_run()

    got = mlflow.get_run(run_id)
    assert got.data.tags["gittrack.source.missing"] == snapshot
    assert got.source.snapshot == snapshot
    assert second_parent(repo) is None
    git(repo, "fsck", "--strict", "--no-progress")


def test_recovery_removes_the_snapshot_ref_of_a_run_already_committed(repo: Path) -> None:
    from gittrack import Client

    (repo / "train.py").write_text("print('uncommitted')\n")
    with mlflow.start_run() as run:
        pass
    snapshot = mlflow.get_run(run.info.run_id).source.snapshot
    # What a writer killed between its commit and the ref's removal leaves behind.
    git(repo, "update-ref", f"refs/gittrack/live/{run.info.run_id}", snapshot)

    Client().recover()

    assert live_refs(repo) == {}
