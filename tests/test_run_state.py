"""Run-state semantics as MLflow's (issue 11, items 1-3): no silent no-ops, runs that stay
writable after they end, and an active run per thread.

Where a test claims MLflow's behaviour, the same scenario runs under gittrack and under the
installed MLflow (sqlite store in ``tmp_path``) and the normalised results are compared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gittrack
import gittrack as mlflow
from gittrack import Client


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store of its own; its fluent state is left clean."""
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")


def _both(real_mlflow: Any, scenario: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The scenario's result under gittrack and under MLflow."""
    return scenario(gittrack), scenario(real_mlflow)


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


def test_the_active_run_is_per_thread_as_in_mlflow(repo: Path, real_mlflow: Any) -> None:
    ours, theirs = _both(real_mlflow, _thread_scenario)
    assert ours == theirs


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
