"""Runs by code commit (DESIGN §11) and ``gittrack log``: the first-parent history of the code
with each commit's runs and key metrics.

A run belongs to the commit in its ``mlflow.source.git.commit`` tag (``source.commit``; the
post-commit hook moves both together). Runs are read from the query index, which is current
for every run on the branch; the notes in ``refs/notes/gittrack`` are brought up to date for the
commits shown, so ``git log --notes=gittrack`` agrees with what ``gittrack log`` printed.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field

from gittrack.entities import LifecycleStage, RunStatus
from gittrack.errors import GittrackError, InvalidInputError, NotFoundError, warn_skipped
from gittrack.gitflow.notes import Notes, RunSummary, note_text
from gittrack.query.cache_file import IndexCache, SavedColumns
from gittrack.query.live_runs import LiveRuns
from gittrack.store.files import read_file, replace_file
from gittrack.tracking.repository import TrackingRepository
from gittrack.utils import clock

COMMIT_TAG = "mlflow.source.git.commit"
COMMIT_COLUMN = f"tags.{COMMIT_TAG}"
_UNFINISHED = (RunStatus.RUNNING, RunStatus.SCHEDULED)


@dataclass(frozen=True)
class CommitRuns:
    """One code commit of the log and the runs made on it."""

    commit: str
    subject: str
    runs: list[RunSummary] = field(default_factory=list)


def resolve_commit(repository: TrackingRepository, rev: str) -> str:
    """The commit a revision names, or NotFoundError naming the revision."""
    if not rev or rev.startswith("-") or "\0" in rev:
        raise InvalidInputError(f"revision {rev!r} is not a commit name (e.g. HEAD, main, a1b2c3d)")
    commit = repository.repo.rev_parse(rev)
    if commit is None:
        raise NotFoundError(f"revision {rev!r} does not name a commit in {repository.path}")
    return commit


def commit_filter(repository: TrackingRepository, rev: str, filter_string: str = "") -> str:
    """A search filter for the runs of the commit ``rev`` names, and-ed with ``filter_string``."""
    clause = f"tags.`{COMMIT_TAG}` = '{resolve_commit(repository, rev)}'"
    return f"{clause} and ({filter_string})" if filter_string.strip() else clause


def runs_of_commits(
    repository: TrackingRepository, commits: Collection[str]
) -> dict[str, list[RunSummary]]:
    """The active runs of each commit (commits without runs are left out), by run id.

    When the saved query index is current and no run is live, its few columns are read
    without pandas (``_saved_columns``); otherwise the index is refreshed as a DataFrame."""
    saved = _saved_columns(repository, commits)
    if saved is None:
        return _runs_from_frame(repository, commits)
    for message in saved.skipped.values():
        warn_skipped(message)
    return _runs_from_columns(saved.columns, commits)


def _saved_columns(
    repository: TrackingRepository, commits: Collection[str] | None = None
) -> SavedColumns | None:
    """The saved index's columns ``runs_of_commits`` needs (only the rows of ``commits``
    when given), or None when only the frame can say (the index is behind the branch, runs
    are live, or the cache is not there)."""
    tip = repository.branch.tip()
    live = LiveRuns(repository.staging)
    if tip is None or live.records() or live.skipped:
        return None
    cache = IndexCache(repository.repo.gittrack_dir / "cache", repository.branch.ref)
    where = (COMMIT_COLUMN, commits) if commits is not None else None
    saved = cache.read_columns(
        tip, lambda name: name in _COLUMNS or name.startswith("metrics."), where
    )
    if saved is None or not all(name in saved.columns for name in _COLUMNS):
        return None
    return saved


_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "lifecycle_stage",
    COMMIT_COLUMN,
    "_nan_metrics",
    "start_time",
    "parent_run_id",
)


def _runs_from_columns(
    columns: dict[str, list], commits: Collection[str]
) -> dict[str, list[RunSummary]]:
    wanted = set(commits)
    metric_columns = [
        (name[len("metrics.") :], values)
        for name, values in columns.items()
        if name.startswith("metrics.")
    ]
    found: dict[str, list[RunSummary]] = {}
    rows = zip(*(columns[name] for name in _COLUMNS))
    for row, record in enumerate(rows):
        run_id, experiment_id, run_name, status, lifecycle, commit, nan_raw, *more = record
        if commit not in wanted or lifecycle != LifecycleStage.ACTIVE:
            continue
        metrics = {}
        for name, values in metric_columns:
            value = values[row]
            if value is not None and value == value:  # None or NaN: not logged
                metrics[name] = float(value)
        info = (run_id, experiment_id, run_name, status, *more)
        _add_summary(found, commit, info, metrics, nan_raw)
    return _sorted_by_run_id(found)


def _runs_from_frame(
    repository: TrackingRepository, commits: Collection[str]
) -> dict[str, list[RunSummary]]:
    import numpy as np

    from gittrack.query.index import run_index

    frame = run_index(repository).frame()
    if frame.empty or COMMIT_COLUMN not in frame.columns:
        return {}
    rows = frame[
        frame[COMMIT_COLUMN].isin(list(commits))
        & (frame["lifecycle_stage"] == LifecycleStage.ACTIVE)
    ]
    metric_columns = [c for c in frame.columns if c.startswith("metrics.")]
    names = [column[len("metrics.") :] for column in metric_columns]
    values = rows[metric_columns].to_numpy(dtype=float, na_value=math.nan)
    present = ~np.isnan(values)
    columns = (
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        COMMIT_COLUMN,
        "_nan_metrics",
        "start_time",
        "parent_run_id",
    )
    found: dict[str, list[RunSummary]] = {}
    records = zip(*(rows[column].tolist() for column in columns))
    for row, (run_id, experiment_id, name, status, commit, nan_raw, *more) in enumerate(records):
        metrics = {names[i]: float(values[row, i]) for i in np.flatnonzero(present[row])}
        _add_summary(found, commit, (run_id, experiment_id, name, status, *more), metrics, nan_raw)
    return _sorted_by_run_id(found)


def _add_summary(
    found: dict[str, list[RunSummary]],
    commit: str,
    info: tuple[object, ...],
    metrics: dict[str, float],
    nan_raw: object,
) -> None:
    """Add one run (``info``: id, experiment, name, status, start time in ms, parent run id)
    to its commit's list."""
    for key in _json_list(nan_raw):  # a NaN the run logged, not a missing metric
        metrics[key] = math.nan
    run_id, experiment_id, run_name, status, start, parent = info
    summary = RunSummary(
        str(run_id),
        str(experiment_id),
        str(run_name),
        str(status),
        metrics,
        _milliseconds(start),
        parent if isinstance(parent, str) else None,
    )
    found.setdefault(commit, []).append(summary)


def _milliseconds(value: object) -> int:
    """A start time as the index holds it (milliseconds, or a pandas/datetime time) in ms."""
    if hasattr(value, "timestamp"):
        return clock.to_ms(value)  # type: ignore[arg-type]
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _sorted_by_run_id(found: dict[str, list[RunSummary]]) -> dict[str, list[RunSummary]]:
    for summaries in found.values():
        summaries.sort(key=lambda summary: summary.run_id)
    return found


def _json_list(raw: object) -> list[str]:
    if not isinstance(raw, str):
        return []
    return list(json.loads(raw))


def first_parent_log(
    repository: TrackingRepository, rev: str, limit: int, refresh: bool = True
) -> list[CommitRuns]:
    """``git log --first-parent -n limit rev`` with each commit's runs; notes refreshed
    unless ``refresh`` is False (a read-only reader such as the web UI writes no ref)."""
    if limit < 1:
        raise InvalidInputError(f"-n {limit}: the number of commits must be at least 1")
    start = resolve_commit(repository, rev)
    out = repository.repo.git(
        "log", "--first-parent", f"--max-count={limit}", "--format=%H%x00%s", start, "--"
    ).stdout.decode(errors="replace")
    entries = [line.split("\0", 1) for line in out.splitlines() if "\0" in line]
    commits = [commit for commit, _ in entries]
    tip = repository.branch.tip()  # before the runs are read: a later run voids the stamp
    live = bool(LiveRuns(repository.staging).records())
    runs = runs_of_commits(repository, commits)
    done = set() if live else _notes_done(repository, tip)
    stale = [commit for commit in commits if commit not in done]
    if stale and refresh:
        with contextlib.suppress(GittrackError):  # notes are derived: a busy ref is left alone
            refresh_notes(repository, stale, runs, attempts=3)
            if not live:
                _stamp_notes(repository, tip, done | set(stale))
    return [CommitRuns(commit, subject, runs.get(commit, [])) for commit, subject in entries]


_STAMP_COMMITS = 10_000


def _stamp_path(repository: TrackingRepository) -> str:
    return str(repository.repo.gittrack_dir / "cache" / "notes-stamp.json")


def _notes_done(repository: TrackingRepository, tip: str | None) -> set[str]:
    """The commits whose notes the last ``gittrack log`` made agree with the tracking tip
    ``tip`` and the notes as they are now; empty when either moved since (a run committed,
    deleted or relabelled, notes pulled or edited). Those notes say what a refresh would
    write, so only the other commits are refreshed."""
    try:
        stamp = json.loads(read_file(_stamp_path(repository)) or b"{}")
        current = (
            stamp.get("ref") == repository.branch.ref
            and stamp.get("tip") == tip
            and stamp.get("notes") == Notes(repository.repo).tip()
        )
        commits = stamp.get("commits") if current else []
        return {commit for commit in commits if isinstance(commit, str)}
    except (OSError, ValueError, AttributeError, TypeError):  # derived data: start again
        return set()


def _stamp_notes(repository: TrackingRepository, tip: str | None, commits: set[str]) -> None:
    """Record that the notes of ``commits`` agree with ``tip`` and the current notes."""
    if len(commits) > _STAMP_COMMITS:
        commits = set()
    stamp = {
        "ref": repository.branch.ref,
        "tip": tip,
        "notes": Notes(repository.repo).tip(),
        "commits": sorted(commits),
    }
    with contextlib.suppress(OSError):  # derived data: without it, the next log refreshes
        replace_file(_stamp_path(repository), json.dumps(stamp).encode())


def refresh_notes(
    repository: TrackingRepository,
    commits: Collection[str],
    runs: dict[str, list[RunSummary]],
    attempts: int = 50,
) -> bool:
    """Make the notes of ``commits`` list their finished runs; one notes commit when any
    changed. A commit left without runs (all deleted) loses its note. Live runs wait until
    they end: a note saying RUNNING would outlive the run in other clones' merged notes."""
    texts = {
        commit: note_text(r for r in runs.get(commit, ()) if r.status not in _UNFINISHED)
        for commit in commits
    }
    return Notes(repository.repo).write(texts, attempts=attempts) if texts else False


def refresh_notes_for_push(
    repository: TrackingRepository,
    updates: list[tuple[str, str]],
    remote: str,
    limit: int = 1000,
) -> bool:
    """Bring up to date the notes of the commits a push sends (at most ``limit``).

    ``updates`` are (local commit, remote commit) pairs as git gives them to ``pre-push``;
    a null remote commit (a new branch) stands for what the remote's branches already have.
    Runs made on a commit after it was committed (the usual clean run) get their note here,
    so a plain ``git push`` shares them."""
    null = repository.repo.null_sha
    tips = [local for local, _ in updates if local != null]
    if not tips:
        return False
    known = [theirs for _, theirs in updates if theirs != null]
    args = ["rev-list", f"--max-count={limit}", *tips, "--not", *known]
    if len(known) < len(tips):  # a branch new on the remote: skip what its branches have
        args += [f"--exclude={remote}/{repository.branch_name}", f"--remotes={remote}"]
    commits = repository.repo.git_text(*args, "--").split()
    if not commits:
        return False
    return refresh_notes(repository, commits, runs_of_commits(repository, commits))
