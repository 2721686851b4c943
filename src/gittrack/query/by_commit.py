"""Runs by code commit, for commands that compare or search commits (DESIGN §11).

A run belongs to the commit its ``mlflow.source.git.commit`` tag names (``source.commit``;
the post-commit hook moves both when it relabels a dirty run). The runs of commits are read by
``gitflow.commit_runs.runs_of_commits``, the one reader of that column of the query index
(``gittrack log`` uses it too): the saved index's columns through pyarrow when it is current,
so a lookup does not pay for importing pandas, else the refreshed index (live runs included).
Each run comes as a ``RunSummary`` (id, experiment, name, status, latest metrics, start time,
parent run); ``get_run`` gives the whole run of the few a caller keeps.

History is walked along first parents only, as ``git log --first-parent`` does: on a branch
that merges pull requests, those are the commits the branch itself was at.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gittrack.errors import InvalidInputError
from gittrack.gitflow.commit_runs import resolve_commit, runs_of_commits
from gittrack.gitflow.notes import RunSummary

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

DEFAULT_WALK = 1000


@dataclass(frozen=True)
class NearestCommit:
    """The closest first-parent ancestor of ``start`` (itself included) that has runs;
    ``distance`` counts the commits walked back (0: ``start`` itself)."""

    start: str
    commit: str
    distance: int


def first_parent_commits(
    repository: TrackingRepository, rev: str, limit: int | None = None
) -> list[str]:
    """The commits of ``git log --first-parent rev``, newest first (``rev`` itself first).

    :param rev: any revision git understands (``HEAD``, ``main``, a hash).
    :param limit: at most this many commits (None: the whole history).
    :returns: full commit hashes.
    :raises InvalidInputError: ``rev`` is not a revision name or ``limit`` is below 1.
    :raises NotFoundError: ``rev`` names no commit.
    """
    if limit is not None and limit < 1:
        raise InvalidInputError(f"the number of commits must be at least 1, not {limit}")
    start = resolve_commit(repository, rev)
    count = [f"--max-count={limit}"] if limit is not None else []
    return repository.repo.git_text("rev-list", "--first-parent", *count, start, "--").split()


def runs_for_commits(
    repository: TrackingRepository,
    commits: Collection[str],
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> dict[str, list[RunSummary]]:
    """The active runs of each of ``commits`` (full hashes), oldest first.

    :param experiment_ids: only runs of these experiments (None: every experiment).
    :param keep: only the runs it accepts (e.g. finished top-level runs).
    :returns: commit -> its runs ordered by start time, then run id; commits without such
        runs are left out. Deleted runs never count.
    """
    found = {}
    for commit, runs in runs_of_commits(repository, commits).items():
        kept = [
            run
            for run in runs
            if (experiment_ids is None or run.experiment_id in experiment_ids)
            and (keep is None or keep(run))
        ]
        if kept:
            found[commit] = sorted(kept, key=lambda run: (run.start_time, run.run_id))
    return found


def runs_for_commit(
    repository: TrackingRepository,
    rev: str,
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> list[RunSummary]:
    """The active runs whose source commit is the one ``rev`` names, oldest first.

    :param rev: a revision; it is resolved to its commit first.
    :param experiment_ids: only runs of these experiments (None: every experiment).
    :param keep: only the runs it accepts.
    :raises NotFoundError: ``rev`` names no commit.
    """
    commit = resolve_commit(repository, rev)
    return runs_for_commits(repository, [commit], experiment_ids, keep).get(commit, [])


def nearest_commit_with_runs(
    repository: TrackingRepository,
    rev: str,
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
    limit: int = DEFAULT_WALK,
) -> NearestCommit | None:
    """The first commit, walking back from ``rev`` along first parents, that has active runs.

    :param rev: where the walk starts (that commit counts, at distance 0).
    :param experiment_ids: only runs of these experiments count (None: any experiment).
    :param keep: only the runs it accepts count.
    :param limit: how many commits to look at before giving up.
    :returns: the commit and how far back it is, or None when none of the ``limit`` commits
        has runs.
    :raises NotFoundError: ``rev`` names no commit.
    """
    commits = first_parent_commits(repository, rev, limit)
    with_runs = runs_for_commits(repository, commits, experiment_ids, keep)
    for distance, commit in enumerate(commits):
        if commit in with_runs:
            return NearestCommit(commits[0], commit, distance)
    return None
