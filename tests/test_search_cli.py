"""gittrack search, compare and export on the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from gittrack import Client
from gittrack.cli.main import main
from gittrack.query import index as index_module
from gittrack.query import progress


@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    client = Client()
    exp = client.create_experiment("exp")
    ids = {}
    for i, (name, lr) in enumerate((("slow", "0.01"), ("fast", "0.1"), ("mid", "0.05"))):
        run = client.create_run(exp, start_time=1_000 + i, run_name=name)
        client.log_param(run.info.run_id, "lr", lr)
        client.log_metric(run.info.run_id, "acc", 0.5 + i / 10, step=0)
        client.log_metric(run.info.run_id, "acc", 0.6 + i / 10, step=1)
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    return ids


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_prints_a_table_newest_first(runs, capsys) -> None:
    code, out, _ = run_cli(capsys, "search")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["run_id", "tags.mlflow.runName", "status", "start_time"]
    assert [line.split()[1] for line in lines[2:]] == ["mid", "fast", "slow"]
    assert "metrics.acc" in lines[0] and "params.lr" in lines[0]


def test_search_filters_orders_and_limits(runs, capsys) -> None:
    code, out, _ = run_cli(
        capsys, "search", "metrics.acc > 0.6", "--order-by", "params.lr ASC", "--json", "--max", "1"
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["tags.mlflow.runName"] for r in rows] == ["mid"]
    assert rows[0]["start_time"].endswith("Z")


def test_search_columns_and_csv(runs, capsys) -> None:
    code, out, _ = run_cli(
        capsys,
        "search",
        "--experiment",
        "exp",
        "--columns",
        "run_id,metrics.acc,params.lr",
        "--csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["run_id", "metrics.acc", "params.lr"]
    assert {r["run_id"] for r in rows} == set(runs.values())
    assert {r["params.lr"] for r in rows} == {"0.01", "0.1", "0.05"}


def test_search_errors_are_one_line_with_a_nonzero_exit(runs, capsys) -> None:
    code, out, err = run_cli(capsys, "search", "params.lr > 1")
    assert code == 2
    assert err.startswith("gittrack: error: comparator '>' is not valid")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "search", "--experiment", "nope")
    assert code == 3 and "nope" in err
    code, _, err = run_cli(capsys, "search", "--columns", "colour")
    assert code == 2 and "unknown column" in err


def test_search_views_find_deleted_runs(runs, capsys) -> None:
    Client().delete_run(runs["fast"])
    _, out, _ = run_cli(capsys, "search", "--view", "deleted", "--columns", "run_id", "--csv")
    assert out.split()[1:] == [runs["fast"]]


def test_runs_list_uses_the_same_engine(runs, capsys) -> None:
    code, out, _ = run_cli(capsys, "runs", "list", "--filter", "params.lr = '0.1'", "--json")
    assert code == 0
    assert [r["run_name"] for r in json.loads(out)] == ["fast"]


def test_compare_marks_rows_that_differ(runs, capsys) -> None:
    code, out, _ = run_cli(capsys, "compare", runs["slow"], runs["fast"])
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows["params.lr"].rstrip().endswith("*")
    assert not rows["experiment_id"].rstrip().endswith("*")
    assert runs["slow"][:8] in out.splitlines()[0]


def test_compare_diff_only_as_json(runs, capsys) -> None:
    code, out, _ = run_cli(capsys, "compare", runs["slow"], runs["fast"], "--diff-only", "--json")
    assert code == 0
    rows = json.loads(out)
    assert all(r["differs"] for r in rows)
    lr = next(r for r in rows if r["field"] == "params.lr")
    assert lr["values"] == {runs["slow"]: "0.01", runs["fast"]: "0.1"}


def test_compare_an_unknown_run_fails_cleanly(runs, capsys) -> None:
    code, _, err = run_cli(capsys, "compare", runs["slow"], "0" * 32)
    assert code == 3 and err.startswith("gittrack: error:")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_runs_and_metric_histories(runs, capsys, tmp_path: Path, fmt) -> None:
    out_dir = tmp_path / "export"
    code, out, _ = run_cli(capsys, "export", "--format", fmt, "--output", str(out_dir))
    assert code == 0
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    table = read(out_dir / f"runs.{fmt}")
    history = read(out_dir / f"metric_history.{fmt}")
    assert set(table["run_id"]) == set(runs.values())
    assert {"run_name", "lifecycle_stage", "metrics.acc", "params.lr"} <= set(table.columns)
    assert list(history.columns) == ["run_id", "key", "step", "timestamp", "value"]
    assert len(history) == 6
    assert f"runs: {out_dir / f'runs.{fmt}'}" in out


def test_export_without_history_and_with_a_filter(runs, capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "e"
    code, _, _ = run_cli(
        capsys,
        "export",
        "--format",
        "csv",
        "-O",
        str(out_dir),
        "--filter",
        "params.lr = '0.1'",
        "--no-history",
    )
    assert code == 0
    assert pd.read_csv(out_dir / "runs.csv")["run_id"].tolist() == [runs["fast"]]
    assert not (out_dir / "metric_history.csv").exists()


def test_a_cold_build_of_many_runs_shows_a_progress_bar(runs, capsys, monkeypatch) -> None:
    monkeypatch.setattr(progress, "THRESHOLD", 2)
    monkeypatch.setattr(index_module, "_CHUNK", 1)
    monkeypatch.setenv("GITTRACK_PROGRESS", "1")
    code, _, err = run_cli(capsys, "search", "--csv")
    assert code == 0
    assert "reading runs: 3/3 [" in err


def test_no_progress_bar_when_stderr_is_not_a_terminal(runs, capsys, monkeypatch) -> None:
    monkeypatch.setattr(progress, "THRESHOLD", 2)
    code, _, err = run_cli(capsys, "search", "--csv")
    assert code == 0 and err == ""
