"""The first commands: init, runs list/show/delete/restore, experiments, recover, doctor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack.tracking.repository import forget_repositories

from .conftest import git
from .conftest import gittrack_cli as cli
from .hostile_branch import put_file


def test_init_creates_the_branch_and_git_inits_a_plain_folder(tmp_path: Path) -> None:
    result = cli(tmp_path, "init", "fresh")
    assert result.returncode == 0, result.stderr
    assert "Initialized an empty git repository" in result.stdout
    assert git(tmp_path / "fresh", "branch", "--list", "gittrack").strip()


def test_runs_list_show_delete_and_restore(repo: Path) -> None:
    mlflow.set_experiment("cli")
    with mlflow.start_run(run_name="shown") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("acc", 0.9)
    run_id = run.info.run_id

    listed = json.loads(cli(repo, "runs", "list", "--json", "-e", "cli").stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["params"] == {"lr": "0.1"}
    table = cli(repo, "runs", "list").stdout
    assert run_id in table and "shown" in table and "acc=0.9" in table
    shown = cli(repo, "runs", "show", run_id)
    assert "[params]" in shown.stdout and "lr" in shown.stdout

    assert cli(repo, "runs", "delete", run_id).stdout.strip() == f"deleted {run_id}"
    assert json.loads(cli(repo, "runs", "list", "--json").stdout) == []
    assert [
        r["run_id"] for r in json.loads(cli(repo, "runs", "list", "--deleted", "--json").stdout)
    ] == [run_id]
    assert cli(repo, "runs", "restore", run_id).stdout.strip() == f"restored {run_id}"
    csv_out = cli(repo, "runs", "list", "--csv").stdout.splitlines()
    assert csv_out[0].startswith("run_id,") and csv_out[1].startswith(run_id)


def test_json_output_spells_nan_and_infinities_as_the_store_and_the_web_ui_do(
    repo: Path,
) -> None:
    mlflow.set_experiment("odd")
    with mlflow.start_run() as run:
        mlflow.log_metrics({"nan": float("nan"), "up": float("inf"), "down": float("-inf")})
        mlflow.log_metric("fine", 0.5)
    text = cli(repo, "runs", "list", "--json", "-e", "odd").stdout
    # Strict JSON (no bare NaN/Infinity tokens), with the strings DESIGN §3 stores.
    [listed] = json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert listed["run_id"] == run.info.run_id
    assert listed["metrics"] == {
        "nan": "NaN",
        "up": "Infinity",
        "down": "-Infinity",
        "fine": 0.5,
    }
    stored = yaml.safe_load(
        git(
            repo,
            "show",
            f"gittrack:.tracking/runs/{run.info.run_id[:2]}/"
            f"{run.info.run_id[2:4]}/{run.info.run_id}/meta.yaml",
        )
    )
    assert {k: v["value"] for k, v in stored["metrics"].items()} == listed["metrics"]


def test_experiments_list_recover_and_doctor(repo: Path) -> None:
    mlflow.create_experiment("listed")
    names = {e["name"] for e in json.loads(cli(repo, "experiments", "list", "--json").stdout)}
    assert names == {"Default", "listed"}
    assert cli(repo, "recover").stdout.strip() == "no orphaned live runs"
    doctor = cli(repo, "doctor")
    assert doctor.returncode == 0 and "all files valid" in doctor.stdout


def test_an_unknown_experiment_is_a_one_line_error(repo: Path) -> None:
    mlflow.create_experiment("known")
    result = cli(repo, "runs", "list", "-e", "unknown")
    assert result.returncode != 0
    assert result.stderr.strip() == "gittrack: error: no experiment named 'unknown'"


ESCAPES = "\x1b]0;owned\x07\x1b[2J\u202e"


def test_tables_show_control_characters_in_names_and_values_as_escapes(repo: Path, capsys) -> None:
    from gittrack.cli.main import main

    with mlflow.start_run(run_name="red") as run:
        mlflow.log_param("lr", f"0.1{ESCAPES}")
        mlflow.set_tag("note", f"line one\nline two{ESCAPES}")
    run_id = run.info.run_id
    # Names with control characters are refused on write; they can still arrive with a pull.
    meta_path = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/meta.yaml"
    meta = yaml.safe_load(git(repo, "show", f"gittrack:{meta_path}"))
    meta["run_name"] = f"red{ESCAPES}"
    put_file(repo, meta_path, yaml.safe_dump(meta, allow_unicode=True).encode())
    forget_repositories()

    assert main(["runs", "list"]) == 0
    assert main(["runs", "show", run_id]) == 0
    out = capsys.readouterr().out
    assert not any(ord(c) < 0x20 and c != "\n" or c == "\u202e" for c in out)
    visible = "\\x1b]0;owned\\x07\\x1b[2J\\u202e"
    assert f"red{visible}" in out and f"0.1{visible}" in out
    assert f"line one\\nline two{visible}" in out

    assert main(["runs", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["run_name"] == f"red{ESCAPES}"


def test_warnings_and_doctor_show_control_characters_in_file_names_as_escapes(
    repo: Path,
) -> None:
    with mlflow.start_run():
        mlflow.log_metric("m", 1.0)
    put_file(repo, f".tracking/experiments/evil{ESCAPES}.yaml", b"name: evil\n")

    listing = cli(repo, "experiments", "list")
    doctor = cli(repo, "doctor")

    assert "gittrack: warning: skipped: .tracking/experiments/evil" in listing.stderr
    assert doctor.returncode == 1
    for result in (listing, doctor):
        shown = result.stdout + result.stderr
        assert not any(ord(c) < 0x20 and c != "\n" or c == "\u202e" for c in shown), shown
        assert "evil\\x1b]0;owned\\x07\\x1b[2J\\u202e.yaml" in shown


def test_the_command_line_runs_as_its_own_process(tmp_path: Path) -> None:
    """The smoke test of ``python -m gittrack``: the other command-line tests call
    ``main(argv)`` in process."""
    made = cli(tmp_path, "init", "smoke", fresh_process=True)
    assert made.returncode == 0, made.stderr
    listed = cli(tmp_path / "smoke", "runs", "list", "--json", fresh_process=True)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    wrong = cli(tmp_path / "smoke", "runs", "show", "nope", fresh_process=True)
    assert wrong.returncode != 0
    assert wrong.stderr.startswith("gittrack: error:") and "Traceback" not in wrong.stderr
