"""``examples/mlflow/wine_quality_elasticnet.py``: MLflow's ElasticNet wine example on gittrack.

The script runs as a user runs it, in a fresh git repository, and leaves one finished run with
its params and metrics, a registered model version and a model whose signature is enforced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gittrack
from gittrack.errors import InvalidInputError
from gittrack.models import Model

from .conftest import SRC, git, make_repo, tree_fingerprint

pytest.importorskip("sklearn")

import gittrack.pyfunc  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mlflow" / "wine_quality_elasticnet.py"
DATA = EXAMPLE.parent / "data" / "wine.csv"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's repository with an uncommitted edit and an untracked file."""
    path = make_repo(tmp_path / "project")
    (path / "README.md").write_text("edited, not committed\n")
    (path / "scratch.txt").write_text("untracked\n")
    git(path, "status", "--porcelain")  # settle the index's stat data before comparing
    return path


def run_example(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"example failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_example_differs_from_mlflows_only_in_its_imports() -> None:
    source = EXAMPLE.read_text()

    assert "import gittrack as mlflow\n" in source
    assert "import gittrack.sklearn\n" in source
    assert "from gittrack.models import infer_signature\n" in source
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert [line for line in imports if "gittrack" in line] == [
        "import gittrack as mlflow",
        "import gittrack.sklearn",
        "from gittrack.models import infer_signature",
    ]


def test_the_wine_example_logs_a_run_a_registered_version_and_a_signature(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_fingerprint(project)

    proc = run_example(project, "0.1", "0.3")

    assert "Elasticnet model (alpha=0.100000, l1_ratio=0.300000):" in proc.stdout
    after = tree_fingerprint(project)
    # Registering a version adds its GTO tag; nothing else of the user's changes.
    assert after.pop(".git/refs/tags/ElasticnetWineModel@v1.0.0")
    assert after == before
    monkeypatch.chdir(project)
    client = gittrack.Client()
    [run] = client.search_runs(["0"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"alpha": "0.1", "l1_ratio": "0.3"}
    assert set(run.data.metrics) == {"rmse", "mae", "r2"}
    printed_rmse = float(proc.stdout.split("RMSE: ")[1].splitlines()[0])
    assert run.data.metrics["rmse"] == pytest.approx(printed_rmse)

    version = client.get_model_version("ElasticnetWineModel", "1")
    assert version.run_id == run.info.run_id
    assert version.source == f"runs:/{run.info.run_id}/model"
    assert version.model_id is not None

    model = Model.load("models:/ElasticnetWineModel/1")
    features = pd.read_csv(DATA, sep=";").drop(columns=["quality"])
    assert model.get_input_schema().names() == list(features.columns)
    assert model.get_input_schema().input_types() == ["double"] * features.shape[1]
    assert model.model_id == version.model_id


def test_the_registered_wine_model_predicts_and_enforces_its_signature(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_example(project)
    monkeypatch.chdir(project)
    features = pd.read_csv(DATA, sep=";").drop(columns=["quality"]).head(5)
    model = gittrack.pyfunc.load_model("models:/ElasticnetWineModel/1")

    assert np.all(np.isfinite(model.predict(features)))
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) \['proline'\]"):
        model.predict(features.drop(columns=["proline"]))
    with pytest.raises(InvalidInputError, match="column 'alcohol': cannot safely convert"):
        model.predict(features.assign(alcohol="strong"))
