"""Comparing the runs of two code commits (DESIGN §11): what ``gittrack diff`` shows.

Each side of the diff is a code commit; the runs whose source commit it is stand for it
(``by_commit``). Only finished, top-level runs stand for a commit: a running run's metrics are
not final, a failed one's are partial, and the child runs of a parameter search are parts of
their parent (``include_nested`` lets them stand too). When an experiment has several such runs
on one commit, ``select`` picks one: the latest started (``latest``), or the best by a metric
(``best:metrics.X``, in the direction of the metric's goal). With ``nearest``, a side whose
commit has no runs is replaced by its closest first-parent ancestor that has some, and the
result says how far back that is.

Per experiment, the two runs' metrics (latest values) and params are compared, the metrics
are judged against the budgets (``budgets``), and the code the runs ran on (the snapshot of a
dirty run, else its commit) is compared with ``git diff --stat``, which reads objects only: the
user's working tree, index and HEAD are never involved.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gittrack.entities import Run, RunStatus
from gittrack.errors import GittrackError, InvalidInputError, NotFoundError, warn_skipped
from gittrack.gitflow.by_commit import (
    DEFAULT_WALK,
    FULL_ID,
    first_parent_commits,
    nearest_commit_with_runs,
    runs_for_commits,
)
from gittrack.gitflow.commit_runs import COMMIT_COLUMN, resolve_commit
from gittrack.gitflow.notes import RunSummary
from gittrack.query.budgets import GOALS, BrokenRule, Budget, judge

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

DEFAULT_UPSTREAMS = ("origin/HEAD", "main")


@dataclass(frozen=True)
class Selector:
    """Which run stands for a commit: the latest, or the best by ``metric`` toward ``goal``."""

    metric: str | None = None
    goal: str | None = None

    def pick(self, runs: Sequence[RunSummary]) -> RunSummary:
        """The chosen run of ``runs`` (never empty)."""
        if self.metric is not None:
            scored = [run for run in runs if not math.isnan(run.metrics.get(self.metric, math.nan))]
            if scored:
                sign = 1 if self.goal == "maximize" else -1
                return max(scored, key=lambda run: sign * run.metrics[self.metric])
        return max(runs, key=lambda run: (run.start_time, run.run_id))


@dataclass(frozen=True)
class Side:
    """One side of the diff: the revision asked for, its commit, and the commit whose runs
    stand for it (``commit`` itself, or an ancestor ``distance`` commits back)."""

    rev: str
    commit: str
    runs_commit: str
    distance: int = 0


@dataclass(frozen=True)
class MetricChange:
    """One metric of one experiment: values on both sides (None: not logged there)."""

    metric: str
    base: float | None
    head: float | None
    goal: str | None = None
    broken: tuple[BrokenRule, ...] = ()

    @property
    def change(self) -> float | None:
        """HEAD's value less BASE's, when both sides logged it."""
        if self.base is None or self.head is None:
            return None
        return self.head - self.base

    @property
    def percent(self) -> float | None:
        """The change in percent of BASE's value (None when BASE's value is 0 or missing)."""
        change = self.change
        if change is None or self.base == 0 or math.isnan(change):
            return None
        return change / abs(self.base) * 100

    @property
    def direction(self) -> str:
        """``up``, ``down``, ``same``, ``added`` (HEAD only), ``removed`` (BASE only), or
        ``changed`` (a NaN on one side)."""
        if self.base is None:
            return "added"
        if self.head is None:
            return "removed"
        if self.base == self.head or (math.isnan(self.base) and math.isnan(self.head)):
            return "same"
        change = self.head - self.base
        if math.isnan(change):
            return "changed"
        return "up" if change > 0 else "down"

    @property
    def verdict(self) -> str | None:
        """``better`` or ``worse`` when the metric has a goal and went up or down."""
        if self.goal is None or self.direction not in ("up", "down"):
            return None
        return "better" if (self.direction == "up") == (self.goal == "maximize") else "worse"


@dataclass(frozen=True)
class ParamChange:
    """One param whose value differs (None: not logged on that side)."""

    param: str
    base: str | None
    head: str | None


@dataclass(frozen=True)
class ExperimentDiff:
    """The comparison of one experiment's runs; a side without a run is None."""

    experiment_id: str
    experiment_name: str
    base_run: Run | None
    head_run: Run | None
    metrics: list[MetricChange]
    params: list[ParamChange]
    diffstat: str

    @property
    def broken(self) -> list[BrokenRule]:
        """Every budget rule this experiment's HEAD run breaks."""
        return [rule for change in self.metrics for rule in change.broken]


@dataclass(frozen=True)
class CommitDiff:
    """What ``gittrack diff`` reports: the two sides and one comparison per experiment."""

    base: Side
    head: Side
    experiments: list[ExperimentDiff] = field(default_factory=list)

    @property
    def broken(self) -> list[tuple[ExperimentDiff, BrokenRule]]:
        """Every broken budget rule, with its experiment."""
        return [(diff, rule) for diff in self.experiments for rule in diff.broken]


@dataclass(frozen=True)
class DiffOptions:
    """How to compare: see ``diff_commits``."""

    experiments: Sequence[str] = ()
    select: str = "latest"
    goal: str | None = None
    metrics: Sequence[str] = ()
    show_all: bool = False
    nearest: bool = False
    include_nested: bool = False


def parse_select(text: str, goal: str | None, budgets: Mapping[str, Budget]) -> Selector:
    """``latest`` or ``best:metrics.X`` as a ``Selector``; the goal of X is ``goal``, else
    its budget's.

    :raises InvalidInputError: another form, or ``best:`` with no goal known for X.
    """
    if goal is not None and goal not in GOALS:
        raise InvalidInputError(f"--goal {goal!r} is not one of {', '.join(GOALS)}")
    if text == "latest":
        return Selector()
    prefix = "best:metrics."
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise InvalidInputError(
            f"--select {text!r} is not 'latest' or 'best:metrics.<key>' (e.g. best:metrics.acc)"
        )
    metric = text[len(prefix) :]
    budget = budgets.get(metric)
    goal = goal or (budget.goal if budget else None)
    if goal is None:
        raise InvalidInputError(
            f"--select {text!r} needs a direction: --goal maximize|minimize, or a budget "
            f"with a goal for {metric!r}"
        )
    return Selector(metric, goal)


def default_base(repository: TrackingRepository) -> tuple[str, str]:
    """The merge-base of ``origin/HEAD`` (else ``main``) and HEAD, as ``git diff A...B``:
    its label (``main...HEAD``) and its commit.

    :raises NotFoundError: neither exists, or it shares no history with HEAD.
    """
    head = resolve_commit(repository, "HEAD")
    for upstream in DEFAULT_UPSTREAMS:
        tip = repository.repo.rev_parse(upstream)
        if tip is None:
            continue
        proc = repository.repo.git("merge-base", tip, head, check=False)
        if proc.returncode == 0:
            return f"{upstream}...HEAD", proc.stdout.decode().strip()
        raise NotFoundError(f"{upstream} and HEAD have no common ancestor: name BASE")
    raise NotFoundError(
        "no BASE given and neither origin/HEAD nor main exists: name it "
        "(e.g. gittrack diff origin/main HEAD)"
    )


def experiment_ids(repository: TrackingRepository, names: Sequence[str]) -> list[str] | None:
    """The ids of the experiments ``names`` names (by name, else by id); None for all.

    :raises NotFoundError: one names no experiment.
    """
    if not names:
        return None
    ids = []
    for name in names:
        experiment = repository.experiments.find_by_name(name)
        if experiment is None:
            try:
                experiment = repository.experiments.get(name)
            except NotFoundError:
                raise NotFoundError(f"--experiment {name!r} names no experiment") from None
        ids.append(experiment.experiment_id)
    return ids


def _standing(include_nested: bool) -> Callable[[RunSummary], bool]:
    """Which runs may stand for a commit: finished ones, top-level unless asked."""

    def keep(run: RunSummary) -> bool:
        return run.status == RunStatus.FINISHED and (include_nested or not run.parent_run_id)

    return keep


def _side(
    repository: TrackingRepository,
    rev: str,
    commit: str,
    found: dict[str, list[RunSummary]],
    ids: list[str] | None,
    keep: Callable[[RunSummary], bool],
    nearest: bool,
) -> tuple[Side, list[RunSummary]]:
    """The side ``rev`` names and the runs that may stand for it."""
    if commit in found:
        return Side(rev, commit, commit), found[commit]
    if nearest:
        near = nearest_commit_with_runs(repository, commit, DEFAULT_WALK, ids, keep)
        if near is not None:
            distance = len(first_parent_commits(repository, commit, base=near[0]))
            return Side(rev, commit, near[0], distance), near[1]
        raise NotFoundError(
            f"{rev} ({commit[:7]}) and its {DEFAULT_WALK - 1} first-parent ancestors have no "
            "finished runs"
        )
    raise NotFoundError(
        f"{rev} ({commit[:7]}) has no finished runs{_no_source_hint(repository)}; "
        "--nearest uses its closest first-parent ancestor that has some"
    )


def _no_source_hint(repository: TrackingRepository) -> str:
    """Why runs may be missing: some record no source commit (logged outside git)."""
    from gittrack.query.index import run_index

    frame = run_index(repository).frame()
    if frame.empty:
        return " (the repository has no runs)"
    missing = int(frame[COMMIT_COLUMN].isna().sum()) if COMMIT_COLUMN in frame else len(frame)
    return f" ({missing} runs record no source commit)" if missing else ""


def diff_commits(
    repository: TrackingRepository,
    base: str | None,
    head: str,
    options: DiffOptions,
    budgets: Mapping[str, Budget],
) -> CommitDiff:
    """Compare the runs of the commits ``base`` and ``head`` names, per experiment.

    :param base: a revision, or None for the merge-base of origin/HEAD (else main) and HEAD.
    :param head: a revision.
    :param options: experiments to compare (names or ids; none: all), ``select`` (``latest``
        or ``best:metrics.X``), ``goal`` (X's direction), metric globs (none: all),
        ``show_all`` (keep unchanged metrics and params), ``nearest`` and ``include_nested``.
    :param budgets: metric -> budget; judged on every experiment's metrics.
    :returns: the two sides and one ``ExperimentDiff`` per experiment with runs on either side.
    :raises InvalidInputError: a bad option. :raises NotFoundError: an unknown revision or
        experiment, or a side without runs (and, with ``nearest``, no ancestor with runs).
    """
    selector = parse_select(options.select, options.goal, budgets)
    ids = experiment_ids(repository, options.experiments)
    if base is None:
        base, base_commit = default_base(repository)
    else:
        base_commit = resolve_commit(repository, base)
    revs = [(base, base_commit), (head, resolve_commit(repository, head))]
    keep = _standing(options.include_nested)
    found = runs_for_commits(repository, [commit for _, commit in revs], ids, keep)
    sides = [_side(repository, *rev, found, ids, keep, options.nearest) for rev in revs]
    picked = [_pick(repository, runs, selector) for _, runs in sides]
    diffs = [
        _experiment_diff(repository, exp_id, picked[0].get(exp_id), picked[1].get(exp_id))
        for exp_id in sorted(picked[0].keys() | picked[1].keys())
    ]
    diffs = [_filtered(diff, options, budgets) for diff in diffs]
    diffs.sort(key=lambda diff: (diff.experiment_name, diff.experiment_id))
    return CommitDiff(sides[0][0], sides[1][0], diffs)


def _pick(
    repository: TrackingRepository, runs: list[RunSummary], selector: Selector
) -> dict[str, Run]:
    """experiment id -> the whole run that stands for the commit in it."""
    by_experiment: dict[str, list[RunSummary]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment_id, []).append(run)
    return {
        exp_id: repository.runs.get(selector.pick(candidates).run_id)
        for exp_id, candidates in by_experiment.items()
    }


def _experiment_diff(
    repository: TrackingRepository, experiment_id: str, base: Run | None, head: Run | None
) -> ExperimentDiff:
    try:
        name = repository.experiments.get(experiment_id).name
    except GittrackError as exc:  # an unreadable experiment file: its id still says which
        warn_skipped(exc.message)
        name = experiment_id
    base_metrics = base.data.metrics if base else {}
    head_metrics = head.data.metrics if head else {}
    metrics = [
        MetricChange(key, base_metrics.get(key), head_metrics.get(key))
        for key in sorted(base_metrics.keys() | head_metrics.keys())
    ]
    base_params = base.data.params if base else {}
    head_params = head.data.params if head else {}
    params = [
        ParamChange(key, base_params.get(key), head_params.get(key))
        for key in sorted(base_params.keys() | head_params.keys())
    ]
    return ExperimentDiff(
        experiment_id, name, base, head, metrics, params, code_diffstat(repository, base, head)
    )


def _filtered(
    diff: ExperimentDiff, options: DiffOptions, budgets: Mapping[str, Budget]
) -> ExperimentDiff:
    """``diff`` with metrics chosen by the globs, judged, and unchanged rows dropped unless
    ``show_all``."""
    metrics = []
    for change in diff.metrics:
        if options.metrics and not any(
            fnmatch.fnmatchcase(change.metric, glob) for glob in options.metrics
        ):
            continue
        budget = budgets.get(change.metric)
        if budget is not None:
            broken = tuple(judge(budget, change.base, change.head)) if diff.head_run else ()
            change = MetricChange(change.metric, change.base, change.head, budget.goal, broken)
        if options.show_all or change.direction != "same" or change.broken:
            metrics.append(change)
    params = [p for p in diff.params if options.show_all or p.base != p.head]
    return ExperimentDiff(
        diff.experiment_id,
        diff.experiment_name,
        diff.base_run,
        diff.head_run,
        metrics,
        params,
        diff.diffstat,
    )


def run_code(run: Run | None) -> str | None:
    """The commit holding a run's code: its snapshot when it ran on a dirty tree."""
    if run is None:
        return None
    return run.source.snapshot or run.source.commit


def code_diffstat(repository: TrackingRepository, base: Run | None, head: Run | None) -> str:
    """``git diff --stat`` between the code of two runs ("" when it is the same code or a
    side has no run). Code whose objects this clone lacks is said so, not an error: the
    metrics are still worth showing."""
    codes = [run_code(base), run_code(head)]
    if None in codes or codes[0] == codes[1]:
        return ""
    damaged = [code for code in codes if not FULL_ID.fullmatch(code or "")]
    if damaged:  # a revision or an option from crafted branch data never reaches git
        return f"(code not available here: the run records {damaged[0]!r}, not a commit id)"
    proc = repository.repo.git(
        "diff",
        "--stat",
        "--no-color",
        "--no-ext-diff",
        *codes,
        "--",
        check=False,  # type: ignore[arg-type]
    )
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"(code not available here: {reason[0] if reason else 'git diff failed'})"
    return proc.stdout.decode(errors="replace").rstrip("\n")
