"""Run-state semantics as MLflow's (issue 11, items 1-3): no silent no-ops, runs that stay
writable after they end, and an active run per thread.

The ``*_scenario`` functions take the tracking module (``gittrack`` or ``mlflow``):
``test_mlflow_differential.py`` runs each under both and compares the results; the tests
here check gittrack's own side (commits, refusals, processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gittrack
import gittrack as mlflow
from gittrack import Client
from gittrack.errors import ConflictError, InvalidInputError, InvalidStateError

from .conftest import SRC, git


# ------------------------------------------------------------------ item 3: per thread
def _in_thread(work: Callable[[], Any]) -> Any:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # re-raised in the calling thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _thread_scenario(m: Any) -> dict[str, Any]:
    """A main-thread run; a worker thread looks for the active run and starts its own."""
    with m.start_run() as outer:

        def work() -> dict[str, Any]:
            seen = m.active_run()
            with m.start_run() as inner:
                m.log_param("where", "worker")
                inner_id = inner.info.run_id
            return {"seen": seen, "inner_id": inner_id, "after": m.active_run()}

        worker = _in_thread(work)
        main_active = m.active_run().info.run_id
    inner = m.get_run(worker["inner_id"])
    return {
        "worker_saw_an_active_run": worker["seen"] is not None,
        "worker_active_after_its_run": worker["after"] is not None,
        "main_still_active": main_active == outer.info.run_id,
        "worker_run_parent_tag": inner.data.tags.get("mlflow.parentRunId"),
        "worker_run_params": inner.data.params,
        "outer_params": m.get_run(outer.info.run_id).data.params,
    }


def test_a_worker_thread_sees_no_active_run_and_starts_a_top_level_run(repo: Path) -> None:
    assert _thread_scenario(gittrack) == {
        "worker_saw_an_active_run": False,
        "worker_active_after_its_run": False,
        "main_still_active": True,
        "worker_run_parent_tag": None,
        "worker_run_params": {"where": "worker"},
        "outer_params": {},
    }


def test_a_run_left_open_in_a_worker_thread_is_not_the_main_threads_active_run(
    repo: Path,
) -> None:
    worker_run = _in_thread(lambda: mlflow.start_run().info.run_id)
    assert mlflow.active_run() is None
    with mlflow.start_run() as main_run:  # not "already active", and not nested under it
        pass
    assert "mlflow.parentRunId" not in Client().get_run(main_run.info.run_id).data.tags
    assert mlflow.last_active_run().info.run_id == main_run.info.run_id
    Client().set_terminated(worker_run)
    assert Client().get_run(worker_run).info.status == "FINISHED"


def test_threads_each_with_their_own_active_run_commit_every_run_whole(repo: Path) -> None:
    """Six threads end runs at once through one repository handle: no commit may point at
    objects another thread's batch still holds back (they were once shared)."""
    errors: list[BaseException] = []
    ended: list[str] = []

    def work(thread: int) -> None:
        try:
            for _ in range(5):
                with mlflow.start_run() as run:
                    for step in range(20):
                        mlflow.log_metric("x", float(step), step=step)
                    mlflow.log_param("thread", thread)
                    mlflow.log_text("t", "a.txt")
                ended.append(run.info.run_id)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = Client()
    assert len(ended) == 30
    for run_id in ended:
        assert len(client.get_metric_history(run_id, "x")) == 20
        assert client.list_artifacts(run_id)[0].path == "a.txt"
    git(repo, "fsck", "--connectivity-only", "gittrack")  # raises on a missing object


# ------------------------------------------------- item 2: runs writable after they end
def _commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "gittrack"))


def _finished_run(status: str = "FINISHED") -> str:
    with mlflow.start_run(run_name="done") as run:
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.log_param("lr", "0.1")
    if status != "FINISHED":
        Client().set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_each_logging_call_to_an_ended_run_is_one_new_commit_and_keeps_its_status(
    repo: Path, tmp_path: Path, status: str
) -> None:
    client = Client()
    run_id = _finished_run(status)
    before = client.get_run(run_id)
    local = tmp_path / "report.txt"
    local.write_text("late report\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    calls = [
        lambda: client.log_metric(run_id, "loss", 0.25, step=1),
        lambda: client.log_param(run_id, "late", 7),
        lambda: client.log_batch(
            run_id,
            metrics=[gittrack.entities.Metric("acc", 0.9, 1_700_000_000_000, 3)],
            params=[gittrack.entities.Param("batch", "32")],
            tags=[gittrack.entities.RunTag("note", "after")],
        ),
        lambda: client.set_tag(run_id, "reviewed", "yes"),
        lambda: client.log_text(run_id, "hello", "notes/hello.txt"),
        lambda: client.log_dict(run_id, {"a": 1}, "cfg.json"),
        lambda: client.log_artifact(run_id, local, "reports"),
        lambda: client.log_artifacts(run_id, folder, "dir"),
        lambda: mlflow.log_metric("loss", 0.125, step=2, run_id=run_id),
        lambda: mlflow.log_metrics({"f1": 0.5}, step=1, run_id=run_id),
        lambda: mlflow.log_params({"fluent": "yes"}, run_id=run_id),
        lambda: mlflow.log_text("fluent text", "fluent.txt", run_id=run_id),
    ]
    for call in calls:
        commits = _commits(repo)
        call()
        assert _commits(repo) == commits + 1
    assert mlflow.active_run() is None  # no call started a run

    after = client.get_run(run_id)
    assert after.info.status == status
    assert after.info.end_time == before.info.end_time
    assert after.data.params == {
        "lr": "0.1",
        "late": "7",
        "batch": "32",
        "fluent": "yes",
    }
    assert after.data.metrics == {"loss": 0.125, "acc": 0.9, "f1": 0.5}
    assert after.metric_summaries["loss"].count == 3
    assert after.metric_summaries["loss"].min == 0.125
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.5, 0.25, 0.125]
    assert after.data.tags["note"] == "after" and after.data.tags["reviewed"] == "yes"
    assert sorted(f.path for f in client.list_artifacts(run_id)) == [
        "cfg.json",
        "dir",
        "fluent.txt",
        "notes",
        "reports",
    ]
    assert sorted(f.path for f in client.list_artifacts(run_id, "dir")) == ["dir/b.txt", "dir/sub"]
    out = Path(client.download_artifacts(run_id, "reports/report.txt", tmp_path / "dl"))
    assert out.read_text() == "late report\n"
    assert client.doctor() == []


def test_a_figure_logged_to_an_ended_run_is_committed(repo: Path, tmp_path: Path) -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    client = Client()
    run_id = _finished_run()
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    client.log_figure(run_id, fig, "plots/curve.png")
    plt.close(fig)
    out = Path(client.download_artifacts(run_id, "plots/curve.png", tmp_path / "dl"))
    assert out.read_bytes().startswith(b"\x89PNG")


def test_a_param_of_an_ended_run_still_never_changes_and_nothing_is_committed(
    repo: Path,
) -> None:
    client = Client()
    run_id = _finished_run()
    tip = git(repo, "rev-parse", "gittrack").strip()
    with pytest.raises(ConflictError, match="lr"):
        client.log_param(run_id, "lr", "0.2")
    with pytest.raises(ConflictError, match="lr"):
        client.log_batch(
            run_id,
            metrics=[gittrack.entities.Metric("m", 1.0, 1, 0)],
            params=[gittrack.entities.Param("lr", "0.3")],
        )
    client.log_param(run_id, "lr", "0.1")  # the same value again: nothing to change
    assert git(repo, "rev-parse", "gittrack").strip() == tip
    assert client.get_run(run_id).data.metrics == {"loss": 0.5}


def test_bad_input_to_an_ended_run_is_refused_before_anything_is_committed(
    repo: Path,
) -> None:
    client = Client()
    run_id = _finished_run()
    tip = git(repo, "rev-parse", "gittrack").strip()
    with pytest.raises(InvalidInputError):
        client.log_metric(run_id, "bad*key", 1.0)
    with pytest.raises(InvalidInputError):
        client.log_metric(run_id, "m", "not a number")
    with pytest.raises(InvalidInputError):
        client.log_text(run_id, "x", "../escape.txt")
    client.log_text(run_id, "x", "taken/file.txt")
    with pytest.raises(ConflictError, match="already a directory"):
        client.log_text(run_id, "y", "taken")
    with pytest.raises(ConflictError, match="artifact file"):
        client.log_text(run_id, "y", "taken/file.txt/under")
    assert int(git(repo, "rev-list", "--count", f"{tip}..gittrack")) == 1


def test_logging_to_a_deleted_ended_run_is_refused(repo: Path) -> None:
    client = Client()
    run_id = _finished_run()
    client.delete_run(run_id)
    tip = git(repo, "rev-parse", "gittrack").strip()
    for call in (
        lambda: client.log_metric(run_id, "m", 1.0),
        lambda: client.log_param(run_id, "p", 1),
        lambda: client.log_text(run_id, "x", "x.txt"),
        lambda: client.set_terminated(run_id, "FAILED"),
        lambda: client.update_run(run_id, name="renamed"),
    ):
        with pytest.raises(InvalidStateError, match="deleted"):
            call()
    assert git(repo, "rev-parse", "gittrack").strip() == tip


def _log_after_end_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    with m.start_run() as run:
        m.log_metric("loss", 0.5)
        m.log_param("lr", "0.1")
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.25, step=1)
    client.log_param(run_id, "late", "7")
    client.set_tag(run_id, "reviewed", "yes")
    client.log_batch(
        run_id,
        metrics=[m.entities.Metric("acc", 0.9, 1_700_000_000_000, 3)],
        params=[m.entities.Param("batch", "32")],
    )
    client.log_text(run_id, "hello", "notes/hello.txt")
    m.log_metric("f1", 0.5, run_id=run_id)
    got = client.get_run(run_id)
    conflict = None
    try:
        client.log_param(run_id, "lr", "0.2")
    except Exception as exc:  # noqa: BLE001 - compared by whether it raised
        conflict = type(exc).__name__
    return {
        "status": got.info.status,
        "metrics": got.data.metrics,
        "params": got.data.params,
        "reviewed": got.data.tags.get("reviewed"),
        "history": [x.value for x in client.get_metric_history(run_id, "loss")],
        "artifacts": [f.path for f in client.list_artifacts(run_id, "notes")],
        "changed_param_refused": conflict is not None,
        "active": m.active_run(),
    }


WRITER = """
import sys
from gittrack import MlflowClient
run_id, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = MlflowClient()
for step in range(count):
    client.log_metric(run_id, name, float(step), step=step)
    if step % 5 == 0:
        client.log_param(run_id, f"{name}_{step}", str(step))
client.log_text(run_id, name, f"from/{name}.txt")
print("done", flush=True)
"""


def test_two_processes_logging_to_a_finished_run_at_once_lose_nothing(
    repo: Path, tmp_path: Path
) -> None:
    run_id = _finished_run()
    go = tmp_path / "go"
    starter = f"import os,time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", starter + WRITER, run_id, name, "30"],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    go.write_text("")
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.strip() == "done"

    client = Client()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for name in ("first", "second"):
        history = client.get_metric_history(run_id, name)
        assert [(m.step, m.value) for m in history] == [(s, float(s)) for s in range(30)]
        assert run.metric_summaries[name].count == 30
        assert {k: v for k, v in run.data.params.items() if k.startswith(name)} == {
            f"{name}_{s}": str(s) for s in range(0, 30, 5)
        }
        assert (
            Path(client.download_artifacts(run_id, f"from/{name}.txt", tmp_path)).read_text()
            == name
        )
    assert run.data.metrics["loss"] == 0.5
    assert client.doctor() == []


# ------------------------------------------------------------ item 1: no silent no-ops
def _set_terminated_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    with m.start_run() as run:
        pass
    run_id = run.info.run_id
    first_end = client.get_run(run_id).info.end_time
    client.set_terminated(run_id, "FAILED", end_time=run.info.start_time + 5_000)
    failed = client.get_run(run_id).info
    client.set_terminated(run_id)
    again = client.get_run(run_id).info
    return {
        "failed": (failed.status, failed.end_time - run.info.start_time),
        "first_end_replaced": failed.end_time != first_end,
        "again": again.status,
        "again_end_is_now": again.end_time >= first_end,
        "found_by_filter": [
            r.info.run_id
            for r in client.search_runs(["0"], "attributes.status = 'FINISHED'")
            if r.info.run_id == run_id
        ]
        == [run_id],
    }


def test_set_terminated_on_an_ended_run_is_one_commit_on_the_branch(repo: Path) -> None:
    run_id = _finished_run()
    commits = _commits(repo)
    Client().set_terminated(run_id, "KILLED")
    assert _commits(repo) == commits + 1
    assert Client().get_run(run_id).info.status == "KILLED"
    with pytest.raises(InvalidInputError, match="BROKEN"):
        Client().set_terminated(run_id, "BROKEN")
    assert _commits(repo) == commits + 1


def _update_run_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    with m.start_run(run_name="first") as run:
        run_id = run.info.run_id
        client.update_run(run_id, name="renamed-live")
        live = client.get_run(run_id)
    ended_at = client.get_run(run_id).info.end_time
    client.update_run(run_id, status="FAILED", name="renamed-ended")
    ended = client.get_run(run_id)
    client.update_run(run_id, status="KILLED")
    killed = client.get_run(run_id)
    return {
        "live": (live.info.status, live.info.run_name, live.data.tags["mlflow.runName"]),
        "ended": (ended.info.status, ended.info.run_name, ended.data.tags["mlflow.runName"]),
        "killed": (killed.info.status, killed.info.run_name),
        "end_time_kept": ended.info.end_time == ended_at == killed.info.end_time,
    }


def _run_name_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    with m.start_run(run_name="a", tags={"mlflow.runName": "b"}) as run:
        pass
    run_id = run.info.run_id
    named = client.get_run(run_id)
    with m.start_run(run_id=run_id, run_name="c"):
        pass
    renamed = client.get_run(run_id)
    try:
        client.create_run("0", run_name="x", tags={"mlflow.runName": "y"})
        disagreement = "accepted"
    except Exception:  # noqa: BLE001 - compared by whether it raised
        disagreement = "refused"
    return {
        "named": (named.info.run_name, named.data.tags["mlflow.runName"]),
        "renamed": (renamed.info.run_name, renamed.data.tags["mlflow.runName"]),
        "renamed_status": renamed.info.status,
        "client_disagreement": disagreement,
    }


def test_a_run_is_named_by_run_name_and_create_run_refuses_a_disagreeing_tag(
    repo: Path,
) -> None:
    result = _run_name_scenario(gittrack)
    assert result["named"] == ("a", "a") and result["renamed"] == ("c", "c")
    with pytest.raises(InvalidInputError, match="disagree"):
        Client().create_run("0", run_name="x", tags={"mlflow.runName": "y"})
