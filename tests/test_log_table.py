"""``log_table``/``load_table``: MLflow's JSON table artifacts, appended to, tagged, and read
back across runs; checked against MLflow on the same calls."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import gittrack
from gittrack.errors import InvalidInputError, NotFoundError
from tests.conftest import git, tree_fingerprint


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store in tmp_path; its fluent state is left clean."""
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _tables_scenario(ml: Any, scratch: Path) -> dict[str, Any]:
    with ml.start_run() as first:
        ml.log_table({"a": [1, 2], "b": ["x", "02108"]}, "t/tab.json")
        ml.log_table(pd.DataFrame({"a": [3], "b": ["y"], "c": [1.5]}), "t/tab.json")
        ml.log_table({"q": "one value"}, "one.json")
    with ml.start_run() as second:
        ml.log_table({"a": [9], "b": ["z"]}, "t/tab.json")
    with ml.start_run():
        ml.log_table({"a": [0]}, "other.json")
    client = ml.MlflowClient()
    files = {}
    for name in ("t/tab.json", "one.json"):
        scratch.mkdir(parents=True, exist_ok=True)
        path = client.download_artifacts(first.info.run_id, name, str(scratch))
        files[name] = json.loads(Path(path).read_text())
    loaded = ml.load_table("t/tab.json", extra_columns=["run_id"])
    ids = {first.info.run_id: "first", second.info.run_id: "second"}
    loaded["run_id"] = loaded["run_id"].map(ids)
    return {
        "files": files,
        "tag": json.loads(ml.get_run(first.info.run_id).data.tags["mlflow.loggedArtifacts"]),
        "loaded": loaded.sort_values(["run_id", "a"]).reset_index(drop=True),
        "only_second": ml.load_table("t/tab.json", run_ids=[second.info.run_id]),
    }


def test_tables_are_written_appended_tagged_and_loaded_as_mlflow_does(
    repo: Path, real_mlflow: Any, tmp_path: Path
) -> None:
    ours = _tables_scenario(gittrack, tmp_path / "ours")
    theirs = _tables_scenario(real_mlflow, tmp_path / "theirs")
    assert ours["files"] == theirs["files"]
    assert ours["files"]["t/tab.json"]["data"][1] == [2, "02108", None]  # kept as logged
    assert ours["tag"] == theirs["tag"]
    pd.testing.assert_frame_equal(ours["loaded"], theirs["loaded"])
    pd.testing.assert_frame_equal(ours["only_second"], theirs["only_second"])


def test_a_table_logged_to_an_ended_run_is_committed_and_appended(repo: Path) -> None:
    with gittrack.start_run() as run:
        gittrack.log_table({"a": [1]}, "t.json")
    gittrack.log_table({"a": [2]}, "t.json", run_id=run.info.run_id)
    assert list(gittrack.load_table("t.json")["a"]) == [1, 2]
    assert gittrack.get_run(run.info.run_id).info.status == "FINISHED"
    assert "t.json" in git(repo, "ls-tree", "-r", "--name-only", "gittrack")


@pytest.mark.parametrize(
    ("data", "artifact_file", "message"),
    [
        ({"a": [1]}, "table.csv", ".json or .parquet"),
        ({"a": [1]}, "a:b.json", "':'"),
        ([1, 2], "t.json", "DataFrame or a dict"),
    ],
)
def test_a_bad_table_is_refused_before_anything_is_written(
    repo: Path, data: Any, artifact_file: str, message: str
) -> None:
    with gittrack.start_run() as run:
        with pytest.raises(InvalidInputError, match=message):
            gittrack.log_table(data, artifact_file)
    assert gittrack.MlflowClient().list_artifacts(run.info.run_id) == []
    assert "mlflow.loggedArtifacts" not in gittrack.get_run(run.info.run_id).data.tags


def test_loading_a_table_no_run_logged_is_not_found(repo: Path) -> None:
    with gittrack.start_run():
        gittrack.log_table({"a": [1]}, "t.json")
    with pytest.raises(NotFoundError, match="missing.json"):
        gittrack.load_table("missing.json")


def test_logging_tables_leaves_the_users_repository_alone(repo: Path) -> None:
    before = tree_fingerprint(repo)
    with gittrack.start_run():
        gittrack.log_table({"a": [1]}, "t.json")
        gittrack.log_table({"a": [2]}, "t.json")
    assert tree_fingerprint(repo) == before
