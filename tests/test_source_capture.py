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
        for _ in range(15):
            with mlflow.start_run() as run:
                pass
            run_ids.append(run.info.run_id)

    assert git(repo, "stash", "list") == ""
    assert (repo / "notes.txt").read_text() == "untracked\n"
    for run_id in run_ids:
        source = mlflow.get_run(run_id).source
        if source.snapshot is not None:  # started while the changes were stashed: clean
            names = git(repo, "ls-tree", "-r", "--name-only", source.snapshot).split()
            assert "train.py" in names
