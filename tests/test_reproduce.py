"""``gittrack reproduce RUN -- CMD``: a command run again on a run's exact code, as a new run."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

import gittrack
from gittrack.gitflow.reproduce import param_env_name, param_environment
from tests.conftest import git, gittrack_cli, run_script, tree_fingerprint

TRAIN = """\
import os

import gittrack as mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

C = float(os.environ.get("GITTRACK_PARAM_C", "1.0"))
MAX_ITER = 500
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
mlflow.set_experiment("iris")
with mlflow.start_run() as run:
    mlflow.log_params({"C": C, "max_iter": MAX_ITER})
    model = LogisticRegression(C=C, max_iter=MAX_ITER).fit(X_train, y_train)
    mlflow.log_metric("accuracy", model.score(X_test, y_test))
    mlflow.log_metric("train_accuracy", model.score(X_train, y_train))
print(run.info.run_id)
"""


@pytest.fixture
def project(repo: Path) -> Path:
    pytest.importorskip("sklearn")
    (repo / "train_iris.py").write_text(TRAIN)
    git(repo, "add", "train_iris.py")
    git(repo, "commit", "-qm", "iris training")
    return repo


def _train(project: Path, c: str) -> str:
    done = subprocess_train(project, c)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def subprocess_train(project: Path, c: str):
    return run_script(
        "import runpy; runpy.run_path('train_iris.py')", project, {"GITTRACK_PARAM_C": c}
    )


def _runs(project: Path) -> list[gittrack.entities.Run]:
    gittrack.set_tracking_uri(str(project))
    return gittrack.search_runs(search_all_experiments=True, output_format="list")


def test_reproduce_logs_a_new_run_with_the_same_params_and_prints_the_metric_diff(
    project: Path,
):
    original_id = _train(project, "0.05")
    before = tree_fingerprint(project)

    result = gittrack_cli(project, "reproduce", original_id, "--", sys.executable, "train_iris.py")

    assert result.returncode == 0, result.stderr
    runs = {run.info.run_id: run for run in _runs(project)}
    assert len(runs) == 2  # the script resumed the run the launcher made
    new = next(run for run_id, run in runs.items() if run_id != original_id)
    original = runs[original_id]
    assert new.data.tags["gittrack.reproduces"] == original_id
    assert new.data.params == original.data.params == {"C": "0.05", "max_iter": "500"}
    assert new.data.metrics == original.data.metrics
    assert new.info.status == "FINISHED"
    assert new.info.experiment_id == original.info.experiment_id
    assert new.source.commit == original.source.commit
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"reproduced run {original_id} as run {new.info.run_id}")
    assert new.info.run_id in result.stderr  # what the script printed: stdout stays gittrack's
    assert any(line.split()[:1] == ["accuracy"] and line.split()[-1] == "0" for line in lines)
    assert tree_fingerprint(project) == before
    assert len(git(project, "worktree", "list").splitlines()) == 1  # the temporary one is gone


def test_reproduce_of_a_dirty_tree_run_runs_the_snapshot_not_the_current_code(project: Path):
    (project / "train_iris.py").write_text(TRAIN.replace("MAX_ITER = 500", "MAX_ITER = 3"))
    original_id = _train(project, "1.0")
    git(project, "checkout", "--", "train_iris.py")  # back to the committed code

    result = gittrack_cli(project, "reproduce", original_id, "--", sys.executable, "train_iris.py")

    assert result.returncode == 0, result.stderr
    new = next(run for run in _runs(project) if run.info.run_id != original_id)
    original = gittrack.get_run(original_id)
    assert new.data.params["max_iter"] == "3"
    assert new.data.metrics == original.data.metrics
    assert new.source.snapshot == original.source.snapshot


def test_a_failing_command_ends_the_new_run_failed_and_gittrack_exits_with_its_status(
    project: Path,
):
    original_id = _train(project, "1.0")

    result = gittrack_cli(
        project, "reproduce", original_id, "--", sys.executable, "-c", "raise SystemExit(3)"
    )

    assert result.returncode == 3
    new = next(run for run in _runs(project) if run.info.run_id != original_id)
    assert new.info.status == "FAILED"
    assert new.data.tags["gittrack.reproduces"] == original_id
    assert new.data.params == {"C": "1.0", "max_iter": "500"}


def test_the_command_gets_the_params_and_run_ids_in_its_environment(project: Path, tmp_path: Path):
    original_id = _train(project, "0.5")
    dump = tmp_path / "env.json"
    code = (
        "import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
        "if k.startswith(('GITTRACK_', 'MLFLOW_'))}, open(sys.argv[1], 'w'))"
    )

    result = gittrack_cli(
        project, "reproduce", original_id, "--path", str(tmp_path / "kept"), "--",
        sys.executable, "-c", code, str(dump),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    env = json.loads(dump.read_text())
    new_id = env["MLFLOW_RUN_ID"]
    assert env["GITTRACK_RUN_ID"] == new_id != original_id
    assert env["GITTRACK_REPRODUCES"] == original_id
    assert env["GITTRACK_PARAM_C"] == "0.5" and env["GITTRACK_PARAM_MAX_ITER"] == "500"
    assert json.loads(env["GITTRACK_PARAMS"]) == {"C": "0.5", "max_iter": "500"}
    assert env["MLFLOW_EXPERIMENT_ID"] == gittrack.get_run(original_id).info.experiment_id
    assert gittrack.get_run(new_id).info.status == "FINISHED"  # ended by the launcher
    assert (tmp_path / "kept" / "train_iris.py").read_text() == TRAIN
    assert "worktree kept in" in result.stdout


def test_param_keys_become_upper_case_variable_names_and_clashing_ones_are_left_out():
    assert param_env_name("learning-rate") == "GITTRACK_PARAM_LEARNING_RATE"
    assert param_env_name("model.depth") == "GITTRACK_PARAM_MODEL_DEPTH"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = param_environment({"a.b": "1", "a_b": "2", "lr": "0.1"})
    assert "GITTRACK_PARAM_A_B" not in env
    assert env["GITTRACK_PARAM_LR"] == "0.1"
    assert json.loads(env["GITTRACK_PARAMS"]) == {"a.b": "1", "a_b": "2", "lr": "0.1"}
    assert "'a.b', 'a_b'" in str(caught[0].message)


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--", "no-such-program-gittrack"], 2, "not found on PATH"),
        ([], 2, "no command given"),
    ],
)
def test_a_bad_command_is_a_one_line_error_before_anything_is_written(
    project: Path, args: list[str], code: int, words: str
):
    original_id = _train(project, "1.0")
    tip = git(project, "rev-parse", "gittrack").strip()

    result = gittrack_cli(project, "reproduce", original_id, *args)

    assert result.returncode == code
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert git(project, "rev-parse", "gittrack").strip() == tip
    assert len(git(project, "worktree", "list").splitlines()) == 1


def test_reproduce_into_a_path_that_exists_is_a_one_line_error_before_anything_is_written(
    project: Path, tmp_path: Path
):
    original_id = _train(project, "1.0")
    tip = git(project, "rev-parse", "gittrack").strip()
    (tmp_path / "taken").mkdir()

    result = gittrack_cli(
        project, "reproduce", original_id, "--path", str(tmp_path / "taken"), "--", "true"
    )

    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "already exists" in result.stderr
    assert git(project, "rev-parse", "gittrack").strip() == tip


# --------------------------------------------- MLFLOW_RUN_ID, differential against MLflow
def _resume_from_environment(module, run_id: str, monkeypatch: pytest.MonkeyPatch):
    """What ``start_run()`` does with ``MLFLOW_RUN_ID`` set: (resumed id, variable still
    set, id of the next run started)."""
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    with module.start_run() as run:
        module.log_metric("m", 1.0)
    still_set = "MLFLOW_RUN_ID" in __import__("os").environ
    with module.start_run() as later:
        pass
    return run.info.run_id == run_id, still_set, later.info.run_id == run_id


def test_start_run_resumes_the_run_named_by_mlflow_run_id_once_as_mlflow_does(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    theirs_id = mlflow.MlflowClient().create_run("0").info.run_id
    ours_id = gittrack.MlflowClient().create_run("0").info.run_id
    gittrack.MlflowClient().set_terminated(ours_id)
    mlflow.MlflowClient().set_terminated(theirs_id)

    theirs = _resume_from_environment(mlflow, theirs_id, monkeypatch)
    ours = _resume_from_environment(gittrack, ours_id, monkeypatch)

    assert ours == theirs == (True, False, False)
    assert gittrack.get_run(ours_id).data.metrics == {"m": 1.0}


def test_resuming_a_run_of_another_experiment_than_the_one_set_is_refused_as_mlflow_does(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    outcomes = []
    for module in (mlflow, gittrack):
        run_id = module.MlflowClient().create_run("0").info.run_id
        module.MlflowClient().set_terminated(run_id)
        module.set_experiment("elsewhere")
        monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
        with pytest.raises(Exception) as raised:
            module.start_run()
        outcomes.append(("experiment" in str(raised.value), module.active_run() is None))
    assert outcomes[0] == outcomes[1] == (True, True)
