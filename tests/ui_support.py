"""A tracking repository for the web UI tests, made with the real client, and a server for it.

The repository has two code commits (the first-parent history the Commits page plots), a
parent run with a nested child, a run made on a dirty tree (its diff), artifacts of every
previewed kind, a run whose name is markup, a metric that is NaN, and a registered
scikit-learn model with a stage and an alias.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gittrack import Client

from .conftest import git, make_repo

MARKUP_NAME = '<img src=x onerror="window.__xss=1">'
LONG_STEPS = 3000


@dataclass
class UiRepo:
    """The repository and the ids the tests look for."""

    path: Path
    parent: str
    child: str
    dirty: str
    improved: str
    markup: str
    model: str = "iris-classifier"


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _finished_run(client: Client, experiment_id: str, name: str, **kwargs) -> str:
    return client.create_run(experiment_id, run_name=name, **kwargs).info.run_id


def build_ui_repo(root: Path) -> UiRepo:
    """Create the repository under ``root`` (see the module docstring)."""
    path = make_repo(root / "project")
    with _cwd(path):
        client = Client(str(path))
        exp = client.create_experiment("iris")
        parent = _finished_run(client, exp, "baseline")
        client.log_param(parent, "alpha", "0.1")
        client.log_param(parent, "solver", "lbfgs")
        client.log_batch(
            parent,
            metrics=[_metric("loss", 2.0 / (i + 1), i) for i in range(LONG_STEPS)]
            + [_metric("accuracy", 0.80, 0)],
        )
        client.set_tag(parent, "mlflow.note.content", "First try: a <b>plain</b> baseline.")
        client.log_dict(parent, {"alpha": 0.1, "layers": [1, 2]}, "config/params.json")
        client.log_dict(parent, {"alpha": 0.1}, "config/params.yaml")
        client.log_text(parent, "sepal,petal\n5.1,1.4\n4.9,1.3\n", "data/sample.csv")
        client.log_text(parent, "<script>window.__xss=1</script> notes", "notes.txt")
        client.log_image(parent, _image(), "plots/confusion.png")
        child = client.create_run(exp, run_name="fold-1", tags={"mlflow.parentRunId": parent})
        client.log_metric(child.info.run_id, "loss", 0.4, step=0)
        client.set_terminated(child.info.run_id)
        client.set_terminated(parent)

        (path / "train.py").write_text("print('train with a better alpha')\n")
        dirty = _finished_run(client, exp, "dirty-try")
        client.log_param(dirty, "alpha", "0.3")
        client.log_metric(dirty, "loss", 0.3, step=0)
        client.log_metric(dirty, "accuracy", 0.9)
        client.set_terminated(dirty)
        git(path, "commit", "-qam", "better alpha")

        improved = _log_model_run(client, exp)
        markup = _finished_run(client, exp, MARKUP_NAME)
        client.log_param(markup, "alpha", "<b>0.9</b>")
        client.log_metric(markup, "loss", float("nan"))
        client.set_terminated(markup)
    return UiRepo(path, parent, child.info.run_id, dirty, improved, markup)


def _log_model_run(client: Client, experiment_id: str) -> str:
    """A run with a real scikit-learn model, registered, staged and aliased."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gittrack
    import gittrack.sklearn

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    gittrack.set_tracking_uri(client.tracking_uri)
    gittrack.set_experiment(experiment_id=experiment_id)
    with gittrack.start_run(run_name="improved") as run:
        gittrack.log_params({"alpha": "0.5", "solver": "lbfgs"})
        for step in range(50):
            gittrack.log_metric("loss", 1.0 / (step + 2), step=step)
        gittrack.log_metric("accuracy", float(model.score(X, y)))
        gittrack.sklearn.log_model(model, "model")
    client.create_registered_model(UiRepo.model, description="Iris species from four measurements")
    client.create_model_version(UiRepo.model, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.transition_model_version_stage(UiRepo.model, "1", "Staging")
    client.set_registered_model_alias(UiRepo.model, "champion", "1")
    return run.info.run_id


def _metric(key: str, value: float, step: int):
    from gittrack.entities import Metric

    return Metric(key, value, 1_700_000_000_000 + step * 1000, step)


def _image():
    import numpy as np

    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:16, :16] = (200, 30, 30)
    pixels[16:, 16:] = (30, 30, 200)
    return pixels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, port: int | None = None) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the UI server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
