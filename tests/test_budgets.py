"""Metric budgets: stored in ``.tracking/config.yaml``, judged by ``gittrack diff``
(DESIGN §11)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from gittrack.errors import CorruptDataError
from gittrack.query.budgets import Budget, budgets_from_file, judge
from gittrack.store import layout
from gittrack.store.branch import Blob
from gittrack.tracking.repository import forget_repositories, open_repository

from .conftest import git, tree_fingerprint
from .test_diff import cli, two_commits


def config_on_branch(repo: Path) -> dict:
    return yaml.safe_load(git(repo, "show", f"gittrack:{layout.CONFIG_PATH}"))


def write_config(text: str) -> None:
    """Put ``text`` in config.yaml on the tracking branch, as a pull could bring it."""
    forget_repositories()
    repository = open_repository()
    repository.branch.commit(lambda snap: {layout.CONFIG_PATH: Blob(text.encode())}, "edit")
    forget_repositories()


# ------------------------------------------------------------------ rules
@pytest.mark.parametrize(
    ("rules", "base", "head", "broken"),
    [
        ({"min": 0.9}, 0.95, 0.85, ["min"]),
        ({"min": 0.9}, 0.95, 0.9, []),
        ({"max": 0.2}, 0.1, 0.3, ["max"]),
        ({"max_decrease": 0.01}, 0.95, 0.94, []),  # 0.95 - 0.94 is 0.01000...0009
        ({"max_decrease": 0.01}, 0.95, 0.93, ["max_decrease"]),
        ({"max_increase": 0.05}, 0.3, 0.4, ["max_increase"]),
        ({"max_decrease_pct": 5}, 0.8, 0.7, ["max_decrease_pct"]),
        ({"max_increase_pct": 10}, 0.5, 0.54, []),
        ({"max_increase_pct": 10}, 0.0, 5.0, []),  # no percentage of 0
        ({"max_decrease": 0.1, "min": 0.5}, None, 0.4, ["min"]),  # new metric: no change
        ({"min": 0.5}, 0.9, None, ["logged"]),  # BASE logged it, HEAD stopped
        ({"min": 0.5}, 0.9, math.nan, ["logged"]),
        ({"min": 0.5}, None, None, []),  # neither side: another experiment's metric
    ],
)
def test_each_budget_rule_is_broken_only_beyond_its_limit(rules, base, head, broken) -> None:
    budget = Budget("m", None, rules)

    assert [rule.rule for rule in judge(budget, base, head)] == broken


def test_a_broken_rule_describes_the_metric_the_rule_the_limit_and_the_value() -> None:
    (rule,) = judge(Budget("accuracy", "maximize", {"max_decrease_pct": 5}), 0.8, 0.7)

    assert rule.describe() == "accuracy: max_decrease_pct 5% broken (12.5%)"


# ------------------------------------------------------------------ diff --fail-on budgets
def test_a_budget_violation_exits_1_and_lists_the_rule_and_the_markdown_marks_it(
    repo: Path, capsys
) -> None:
    made = two_commits(repo)
    assert (
        cli(capsys, "budgets", "set", "accuracy", "--goal", "maximize", "--max-decrease", "0.05")[0]
        == 0
    )

    code, out, err = cli(capsys, "diff", made["base"], "--md", "--fail-on", "budgets")

    assert code == 1
    assert err == "gittrack: budget broken: wine: accuracy: max_decrease 0.05 broken (0.1)\n"
    assert "| ❌ accuracy | 0.8 | 0.7 | ↓ -0.1 worse | -12.50% |" in out
    assert "| accuracy | 0.9 | 0.95 | ↑ +0.05 better | +5.56% |" in out
    assert out.endswith(
        "**Budgets broken: 1**\n\n- ❌ wine: accuracy: max\\_decrease 0.05 broken (0.1)\n"
    )
    # Without --fail-on the same diff is marked but passes.
    assert cli(capsys, "diff", made["base"], "--md")[0] == 0


def test_json_lists_the_broken_rules_with_their_limit_and_value(repo: Path, capsys) -> None:
    made = two_commits(repo)
    cli(capsys, "budgets", "set", "accuracy", "--min", "0.75")

    code, out, _ = cli(capsys, "diff", made["base"], "--json", "--fail-on", "budgets")

    assert code == 1
    (broken,) = json.loads(out)["budgets_broken"]
    assert broken["metric"] == "accuracy" and broken["rule"] == "min"
    assert (broken["limit"], broken["value"]) == (0.75, 0.7)
    assert broken["message"] == "accuracy: min 0.75 broken (0.7)"


def test_budgets_kept_exit_0_with_fail_on(repo: Path, capsys) -> None:
    made = two_commits(repo)
    cli(capsys, "budgets", "set", "accuracy", "--min", "0.5", "--max-decrease-pct", "20")

    code, out, _ = cli(capsys, "diff", made["base"], "--md", "--fail-on", "budgets")

    assert code == 0 and out.endswith("Budgets: all kept.\n")


def test_a_budgets_file_replaces_the_configured_budgets_for_ci(
    repo: Path, capsys, tmp_path: Path
) -> None:
    made = two_commits(repo)
    cli(capsys, "budgets", "set", "accuracy", "--min", "0.99")
    ci = tmp_path / "budgets.yaml"
    ci.write_text("budgets:\n  accuracy: {max_decrease: 0.5}\n")

    code, _, _ = cli(capsys, "diff", made["base"], "--budgets", str(ci), "--fail-on", "budgets")

    assert code == 0


# ------------------------------------------------------------------ budgets set/list/unset
def test_budgets_set_list_and_unset_edit_config_yaml_on_the_tracking_branch(
    repo: Path, capsys
) -> None:
    two_commits(repo)
    before = tree_fingerprint(repo)

    assert (
        cli(capsys, "budgets", "set", "loss", "--goal", "minimize", "--max-increase-pct", "5")[0]
        == 0
    )
    assert cli(capsys, "budgets", "set", "loss", "--max", "0.5")[0] == 0  # adds a rule
    code, out, _ = cli(capsys, "budgets", "list", "--json")

    assert code == 0
    assert json.loads(out) == [
        {"metric": "loss", "goal": "minimize", "max": 0.5, "max_increase_pct": 5.0}
    ]
    assert config_on_branch(repo)["budgets"] == {
        "loss": {"goal": "minimize", "max_increase_pct": 5.0, "max": 0.5}
    }
    assert cli(capsys, "budgets", "unset", "loss")[0] == 0
    assert config_on_branch(repo)["budgets"] == {}
    assert tree_fingerprint(repo) == before


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["set", "loss"], "give a goal or at least one limit"),
        (["set", "loss", "--max-decrease", "-1"], "max_decrease -1.0"),
        (["set", "loss", "--min", "nan"], "min nan"),
        (["set", "bad key!", "--min", "1"], "'bad key!'"),
        (["unset", "loss"], "'loss' has no budget"),
    ],
)
def test_bad_budget_input_is_a_one_line_error_and_nothing_is_written(
    repo: Path, capsys, args, named
) -> None:
    two_commits(repo)
    tip = git(repo, "rev-parse", "gittrack").strip()

    code, _, err = cli(capsys, "budgets", *args)

    assert code != 0 and named in err and len(err.strip().splitlines()) == 1, err
    assert git(repo, "rev-parse", "gittrack").strip() == tip


# ------------------------------------------------------------------ corrupt budgets
def test_a_corrupt_budget_in_config_yaml_is_one_line_naming_the_file_and_field(
    repo: Path, capsys
) -> None:
    made = two_commits(repo)
    write_config("format: 1\nbudgets:\n  accuracy: {max_decrease: lots}\n")
    tip = git(repo, "rev-parse", "gittrack").strip()

    for args in (["diff", made["base"], "--md"], ["budgets", "list"]):
        code, out, err = cli(capsys, *args)
        assert code != 0 and out == ""
        assert err.startswith("gittrack: error: .tracking/config.yaml: budgets.accuracy.")
        assert "max_decrease" in err and len(err.strip().splitlines()) == 1
    assert cli(capsys, "budgets", "set", "loss", "--min", "1")[0] != 0
    assert git(repo, "rev-parse", "gittrack").strip() == tip


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("budgets:\n  acc: {minimum: 1}\n", "budgets.acc: Additional properties"),
        ("budgets:\n  acc: {goal: up}\n", "budgets.acc.goal: 'up' is not one of"),
        ("budgets:\n  acc: {min: .nan}\n", "budgets.acc.min: nan is not a finite number"),
        ("budgets: [acc]\n", "budgets.(document): ['acc'] is not of type 'object'"),
        ("budgets:\n  acc: {min: [1\n", "line 3 is not valid YAML"),
        ("other: 1\n", "has no 'budgets:' mapping"),
    ],
)
def test_a_corrupt_budgets_file_names_the_file_and_field(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(text)

    with pytest.raises(Exception) as raised:
        budgets_from_file(path)

    assert str(path) in str(raised.value) and named in str(raised.value)
    assert isinstance(raised.value, (CorruptDataError, ValueError))


def test_a_corrupt_budgets_file_given_to_diff_is_one_line_and_nothing_is_written(
    repo: Path, capsys, tmp_path: Path
) -> None:
    made = two_commits(repo)
    bad = tmp_path / "ci-budgets.yaml"
    bad.write_text("budgets:\n  accuracy: {max_increase_pct: -3}\n")
    refs = git(repo, "for-each-ref")
    before = tree_fingerprint(repo)

    code, out, err = cli(capsys, "diff", made["base"], "--md", "--budgets", str(bad))

    assert code != 0 and out == ""
    assert err.startswith(f"gittrack: error: {bad}: budgets.accuracy.max_increase_pct: ")
    assert len(err.strip().splitlines()) == 1
    assert git(repo, "for-each-ref") == refs and tree_fingerprint(repo) == before
