"""Runs by code commit, for the commands that walk or compare the code's history
(``diff``, ``bisect``; DESIGN §11, §13).

A run belongs to the commit its ``mlflow.source.git.commit`` tag names (``source.commit``;
the post-commit hook moves both when it relabels a dirty run). The runs of commits are read by
``gitflow.commit_runs.runs_of_commits``, the one reader of that column of the query index
(``gittrack log`` uses it too): the saved index's rows of those commits through pyarrow when it
is current, so a lookup does not pay for importing pandas, else the refreshed index (live runs
included). Each run comes as a ``RunSummary`` (id, experiment, name, status, latest metrics,
start time, parent run); ``get_run`` gives the whole run of the few a caller keeps. These
lookups never write.

History is walked along first parents only, as ``git log --first-parent`` does: on a branch
that merges pull requests, those are the commits the branch itself was at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from gittrack.errors import InvalidInputError
from gittrack.gitflow.commit_runs import resolve_commit, runs_of_commits
from gittrack.gitflow.notes import RunSummary
from gittrack.tracking.repository import TrackingRepository

DEFAULT_WALK = 1000
FULL_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")

resolve_revision = resolve_commit  # the commit a revision names (one owner: commit_runs)


def first_parent_commits(
    repository: TrackingRepository, head: str, base: str | None = None, limit: int | None = None
) -> list[str]:
    """The first-parent history of ``head`` down to, not including, ``base``; newest first.

    :param head: a revision (resolved here); it is the first commit returned.
    :param base: a revision whose first-parent history is left out; None walks to the root.
    :param limit: at most this many commits.
    :returns: full commit hashes.
    :raises InvalidInputError: a revision is not a revision name, or ``limit`` is below 1.
    :raises NotFoundError: a revision names no commit.
    """
    if limit is not None and limit < 1:
        raise InvalidInputError(f"the number of commits must be at least 1, not {limit}")
    args = ["rev-list", "--first-parent"]
    if limit is not None:
        args.append(f"--max-count={int(limit)}")
    args.append(resolve_commit(repository, head))
    if base is not None:
        args.append(f"^{resolve_commit(repository, base)}")
    return repository.repo.git_text(*args, "--").split()


def runs_for_commits(
    repository: TrackingRepository,
    commits: Collection[str],
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> dict[str, list[RunSummary]]:
    """The active runs of each of ``commits`` (full hashes), oldest start first.

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
    commit: str,
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> list[RunSummary]:
    """The active runs made on ``commit``, oldest start first, each with its latest metrics.

    :param commit: a full commit id (used as it is), or a revision (resolved first).
    :param experiment_ids: only runs of these experiments (None: every experiment).
    :param keep: only the runs it accepts.
    :raises InvalidInputError, NotFoundError: a revision that names no commit.
    """
    if not FULL_ID.fullmatch(commit or ""):
        commit = resolve_commit(repository, commit)
    return runs_for_commits(repository, [commit], experiment_ids, keep).get(commit, [])


def nearest_commit_with_runs(
    repository: TrackingRepository,
    rev: str,
    limit: int = DEFAULT_WALK,
    experiment_ids: Collection[str] | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> tuple[str, list[RunSummary]] | None:
    """The closest commit to ``rev`` back along its first parents (``rev`` itself first)
    that has runs, with those runs (the index is read once for all the commits walked).

    :param limit: how many commits to look at before giving up.
    :param experiment_ids: only runs of these experiments count (None: any experiment).
    :param keep: only the runs it accepts count.
    :returns: (commit, its runs oldest first), or None when none of the ``limit`` commits
        has runs.
    :raises NotFoundError: ``rev`` names no commit.
    """
    commits = first_parent_commits(repository, rev, limit=limit)
    with_runs = runs_for_commits(repository, commits, experiment_ids, keep)
    for commit in commits:
        if commit in with_runs:
            return commit, with_runs[commit]
    return None
