"""``gittrack bisect``: the first commit where a metric crossed a threshold, from logged runs."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import gittrack
from gittrack.client import Client
from tests.conftest import git, gittrack_cli, make_repo, tree_fingerprint

COMMITS = 64
PLANTED = 41  # index of the first commit whose accuracy dropped


def _history(repo: Path, count: int) -> list[str]:
    """``count`` commits on ``main`` written by ``git fast-import``; oldest first."""
    stream = []
    for index in range(count):
        message, content = f"change {index}\n", f"step = {index}\n"
        stream.append(
            "commit refs/heads/main\n"
            f"committer Test User <test@example.com> {1_700_000_000 + index} +0000\n"
            f"data {len(message)}\n{message}"
            f"M 100644 inline train.py\ndata {len(content)}\n{content}\n"
        )
    git(repo, "fast-import", "--quiet", input="".join(stream).encode())
    git(repo, "reset", "-q", "--hard", "main")
    return git(repo, "rev-list", "--reverse", "main").split()


def _log_runs(repo: Path, commits: list[str], value: Callable[[int], float | None], key: str):
    """One run on each commit whose ``value`` is not None, made with that commit checked
    out, as a user's run on it would be; ``main`` is checked out again afterwards."""
    for index, commit in enumerate(commits):
        metric = value(index)
        if metric is None:
            continue
        git(repo, "checkout", "-q", "--detach", commit)
        with gittrack.start_run():
            gittrack.log_metric(key, metric)
    git(repo, "checkout", "-q", "main")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = make_repo(tmp_path / "history", initial_commit=False)
    monkeypatch.chdir(repo)
    return repo


def _step_accuracy(index: int) -> float:
    return 0.91 if index < PLANTED else 0.72


def test_bisect_finds_the_planted_regression_in_64_commits_in_at_most_7_steps(project: Path):
    commits = _history(project, COMMITS)
    _log_runs(project, commits, _step_accuracy, "acc")
    before = tree_fingerprint(project)

    result = gittrack_cli(
        project, "bisect", "--metric", "acc", "--good", commits[0], "--bad", "main", "--json"
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["first_bad"] == commits[PLANTED]
    assert found["last_good"] == commits[PLANTED - 1]
    assert 1 <= len(found["steps"]) <= 7
    assert all(step["verdict"] in ("good", "bad") for step in found["steps"])
    assert found["direction"] == "down" and found["threshold"] == pytest.approx(0.815)
    assert tree_fingerprint(project) == before


def test_bisect_prints_its_steps_and_names_the_first_bad_commit(project: Path):
    commits = _history(project, COMMITS)
    _log_runs(project, commits, _step_accuracy, "acc")

    result = gittrack_cli(project, "bisect", "-m", "acc", "--good", "main~63", "--bad", "main")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("bisecting acc over 63 commits") and "below 0.815" in lines[0]
    assert [line.split(":")[0] for line in lines[1:-2]] == [
        f"step {n}" for n in range(1, len(lines) - 2)
    ]
    assert lines[-2] == f"first bad commit: {commits[PLANTED]} change {PLANTED}"
    assert "0.91 at" in lines[-1] and "-> 0.72" in lines[-1]


def test_a_threshold_finds_the_first_commit_beyond_it_in_a_gradual_drift(project: Path):
    commits = _history(project, 40)
    _log_runs(project, commits, lambda i: 0.95 - 0.002 * i, "acc")
    expected = next(i for i in range(40) if 0.95 - 0.002 * i < 0.9)

    result = Client().bisect_metric("acc", commits[0], commits[-1], threshold=0.9)

    assert result.first_bad == commits[expected]
    assert result.direction == "down"
    assert result.step_count <= math.ceil(math.log2(39))


def test_direction_up_finds_where_a_loss_rose(project: Path):
    commits = _history(project, 20)
    _log_runs(project, commits, lambda i: 0.2 if i < 13 else 0.5, "loss")

    result = Client().bisect_metric("loss", commits[0], commits[-1], direction="up")

    assert result.first_bad == commits[13]
    assert result.threshold == pytest.approx(0.35)


def test_a_probed_commit_without_runs_is_skipped_for_its_neighbour(project: Path):
    commits = _history(project, 33)
    _log_runs(project, commits, lambda i: None if i == 16 else (1.0 if i < 20 else 2.0), "m")

    result = Client().bisect_metric("m", commits[0], commits[-1])

    assert result.first_bad == commits[20]
    assert [step.verdict for step in result.steps][0] == "skipped"
    assert result.steps[0].commit == commits[16]


def test_with_gaps_bisect_lists_the_commits_that_lack_runs(project: Path):
    commits = _history(project, COMMITS)
    missing = set(range(30, 46))
    _log_runs(project, commits, lambda i: None if i in missing else _step_accuracy(i), "acc")

    result = gittrack_cli(project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main")

    assert result.returncode == 1
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == [commits[i][:12] for i in (*sorted(missing), 46)]
    assert "no runs" in result.stdout and "--run CMD" in result.stdout
    as_json = json.loads(
        gittrack_cli(
            project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main", "--json"
        ).stdout
    )
    assert as_json["first_bad"] is None
    assert as_json["missing"] == [commits[i] for i in sorted(missing)]
    assert as_json["last_good"] == commits[29]


LOG_ACC = """\
import re
import gittrack
step = int(re.search(r"step = (\\d+)", open("train.py").read()).group(1))
with gittrack.start_run():
    gittrack.log_metric("acc", 0.91 if step < {planted} else 0.72)
print("trained step", step)
"""


def test_run_fills_the_commits_that_lack_runs_in_a_temporary_worktree(
    project: Path, tmp_path: Path
):
    commits = _history(project, 24)
    missing = set(range(5, 20))
    planted = 12
    _log_runs(project, commits, lambda i: None if i in missing else (0.91 if i < planted else 0.72), "acc")  # fmt: skip
    script = tmp_path / "log_acc.py"
    script.write_text(LOG_ACC.format(planted=planted))
    before = tree_fingerprint(project)

    result = gittrack_cli(
        project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main",
        "--run", f"{sys.executable} {script}", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["first_bad"] == commits[planted]
    filled = [step["commit"] for step in found["steps"] if step["filled"]]
    assert filled and set(filled) <= {commits[i] for i in missing}
    assert "trained step" in result.stderr  # the command's output kept off the JSON
    runs = Client().search_runs(filter_string=f"tags.`mlflow.source.git.commit` = '{filled[0]}'")
    assert len(runs) == 1
    assert len(git(project, "worktree", "list").splitlines()) == 1
    assert tree_fingerprint(project) == before


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--good", "no-such-rev", "--bad", "main"], 3, "'no-such-rev' does not name a commit"),
        (["--good", "main", "--bad", "main~3"], 2, "not on the first-parent history"),
        (["--good", "main", "--bad", "main"], 2, "the same commit"),
        (["--good", "main~5", "--bad", "main", "--direction", "up"], 2, "direction up"),
        (["--good", "main~5", "--bad", "main", "--threshold", "0.5"], 2, "at --good"),
        (["--good", "main~5", "--bad", "main", "-m", "a\x01b"], 2, "a\\x01b"),
    ],
)
def test_bad_input_is_a_one_line_error(project: Path, args: list[str], code: int, words: str):
    commits = _history(project, 8)
    _log_runs(project, commits, lambda i: 0.9 if i < 6 else 0.7, "acc")
    tip = git(project, "rev-parse", "gittrack").strip()
    if "-m" not in args:
        args = ["-m", "acc", *args]

    result = gittrack_cli(project, "bisect", *args)

    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert git(project, "rev-parse", "gittrack").strip() == tip


def test_an_endpoint_without_runs_needs_both_threshold_and_direction(project: Path):
    commits = _history(project, 10)
    _log_runs(project, commits, lambda i: None if i == 0 else (0.9 if i < 7 else 0.7), "acc")

    refused = gittrack_cli(project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main")
    found = gittrack_cli(
        project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main",
        "--threshold", "0.8", "--direction", "down", "--json",
    )  # fmt: skip

    assert refused.returncode == 3
    assert "has no runs with metric 'acc'" in refused.stderr
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["first_bad"] == commits[7]


def test_by_commit_lookups_walk_first_parents_and_find_the_nearest_commit_with_runs(
    project: Path,
):
    from gittrack.gitflow.by_commit import (
        first_parent_commits,
        nearest_commit_with_runs,
        runs_for_commit,
    )

    commits = _history(project, 6)
    _log_runs(project, commits, lambda i: float(i) if i in (1, 2) else None, "m")
    _log_runs(project, commits, lambda i: 10.0 if i == 2 else None, "m")
    repository = Client().repository

    assert first_parent_commits(repository, "main", base=commits[1]) == commits[:1:-1]
    assert first_parent_commits(repository, "main", limit=2) == commits[:-3:-1]
    assert [run.metrics["m"] for run in runs_for_commit(repository, commits[2])] == [2.0, 10.0]
    assert runs_for_commit(repository, commits[4]) == []
    nearest, runs = nearest_commit_with_runs(repository, "main")
    assert nearest == commits[2] and len(runs) == 2
    assert nearest_commit_with_runs(repository, "main", limit=3) is None


@pytest.mark.parametrize(
    "select, first_bad",
    [("latest", 4), ("max", 2), ("min", 6), ("mean", 4)],
)
def test_select_chooses_which_of_a_commits_runs_stands_for_it(
    project: Path, select: str, first_bad: int
):
    commits = _history(project, 8)
    # three runs per commit, crossing at commits 2, 6 and (the latest run) 4
    _log_runs(project, commits, lambda i: 1.0 if i < 2 else 9.0, "loss")
    _log_runs(project, commits, lambda i: 1.0 if i < 6 else 9.0, "loss")
    _log_runs(project, commits, lambda i: 1.0 if i < 4 else 9.0, "loss")

    result = Client().bisect_metric(
        "loss", commits[0], commits[-1], threshold=5.0, direction="up", select=select
    )

    assert result.first_bad == commits[first_bad]


def test_experiment_restricts_the_runs_that_count(project: Path):
    commits = _history(project, 10)
    gittrack.set_experiment("noise")
    _log_runs(project, commits, lambda i: 0.1 if i % 2 else 0.9, "acc")
    gittrack.set_experiment("real")
    _log_runs(project, commits, lambda i: 0.9 if i < 7 else 0.1, "acc")
    real = gittrack.get_experiment_by_name("real").experiment_id

    result = gittrack_cli(
        project, "bisect", "-m", "acc", "--good", commits[0], "--bad", "main", "-e", "real",
        "--select", "min", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["first_bad"] == commits[7]
    assert (
        Client()
        .bisect_metric("acc", commits[0], commits[-1], experiment_ids=[real], select="min")
        .first_bad
        == commits[7]
    )
