"""Acceptance: the registry tutorial runs as written, GTO and MLflow read what gittrack wrote."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gittrack import Client
from gittrack.models.resolve import resolve_model_uri

from .conftest import git, run_script
from .registry_support import registered, tag_names, user_state

pytest.importorskip("sklearn")

# The registry flow of the tutorial (seeds/001): only the imports are changed, and the made-up
# run id of its first example is replaced by the run that logged ``random_forest_model``.
TUTORIAL = textwrap.dedent(
    """
    import gittrack as mlflow
    from gittrack.tracking import MlflowClient
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.metrics import accuracy_score

    experiment_name = "demo_experiment"
    mlflow.set_experiment(experiment_name)

    data = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=42
    )

    with mlflow.start_run(run_name="random_forest_v1") as first_run:
        params = {"n_estimators": 100, "max_depth": 5, "random_state": 42}
        mlflow.log_params(params)
        model = RandomForestClassifier(**params)
        model.fit(X_train, y_train)
        y_pred = model.predict(X_test)
        acc = accuracy_score(y_test, y_pred)
        mlflow.log_metric("accuracy", acc)
        mlflow.sklearn.log_model(model, "random_forest_model")

    with mlflow.start_run(run_name="rf_prod_candidate"):
        model = RandomForestClassifier(n_estimators=150, max_depth=10)
        model.fit(X_train, y_train)
        acc = accuracy_score(y_test, model.predict(X_test))
        mlflow.log_metric("accuracy", acc)
        mlflow.sklearn.log_model(
            model,
            "model",
            registered_model_name="IrisRF"
        )

    client = MlflowClient()
    run_id = first_run.info.run_id
    model_uri = f"runs:/{run_id}/random_forest_model"
    result = client.create_model_version(
        name="IrisRF",
        source=model_uri,
        run_id=run_id
    )
    print(f"注册成功,版本号:{result.version}")

    client = MlflowClient()
    client.transition_model_version_stage(
        name="IrisRF",
        version=1,
        stage="Staging"
    )
    client.transition_model_version_stage(
        name="IrisRF",
        version=1,
        stage="Production"
    )
    client.update_model_version(
        name="IrisRF",
        version=1,
        description="基线随机森林模型,准确率 0.93"
    )

    import gittrack.pyfunc
    model = mlflow.pyfunc.load_model("models:/IrisRF/Production")
    model_v2 = mlflow.pyfunc.load_model("models:/IrisRF/2")
    prediction = model.predict(X_test[:5])
    print("production", prediction.tolist())
    print("v2", model_v2.predict(X_test[:5]).tolist())
    """
)


def test_the_tutorials_registry_flow_runs_as_written(repo: Path) -> None:
    before = user_state(repo)

    proc = run_script(TUTORIAL, repo)

    assert proc.returncode == 0, proc.stderr
    assert "注册成功,版本号:2" in proc.stdout
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines()[1:])
    assert len(json.loads(lines["production"])) == len(json.loads(lines["v2"])) == 5
    client = Client()
    v1, v2 = client.get_model_version("IrisRF", 1), client.get_model_version("IrisRF", 2)
    assert v1.current_stage == "Production"
    assert v1.description == "基线随机森林模型,准确率 0.93"
    assert v2.source.endswith("/random_forest_model")
    assert [t for t in tag_names(repo) if t.startswith("IrisRF")] == [
        "IrisRF#Production#2",
        "IrisRF#Staging!#3",
        "IrisRF#Staging#1",
        "IrisRF@v1.0.0",
        "IrisRF@v2.0.0",
    ]
    assert user_state(repo) == before


# --------------------------------------------------------------------------- GTO


def _gto(repo: Path, *args: str) -> Any:
    if importlib.util.find_spec("gto") is None:
        pytest.skip("gto is not installed (pip install gto)")
    command = [sys.executable, "-c", "import sys; from gto.cli import app; sys.exit(app())"]
    proc = subprocess.run(
        [*command, *args, "--json"],
        cwd=repo,
        env={**os.environ, "GTO_EMOJIS": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_gto_show_finds_the_versions_and_stages_gittrack_wrote(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=3)
    registered(client, "churn", versions=2)
    registered(client, "old", versions=1)
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.transition_model_version_stage("IrisRF", 2, "Staging")
    client.transition_model_version_stage("IrisRF", 3, "Production")  # archives version 1
    client.set_registered_model_alias("IrisRF", "champion", 3)
    client.transition_model_version_stage("churn", 2, "Staging")
    client.delete_model_version("churn", 1)
    client.delete_registered_model("old")

    overview = _gto(repo, "show")

    assert sorted(overview) == [m.name for m in client.search_registered_models()]
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        shown = overview[model.name]
        assert shown["version"] == f"v{max(int(v.version) for v in versions)}.0.0"
        labels = {v.current_stage: v.version for v in versions if v.current_stage != "None"}
        labels |= {alias: number for alias, number in model.aliases.items()}
        held = {label: v for label, v in shown["stage"].items() if v is not None}
        assert held == {k: f"v{n}.0.0" for k, n in labels.items()}, model.name
        per_version = _gto(repo, "show", model.name)
        assert {v["version"]: sorted(s["stage"] for s in v["stages"]) for v in per_version} == {
            f"v{v.version}.0.0": sorted([v.current_stage] * (v.current_stage != "None") + v.aliases)
            for v in versions
        }, model.name
    assert overview["IrisRF"]["stage"] == {
        "Archived": "v1.0.0",
        "Staging": "v2.0.0",
        "Production": "v3.0.0",
        "champion": "v3.0.0",
    }


# --------------------------------------------------------------------------- MLflow


def test_mlflow_loads_a_model_gittrack_logged_and_predicts_the_same(repo: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (the bench extra)")
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gittrack
    import gittrack.pyfunc
    import gittrack.sklearn

    X, y = load_iris(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    with gittrack.start_run():
        gittrack.sklearn.log_model(
            estimator, name="model", input_example=X.head(3), registered_model_name="Iris"
        )
    model_dir = resolve_model_uri("models:/Iris/1", Client().repository).path

    theirs = mlflow.pyfunc.load_model(str(model_dir))
    ours = gittrack.pyfunc.load_model("models:/Iris/1")

    np.testing.assert_array_equal(theirs.predict(X), ours.predict(X))
    np.testing.assert_array_equal(theirs.predict(X), estimator.predict(X))
    assert theirs.metadata.get_input_schema().input_names() == list(X.columns)
    assert git(repo, "tag", "-l", "Iris*").split() == ["Iris@v1.0.0"]
