"""The ``Client`` methods the command line calls instead of reaching into the domains
(DESIGN §7): hooks, sharing, the commit log, searching without pages and exporting."""

from __future__ import annotations

from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import InvalidInputError, NotFoundError

from .conftest import git, tree_fingerprint


def _commit(repo: Path, name: str) -> str:
    (repo / f"{name}.py").write_text(f"print({name!r})\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def _run(**metrics: float) -> str:
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
    return run.info.run_id


def test_an_unknown_hook_name_is_refused_before_any_hook_is_written(repo: Path) -> None:
    hooks = Path(git(repo, "rev-parse", "--git-path", "hooks").strip())
    before = sorted(p.name for p in (repo / hooks).iterdir()) if (repo / hooks).is_dir() else []

    with pytest.raises(InvalidInputError, match="'post-checkout'.*post-commit"):
        Client(str(repo)).install_hooks(["post-commit", "post-checkout"])

    after = sorted(p.name for p in (repo / hooks).iterdir()) if (repo / hooks).is_dir() else []
    assert after == before


def test_installed_hooks_show_as_installed_and_uninstalling_removes_them(repo: Path) -> None:
    client = Client(str(repo))
    fingerprint = tree_fingerprint(repo)

    installed = client.install_hooks("post-commit,pre-push")
    states = {state.name: state.state for state in client.hook_status()}
    client.uninstall_hooks(["post-commit", "pre-push"])

    assert [state.name for state, _ in installed] == ["post-commit", "pre-push"]
    assert states == {
        "post-commit": "installed",
        "post-merge": "not installed",
        "pre-push": "installed",
        "reference-transaction": "not installed",
    }
    assert {state.state for state in client.hook_status()} == {"not installed"}
    assert tree_fingerprint(repo) == fingerprint


def test_running_an_unknown_hook_is_an_input_error_naming_the_hooks(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="post-commit, post-merge, pre-push"):
        Client(str(repo)).run_hook("pre-rebase", [])


def test_commit_history_keeps_only_the_metrics_asked_for_in_their_order(repo: Path) -> None:
    commit = _commit(repo, "prepare")
    run_id = _run(loss=0.5, acc=0.9, f1=0.7)

    (entry,) = Client(str(repo)).commit_history("HEAD", 1, metrics=["f1", "loss", "absent"])

    assert entry.commit == commit
    assert [run.run_id for run in entry.runs] == [run_id]
    assert list(entry.runs[0].metrics.items()) == [("f1", 0.7), ("loss", 0.5)]


def test_commit_history_refuses_a_bad_metric_key_before_reading_anything(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="metric"):
        Client(str(repo)).commit_history("no-such-revision", 1, metrics=["../loss"])


def test_commit_history_writes_notes_only_when_asked(repo: Path) -> None:
    _commit(repo, "prepare")
    _run(loss=0.5)
    client = Client(str(repo))

    client.commit_history("HEAD", 5)
    unasked = git(repo, "for-each-ref", "refs/notes/gittrack").strip()
    client.commit_history("HEAD", 5, refresh_notes=True)
    asked = git(repo, "for-each-ref", "refs/notes/gittrack").strip()

    assert unasked == ""
    assert asked.endswith("refs/notes/gittrack")


def test_search_runs_frame_restricted_to_a_commit_returns_that_commits_runs(repo: Path) -> None:
    _commit(repo, "first")
    first = _run(loss=0.5)
    _commit(repo, "second")
    second = _run(loss=0.25)
    client = Client(str(repo))

    on_head = client.search_runs_frame(output_format="list", commit="HEAD")
    on_parent = client.search_runs_frame(filter_string="metrics.loss > 0.1", commit="HEAD~1")

    assert [run.info.run_id for run in on_head] == [second]
    assert list(on_parent["run_id"]) == [first]
    with pytest.raises(NotFoundError, match="'nowhere'"):
        client.search_runs_frame(commit="nowhere")


def test_export_runs_writes_the_runs_and_their_histories(repo: Path, tmp_path: Path) -> None:
    run_id = _run(loss=0.5)

    written = Client(str(repo)).export_runs(tmp_path / "out", "csv")

    assert sorted(written) == ["metric_history", "runs"]
    assert run_id in written["runs"].read_text()
    assert "loss" in written["metric_history"].read_text()


def test_create_experiment_with_exist_ok_returns_the_active_experiment(repo: Path) -> None:
    client = Client(str(repo))
    created = client.create_experiment("tuning")

    assert client.create_experiment("tuning", exist_ok=True) == created
    with pytest.raises(mlflow.errors.ConflictError):
        client.create_experiment("tuning")


def test_the_dict_forms_of_logging_store_params_metrics_and_tags(repo: Path) -> None:
    client = Client(str(repo))
    run_id = client.create_run("0").info.run_id

    client.log_params(run_id, {"lr": 0.1, "depth": 3})
    client.log_metrics(run_id, {"loss": 0.5, "acc": 0.75}, step=2)
    client.set_tags(run_id, {"team": "vision"})
    client.set_terminated(run_id)

    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "depth": "3"}
    assert run.data.metrics == {"loss": 0.5, "acc": 0.75}
    assert run.data.tags["team"] == "vision"
    assert [m.step for m in client.get_metric_history(run_id, "acc")] == [2]
