"""MLflow's scikit-learn autolog pipeline example (``examples/mlflow/``), changed only in its
imports, runs on gittrack in a fresh repository and logs what MLflow logs for it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SRC, git, make_repo, tree_fingerprint

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "mlflow"
SCRIPT = "sklearn_autolog_pipeline.py"
HELPER = "sklearn_autolog_utils.py"


def _run(script: Path, cwd: Path, env: dict[str, str]) -> dict:
    """Run the example; its printed sections (params, metrics, tags, artifacts) and run id."""
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    head, *sections = proc.stdout.split("\n---------- logged ")
    found = {"run_id": head.strip().rsplit(" ", 1)[-1]}
    for section in sections:
        name, _, body = section.partition(" ----------\n")
        found[name] = ast.literal_eval(body.strip())
    return found


def _as_mlflow(tmp_path: Path) -> Path:
    """The example with MLflow's imports put back, in a directory of its own."""
    folder = tmp_path / "as_mlflow"
    folder.mkdir()
    for name in (SCRIPT, HELPER):
        text = (EXAMPLES / name).read_text()
        text = text.replace("import gittrack as mlflow", "import mlflow")
        text = text.replace("from gittrack.tracking import", "from mlflow.tracking import")
        (folder / name).write_text(text)
    return folder / SCRIPT


def test_the_example_differs_from_mlflows_only_in_its_imports() -> None:
    lines = (EXAMPLES / SCRIPT).read_text().splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert "import gittrack as mlflow" in imports
    assert "from sklearn_autolog_utils import fetch_logged_data" in imports
    assert not any(
        "gittrack" in line for line in lines if line not in imports and not line.startswith("#")
    )


def test_the_autolog_pipeline_example_logs_what_mlflow_logs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "project")
    before = tree_fingerprint(repo)
    ours = _run(EXAMPLES / SCRIPT, repo, {"PYTHONPATH": str(SRC)})

    assert len(ours["run_id"]) == 32
    assert git(repo, "ls-tree", "-r", "--name-only", "gittrack").count(ours["run_id"]) > 0
    assert ours["params"]["lr__fit_intercept"] == "True"
    assert ours["metrics"]["training_r2_score"] == pytest.approx(1.0)
    assert ours["tags"] == {
        "estimator_class": "sklearn.pipeline.Pipeline",
        "estimator_name": "Pipeline",
    }
    assert {"estimator.html", "model/MLmodel", "model/model.pkl"} <= set(ours["artifacts"])
    assert tree_fingerprint(repo) == before

    pytest.importorskip("mlflow")
    theirs = _run(
        _as_mlflow(tmp_path),
        tmp_path,
        {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db", "PYTHONPATH": ""},
    )
    assert ours["params"] == theirs["params"]
    assert set(ours["metrics"]) == set(theirs["metrics"])
    for key, value in theirs["metrics"].items():
        assert ours["metrics"][key] == pytest.approx(value, abs=1e-9), key
    assert ours["tags"] == theirs["tags"]
    # MLflow 3 keeps the model as a logged model, outside the run's artifacts.
    assert set(theirs["artifacts"]) <= set(ours["artifacts"])
