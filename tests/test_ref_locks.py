"""The tracking branch's lock: a writer killed while holding it does not brick the
repository (``gittrack recover`` alone removes it), a running writer's lock is left alone,
and whoever meets a lock is told which file it is and what to do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gittrack import Client
from gittrack.entities import RunStatus
from gittrack.errors import ConflictError

from .conftest import SRC, git, run_script
from .conftest import gittrack_cli as _gittrack

# A process that ends a run and stops (sleeps) inside the commit, holding the branch's lock:
# its objects are written, the ref is not moved yet.
HOLD_THE_LOCK = """
import os, time
import gittrack as mlflow
from gittrack.store import objects as store_objects
write = store_objects.PendingObjects.write
def write_then_wait(self):
    write(self)
    os.write(1, b"locked\\n")
    time.sleep(600)
store_objects.PendingObjects.write = write_then_wait
run = mlflow.start_run()
for i in range(100):
    mlflow.log_metric("loss", float(i), step=i)
mlflow.log_text("a file", "notes.txt")
os.write(1, (run.info.run_id + "\\n").encode())
mlflow.end_run()
"""


def _writer_holding_the_lock(repo: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read() if proc.stderr else ""
    return proc, run_id


def test_a_lock_left_by_a_killed_writer_is_removed_by_recover_alone(repo: Path) -> None:
    proc, run_id = _writer_holding_the_lock(repo)
    lock = repo / ".git" / "refs" / "heads" / "gittrack.lock"
    assert lock.exists()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    result = _gittrack(repo, "recover")
    assert result.returncode == 0, result.stderr
    assert run_id in result.stdout
    assert not lock.exists()
    run = Client().get_run(run_id)
    assert run.info.status == RunStatus.FINISHED  # the status it was ending with
    assert [m.step for m in Client().get_metric_history(run_id, "loss")] == list(range(100))
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_commit_that_meets_a_lock_left_behind_names_the_file_and_says_to_recover(
    repo: Path,
) -> None:
    proc, _ = _writer_holding_the_lock(repo)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2.1)  # older than a lock git could be using for a moment

    result = run_script(
        "import gittrack as m\n"
        "m.start_run()\n"
        "try:\n"
        "    m.end_run()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n",
        repo,
    )
    assert result.stdout.startswith("RefLockedError refs/heads/gittrack is locked by "), (
        result.stdout + result.stderr
    )
    assert f"{repo}/.git/refs/heads/gittrack.lock, left " in result.stdout
    assert "by a process that stopped (none holds it): run `gittrack recover`" in result.stdout


def test_a_lock_held_by_a_running_writer_is_left_alone_and_named(repo: Path) -> None:
    proc, run_id = _writer_holding_the_lock(repo)
    lock = repo / ".git" / "refs" / "heads" / "gittrack.lock"
    try:
        client = Client()
        assert client.recover() == []
        assert lock.exists()
        run = client.create_run("0")
        with pytest.raises(ConflictError) as caught:
            client.set_terminated(run.info.run_id)
        assert str(lock) in str(caught.value)
        assert "being updated by another process" in str(caught.value)
        assert lock.exists()
    finally:
        proc.kill()
        proc.wait()
    assert Client().recover()  # the writer is gone now: its run and ours are committed
    assert not lock.exists()
    assert Client().get_run(run_id).info.status == RunStatus.FINISHED
    assert "gittrack" in git(repo, "branch", "--list", "gittrack")


# A process that registers a model version, then stops inside the ref update of the tag
# that gives the version an alias (its reflog line is written under the lock).
HOLD_A_TAG_LOCK = """
import os, time
import gittrack as mlflow
from gittrack import Client
from gittrack.store import refs as store_refs
with mlflow.start_run() as run:
    mlflow.log_text("weights", "model/weights.txt")
mlflow.register_model(f"runs:/{run.info.run_id}/model", "held")
append = store_refs.RefUpdater._append_reflog
def append_then_wait(self, ref, *rest):
    append(self, ref, *rest)
    os.write(1, (ref + "\\n").encode())
    time.sleep(600)
store_refs.RefUpdater._append_reflog = append_then_wait
Client().set_registered_model_alias("held", "champion", 1)
"""


def test_a_registry_tag_lock_left_by_a_killed_writer_is_named_then_removed_by_recover(
    repo: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_TAG_LOCK],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    tag_ref = proc.stdout.readline().strip()
    assert tag_ref.startswith("refs/tags/held#champion#"), tag_ref
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lock = repo / ".git" / f"{tag_ref}.lock"
    assert lock.exists()
    time.sleep(2.1)  # older than a lock git could be using for a moment

    alias = (
        "from gittrack import Client\n"
        "try:\n"
        "    Client().set_registered_model_alias('held', 'champion', 1)\n"
        "    print('set')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    blocked = run_script(alias, repo)
    assert blocked.stdout.startswith(f"RefLockedError {tag_ref} is locked by {lock}"), (
        blocked.stdout + blocked.stderr
    )
    assert "run `gittrack recover` to remove it" in blocked.stdout

    result = _gittrack(repo, "recover")
    assert result.returncode == 0, result.stderr
    assert not lock.exists()
    assert run_script(alias, repo).stdout.strip() == "set"
    assert git(repo, "tag", "--list", "held#champion#*").split() == [tag_ref[len("refs/tags/") :]]
