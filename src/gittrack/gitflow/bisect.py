"""``gittrack bisect``: the first commit where a metric crossed a threshold (DESIGN §13).

``git bisect`` for a metric, from runs already logged. The candidates are the first-parent
commits after GOOD up to BAD (``git rev-list --first-parent GOOD..BAD``), oldest first. A
commit's value is the metric of its runs (``select``: the latest run that logged it, or the
min, max or mean over them). A value is *bad* when it lies beyond the threshold in the
direction of the regression: above it for ``up`` (a loss that rose), below it for ``down``
(an accuracy that fell).

- The threshold defaults to the midpoint of GOOD's and BAD's values, and the direction to the
  way the metric moved from GOOD to BAD; given either, the endpoints are checked against it.
  Given both, the endpoints need no runs: their labels are trusted, as ``git bisect`` does.
- Binary search keeps "last known good" and "first known bad" and probes the middle commit;
  ``n`` candidates take at most ``ceil(log2(n))`` steps when every commit has runs.
- A probed commit without a value is skipped for its nearest neighbour inside the interval
  (as ``git bisect skip``). When no commit inside is left with a value, the answer is "one of
  these": BAD's side of the interval and the commits that lack runs, listed.
- With a command (``--run CMD``), a commit without a value is first filled: CMD runs in a
  temporary linked worktree at that commit (removed afterwards), logs its runs there, and
  the commit is read again.

Runs are looked up only through ``by_commit`` (first-parent commits, runs of a commit).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gittrack.errors import InvalidInputError, NotFoundError
from gittrack.gitflow.by_commit import first_parent_commits, resolve_revision, runs_for_commit
from gittrack.gitflow.checkout import remove_worktree
from gittrack.gitflow.reproduce import run_user_command
from gittrack.tracking import validation
from gittrack.tracking.repository import TrackingRepository

DIRECTIONS = ("up", "down")
SELECTIONS = ("latest", "min", "max", "mean")


@dataclass(frozen=True)
class Step:
    """One commit looked at: its value (None: no runs with the metric) and the verdict
    (``good``, ``bad``, or ``skipped`` for a commit without a value)."""

    commit: str
    value: float | None
    verdict: str
    filled: bool = False  # the value comes from runs the command just logged


@dataclass
class BisectResult:
    """What the bisection found.

    ``first_bad`` is the answer when ``decided``; otherwise ``undecided`` lists, oldest
    first, the commits the first bad one is among (``missing``: those of them without runs
    that would decide, the last one being the first known bad commit)."""

    metric: str
    good: str
    bad: str
    threshold: float
    direction: str
    candidates: int
    steps: list[Step] = field(default_factory=list)
    first_bad: str | None = None
    last_good: str | None = None
    undecided: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)  # of the commits in the answer

    @property
    def decided(self) -> bool:
        """Whether the first bad commit was found."""
        return self.first_bad is not None

    @property
    def step_count(self) -> int:
        """The probes that decided something (skipped commits are not counted)."""
        return sum(1 for step in self.steps if step.verdict != "skipped")


def check_options(metric: str, threshold: float | None, direction: str | None, select: str) -> None:
    """Refuse bad options before anything is read.

    :raises InvalidInputError: names the option and what is allowed.
    """
    validation.check_key(metric, "metric")
    if direction is not None and direction not in DIRECTIONS:
        raise InvalidInputError(f"--direction {direction!r}: use up or down")
    if select not in SELECTIONS:
        raise InvalidInputError(f"--select {select!r}: use one of {', '.join(SELECTIONS)}")
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidInputError(f"--threshold {threshold!r} must be a finite number")


class _Values:
    """Each commit's metric value, read once (through ``runs_for_commit``)."""

    def __init__(
        self,
        repository: TrackingRepository,
        metric: str,
        select: str,
        experiment_ids: Sequence[str] | None,
    ) -> None:
        self.repository = repository
        self.metric = metric
        self.select = select
        self.experiment_ids = set(experiment_ids) if experiment_ids else None
        self._known: dict[str, float | None] = {}

    def get(self, commit: str) -> float | None:
        if commit not in self._known:
            self._known[commit] = self._read(commit)
        return self._known[commit]

    def forget(self, commit: str) -> None:
        self._known.pop(commit, None)

    def _read(self, commit: str) -> float | None:
        values = [
            run.metrics[self.metric]
            for run in runs_for_commit(self.repository, commit)
            if self.metric in run.metrics
            and (self.experiment_ids is None or run.experiment_id in self.experiment_ids)
        ]
        values = [value for value in values if not math.isnan(value)]
        if not values:
            return None
        if self.select == "latest":
            return values[-1]  # runs come oldest start first
        if self.select == "min":
            return min(values)
        if self.select == "max":
            return max(values)
        return sum(values) / len(values)


Filler = Callable[[str], None]


def bisect_metric(
    repository: TrackingRepository,
    metric: str,
    good: str,
    bad: str,
    *,
    threshold: float | None = None,
    direction: str | None = None,
    select: str = "latest",
    experiment_ids: Sequence[str] | None = None,
    fill: Filler | None = None,
) -> BisectResult:
    """Find the first commit after ``good`` up to ``bad`` whose metric is bad.

    :param fill: called with a commit that has no value, to log runs on it (``run_in_worktree``
        wrapped); None reads only the runs already logged.
    :raises InvalidInputError: bad options, ``good`` not on ``bad``'s first-parent history, or
        endpoint values that contradict the threshold and direction.
    :raises NotFoundError: a revision names no commit.
    """
    check_options(metric, threshold, direction, select)
    good_commit = resolve_revision(repository, good)
    bad_commit = resolve_revision(repository, bad)
    candidates = _candidates(repository, good_commit, bad_commit, good, bad)
    values = _Values(repository, metric, select, experiment_ids)

    def value_of(commit: str) -> tuple[float | None, bool]:
        value = values.get(commit)
        if value is None and fill is not None:
            fill(commit)
            values.forget(commit)
            return values.get(commit), True
        return value, False

    threshold, direction = _rule(metric, good_commit, bad_commit, value_of, threshold, direction)
    result = BisectResult(metric, good_commit, bad_commit, threshold, direction, len(candidates))
    for commit in (good_commit, bad_commit):
        if values.get(commit) is not None:
            result.values[commit] = values.get(commit)  # type: ignore[assignment]
    _search(result, candidates, value_of)
    answer = [result.first_bad] if result.first_bad else result.undecided
    result.subjects = _subjects(repository, answer)
    return result


def _subjects(repository: TrackingRepository, commits: list[str]) -> dict[str, str]:
    """Each commit's subject line, from one ``git log --no-walk``."""
    if not commits:
        return {}
    out = repository.repo.git_text("log", "--no-walk=unsorted", "--format=%H %s", *commits, "--")
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())


def _candidates(
    repository: TrackingRepository, good: str, bad: str, good_rev: str, bad_rev: str
) -> list[str]:
    """The first-parent commits after ``good`` up to ``bad``, oldest first."""
    if good == bad:
        raise InvalidInputError(f"--good {good_rev!r} and --bad {bad_rev!r} are the same commit")
    commits = first_parent_commits(repository, bad, base=good)
    parents = repository.repo.commit_tree_info(commits[-1])[1] if commits else []
    if not commits or parents[:1] != [good]:
        raise InvalidInputError(
            f"--good {good_rev!r} is not on the first-parent history of --bad {bad_rev!r}: "
            "give an older good commit on the same line of history"
        )
    commits.reverse()
    return commits


def _rule(
    metric: str,
    good: str,
    bad: str,
    value_of: Callable[[str], tuple[float | None, bool]],
    threshold: float | None,
    direction: str | None,
) -> tuple[float, str]:
    """The threshold and direction, from the options and the endpoints' values."""
    if threshold is not None and direction is not None:
        return threshold, direction  # the endpoints' labels are trusted
    good_value, _ = value_of(good)
    bad_value, _ = value_of(bad)
    for label, commit, value in (("good", good, good_value), ("bad", bad, bad_value)):
        if value is None:
            raise NotFoundError(
                f"--{label} commit {commit[:12]} has no runs with metric {metric!r}: log a run "
                "there (or use --run CMD), or give both --threshold and --direction"
            )
    assert good_value is not None and bad_value is not None
    if direction is None:
        if good_value == bad_value:
            raise InvalidInputError(
                f"{metric} is {good_value:.6g} at both --good and --bad: nothing crossed"
            )
        direction = "up" if bad_value > good_value else "down"
    if threshold is None:
        threshold = (good_value + bad_value) / 2
    if _is_bad(good_value, threshold, direction) or not _is_bad(bad_value, threshold, direction):
        side = "above" if direction == "up" else "below"
        raise InvalidInputError(
            f"{metric} is {good_value:.6g} at --good and {bad_value:.6g} at --bad: a bad value "
            f"is {side} {threshold:.6g} (direction {direction}), so the good commit must not be "
            "and the bad one must be"
        )
    return threshold, direction


def _is_bad(value: float, threshold: float, direction: str) -> bool:
    return value > threshold if direction == "up" else value < threshold


def _search(
    result: BisectResult,
    candidates: list[str],
    value_of: Callable[[str], tuple[float | None, bool]],
) -> None:
    """Binary search: index -1 is the good commit, candidates[-1] the bad one."""
    low, high = -1, len(candidates) - 1
    skipped: set[int] = set()
    while high - low > 1:
        probe = _next_probe(low, high, skipped)
        if probe is None:
            inside = candidates[low + 1 : high]
            result.undecided = [*inside, candidates[high]]
            result.missing = inside
            result.last_good = result.good if low < 0 else candidates[low]
            return
        commit = candidates[probe]
        value, filled = value_of(commit)
        if value is None:
            skipped.add(probe)
            result.steps.append(Step(commit, None, "skipped", filled))
            continue
        result.values[commit] = value
        if _is_bad(value, result.threshold, result.direction):
            high = probe
            result.steps.append(Step(commit, value, "bad", filled))
        else:
            low = probe
            result.steps.append(Step(commit, value, "good", filled))
    result.first_bad = candidates[high]
    result.last_good = result.good if low < 0 else candidates[low]


def _next_probe(low: int, high: int, skipped: set[int]) -> int | None:
    """The middle of (low, high), or its nearest neighbour not skipped yet."""
    middle = (low + high) // 2
    for offset in range(high - low):
        for index in (middle + offset, middle - offset):
            if low < index < high and index not in skipped:
                return index
    return None


def run_in_worktree(repository: TrackingRepository, commit: str, command: Sequence[str]) -> int:
    """Run ``command`` in a temporary linked worktree at ``commit`` (removed afterwards),
    with the tracking repository in ``GITTRACK_TRACKING_URI``; returns its exit status
    (127 when it could not be started); its output goes to stderr. The runs it logs record
    ``commit`` as their source, as any run made there does."""
    scratch = Path(tempfile.mkdtemp(prefix="gittrack-bisect-"))
    path = scratch / commit[:12]
    try:
        repository.repo.git("worktree", "add", "--detach", "--quiet", str(path), commit)
        try:
            env = {**os.environ, "GITTRACK_TRACKING_URI": str(repository.path)}
            for name in ("MLFLOW_RUN_ID", "GITTRACK_RUN_ID"):
                env.pop(name, None)
            return run_user_command(command, path, env)
        finally:
            remove_worktree(repository, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
