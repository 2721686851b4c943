"""``gittrack log`` without pandas: when the saved query index describes the branch tip and no
run is live, the runs of each commit are read from a few Arrow columns of the index, and the
notes are rebuilt only when the tracking tip, the notes or the commits shown changed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gittrack as mlflow
from gittrack.cli.main import main
from gittrack.gitflow.commit_runs import (
    _notes_done,
    _runs_from_frame,
    _saved_columns,
    runs_of_commits,
)
from gittrack.tracking.repository import forget_repositories, open_repository

from .conftest import git, run_script
from .hostile_branch import put_file


def commit(repo: Path, name: str) -> str:
    (repo / f"{name}.py").write_text(f"print({name!r})\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def logged_run(**metrics: float) -> str:
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
    return run.info.run_id


def log_json(capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    forget_repositories()
    assert main(["log", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def note(repo: Path, commit_sha: str) -> str:
    return git(repo, "notes", "--ref=gittrack", "show", commit_sha)


def test_gittrack_log_on_a_current_index_does_not_import_pandas(repo: Path, capsys) -> None:
    commit(repo, "first")
    logged_run(loss=0.5)
    log_json(capsys)  # builds and saves the query index

    proc = run_script(
        "import sys\n"
        "from gittrack.cli.main import main\n"
        "code = main(['log', '-n', '5'])\n"
        "print('pandas imported' if 'pandas' in sys.modules else 'no pandas', code)\n",
        cwd=repo,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "no pandas 0"
    assert "loss=0.5" in proc.stdout


def test_runs_read_from_the_saved_index_equal_the_runs_read_from_the_frame(
    repo: Path, capsys
) -> None:
    first = commit(repo, "first")
    kept = logged_run(loss=0.5, acc=0.25)
    logged_nan = logged_run(loss=math.nan)
    deleted = logged_run(loss=0.75)
    mlflow.MlflowClient().delete_run(deleted)
    second = commit(repo, "second")
    other = logged_run(f1=0.125)
    log_json(capsys)
    forget_repositories()
    repository = open_repository(str(repo))

    assert _saved_columns(repository) is not None  # the fast path is taken
    fast = runs_of_commits(repository, [first, second])
    slow = _runs_from_frame(repository, [first, second])

    assert [r.run_id for r in fast[first]] == sorted([kept, logged_nan])
    assert [r.run_id for r in fast[second]] == [other]
    assert fast.keys() == slow.keys()
    for sha in fast:
        fields = ("run_id", "run_name", "status", "experiment_id", "start_time", "parent_run_id")
        assert [[getattr(r, f) for f in fields] for r in fast[sha]] == [
            [getattr(r, f) for f in fields] for r in slow[sha]
        ]
        assert all(r.start_time > 0 for r in fast[sha])
        for quick, full in zip(fast[sha], slow[sha]):
            assert quick.metrics.keys() == full.metrics.keys()
    by_id = {r.run_id: r for r in fast[first]}
    assert by_id[kept].metrics == {"loss": 0.5, "acc": 0.25}
    assert math.isnan(by_id[logged_nan].metrics["loss"])


def test_a_live_run_is_shown_by_log_through_the_frame(repo: Path, capsys) -> None:
    commit(repo, "first")
    logged_run(loss=0.5)
    log_json(capsys)
    live = mlflow.start_run()

    entries = log_json(capsys, "-n", "1")

    assert live.info.run_id in [r["run_id"] for r in entries[0]["runs"]]
    mlflow.end_run()


def test_a_note_edited_by_hand_is_restored_by_the_next_log(repo: Path, capsys) -> None:
    first = commit(repo, "first")
    run_id = logged_run(loss=0.5)
    log_json(capsys)
    git(repo, "notes", "--ref=gittrack", "add", "-f", "-m", "edited by hand", first)

    log_json(capsys)

    assert run_id in note(repo, first)
    assert "edited by hand" not in note(repo, first)


def test_notes_follow_a_run_ended_after_the_last_log(repo: Path, capsys) -> None:
    first = commit(repo, "first")
    logged_run(loss=0.5)
    log_json(capsys)
    log_json(capsys)  # nothing changed: the notes are left as they are
    later = logged_run(loss=0.25)

    log_json(capsys)

    assert later in note(repo, first)


def test_notes_follow_the_commits_shown(repo: Path, capsys) -> None:
    first = commit(repo, "first")
    first_run = logged_run(loss=0.5)
    second = commit(repo, "second")
    logged_run(loss=0.25)
    log_json(capsys, "-n", "1")
    assert first not in git(repo, "notes", "--ref=gittrack", "list")

    log_json(capsys, "-n", "2")

    assert first_run in note(repo, first)
    assert note(repo, second)


def test_after_a_new_code_commit_log_refreshes_only_that_commits_note(repo: Path, capsys) -> None:
    first = commit(repo, "first")
    logged_run(loss=0.5)
    log_json(capsys)
    second = commit(repo, "second")
    logged_run(loss=0.25)  # a run committed: the stamp no longer matches the tracking tip
    log_json(capsys)
    commit(repo, "third")
    forget_repositories()
    repository = open_repository(str(repo))
    tip = repository.branch.tip()

    assert _notes_done(repository, tip) >= {first, second}
    log_json(capsys)

    assert git(repo, "rev-parse", "HEAD").strip() in _notes_done(repository, tip)
    assert "loss=0.25" in note(repo, second)


def test_a_corrupt_run_is_still_reported_when_log_reads_the_saved_index(repo: Path, capsys) -> None:
    commit(repo, "first")
    victim = logged_run(loss=0.5)
    kept = logged_run(loss=0.25)
    path = f".tracking/runs/{victim[:2]}/{victim[2:4]}/{victim}/meta.yaml"
    put_file(repo, path, b"run_id: [unclosed\n")
    forget_repositories()
    assert main(["log", "--json"]) == 0  # the index is built, the corrupt run left out of it
    assert f"skipped: {path}" in capsys.readouterr().err
    forget_repositories()
    assert _saved_columns(open_repository(str(repo))) is not None

    forget_repositories()
    assert main(["log", "-n", "1", "--json"]) == 0
    out, err = capsys.readouterr()

    assert f"gittrack: warning: skipped: {path}" in err
    assert [r["run_id"] for r in json.loads(out)[0]["runs"]] == [kept]
