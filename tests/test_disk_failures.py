"""A disk that refuses a write (full, over a limit) loses nothing logged before, leaves no
partial line and no lock behind, and says what happened with a ``GittrackError``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import RunStatus

from .conftest import git, run_script

# A process limited to files of the size it has already written: the next append is cut
# short by the kernel part way (a short write, then EFBIG), as a full disk cuts it.
LIMITED_APPEND = """
import json, os, resource, signal
import gittrack as mlflow
from gittrack.errors import GittrackError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
run = mlflow.start_run()
for i in range(3):
    mlflow.log_metric("loss", float(i), step=i)
live = f".git/gittrack/live/{run.info.run_id}/metrics.jsonl"
size = os.path.getsize(live)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 20, hard))
try:
    mlflow.log_metric("loss", 3.0, step=3)
    outcome = "no error"
except GittrackError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
except BaseException as exc:
    outcome = "bare " + type(exc).__name__ + ": " + str(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
with open(live, "rb") as fh:
    after_failure = fh.read()
mlflow.log_metric("loss", 4.0, step=4)
mlflow.end_run()
print(json.dumps({"run_id": run.info.run_id, "outcome": outcome,
                  "after_failure": after_failure.decode()}))
"""


def test_an_append_cut_short_leaves_no_partial_line_and_says_nothing_was_written(
    repo: Path,
) -> None:
    result = run_script(LIMITED_APPEND, repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"].startswith("RepositoryError: could not append to "), report
    assert "metrics.jsonl; nothing of this call was written" in report["outcome"]
    assert report["after_failure"].endswith("}\n")
    assert len(report["after_failure"].splitlines()) == 3
    history = Client().get_metric_history(report["run_id"], "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 1.0), (2, 2.0), (4, 4.0)]
    run = Client().get_run(report["run_id"])
    assert run.info.status == RunStatus.FINISHED
    assert "gittrack.recovery" not in run.data.tags


def _orphan_with_points(repo: Path) -> str:
    """A live run whose process died after logging steps 0 and 1 of ``a``."""
    result = run_script(
        "import gittrack as m, os\n"
        "r = m.start_run()\n"
        "m.log_metric('a', 0.0, step=0)\nm.log_metric('a', 1.0, step=1)\n"
        "print(r.info.run_id, flush=True)\nos._exit(0)\n",
        repo,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_partial_line_in_the_middle_of_the_metrics_is_skipped_and_reported(
    repo: Path,
) -> None:
    run_id = _orphan_with_points(repo)
    metrics = repo / ".git" / "gittrack" / "live" / run_id / "metrics.jsonl"
    with open(metrics, "ab") as fh:  # what a failed append used to leave, then later points
        fh.write(b'{"key": "a", "value": 2.0, "st')
        fh.write(b'{"key": "a", "value": 3.0, "step": 3, "timestamp": 1763800000123}\n')
        fh.write(b'{"key": "a", "value": 4.0, "step": 4, "timestamp": 1763800000124}\n')

    client = Client()  # starting a client recovers the orphan instead of failing
    recovered = client.repository.recovered + client.recover()
    assert [found.run_id for found in recovered] == [run_id]
    assert "line 3 is incomplete and was skipped" in (recovered[0].note or "")
    history = client.get_metric_history(run_id, "a")
    assert [m.step for m in history] == [0, 1, 3, 4]
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.KILLED
    assert "line 3 is incomplete" in run.data.tags["gittrack.recovery"]
    committed = git(
        repo, "show", f"gittrack:.tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/metrics.jsonl"
    )
    assert len(committed.splitlines()) == 4


def test_a_line_that_is_not_a_point_anywhere_in_a_live_run_does_not_stop_reading_it(
    repo: Path,
) -> None:
    run = mlflow.start_run()
    mlflow.log_metric("a", 0.0, step=0)
    metrics = repo / ".git" / "gittrack" / "live" / run.info.run_id / "metrics.jsonl"
    with open(metrics, "ab") as fh:  # another process's garbage, then a whole point
        fh.write(b"not json\n")
    mlflow.log_metric("a", 1.0, step=1)

    assert [m.step for m in Client().get_metric_history(run.info.run_id, "a")] == [0, 1]
    assert mlflow.get_run(run.info.run_id).data.metrics == {"a": 1.0}
    mlflow.end_run()
    ended = Client().get_run(run.info.run_id)
    assert ended.data.tags["gittrack.recovery"].endswith(
        "line 2 is not a metric point and was skipped (8 bytes)"
    )
    assert [m.step for m in Client().get_metric_history(run.info.run_id, "a")] == [0, 1]


# The commit of a run with an artifact needs a pack far larger than the files the process
# may write: the commit fails part way, as on a full disk.
LIMITED_END_RUN = """
import json, os, resource, signal
import gittrack as mlflow
from gittrack.errors import GittrackError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
run = mlflow.start_run()
mlflow.log_param("p", 1)
for i in range(5):
    mlflow.log_metric("loss", float(i), step=i)
mlflow.log_text(os.urandom(4000).hex(), "noise.txt")
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (200, hard))
try:
    mlflow.end_run()
    outcome = "no error"
except GittrackError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
except BaseException as exc:
    outcome = "bare " + type(exc).__name__ + ": " + str(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
active = mlflow.active_run()
report = {
    "run_id": run.info.run_id,
    "outcome": outcome,
    "lock_left": os.path.exists(".git/refs/heads/gittrack.lock"),
    "still_active": active is not None and active.info.run_id == run.info.run_id,
}
mlflow.end_run()  # the retry
report["active_after_retry"] = mlflow.active_run() is not None
print(json.dumps(report))
"""


def test_a_failed_end_run_removes_the_lock_keeps_the_run_active_and_can_be_retried(
    repo: Path,
) -> None:
    result = run_script(LIMITED_END_RUN, repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"].startswith(
        f"RepositoryError: run {report['run_id']} is not committed, could not "
    ), report
    assert "the file would be too large" in report["outcome"]
    assert "it is still live, with everything logged: end it again" in report["outcome"]
    assert not report["lock_left"]
    assert report["still_active"]
    assert not report["active_after_retry"]
    client = Client()
    run = client.get_run(report["run_id"])
    assert run.info.status == RunStatus.FINISHED
    assert run.data.params == {"p": "1"}
    assert [m.step for m in client.get_metric_history(report["run_id"], "loss")] == [0, 1, 2, 3, 4]
    assert [a.path for a in client.list_artifacts(report["run_id"])] == ["noise.txt"]
    assert not list((repo / ".git" / "refs").rglob("*.lock"))
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
