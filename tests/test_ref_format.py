"""The in-process ref writer follows git's ref rules: which refs get a reflog
(``core.logAllRefUpdates``) and which ref formats it can write (files, not reftable).

The reflog rules are checked against git itself: the same update is made by ``git update-ref``
in one repository and by ``RefUpdater`` in an identical one, and both must leave a reflog in
the same places.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gittrack.errors import RepositoryError
from gittrack.store.git import GitRepo

from .conftest import git, gittrack_cli, make_repo

REFS = ("refs/heads/topic", "refs/tags/v1", "refs/notes/extra", "refs/gittrack/live/x")
SETTINGS = (None, "true", "false", "always")


def _pair(tmp_path: Path, setting: str | None) -> tuple[Path, Path]:
    """Two identical repositories (one for git, one for gittrack) with one commit. (gittrack
    tracks into repositories with a work tree, so the bare defaults are not exercised.)"""
    made = []
    for name in ("by-git", "by-gittrack"):
        path = make_repo(tmp_path / name)
        if setting is not None:
            git(path, "config", "core.logAllRefUpdates", setting)
        made.append(path)
    return made[0], made[1]


def _log_file(repo: Path, ref: str) -> Path:
    git_dir = git(repo, "rev-parse", "--absolute-git-dir").strip()
    return Path(git_dir) / "logs" / ref


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"logAllRefUpdates={s}")
def test_a_new_reflog_is_started_exactly_where_git_starts_one(
    tmp_path: Path, setting: str | None
) -> None:
    by_git, by_gittrack = _pair(tmp_path, setting)
    head = git(by_git, "rev-parse", "HEAD").strip()
    repo = GitRepo(by_gittrack)
    try:
        for ref in REFS:
            git(by_git, "update-ref", "-m", "test", ref, head)
            repo.update_ref(ref, head, None, "test")
            expected = _log_file(by_git, ref).exists()
            assert _log_file(by_gittrack, ref).exists() == expected, (ref, setting)
    finally:
        repo.close()


def test_the_rules_are_not_vacuous(tmp_path: Path) -> None:
    """git starts a reflog for a branch and none for a tag with the default setting: the
    comparison above would also pass if neither writer ever logged, so pin both cases."""
    by_git, _ = _pair(tmp_path, None)
    head = git(by_git, "rev-parse", "HEAD").strip()
    git(by_git, "update-ref", "-m", "test", "refs/heads/topic", head)
    git(by_git, "update-ref", "-m", "test", "refs/tags/v1", head)
    assert _log_file(by_git, "refs/heads/topic").exists()
    assert not _log_file(by_git, "refs/tags/v1").exists()


@pytest.mark.parametrize("setting", ["false", "true"])
def test_an_existing_reflog_is_appended_to_whatever_the_setting(
    tmp_path: Path, setting: str
) -> None:
    by_git, by_gittrack = _pair(tmp_path, setting)
    head = git(by_git, "rev-parse", "HEAD").strip()
    ref = "refs/tags/v1"
    for path in (by_git, by_gittrack):
        log = _log_file(path, ref)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
    git(by_git, "update-ref", "-m", "test", ref, head)
    repo = GitRepo(by_gittrack)
    try:
        repo.update_ref(ref, head, None, "test")
    finally:
        repo.close()
    lines_git = _log_file(by_git, ref).read_text().splitlines()
    lines_ours = _log_file(by_gittrack, ref).read_text().splitlines()
    assert len(lines_git) == len(lines_ours) == 1
    assert lines_ours[0].split()[:2] == lines_git[0].split()[:2]


def test_a_reftable_repository_is_refused_with_how_to_convert_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    # What `git init --ref-format=reftable` records; a git older than 2.45 cannot open it.
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.refStorage", "reftable")
    with pytest.raises(RepositoryError) as caught:
        GitRepo(repo)
    message = str(caught.value)
    assert "reftable" in message
    assert "git refs migrate --ref-format=files" in message


def test_a_repository_made_by_git_in_the_reftable_format_is_refused(tmp_path: Path) -> None:
    made = subprocess.run(
        ["git", "init", "-q", "--ref-format=reftable", str(tmp_path / "repo")],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip("the installed git has no reftable format (git 2.45 or newer has it)")
    with pytest.raises(RepositoryError, match="reftable"):
        GitRepo(tmp_path / "repo")


def test_the_command_line_names_a_reftable_repository_in_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.refStorage", "reftable")
    result = gittrack_cli(repo, "runs", "list")
    assert result.returncode != 0
    assert "reftable" in result.stderr
    assert "Traceback" not in result.stderr
