"""With the hooks installed, plain ``git push`` and ``git pull`` share runs, registry tags and
notes (issue 10's acceptance), on real clones of a bare remote."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gittrack.cli.main import main

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
