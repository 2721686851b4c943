"""Runs by code commit, for the commands that walk the code's history (DESIGN §11, §13).

A run belongs to the commit in its ``mlflow.source.git.commit`` tag (``source.commit``; the
post-commit hook moves both together when it relabels a dirty-tree run). These three lookups
are what ``bisect`` (and ``diff``) need: the first-parent commits between two revisions, the
runs of one commit, and the nearest commit back along first parents that has runs. They read
through the query index and never write.

(``query`` reaching ``gitflow.commit_runs`` is allowed: they are sibling domains. The runs of
a commit are owned there, with the pandas-free fast path that ``gittrack log`` uses.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gittrack.errors import InvalidInputError, NotFoundError
from gittrack.tracking.repository import TrackingRepository

if TYPE_CHECKING:
    from gittrack.gitflow.notes import RunSummary

COMMIT_TAG = "mlflow.source.git.commit"


def resolve_revision(repository: TrackingRepository, rev: str) -> str:
    """The commit ``rev`` names.

    :raises InvalidInputError: ``rev`` cannot be a revision (empty, an option, a NUL).
    :raises NotFoundError: no commit of the repository has that name.
    """
    if not rev or rev.startswith("-") or "\0" in rev:
        raise InvalidInputError(f"revision {rev!r} is not a commit name (e.g. HEAD, main, a1b2c3d)")
    commit = repository.repo.rev_parse(rev)
    if commit is None:
        raise NotFoundError(f"revision {rev!r} does not name a commit in {repository.path}")
    return commit


def first_parent_commits(
    repository: TrackingRepository, head: str, base: str | None = None, limit: int | None = None
) -> list[str]:
    """The first-parent history of ``head`` down to, not including, ``base``; newest first.

    :param head: a revision (resolved here).
    :param base: a revision whose first-parent history is left out; None walks to the root.
    :param limit: at most this many commits.
    :raises InvalidInputError, NotFoundError: a revision is not a commit.
    """
    args = ["rev-list", "--first-parent"]
    if limit is not None:
        args.append(f"--max-count={int(limit)}")
    args.append(resolve_revision(repository, head))
    if base is not None:
        args.append(f"^{resolve_revision(repository, base)}")
    return repository.repo.git_text(*args, "--").split()


def runs_for_commit(repository: TrackingRepository, commit: str) -> list[RunSummary]:
    """The active runs made on ``commit`` (a full commit id), oldest start first, each with
    its latest metric values. Read from the saved query index without pandas when it is
    current (``gitflow.commit_runs.runs_of_commits``), so a command that probes a few
    commits stays fast."""
    from gittrack.gitflow.commit_runs import runs_of_commits

    if not commit or any(c not in "0123456789abcdef" for c in commit):
        raise InvalidInputError(f"commit {commit!r} is not a full commit id")
    runs = runs_of_commits(repository, [commit]).get(commit, [])
    return sorted(runs, key=lambda run: (run.start_time, run.run_id))


def nearest_commit_with_runs(
    repository: TrackingRepository, rev: str, limit: int = 100
) -> tuple[str, list[RunSummary]] | None:
    """The closest commit to ``rev`` back along its first parents (``rev`` itself first)
    that has runs, with those runs; None when none of the first ``limit`` commits has any."""
    for commit in first_parent_commits(repository, rev, limit=limit):
        runs = runs_for_commit(repository, commit)
        if runs:
            return commit, runs
    return None
