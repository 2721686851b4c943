"""Bad input gets a clear GittrackError naming the key or value and the rule; nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    GittrackError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)

from .conftest import SRC, git


def _live_files(repo: Path, run_id: str) -> dict[str, bytes]:
    live = repo / ".git" / "gittrack" / "live" / run_id
    return {p.relative_to(live).as_posix(): p.read_bytes() for p in live.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("../x", "normalized relative path"),
        ("/abs", "must not start with '/'"),
        ("", "must not be empty"),
        ("k" * 251, "at most 250"),
        ("bad*char", "contains '*'"),
        ("semi;colon", "contains ';'"),
        ("a//b", "normalized relative path"),
        ("trailing\n", "contains '\\n'"),
    ],
)
@pytest.mark.parametrize("kind", ["param", "metric", "tag"])
def test_invalid_keys_are_rejected_before_anything_is_written(
    repo: Path, key: str, rule: str, kind: str
) -> None:
    run = mlflow.start_run()
    before = _live_files(repo, run.info.run_id)
    with pytest.raises(InvalidInputError) as err:
        if kind == "param":
            mlflow.log_param(key, "v")
        elif kind == "metric":
            mlflow.log_metric(key, 1.0)
        else:
            mlflow.set_tag(key, "v")
    assert rule in str(err.value)
    assert kind in str(err.value)
    assert _live_files(repo, run.info.run_id) == before
    mlflow.end_run()


def test_a_param_value_over_6000_characters_is_cut_to_6000_with_a_warning_as_in_mlflow(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("long", "x" * 6001)
        mlflow.set_tag("long", "y" * 8001)
    stored = mlflow.get_run(run.info.run_id).data
    assert stored.params["long"] == "x" * 6000
    assert stored.tags["long"] == "y" * 8000
    assert "6001 characters: only its first 6000 are stored" in caplog.text


def test_an_over_long_value_is_refused_when_mlflow_truncation_is_switched_off(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError, match="6001 characters; at most 6000"):
            mlflow.log_param("long", "x" * 6001)
        mlflow.log_param("ok", "x" * 6000)
    assert mlflow.get_run(run.info.run_id).data.params == {"ok": "x" * 6000}


def test_changing_a_param_is_rejected_and_the_old_value_kept(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        with pytest.raises(ConflictError, match=r"'lr'.*'0.1'.*'0.2'"):
            mlflow.log_param("lr", 0.2)
        with pytest.raises(ConflictError):
            mlflow.log_params({"new": 1, "lr": 0.3})
    assert mlflow.get_run(run.info.run_id).data.params == {"lr": "0.1"}


@pytest.mark.parametrize("value", ["abc", "", None, [1.0], {"a": 1}, object(), 1j])
def test_non_numeric_metric_values_are_rejected(repo: Path, value: object) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError, match="metric 'm' got value"):
            mlflow.log_metric("m", value)  # type: ignore[arg-type]
    assert Client().get_metric_history(run.info.run_id, "m") == []


@pytest.mark.parametrize("step", [1.5, "3", 2.0])
def test_a_non_integer_step_is_rejected(repo: Path, step: object) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError, match="step must be an integer"):
            mlflow.log_metric("m", 1.0, step=step)  # type: ignore[arg-type]
    assert Client().get_metric_history(run.info.run_id, "m") == []


def test_numpy_numbers_are_accepted_as_metric_values_and_steps(repo: Path) -> None:
    import numpy as np

    with mlflow.start_run() as run:
        mlflow.log_metric("m", np.float32(0.5), step=np.int64(3))
    assert Client().get_metric_history(run.info.run_id, "m")[0].step == 3


def test_logging_to_a_deleted_run_is_rejected(repo: Path) -> None:
    client = Client()
    run = client.create_run("0")
    client.delete_run(run.info.run_id)
    with pytest.raises(InvalidStateError, match="deleted"):
        client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    with pytest.raises(InvalidStateError, match="deleted"):
        mlflow.start_run(run_id=run.info.run_id)


def test_an_unknown_run_id_is_not_found(repo: Path) -> None:
    client = Client()
    missing = "f" * 32
    with pytest.raises(NotFoundError, match=missing):
        client.log_metric(missing, "m", 1.0)
    with pytest.raises(NotFoundError, match=missing):
        client.get_run(missing)
    with pytest.raises(InvalidInputError, match="32 lowercase hex"):
        client.get_run("not-a-run")


def test_an_artifact_path_escaping_the_run_directory_is_rejected(
    repo: Path, tmp_path: Path
) -> None:
    local = tmp_path / "f.txt"
    local.write_text("x")
    with mlflow.start_run() as run:
        for bad in ("../outside", "/etc", "a/../../b"):
            with pytest.raises(InvalidInputError, match="escapes the run's artifact directory"):
                mlflow.log_artifact(str(local), bad)
        with pytest.raises(InvalidInputError, match="escapes"):
            mlflow.log_text("x", "../../evil.txt")
        with pytest.raises(InvalidInputError, match="escapes"):
            mlflow.log_dict({}, "/abs.json")
    assert Client().list_artifacts(run.info.run_id) == []
    assert not (repo / ".git" / "gittrack" / "evil.txt").exists()


def test_a_duplicate_experiment_name_is_rejected_without_a_commit(repo: Path) -> None:
    client = Client()
    client.create_experiment("exp")
    tip = git(repo, "rev-parse", "gittrack")
    with pytest.raises(ConflictError, match="'exp' already exists"):
        client.create_experiment("exp")
    assert git(repo, "rev-parse", "gittrack") == tip


def _commit_on_branch(repo: Path, path: str, content: bytes) -> None:
    """Hand-edit one file on the tracking branch with plain git plumbing (as a user might)."""
    index = repo / ".git" / "test-index"
    env = {"GIT_INDEX_FILE": str(index)}
    import os

    full_env = {**os.environ, **env}
    subprocess.run(["git", "read-tree", "gittrack"], cwd=repo, env=full_env, check=True)
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=content,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    subprocess.run(
        ["git", "update-index", "--cacheinfo", f"100644,{blob},{path}"],
        cwd=repo,
        env=full_env,
        check=True,
    )
    tree = (
        subprocess.run(
            ["git", "write-tree"], cwd=repo, env=full_env, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    commit = git(repo, "commit-tree", tree, "-p", "gittrack", "-m", "hand edit").strip()
    git(repo, "update-ref", "refs/heads/gittrack", commit)
    index.unlink()


def test_hand_corrupted_yaml_is_reported_by_the_reader_and_by_doctor(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
    run_id = run.info.run_id
    meta_path = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/meta.yaml"
    _commit_on_branch(repo, meta_path, b"status: [unclosed\nrun_id: x\n")
    with pytest.raises(CorruptDataError, match=meta_path):
        Client().get_run(run_id)
    problems = Client().doctor()
    assert [p.path for p in problems] == [meta_path]
    assert "not valid YAML" in problems[0].message

    result = subprocess.run(
        [sys.executable, "-m", "gittrack", "doctor"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(SRC)},
    )
    assert result.returncode == 1
    assert meta_path in result.stderr
    assert "Traceback" not in result.stderr


def test_a_schema_violation_names_the_file_and_field(repo: Path) -> None:
    with mlflow.start_run() as run:
        pass
    run_id = run.info.run_id
    meta_path = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/meta.yaml"
    original = git(repo, "show", f"gittrack:{meta_path}")
    _commit_on_branch(
        repo, meta_path, original.replace("status: FINISHED", "status: DONE").encode()
    )
    with pytest.raises(CorruptDataError, match=rf"{meta_path}: status: 'DONE' is not one of"):
        Client().get_run(run_id)
    problems = Client().doctor()
    assert len(problems) == 1 and problems[0].message.startswith("status:")


def test_every_error_is_a_gittrack_error_subclass() -> None:
    for cls in (
        InvalidInputError,
        NotFoundError,
        ConflictError,
        InvalidStateError,
        CorruptDataError,
    ):
        assert issubclass(cls, GittrackError)
    assert mlflow.MlflowException is GittrackError


def test_cli_errors_are_one_line_without_traceback(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gittrack", "runs", "show", "f" * 32],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(SRC)},
    )
    assert result.returncode == NotFoundError.exit_code
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("gittrack: error: ") and "f" * 32 in result.stderr


@pytest.mark.parametrize(
    ("kind", "limit"),
    [
        ("tag", None),  # a run tag over 8,000 characters is cut, not refused
        ("experiment tag", 20_000),
        ("registered model tag", 100_000),
        ("model version tag", 100_000),
    ],
)
def test_each_kind_of_tag_has_mlflows_value_limit_in_the_one_validator(
    kind: str, limit: int | None
) -> None:
    from gittrack.store.validation import check_tags

    if limit is None:
        assert check_tags({"k": "x" * 8001}, kind) == {"k": "x" * 8000}
        return
    assert check_tags({"k": "x" * limit}, kind) == {"k": "x" * limit}
    with pytest.raises(InvalidInputError, match=rf"^{kind} 'k' has a value of {limit + 1} "):
        check_tags({"k": "x" * (limit + 1)}, kind)


def test_a_registry_tag_with_a_bad_key_is_refused_before_anything_is_written(repo: Path) -> None:
    client = Client()
    client.create_registered_model("churn")
    before = git(repo, "for-each-ref")
    with pytest.raises(InvalidInputError, match=r"registered model tag key 'a\\nb' contains"):
        client.set_registered_model_tag("churn", "a\nb", "v")
    with pytest.raises(InvalidInputError, match="registered model tag 'k' has a value of 100001"):
        client.set_registered_model_tag("churn", "k", "v" * 100_001)
    assert git(repo, "for-each-ref") == before
    assert client.get_registered_model("churn").tags == {}
