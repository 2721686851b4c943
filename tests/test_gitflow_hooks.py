"""Git hooks on real repositories: post-commit relabelling and notes, chaining a user's hook,
idempotent install, uninstall, ``core.hooksPath``, and the pre-commit framework's manifest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack.cli.main import main
from gittrack.store.branch import Blob
from gittrack.tracking.repository import forget_repositories, open_repository

from .conftest import SRC, git, tree_fingerprint

ROOT = Path(__file__).resolve().parents[1]


def git_hooked(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git with the hooks able to import this source tree (as an installed gittrack)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("GITTRACK_HOOK_RUNNING", None)
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )


def install(repo: Path, *extra: str) -> None:
    assert main(["-C", str(repo), "hooks", "install", *extra]) == 0


def dirty_run(repo: Path, text: str = "print('better')\n") -> str:
    """A run started on a dirty tree (train.py changed), with two metrics."""
    (repo / "train.py").write_text(text)
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.25)
        mlflow.log_metric("acc", 0.75)
    return run.info.run_id


def committed_run(run_id: str):
    forget_repositories()
    return mlflow.MlflowClient().get_run(run_id)


def test_a_commit_after_a_dirty_tree_run_relabels_it_and_its_note_shows_the_metrics(
    repo: Path,
) -> None:
    install(repo)
    run_id = dirty_run(repo)
    before = committed_run(run_id)
    assert before.source.dirty and before.source.snapshot
    tip_before = git(repo, "rev-parse", "gittrack").strip()

    result = git_hooked(repo, "commit", "-qam", "better training")
    assert result.returncode == 0, result.stderr

    head = git(repo, "rev-parse", "HEAD").strip()
    after = committed_run(run_id)
    assert after.source.commit == head
    assert after.data.tags["mlflow.source.git.commit"] == head
    assert after.source.snapshot == before.source.snapshot  # the exact code stays reachable
    # one tracking commit records the relabelling, on top of the previous tip
    assert git(repo, "rev-parse", "gittrack~1").strip() == tip_before
    assert f"Run-Id: {run_id}" in git(repo, "log", "-1", "--format=%B", "gittrack")
    shown = git(repo, "log", "--notes=gittrack", "-1")
    assert f"run {run_id} FINISHED" in shown
    assert "acc=0.75 loss=0.25" in shown


def test_running_the_post_commit_hook_again_changes_nothing_in_the_users_repository(
    repo: Path,
) -> None:
    install(repo)
    run_id = dirty_run(repo)
    assert git_hooked(repo, "commit", "-qam", "better training").returncode == 0
    tip, notes = git(repo, "rev-parse", "gittrack", "refs/notes/gittrack").split()
    fingerprint = tree_fingerprint(repo)

    forget_repositories()
    assert main(["-C", str(repo), "hooks", "run", "post-commit"]) == 0

    assert git(repo, "rev-parse", "gittrack", "refs/notes/gittrack").split() == [tip, notes]
    after = tree_fingerprint(repo)
    assert {k: v for k, v in after.items() if "notes" not in k} == {
        k: v for k, v in fingerprint.items() if "notes" not in k
    }
    assert committed_run(run_id).source.commit == git(repo, "rev-parse", "HEAD").strip()


def test_a_commit_of_other_changes_than_the_snapshot_leaves_the_run_alone(repo: Path) -> None:
    install(repo)
    first = git(repo, "rev-parse", "HEAD").strip()
    run_id = dirty_run(repo)
    (repo / "train.py").write_text("print('something else')\n")

    assert git_hooked(repo, "commit", "-qam", "other code").returncode == 0

    assert committed_run(run_id).source.commit == first
    assert "Notes (gittrack)" not in git(repo, "log", "--notes=gittrack", "-1")


def test_an_existing_user_hook_still_runs_and_uninstall_restores_it(repo: Path) -> None:
    hooks_dir = repo / ".git" / "hooks"
    user_hook = hooks_dir / "post-commit"
    user_script = '#!/bin/sh\necho "user hook ran $(git rev-parse HEAD)" >> .git/user-hook.log\n'
    user_hook.write_text(user_script)
    user_hook.chmod(0o755)

    install(repo)
    run_id = dirty_run(repo)
    assert git_hooked(repo, "commit", "-qam", "better training").returncode == 0

    head = git(repo, "rev-parse", "HEAD").strip()
    assert (repo / ".git" / "user-hook.log").read_text() == f"user hook ran {head}\n"
    assert committed_run(run_id).source.commit == head

    assert main(["-C", str(repo), "hooks", "uninstall"]) == 0
    assert user_hook.read_text() == user_script
    assert os.access(user_hook, os.X_OK)
    assert not (hooks_dir / "post-commit.gittrack-chained").exists()
    assert not (hooks_dir / "pre-push").exists()


def test_a_refusing_user_pre_push_hook_still_refuses_the_push(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    user_hook = repo / ".git" / "hooks" / "pre-push"
    user_hook.write_text('#!/bin/sh\nread line\necho "refused: $line" >&2\nexit 1\n')
    user_hook.chmod(0o755)
    install(repo)

    result = git_hooked(repo, "push", "-q", "origin", "main")

    assert result.returncode != 0
    assert "refused: refs/heads/main" in result.stderr  # it got git's input, unchanged
    assert git(remote, "for-each-ref").strip() == ""


def test_installing_twice_changes_nothing_and_never_chains_itself(repo: Path, capsys) -> None:
    install(repo)
    hooks_dir = repo / ".git" / "hooks"
    first = {p.name: p.read_bytes() for p in hooks_dir.iterdir()}

    install(repo)

    assert {p.name: p.read_bytes() for p in hooks_dir.iterdir()} == first
    assert not list(hooks_dir.glob("*.gittrack-chained"))
    capsys.readouterr()
    assert main(["-C", str(repo), "hooks", "status", "--json"]) == 0
    states = json.loads(capsys.readouterr().out)
    assert [(s["hook"], s["state"]) for s in states] == [
        ("post-commit", "installed"),
        ("post-merge", "installed"),
        ("pre-push", "installed"),
        ("reference-transaction", "installed"),
    ]


def test_hooks_go_to_core_hooks_path_and_run_from_there(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n.githooks/\n")
    git(repo, "commit", "-qam", "ignore the hooks directory")
    git(repo, "config", "core.hooksPath", ".githooks")
    install(repo, "--hooks", "post-commit")

    assert (repo / ".githooks" / "post-commit").exists()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    run_id = dirty_run(repo)
    assert git_hooked(repo, "commit", "-qam", "better training").returncode == 0
    assert committed_run(run_id).source.commit == git(repo, "rev-parse", "HEAD").strip()


def test_an_unknown_hook_name_is_refused_before_anything_is_written(repo: Path, capsys) -> None:
    hooks_dir = repo / ".git" / "hooks"
    before = sorted(p.name for p in hooks_dir.iterdir())

    code = main(["-C", str(repo), "hooks", "install", "--hooks", "post-commit,pre-rebase"])

    assert code != 0
    err = capsys.readouterr().err
    assert "'pre-rebase'" in err and "post-commit, post-merge, pre-push" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in hooks_dir.iterdir()) == before


def test_the_pre_commit_manifest_lists_the_three_hooks_with_their_stages() -> None:
    manifest = ROOT / ".pre-commit-hooks.yaml"
    hooks = yaml.safe_load(manifest.read_text())
    assert {hook["id"]: hook["stages"] for hook in hooks} == {
        "gittrack-post-commit": ["post-commit"],
        "gittrack-post-merge": ["post-merge"],
        "gittrack-pre-push": ["pre-push"],
    }
    clientlib = pytest.importorskip("pre_commit.clientlib")
    loaded = clientlib.load_manifest(str(manifest))  # pre-commit's own schema check
    assert all(hook["entry"].startswith("gittrack hooks run ") for hook in loaded)


def test_an_amended_commit_that_takes_the_dirty_state_relabels_the_run(repo: Path) -> None:
    install(repo)
    (repo / "data.py").write_text("rows = 1\n")
    git(repo, "add", "data.py")
    assert git_hooked(repo, "commit", "-qm", "data").returncode == 0
    amended = git(repo, "rev-parse", "HEAD").strip()
    run_id = dirty_run(repo)
    assert committed_run(run_id).source.commit == amended

    assert git_hooked(repo, "commit", "-qa", "--amend", "--no-edit").returncode == 0

    head = git(repo, "rev-parse", "HEAD").strip()
    assert head != amended
    assert committed_run(run_id).source.commit == head
    assert f"run {run_id} FINISHED" in git(repo, "log", "--notes=gittrack", "-1")


def test_a_plain_git_push_goes_through_and_notes_the_pushed_commits_runs(
    repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    user_hook = repo / ".git" / "hooks" / "pre-push"  # accepts, and keeps what git gave it
    user_hook.write_text('#!/bin/sh\necho "$1" > .git/pre-push.args\ncat > .git/pre-push.input\n')
    user_hook.chmod(0o755)
    install(repo)
    (repo / "model.py").write_text("layers = 3\n")
    git(repo, "add", "model.py")
    assert git_hooked(repo, "commit", "-qm", "three layers").returncode == 0
    head = git(repo, "rev-parse", "HEAD").strip()
    with mlflow.start_run() as run:  # a clean run, made after the commit
        mlflow.log_metric("loss", 0.125)
    forget_repositories()

    result = git_hooked(repo, "push", "-q", "origin", "main")

    assert result.returncode == 0, result.stderr
    assert git(remote, "rev-parse", "main").strip() == head
    note = git(repo, "notes", "--ref=gittrack", "show", head)
    assert note.startswith(f"run {run.info.run_id} FINISHED") and "loss=0.125" in note
    assert (repo / ".git" / "pre-push.args").read_text() == "origin\n"
    assert (repo / ".git" / "pre-push.input").read_text().startswith(f"refs/heads/main {head} ")


def test_a_hooks_path_that_is_not_a_directory_is_a_one_line_error(repo: Path, capsys) -> None:
    (repo / "not-a-dir").write_text("a file\n")
    git(repo, "config", "core.hooksPath", "not-a-dir")

    code = main(["-C", str(repo), "hooks", "install"])

    assert code != 0
    err = capsys.readouterr().err.strip()
    assert "not-a-dir" in err and "post-commit" in err and len(err.splitlines()) == 1
    assert (repo / "not-a-dir").read_text() == "a file\n"


def test_a_run_with_an_unreadable_meta_file_is_reported_and_the_others_still_relabelled(
    repo: Path,
) -> None:
    install(repo)
    broken, fine = dirty_run(repo), dirty_run(repo)
    where = f".tracking/runs/{broken[:2]}/{broken[2:4]}/{broken}/meta.yaml"
    branch = open_repository(str(repo)).branch
    branch.commit(lambda _snap: {where: Blob(b"run_id: [unclosed\n")}, "Damage a run\n")

    result = git_hooked(repo, "commit", "-qam", "better training")

    assert result.returncode == 0
    assert "left unlabelled" in result.stderr and broken in result.stderr
    assert committed_run(fine).source.commit == git(repo, "rev-parse", "HEAD").strip()
    shown = git(repo, "log", "--notes=gittrack", "-1")
    assert fine in shown and broken not in shown.split("Notes (gittrack):")[1]


def test_a_commit_in_a_linked_worktree_relabels_the_run_made_there(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(repo)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "feature")
    monkeypatch.chdir(linked)
    forget_repositories()
    run_id = dirty_run(linked)

    assert git_hooked(linked, "commit", "-qam", "better training").returncode == 0

    head = git(linked, "rev-parse", "HEAD").strip()
    assert committed_run(run_id).source.commit == head
    assert f"run {run_id} FINISHED" in git(repo, "log", "--notes=gittrack", "-1", "feature")
    assert git(repo, "rev-parse", "HEAD").strip() != head  # the main work tree did not move


def test_a_dirty_run_made_before_switching_branches_and_back_is_still_relabelled(
    repo: Path,
) -> None:
    install(repo)
    run_id = dirty_run(repo)
    git(repo, "checkout", "-q", "-b", "elsewhere")  # HEAD moves (to the same commit) and back
    git(repo, "checkout", "-q", "main")

    assert git_hooked(repo, "commit", "-qam", "better training").returncode == 0

    assert committed_run(run_id).source.commit == git(repo, "rev-parse", "HEAD").strip()
