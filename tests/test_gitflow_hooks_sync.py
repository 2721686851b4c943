"""With the hooks installed, plain ``git push`` and ``git pull`` share runs, registry tags and
notes (issue 10's acceptance), on real clones of a bare remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gittrack.cli.main import main
from gittrack.gitflow import hooks

from .conftest import SRC, git, make_repo, run_script

pytest.importorskip("gittrack.gitflow.sync")  # push and pull are built on another branch

LOG_AND_REGISTER = """
import gittrack as mlflow
with mlflow.start_run() as run:
    mlflow.log_metric("loss", 0.125)
    mlflow.log_text("model", "model/MLmodel")
mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
print(run.info.run_id)
"""


def git_hooked(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("GITTRACK_HOOK_RUNNING", None)
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )


def hooked_clone(remote: Path, path: Path) -> Path:
    git(path.parent, "clone", "-q", str(remote), str(path))
    git(path, "config", "user.name", path.name)
    git(path, "config", "user.email", f"{path.name}@example.com")
    assert main(["-C", str(path), "hooks", "install"]) == 0
    return path


def test_a_plain_git_push_shares_runs_tags_and_notes_and_a_plain_git_pull_brings_them(
    tmp_path: Path,
) -> None:
    source = make_repo(tmp_path / "source")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    alice = hooked_clone(remote, tmp_path / "alice")
    bob = hooked_clone(remote, tmp_path / "bob")
    (alice / "model.py").write_text("layers = 3\n")
    git(alice, "add", "model.py")
    assert git_hooked(alice, "commit", "-qm", "three layers").returncode == 0
    commit = git(alice, "rev-parse", "HEAD").strip()
    made = run_script(LOG_AND_REGISTER, alice)
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.split()[-1]

    pushed = git_hooked(alice, "push", "-q", "origin", "main")

    assert pushed.returncode == 0, pushed.stderr
    refs = git(remote, "for-each-ref", "--format=%(refname)")
    assert {"refs/heads/gittrack", "refs/tags/churn@v1.0.0", "refs/notes/gittrack"} <= set(
        refs.split()
    )
    assert run_id in git(remote, "notes", "--ref=gittrack", "show", commit)

    pulled = git_hooked(bob, "pull", "-q", "--no-rebase", "origin", "main")

    assert pulled.returncode == 0, pulled.stderr
    assert git(bob, "rev-parse", "HEAD").strip() == commit
    assert run_id in git(bob, "ls-tree", "-r", "--name-only", "gittrack")
    assert git(bob, "rev-parse", "refs/tags/churn@v1.0.0^{commit}")
    shown = git(bob, "log", "--notes=gittrack", "-1")
    assert f"run {run_id} FINISHED" in shown and "loss=0.125" in shown


@pytest.mark.parametrize("strict", [False, True])
def test_a_refused_push_of_runs_blocks_the_users_push_only_when_configured(
    tmp_path: Path, strict: bool
) -> None:
    source = make_repo(tmp_path / "source")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    guard = remote / "hooks" / "pre-receive"  # the server takes code, refuses everything else
    guard.write_text(
        "#!/bin/sh\nwhile read old new ref; do\n"
        '  [ "$ref" = refs/heads/main ] || { echo "protected: $ref" >&2; exit 1; }\ndone\n'
    )
    guard.chmod(0o755)
    alice = hooked_clone(remote, tmp_path / "alice")
    if strict:
        git(alice, "config", "gittrack.hooks.strict", "true")
    (alice / "model.py").write_text("layers = 3\n")
    git(alice, "add", "model.py")
    assert git_hooked(alice, "commit", "-qm", "three layers").returncode == 0
    assert run_script(LOG_AND_REGISTER, alice).returncode == 0

    pushed = git_hooked(alice, "push", "-q", "origin", "main")

    head = git(alice, "rev-parse", "HEAD").strip()
    reported = [line for line in pushed.stderr.splitlines() if "gittrack: pre-push" in line]
    assert len(reported) == 1, pushed.stderr
    if strict:
        assert pushed.returncode != 0
        assert git(remote, "rev-parse", "main").strip() != head
    else:
        assert pushed.returncode == 0, pushed.stderr
        assert git(remote, "rev-parse", "main").strip() == head
    assert "refs/heads/gittrack" not in git(remote, "for-each-ref")
    assert git(alice, "rev-parse", "gittrack")  # nothing lost locally


LOG_ONLY = """
import gittrack as mlflow
with mlflow.start_run() as run:
    mlflow.log_metric("loss", 0.5)
print(run.info.run_id)
"""

SEARCHED = """
import gittrack as mlflow
print(" ".join(mlflow.search_runs(search_all_experiments=True)["run_id"]))
"""


def two_clones(tmp_path: Path) -> tuple[Path, Path]:
    source = make_repo(tmp_path / "source")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    return hooked_clone(remote, tmp_path / "alice"), hooked_clone(remote, tmp_path / "bob")


def push_a_run_only(alice: Path) -> str:
    """Alice logs a run and shares it with ``gittrack push``: no code changes."""
    made = run_script(LOG_ONLY, alice)
    assert made.returncode == 0, made.stderr
    assert main(["-C", str(alice), "push"]) == 0
    return made.stdout.split()[-1]


def searched_run_ids(repo: Path) -> set[str]:
    found = run_script(SEARCHED, repo)
    assert found.returncode == 0, found.stderr
    return set(found.stdout.split())


@pytest.mark.parametrize("how", [["pull"], ["pull", "--rebase"]])
def test_a_git_pull_that_is_already_up_to_date_still_brings_a_teammates_pushed_runs(
    tmp_path: Path, how: list[str]
) -> None:
    alice, bob = two_clones(tmp_path)
    bobs_run = run_script(LOG_ONLY, bob).stdout.split()[-1]
    head, status = git(bob, "rev-parse", "HEAD"), git(bob, "status", "--porcelain")
    alices_run = push_a_run_only(alice)

    pulled = git_hooked(bob, *how)

    assert pulled.returncode == 0, pulled.stderr
    assert "up to date" in pulled.stdout.lower()
    assert "Traceback" not in pulled.stderr
    assert searched_run_ids(bob) == {alices_run, bobs_run}
    assert git(bob, "rev-parse", "HEAD") == head
    assert git(bob, "status", "--porcelain") == status


def test_a_users_reference_transaction_hook_still_runs_with_the_same_input(
    tmp_path: Path,
) -> None:
    alice, bob = two_clones(tmp_path)
    main(["-C", str(bob), "hooks", "uninstall"])
    seen = tmp_path / "seen.log"
    user_hook = bob / ".git" / "hooks" / "reference-transaction"
    user_hook.write_text(f'#!/bin/sh\n{{ echo "state $1"; cat; }} >> "{seen}"\n')
    user_hook.chmod(0o755)
    assert main(["-C", str(bob), "hooks", "install"]) == 0
    alices_run = push_a_run_only(alice)
    tip = git(alice, "rev-parse", "gittrack").strip()

    pulled = git_hooked(bob, "pull")

    assert pulled.returncode == 0, pulled.stderr
    assert alices_run in searched_run_ids(bob)
    blocks = seen.read_text().split("state ")
    moved = [b for b in blocks if f" {tip} refs/remotes/origin/gittrack\n" in b]
    assert [b.split("\n", 1)[0] for b in moved] == ["prepared", "committed"]
    assert moved[0].split("\n", 1)[1] == moved[1].split("\n", 1)[1]  # the same lines to both
    assert (bob / ".git" / "hooks" / "reference-transaction.gittrack-chained").exists()


def recording_python(tmp_path: Path) -> tuple[Path, Path]:
    """A python that records each call, then runs the real one."""
    calls = tmp_path / "python-calls.log"
    shim = tmp_path / "shim" / "python"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    return shim, calls


def test_the_reference_transaction_hook_starts_python_only_when_a_fetch_moved_the_runs(
    tmp_path: Path,
) -> None:
    alice, bob = two_clones(tmp_path)
    shim, calls = recording_python(tmp_path)
    hook = bob / ".git" / "hooks" / "reference-transaction"
    hook.write_text(hooks.hook_script("reference-transaction", python=str(shim)))
    hook.chmod(0o755)

    (bob / "model.py").write_text("layers = 4\n")
    git(bob, "add", "model.py")
    assert git_hooked(bob, "commit", "-qm", "four layers").returncode == 0
    assert git_hooked(bob, "checkout", "-q", "-b", "side").returncode == 0
    assert git_hooked(bob, "checkout", "-q", "main").returncode == 0
    assert not calls.exists()

    alices_run = push_a_run_only(alice)
    assert git_hooked(bob, "fetch", "-q").returncode == 0
    assert calls.read_text().splitlines() == [
        "-m gittrack hooks run reference-transaction committed"
    ]
    assert alices_run in git(bob, "ls-tree", "-r", "--name-only", "gittrack")

    second = push_a_run_only(alice)
    assert main(["-C", str(bob), "pull"]) == 0  # gittrack's own fetch does not re-enter
    assert len(calls.read_text().splitlines()) == 1
    assert second in git(bob, "ls-tree", "-r", "--name-only", "gittrack")


def test_a_failing_merge_after_a_fetch_is_one_line_and_the_users_git_command_succeeds(
    tmp_path: Path,
) -> None:
    alice, bob = two_clones(tmp_path)
    push_a_run_only(alice)
    assert git_hooked(bob, "fetch", "-q").returncode == 0
    tip = git(bob, "rev-parse", "refs/remotes/origin/gittrack").strip()

    moved = git_hooked(bob, "update-ref", "refs/remotes/elsewhere/gittrack", tip)

    assert moved.returncode == 0
    assert git(bob, "rev-parse", "refs/remotes/elsewhere/gittrack").strip() == tip
    said = [line for line in moved.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and "'elsewhere'" in said[0] and "gittrack" in said[0], moved.stderr
