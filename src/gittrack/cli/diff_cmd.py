"""``gittrack diff [BASE] [HEAD]``: the metrics, params and code of two commits' runs.

The Markdown (``--md``) is what CI posts on a pull request: plain CommonMark tables, arrows
and words for direction, no HTML, so GitHub and GitLab render it the same. Its first line,
``## gittrack diff``, is what the CI examples look for to update their one comment.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from gittrack.cli.output import emit, render_table, visible
from gittrack.client import Client
from gittrack.store.codecs import format_number

if TYPE_CHECKING:
    from gittrack.client import (
        CommitDiff,
        ExperimentDiff,
        MetricChange,
        ParamChange,
        Side,
    )

HEADING = "## gittrack diff"
_ARROWS = {"up": "↑", "down": "↓", "same": "=", "added": "new", "removed": "gone"}
# Table cells, links, code, HTML, emphasis (``*``/``_``), strikethrough (``~``) and entities
# (``&``): every character a name could use to render as something other than itself.
_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_~|<>[]&"})


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``gittrack diff`` to the command line's sub-commands."""
    parser = sub.add_parser(
        "diff",
        help="compare the runs of two code commits: metrics, params, code, budgets",
        description="Compare the runs whose source commit is BASE with those of HEAD, per "
        "experiment. BASE defaults to the merge-base of origin/HEAD (or main) and HEAD.",
    )
    parser.add_argument("base", nargs="?", default=None, metavar="BASE")
    parser.add_argument("head", nargs="?", default="HEAD", metavar="HEAD")
    parser.add_argument(
        "--nearest",
        action="store_true",
        help="a side without runs takes its closest first-parent ancestor with runs",
    )
    parser.add_argument(
        "--experiment", "-e", action="append", default=[], help="name or id (repeatable)"
    )
    parser.add_argument(
        "--select",
        default="latest",
        help="which run stands for a commit: latest (default) or best:metrics.X",
    )
    parser.add_argument(
        "--goal", choices=("maximize", "minimize"), help="direction of X for --select best:"
    )
    parser.add_argument(
        "--metrics", action="append", default=[], metavar="GLOB", help="metrics to show"
    )
    parser.add_argument("--all", action="store_true", help="show unchanged metrics and params")
    parser.add_argument(
        "--include-nested", action="store_true", help="child runs may stand for a commit"
    )
    parser.add_argument(
        "--budgets", metavar="FILE", help="read budgets: from this YAML file, not config.yaml"
    )
    parser.add_argument("--fail-on", choices=("budgets",), help="exit 1 when HEAD breaks a budget")
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--md", dest="format", action="store_const", const="md")
    formats.add_argument("--json", dest="format", action="store_const", const="json")
    parser.set_defaults(format="table", handler=show_diff)


def show_diff(args: argparse.Namespace) -> int:
    """Print the diff in the chosen format.

    :returns: 1 when ``--fail-on budgets`` and a budget is broken (each broken rule is also
        a line on stderr), else 0. Errors are ``GittrackError`` (one line, from ``main``).
    """
    diff = Client(args.repo).diff_commits(
        args.base,
        args.head,
        experiments=args.experiment,
        select=args.select,
        goal=args.goal,
        metrics=args.metrics,
        show_all=args.all,
        nearest=args.nearest,
        include_nested=args.include_nested,
        budgets_file=args.budgets,
    )
    if args.format == "json":
        emit(diff_record(diff), fmt="json")
    else:
        render = markdown if args.format == "md" else text
        sys.stdout.write(render(diff))
    if args.fail_on == "budgets" and diff.broken:
        for experiment, rule in diff.broken:
            print(
                f"gittrack: budget broken: {visible(experiment.experiment_name)}: "
                f"{visible(rule.describe())}",
                file=sys.stderr,
            )
        return 1
    return 0


# ------------------------------------------------------------------ cells
def _number(value: float | None) -> str:
    return "—" if value is None else format_number(value)


def _change(change: MetricChange) -> str:
    arrow = _ARROWS.get(change.direction, "≠")
    if change.change is None or math.isnan(change.change):
        return arrow
    verdict = f" {change.verdict}" if change.verdict else ""
    return f"{arrow} {change.change:+.6g}{verdict}"


def _percent(change: MetricChange) -> str:
    return "—" if change.percent is None else f"{change.percent:+.2f}%"


def _metric_row(change: MetricChange) -> dict[str, str]:
    return {
        "Metric": ("❌ " if change.broken else "") + change.metric,
        "BASE": _number(change.base),
        "HEAD": _number(change.head),
        "Change": _change(change),
        "%": _percent(change),
    }


def _side_line(label: str, side: Side) -> str:
    line = f"{label} {side.rev} ({side.commit[:7]})"
    if side.runs_commit != side.commit:
        line += (
            f": no runs, using {side.runs_commit[:7]}, {side.distance} "
            f"commit{'s' if side.distance != 1 else ''} back (first parent)"
        )
    return line


def _run_label(experiment: ExperimentDiff, which: str) -> str:
    run = experiment.base_run if which == "base" else experiment.head_run
    if run is None:
        return "none"
    return f"{run.info.run_id[:8]} ({run.info.run_name})"


# ------------------------------------------------------------------ Markdown
def _md(text: str) -> str:
    """A value as Markdown text: special characters escaped, one line."""
    return " ".join(visible(text).split()).translate(_MD_SPECIAL)


def _md_table(headers: list[str], align: str, rows: list[dict[str, str]]) -> list[str]:
    rule = ["---:" if flag == "r" else "---" for flag in align]
    lines = [f"| {' | '.join(headers)} |", f"| {' | '.join(rule)} |"]
    lines += [f"| {' | '.join(_md(row[h]) for h in headers)} |" for row in rows]
    return lines


def markdown(diff: CommitDiff) -> str:
    """The diff as a Markdown comment (what ``--md`` prints)."""
    lines = [
        f"{HEADING} {diff.base.commit[:7]}...{diff.head.commit[:7]}",
        "",
        f"- {_md(_side_line('BASE', diff.base))}",
        f"- {_md(_side_line('HEAD', diff.head))}",
    ]
    for experiment in diff.experiments:
        lines += ["", f"### {_md(experiment.experiment_name)}", ""]
        lines.append(
            f"Runs: BASE {_md(_run_label(experiment, 'base'))} · "
            f"HEAD {_md(_run_label(experiment, 'head'))}"
        )
        lines.append("")
        if experiment.metrics:
            rows = [_metric_row(change) for change in experiment.metrics]
            lines += _md_table(["Metric", "BASE", "HEAD", "Change", "%"], "lrrrr", rows)
        else:
            lines.append("No metric changed.")
        if experiment.params:
            rows = [_param_row(param) for param in experiment.params]
            lines += ["", *_md_table(["Param", "BASE", "HEAD"], "lll", rows)]
        if experiment.diffstat:
            lines += ["", "Code:", "", "```text", experiment.diffstat, "```"]
    lines += ["", *_md_budgets(diff)]
    return "\n".join(lines) + "\n"


def _param_row(param: ParamChange) -> dict[str, str]:
    return {
        "Param": param.param,
        "BASE": "—" if param.base is None else param.base,
        "HEAD": "—" if param.head is None else param.head,
    }


def _md_budgets(diff: CommitDiff) -> list[str]:
    broken = diff.broken
    if not broken:
        return ["Budgets: all kept."]
    lines = [f"**Budgets broken: {len(broken)}**", ""]
    lines += [
        f"- ❌ {_md(experiment.experiment_name)}: {_md(rule.describe())}"
        for experiment, rule in broken
    ]
    return lines


# ------------------------------------------------------------------ terminal
def text(diff: CommitDiff) -> str:
    """The diff as aligned tables for a terminal (the default format)."""
    out = [visible(_side_line("BASE", diff.base)), visible(_side_line("HEAD", diff.head))]
    for experiment in diff.experiments:
        out += ["", f"== {visible(experiment.experiment_name)}"]
        base, head = _run_label(experiment, "base"), _run_label(experiment, "head")
        out.append(f"runs: BASE {visible(base)}  HEAD {visible(head)}")
        if experiment.metrics:
            rows = [_metric_row(change) for change in experiment.metrics]
            out.append(render_table(rows, ["Metric", "BASE", "HEAD", "Change", "%"]))
        else:
            out.append("no metric changed")
        if experiment.params:
            rows = [_param_row(param) for param in experiment.params]
            out.append(render_table(rows, ["Param", "BASE", "HEAD"]))
        if experiment.diffstat:
            out.append(experiment.diffstat)  # git quotes unusual paths itself
    out.append("")
    out += [
        visible(f"budget broken: {experiment.experiment_name}: {rule.describe()}")
        for experiment, rule in diff.broken
    ] or ["budgets: all kept"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ JSON
def _side_record(side: Side) -> dict[str, Any]:
    return {
        "rev": side.rev,
        "commit": side.commit,
        "runs_commit": side.runs_commit,
        "distance": side.distance,
    }


def _run_record(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "commit": run.source.commit,
        "snapshot": run.source.snapshot,
    }


def diff_record(diff: CommitDiff) -> dict[str, Any]:
    """The diff as one JSON document (what ``--json`` prints)."""
    return {
        "base": _side_record(diff.base),
        "head": _side_record(diff.head),
        "experiments": [
            {
                "experiment_id": e.experiment_id,
                "experiment_name": e.experiment_name,
                "base_run": _run_record(e.base_run),
                "head_run": _run_record(e.head_run),
                "metrics": [
                    {
                        "metric": m.metric,
                        "base": m.base,
                        "head": m.head,
                        "change": m.change,
                        "percent": m.percent,
                        "direction": m.direction,
                        "goal": m.goal,
                        "verdict": m.verdict,
                        "broken": [r.rule for r in m.broken],
                    }
                    for m in e.metrics
                ],
                "params": [{"param": p.param, "base": p.base, "head": p.head} for p in e.params],
                "diffstat": e.diffstat,
            }
            for e in diff.experiments
        ],
        "budgets_broken": [
            {
                "experiment_id": e.experiment_id,
                "metric": r.metric,
                "rule": r.rule,
                "limit": r.limit,
                "value": r.value,
                "message": r.describe(),
            }
            for e, r in diff.broken
        ],
    }
