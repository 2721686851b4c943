"""Runs by code commit, for commands that compare or search commits (DESIGN §11).

A run belongs to the commit its ``mlflow.source.git.commit`` tag names (``source.commit``;
the post-commit hook moves both when it relabels a dirty run). The runs of a commit are read
from the query index, which holds that tag as a column and is current for every run on the
tracking branch, live ones included. ``gittrack log`` (``gitflow/commit_runs.py``) reads the
same column through its pandas-free fast path; this module returns whole ``Run`` objects
(params, source snapshot, parent), which comparing two commits needs.

History is walked along first parents only, as ``git log --first-parent`` does: on a branch
that merges pull requests, those are the commits the branch itself was at.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gittrack.entities import LifecycleStage, Run
from gittrack.errors import InvalidInputError
from gittrack.gitflow.commit_runs import COMMIT_COLUMN, resolve_commit

if TYPE_CHECKING:
    import pandas as pd

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


def commit_runs_frame(repository: TrackingRepository) -> pd.DataFrame:
    """The index rows of active runs that name a source commit (the query index's frame)."""
    from gittrack.query.index import run_index

    frame = run_index(repository).frame()
    if frame.empty or COMMIT_COLUMN not in frame.columns:
        return frame.iloc[0:0]
    keep = frame[COMMIT_COLUMN].notna() & (frame["lifecycle_stage"] == LifecycleStage.ACTIVE)
    return frame[keep]


def runs_for_commit(
    repository: TrackingRepository,
    commit: str,
    experiment_ids: Collection[str] | None = None,
    frame: pd.DataFrame | None = None,
) -> list[Run]:
    """The active runs whose source commit is ``commit``, oldest first.

    :param commit: a revision; it is resolved to its commit first.
    :param experiment_ids: only runs of these experiments (None: every experiment).
    :param frame: the rows of ``commit_runs_frame``, when the caller already holds them.
    :returns: ``Run`` objects, ordered by start time then run id; deleted runs are left out.
    :raises NotFoundError: ``commit`` names no commit.
    """
    from gittrack.query.search import runs_from_frame

    sha = resolve_commit(repository, commit)
    rows = commit_runs_frame(repository) if frame is None else frame
    if rows.empty:
        return []
    rows = rows[rows[COMMIT_COLUMN] == sha]
    if experiment_ids is not None:
        rows = rows[rows["experiment_id"].isin(list(experiment_ids))]
    rows = rows.sort_values(["start_time", "run_id"], kind="stable")
    return runs_from_frame(rows)


def nearest_commit_with_runs(
    repository: TrackingRepository,
    rev: str,
    experiment_ids: Collection[str] | None = None,
    limit: int = DEFAULT_WALK,
    frame: pd.DataFrame | None = None,
) -> NearestCommit | None:
    """The first commit, walking back from ``rev`` along first parents, that has active runs.

    :param rev: where the walk starts (that commit counts, at distance 0).
    :param experiment_ids: only runs of these experiments count (None: any experiment).
    :param limit: how many commits to look at before giving up.
    :param frame: the rows of ``commit_runs_frame``, when the caller already holds them.
    :returns: the commit and how far back it is, or None when none of the ``limit`` commits
        has runs.
    :raises NotFoundError: ``rev`` names no commit.
    """
    rows = commit_runs_frame(repository) if frame is None else frame
    if experiment_ids is not None and not rows.empty:
        rows = rows[rows["experiment_id"].isin(list(experiment_ids))]
    with_runs = set(rows[COMMIT_COLUMN].tolist()) if not rows.empty else set()
    commits = first_parent_commits(repository, rev, limit)
    for distance, commit in enumerate(commits):
        if commit in with_runs:
            return NearestCommit(commits[0], commit, distance)
    return None
