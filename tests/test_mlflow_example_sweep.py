"""``examples/mlflow/hyperparameter_sweep.py``: MLflow's nested-run hyperparameter sweep, run
as a user runs it, on gittrack and (the same script with ``import mlflow``) on MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import gittrack

from .conftest import SRC, make_repo, tree_fingerprint

pytest.importorskip("sklearn")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mlflow" / "hyperparameter_sweep.py"
EXPERIMENT = "wine-hyperparameter-sweep"
GITTRACK_IMPORT = "import gittrack as mlflow\n"


def run_sweep(script: Path, cwd: Path, env: dict[str, str]) -> str:
    """Run the sweep script in a fresh interpreter and return its output."""
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def sweep_summary(client: Any) -> dict[str, Any]:
    """The parent, its children and what the parent says is the best, read back through a
    client of either library."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r is not parent]
    by_name = {r.info.run_name: r for r in children}
    best_child = by_name.get(_best_name(children))
    return {
        "parent": (parent.info.run_name, parent.info.status),
        "children": {
            r.info.run_name: (
                r.data.tags["mlflow.parentRunId"] == parent.info.run_id,
                r.info.status,
                r.data.params,
                round(r.data.metrics["val_accuracy"], 12),
            )
            for r in children
        },
        "best_by_parent": {k: v for k, v in parent.data.params.items() if k.startswith("best_")},
        "best_metric_by_parent": round(parent.data.metrics["best_val_accuracy"], 12),
        "best_run_is_the_best_child": parent.data.tags["best_run_id"] == best_child.info.run_id,
        "best_child_params": best_child.data.params,
    }


def _best_name(children: list[Any]) -> str:
    """The highest validation accuracy; on a tie, the first run name (the script's order)."""
    return min(
        children, key=lambda r: (-r.data.metrics["val_accuracy"], r.info.run_name)
    ).info.run_name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


def test_the_sweep_logs_one_child_run_per_configuration_nested_under_the_parent(
    project: Path,
) -> None:
    before = tree_fingerprint(project)
    out = run_sweep(SCRIPT, project, {"PYTHONPATH": str(SRC)})

    summary = sweep_summary(gittrack.MlflowClient(tracking_uri=str(project)))
    assert summary["parent"] == ("sweep", "FINISHED")
    assert len(summary["children"]) == 6
    for nested, status, params, _ in summary["children"].values():
        assert nested and status == "FINISHED"
        assert set(params) == {"n_estimators", "max_depth"}
    assert {(p["n_estimators"], p["max_depth"]) for _, _, p, _ in summary["children"].values()} == {
        (n, d) for n in ("10", "50") for d in ("2", "4", "8")
    }
    assert "6 child runs" in out
    assert tree_fingerprint(project) == before


def test_the_parent_records_the_best_child_found_by_search_runs(project: Path) -> None:
    run_sweep(SCRIPT, project, {"PYTHONPATH": str(SRC)})

    summary = sweep_summary(gittrack.MlflowClient(tracking_uri=str(project)))
    best = summary["best_child_params"]
    assert summary["best_run_is_the_best_child"]
    assert summary["best_by_parent"] == {f"best_{k}": v for k, v in best.items()}
    assert summary["best_metric_by_parent"] == max(c[3] for c in summary["children"].values())


def test_the_script_with_only_its_import_changed_gives_the_same_sweep_on_mlflow(
    project: Path, tmp_path: Path
) -> None:
    mlflow = pytest.importorskip("mlflow")
    source = SCRIPT.read_text()
    assert source.count(GITTRACK_IMPORT) == 1
    mlflow_script = tmp_path / "hyperparameter_sweep_mlflow.py"
    mlflow_script.write_text(source.replace(GITTRACK_IMPORT, "import mlflow\n"))
    store = tmp_path / "mlflow-store"
    store.mkdir()
    uri = f"sqlite:///{store}/m.db"

    run_sweep(SCRIPT, project, {"PYTHONPATH": str(SRC)})
    run_sweep(mlflow_script, store, {"MLFLOW_TRACKING_URI": uri})

    ours = sweep_summary(gittrack.MlflowClient(tracking_uri=str(project)))
    theirs = sweep_summary(mlflow.MlflowClient(tracking_uri=uri))
    assert ours == theirs
