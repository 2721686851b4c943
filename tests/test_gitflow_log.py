"""Runs by code commit on real repositories: ``gittrack log``, ``runs list --commit`` and the
notes in ``refs/notes/gittrack`` (written for the commits shown, merged like git's
``cat_sort_uniq``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gittrack as mlflow
from gittrack.cli.main import main
from gittrack.gitflow.notes import Notes, RunSummary, note_text
from gittrack.store.git import GitRepo
from gittrack.tracking.repository import forget_repositories

from .conftest import git


def commit(repo: Path, name: str) -> str:
    (repo / f"{name}.py").write_text(f"print({name!r})\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def clean_run(loss: float, acc: float) -> str:
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", loss)
        mlflow.log_metric("acc", acc)
    return run.info.run_id


def cli_json(capsys, *args: str):
    capsys.readouterr()
    forget_repositories()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def history(repo: Path) -> dict[str, str]:
    """Two commits on main with runs, and a merged side branch whose commit has a run."""
    first = commit(repo, "first")
    runs = {"first": clean_run(0.5, 0.6)}
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, "side")
    runs["side"] = clean_run(0.9, 0.1)
    git(repo, "checkout", "-q", "main")
    second = commit(repo, "second")
    runs["second"] = clean_run(0.25, 0.8)
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    return {"first": first, "second": second, **{f"run_{k}": v for k, v in runs.items()}}


def test_gittrack_log_walks_the_first_parent_history_with_each_commits_runs(
    repo: Path, capsys
) -> None:
    made = history(repo)

    entries = cli_json(capsys, "log")

    subjects = [entry["subject"] for entry in entries]
    assert subjects == ["merge side", "add second", "add first", "initial"]
    by_subject = {entry["subject"]: entry for entry in entries}
    assert [r["run_id"] for r in by_subject["add second"]["runs"]] == [made["run_second"]]
    assert by_subject["add second"]["runs"][0]["metrics"] == {"acc": 0.8, "loss": 0.25}
    assert [r["run_id"] for r in by_subject["add first"]["runs"]] == [made["run_first"]]
    assert by_subject["merge side"]["runs"] == []


def test_gittrack_log_takes_a_revision_a_count_and_chosen_metrics(repo: Path, capsys) -> None:
    made = history(repo)

    entries = cli_json(capsys, "log", made["second"], "-n", "1", "--metric", "loss")

    assert [entry["commit"] for entry in entries] == [made["second"]]
    assert entries[0]["runs"][0]["metrics"] == {"loss": 0.25}
    forget_repositories()
    assert main(["log", "-n", "2", "--metric", "acc"]) == 0
    table = capsys.readouterr().out
    assert f"    {made['run_second']}  FINISHED" in table and "acc=0.8" in table
    assert "loss=" not in table


def test_gittrack_log_writes_the_notes_git_log_shows(repo: Path, capsys) -> None:
    made = history(repo)

    cli_json(capsys, "log")

    shown = git(repo, "log", "--notes=gittrack", "-1", made["first"])
    assert f"run {made['run_first']} FINISHED 0/" in shown
    assert "acc=0.6 loss=0.5" in shown
    notes_tip = git(repo, "rev-parse", "refs/notes/gittrack").strip()
    cli_json(capsys, "log")  # nothing changed: no new notes commit
    assert git(repo, "rev-parse", "refs/notes/gittrack").strip() == notes_tip


def test_runs_list_commit_shows_only_the_runs_of_that_commit(repo: Path, capsys) -> None:
    made = history(repo)

    listed = cli_json(capsys, "runs", "list", "--commit", made["first"][:9])
    both = cli_json(capsys, "runs", "list", "--commit", "side", "--filter", "metrics.acc < 1")

    assert [run["run_id"] for run in listed] == [made["run_first"]]
    assert [run["run_id"] for run in both] == [made["run_side"]]


def test_an_unknown_revision_or_a_bad_count_is_a_one_line_error(repo: Path, capsys) -> None:
    for args, named in (
        (["log", "no-such-rev"], "'no-such-rev'"),
        (["runs", "list", "--commit", "no-such-rev"], "'no-such-rev'"),
        (["log", "-n", "0"], "-n 0"),
        (["log", "--", "--all"], "'--all'"),
    ):
        capsys.readouterr()
        assert main(args) != 0
        err = capsys.readouterr().err.strip()
        assert named in err and len(err.splitlines()) == 1, err
    assert "refs/notes/gittrack" not in git(repo, "for-each-ref")


def test_two_clones_notes_merged_by_git_cat_sort_uniq_list_the_runs_of_both(
    tmp_path: Path, repo: Path
) -> None:
    code = commit(repo, "a")
    shared = RunSummary("1" * 32, "0", "shared", "FINISHED", {"loss": 0.5})
    ours = RunSummary("2" * 32, "0", "ours", "FINISHED", {"loss": 0.25})
    theirs = RunSummary("3" * 32, "0", "theirs", "FAILED", {})
    other = tmp_path / "other"
    shutil.copytree(repo, other)
    Notes(GitRepo(repo)).write({code: note_text([shared, ours])})
    Notes(GitRepo(other)).write({code: note_text([theirs, shared])})
    git(repo, "fetch", "-q", str(other), "refs/notes/gittrack:refs/notes/theirs")

    git(repo, "notes", "--ref=gittrack", "merge", "-q", "-s", "cat_sort_uniq", "refs/notes/theirs")

    merged = git(repo, "notes", "--ref=gittrack", "show", code)
    assert merged == note_text([ours, theirs, shared])  # as if one clone had made all three


def test_a_note_git_stored_in_a_fanned_out_notes_tree_is_replaced_in_place(repo: Path) -> None:
    marks = range(1, 301)
    stream = "".join(
        f"commit refs/heads/many\nmark :{m}\n"
        f"committer T <t@example.com> {1_700_000_000 + m} +0000\ndata 2\nc\n\n"
        for m in marks
    )
    stream += "commit refs/notes/gittrack\ncommitter T <t@example.com> 1700001000 +0000\n"
    stream += "data 6\nnotes\n" + "".join(f"N inline :{m}\ndata 4\nold\n" for m in marks)
    git(repo, "fast-import", "--quiet", input=stream.encode())
    assert "/" in git(repo, "ls-tree", "--name-only", "-r", "refs/notes/gittrack").split()[0]
    target = git(repo, "rev-parse", "many~7").strip()

    Notes(GitRepo(repo)).write({target: "run 1 new\n"})

    assert git(repo, "notes", "--ref=gittrack", "show", target) == "run 1 new\n"
    assert len(git(repo, "notes", "--ref=gittrack", "list").splitlines()) == 300
    assert git(repo, "notes", "--ref=gittrack", "show", "many~8") == "old\n"


def test_gittrack_log_still_shows_the_runs_when_the_notes_ref_is_locked(repo: Path, capsys) -> None:
    made = history(repo)
    lock = repo / ".git" / "refs" / "notes" / "gittrack.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("held by another writer\n")

    entries = cli_json(capsys, "log", "-n", "3")

    assert [r["run_id"] for r in entries[1]["runs"]] == [made["run_second"]]
    assert lock.read_text() == "held by another writer\n"
    assert "refs/notes/gittrack" not in git(repo, "for-each-ref")


def test_notes_leave_out_live_runs_and_drop_runs_deleted_since(repo: Path, capsys) -> None:
    made = history(repo)
    cli_json(capsys, "log")
    assert made["run_first"] in git(repo, "notes", "--ref=gittrack", "show", made["first"])
    git(repo, "checkout", "-q", made["first"])
    live = mlflow.start_run()

    mlflow.MlflowClient().delete_run(made["run_first"])
    entries = cli_json(capsys, "log", "-n", "1")

    assert [r["run_id"] for r in entries[0]["runs"]] == [live.info.run_id]  # shown, live
    notes = git(repo, "notes", "--ref=gittrack", "list").split()
    assert made["first"] not in notes  # its only finished run was deleted
    assert made["second"] in notes
    mlflow.end_run()
