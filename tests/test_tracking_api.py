"""The MLflow-style API: runs, params, metrics, tags, experiments and artifacts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import Metric, Param, RunStatus, RunTag, ViewType
from gittrack.errors import ConflictError, InvalidStateError, NotFoundError

from .conftest import git, make_repo, tree_fingerprint


def test_a_finished_run_is_committed_on_the_tracking_branch(repo: Path) -> None:
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("loss", 0.5, step=1)
    run_id = run.info.run_id
    files = git(repo, "ls-tree", "-r", "--name-only", "gittrack").split()
    base = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}"
    assert {f"{base}/meta.yaml", f"{base}/params.yaml", f"{base}/metrics.jsonl"} <= set(files)
    meta = yaml.safe_load(git(repo, "show", f"gittrack:{base}/meta.yaml"))
    assert meta["status"] == "FINISHED"
    assert meta["run_name"] == "first"
    assert meta["metrics"]["loss"] == {
        "value": 0.5,
        "step": 1,
        "timestamp": meta["metrics"]["loss"]["timestamp"],
        "min": 0.5,
        "max": 0.5,
        "count": 1,
    }
    message = git(repo, "log", "-1", "--format=%B", "gittrack")
    assert f"Run-Id: {run_id}" in message
    assert "Source-Commit: " in message
    assert not (repo / ".git" / "gittrack" / "live" / run_id).exists()


def test_get_run_returns_params_metrics_and_tags(repo: Path) -> None:
    with mlflow.start_run(tags={"team": "risk"}) as run:
        mlflow.log_params({"n_estimators": 100, "model": "rf"})
        mlflow.log_metrics({"acc": 0.91, "f1": 0.88})
        mlflow.log_metric("acc", 0.93, step=2)
        mlflow.set_tags({"phase": "opt"})
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == RunStatus.FINISHED
    assert got.data.params == {"n_estimators": "100", "model": "rf"}
    assert got.data.metrics == {"acc": 0.93, "f1": 0.88}
    assert got.data.tags["team"] == "risk"
    assert got.data.tags["phase"] == "opt"
    assert got.data.tags["mlflow.runName"] == got.info.run_name
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time


def test_a_run_name_is_generated_when_absent(repo: Path) -> None:
    with mlflow.start_run() as run:
        pass
    assert run.info.run_name
    assert mlflow.get_run(run.info.run_id).data.tags["mlflow.runName"] == run.info.run_name


def test_source_tags_record_the_commit_and_branch(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags["mlflow.source.git.commit"] == head
    assert got.data.tags["mlflow.source.git.branch"] == "main"
    assert got.data.tags["mlflow.source.type"] == "LOCAL"
    assert got.source.commit == head
    assert got.source.dirty is False
    assert got.source.snapshot is None
    parents = git(repo, "log", "-1", "--format=%P", "gittrack").split()
    assert parents[1] == head


def test_a_dirty_tree_is_snapshotted_and_kept_reachable(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "notes.txt").write_text("untracked but not ignored\n")
    (repo / "debug.log").write_text("ignored\n")
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.source.dirty is True
    snapshot = got.source.snapshot
    assert snapshot is not None
    assert git(repo, "show", f"{snapshot}:train.py") == "print('changed')\n"
    assert git(repo, "show", f"{snapshot}:notes.txt") == "untracked but not ignored\n"
    assert "debug.log" not in git(repo, "ls-tree", "-r", "--name-only", snapshot)
    assert git(repo, "rev-parse", f"{snapshot}^").strip() == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "log", "-1", "--format=%P", "gittrack").split()[1] == snapshot
    assert git(repo, "diff", "--stat", "HEAD", snapshot).strip()


def test_untracked_files_over_the_size_cap_are_skipped_and_listed(repo: Path, monkeypatch) -> None:
    (repo / "big.bin").write_bytes(b"x" * 2_000_000)
    (repo / "small.txt").write_text("small\n")
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.source.untracked_skipped == ("big.bin",)
    names = git(repo, "ls-tree", "-r", "--name-only", got.source.snapshot).split()
    assert "small.txt" in names and "big.bin" not in names


def test_source_capture_can_be_turned_off(repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITTRACK_SOURCE_CAPTURE", "none")
    (repo / "train.py").write_text("changed\n")
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert got.source.commit is None and got.source.snapshot is None
    assert len(git(repo, "log", "-1", "--format=%P", "gittrack").split()) == 1


def test_logging_without_an_active_run_starts_one(repo: Path) -> None:
    mlflow.log_metric("x", 1.0)
    active = mlflow.active_run()
    assert active is not None
    mlflow.end_run()
    assert mlflow.active_run() is None
    assert mlflow.get_run(active.info.run_id).data.metrics == {"x": 1.0}
    assert mlflow.last_active_run().info.run_id == active.info.run_id


def test_nested_runs_record_their_parent(repo: Path) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    got = mlflow.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.parent_run_id == parent.info.run_id


def test_starting_a_second_run_without_nested_is_an_error(repo: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidStateError, match="nested=True"):
            mlflow.start_run()


def test_an_exception_inside_the_context_manager_marks_the_run_failed(repo: Path) -> None:
    with pytest.raises(RuntimeError), mlflow.start_run() as run:
        raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == RunStatus.FAILED
    assert mlflow.active_run() is None


def test_logging_the_same_param_value_twice_is_a_no_op(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("depth", 5)
        mlflow.log_param("depth", "5")
    assert mlflow.get_run(run.info.run_id).data.params == {"depth": "5"}


def test_nan_and_infinite_metric_values_round_trip(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("a", float("nan"))
        mlflow.log_metric("b", float("inf"))
        mlflow.log_metric("c", float("-inf"))
    got = mlflow.get_run(run.info.run_id).data.metrics
    assert math.isnan(got["a"]) and got["b"] == math.inf and got["c"] == -math.inf
    history = Client().get_metric_history(run.info.run_id, "b")
    assert history[0].value == math.inf


def test_metric_history_keeps_every_point_in_order(repo: Path) -> None:
    with mlflow.start_run() as run:
        for step in range(20):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_000 + step)
    history = Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(20))
    assert history[3] == Metric("loss", 0.25, 1_003, 3)


def test_the_latest_metric_value_is_the_one_with_the_highest_step(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 5.0, step=10)
        mlflow.log_metric("m", 1.0, step=2)
    summary = mlflow.get_run(run.info.run_id).metric_summaries["m"]
    assert summary.value == 5.0 and summary.min == 1.0 and summary.max == 5.0 and summary.count == 2


def test_log_batch_writes_params_tags_and_metrics(repo: Path) -> None:
    client = Client()
    run = client.create_run("0")
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", 1.5, 123, 4)],
        params=[Param("p", "v")],
        tags=[RunTag("t", "u")],
    )
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"m": 1.5}
    assert got.data.params == {"p": "v"}
    assert got.data.tags["t"] == "u"
    assert client.get_metric_history(run.info.run_id, "m") == [Metric("m", 1.5, 123, 4)]


def test_delete_tag_removes_it(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.set_tag("keep", "1")
        mlflow.set_tag("drop", "1")
        mlflow.delete_tag("drop")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert "keep" in tags and "drop" not in tags


def test_tags_can_be_set_on_a_finished_run(repo: Path) -> None:
    with mlflow.start_run() as run:
        pass
    Client().set_tag(run.info.run_id, "reviewed", "yes")
    assert mlflow.get_run(run.info.run_id).data.tags["reviewed"] == "yes"


def test_a_finished_run_can_be_resumed_by_id(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0, step=0)
        mlflow.log_text("first", "a.txt")
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metric("m", 2.0, step=1)
        mlflow.log_text("second", "b.txt")
    client = Client()
    assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]
    names = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert names == {"a.txt", "b.txt"}
    assert client.get_run(run.info.run_id).info.status == RunStatus.FINISHED


def test_description_is_stored_as_the_note_tag(repo: Path) -> None:
    with mlflow.start_run(description="baseline model") as run:
        pass
    assert mlflow.get_run(run.info.run_id).data.tags["mlflow.note.content"] == "baseline model"


def test_delete_and_restore_a_run(repo: Path) -> None:
    with mlflow.start_run() as run:
        pass
    client = Client()
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_set_terminated_ends_a_client_run_with_its_status(repo: Path) -> None:
    client = Client()
    run = client.create_run("0", run_name="manual")
    client.log_metric(run.info.run_id, "m", 3.0, step=1)
    client.set_terminated(run.info.run_id, "KILLED")
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_experiments_are_created_found_renamed_deleted_and_restored(repo: Path) -> None:
    client = Client()
    experiment = mlflow.set_experiment("Anomaly_Detection_v2")
    assert experiment.name == "Anomaly_Detection_v2"
    assert len(experiment.experiment_id) == 16
    assert (
        client.get_experiment_by_name("Anomaly_Detection_v2").experiment_id
        == experiment.experiment_id
    )
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == experiment.experiment_id
    client.rename_experiment(experiment.experiment_id, "Renamed")
    assert client.get_experiment(experiment.experiment_id).name == "Renamed"
    client.set_experiment_tag(experiment.experiment_id, "owner", "risk")
    assert client.get_experiment(experiment.experiment_id).tags == {"owner": "risk"}
    client.delete_experiment(experiment.experiment_id)
    names = {e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    assert names == {"Renamed"}
    client.restore_experiment(experiment.experiment_id)
    assert {e.name for e in client.search_experiments()} == {"Default", "Renamed"}


def test_the_default_experiment_has_id_zero(repo: Path) -> None:
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == "0"
    assert Client().get_experiment("0").name == "Default"


def test_a_duplicate_experiment_name_is_rejected(repo: Path) -> None:
    Client().create_experiment("dup")
    with pytest.raises(ConflictError, match="'dup' already exists"):
        Client().create_experiment("dup")


def test_two_clones_creating_one_experiment_offline_converge_on_one_id(tmp_path: Path) -> None:
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    id_a = Client(str(a)).create_experiment("shared")
    id_b = Client(str(b)).create_experiment("shared")
    assert id_a == id_b


def test_a_new_experiment_takes_the_next_id_when_a_renamed_one_holds_its_id(repo: Path) -> None:
    client = Client()
    first = client.create_experiment("alpha")
    client.rename_experiment(first, "beta")
    second = client.create_experiment("alpha")
    assert second != first
    assert client.get_experiment(second).name == "alpha"


def test_unknown_run_and_experiment_ids_are_not_found(repo: Path) -> None:
    with pytest.raises(NotFoundError, match="0" * 32):
        mlflow.get_run("0" * 32)
    with pytest.raises(NotFoundError, match="nope"):
        Client().get_experiment("nope")


def test_artifacts_files_dicts_and_text_are_committed(repo: Path, tmp_path: Path) -> None:
    local = tmp_path / "history.json"
    local.write_text('{"loss": [1, 2]}')
    folder = tmp_path / "pipelines"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "step.txt").write_text("scale")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(local))
        mlflow.log_artifact(str(local), "config")
        mlflow.log_artifacts(str(folder), "pipes")
        mlflow.log_dict({"feature_importance": [0.1, 0.9]}, "feature_importance.json")
        mlflow.log_dict({"a": 1}, "conf/params.yaml")
        mlflow.log_text("hello", "notes/readme.txt")
    client = Client()
    top = {(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)}
    assert top == {
        ("history.json", False),
        ("config", True),
        ("pipes", True),
        ("feature_importance.json", False),
        ("conf", True),
        ("notes", True),
    }
    out = Path(client.download_artifacts(run.info.run_id, "", tmp_path / "dl"))
    assert json.loads((out / "feature_importance.json").read_text()) == {
        "feature_importance": [0.1, 0.9]
    }
    assert yaml.safe_load((out / "conf" / "params.yaml").read_text()) == {"a": 1}
    assert (out / "pipes" / "sub" / "step.txt").read_text() == "scale"
    assert (out / "config" / "history.json").exists()
    single = client.download_artifacts(run.info.run_id, "notes/readme.txt", tmp_path / "one")
    assert Path(single).read_text() == "hello"


def test_log_figure_and_log_image_write_png_files(repo: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "plots/curve.png")
        mlflow.log_image(np.zeros((4, 4, 3), dtype=np.uint8), "images/black.png")
    plt.close(fig)
    client = Client()
    data = Path(client.download_artifacts(run.info.run_id, "plots/curve.png")).read_bytes()
    assert data.startswith(b"\x89PNG")
    image = Path(client.download_artifacts(run.info.run_id, "images/black.png")).read_bytes()
    assert image.startswith(b"\x89PNG")


def test_tracking_uri_points_at_another_repository(tmp_path: Path, monkeypatch) -> None:
    code = make_repo(tmp_path / "code")
    store = make_repo(tmp_path / "store")
    monkeypatch.chdir(code)
    mlflow.set_tracking_uri(str(store))
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1)
    assert "gittrack" in git(store, "branch", "--list", "gittrack")
    assert git(code, "branch", "--list", "gittrack") == ""
    assert mlflow.get_run(run.info.run_id).source.commit == git(code, "rev-parse", "HEAD").strip()
    assert mlflow.get_tracking_uri() == str(store)


def test_the_environment_variable_selects_the_repository(tmp_path: Path, monkeypatch) -> None:
    store = make_repo(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITTRACK_TRACKING_URI", f"git+file://{store}")
    with mlflow.start_run():
        pass
    assert git(store, "branch", "--list", "gittrack")


def test_outside_a_git_repository_the_error_says_to_run_git_init(
    tmp_path: Path, monkeypatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(mlflow.errors.RepositoryError, match="git init"):
        mlflow.start_run()


def test_an_mlflow_server_uri_is_refused_with_a_clear_error(repo: Path) -> None:
    with pytest.raises(mlflow.errors.InvalidInputError, match="not supported"):
        mlflow.set_tracking_uri("http://localhost:5000")


def test_mlflow_client_alias_is_the_client(repo: Path) -> None:
    from gittrack.tracking import MlflowClient

    assert MlflowClient is Client
    assert mlflow.tracking.MlflowClient is Client


def test_a_client_made_after_set_tracking_uri_uses_that_repository(
    tmp_path: Path, monkeypatch
) -> None:
    store = make_repo(tmp_path / "store")
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    mlflow.set_tracking_uri(str(store))
    with mlflow.start_run() as run:
        pass
    assert Client().get_run(run.info.run_id).info.run_id == run.info.run_id


def test_a_run_is_not_committed_onto_the_tracking_branch_while_the_user_has_it_checked_out(
    repo: Path,
) -> None:
    with mlflow.start_run():
        mlflow.log_metric("first", 1.0)
    git(repo, "checkout", "-q", "gittrack")
    before = tree_fingerprint(repo)
    tip = git(repo, "rev-parse", "HEAD")
    run = mlflow.start_run()
    mlflow.log_metric("loss", 0.5)

    with pytest.raises(InvalidStateError, match=f"checked out in {repo}"):
        mlflow.end_run()

    assert tree_fingerprint(repo) == before
    assert git(repo, "rev-parse", "HEAD") == tip
    assert mlflow.active_run() is not None  # still live: ended again once switched away
    git(repo, "checkout", "-q", "main")
    mlflow.end_run()
    assert [m.value for m in Client().get_metric_history(run.info.run_id, "loss")] == [0.5]


def test_a_linked_worktree_holding_the_tracking_branch_is_named_and_left_alone(
    repo: Path, tmp_path: Path
) -> None:
    with mlflow.start_run():
        mlflow.log_metric("first", 1.0)
    look = tmp_path / "look"
    git(repo, "worktree", "add", "-q", str(look), "gittrack")
    tip = git(look, "rev-parse", "HEAD")

    with pytest.raises(InvalidStateError, match=f"checked out in {look}"):
        Client().create_experiment("while-checked-out")

    assert git(look, "rev-parse", "HEAD") == tip
    assert git(look, "status", "--porcelain") == ""
