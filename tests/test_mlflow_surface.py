"""MLflow's module paths and names that scripts import (issue 11 item 4), against MLflow itself.

Each scenario runs under gittrack (in a git repository) and under the installed MLflow on a
sqlite store, and the normalised results are compared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gittrack


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store of its own; its fluent state is left clean."""
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")


def _module(package: Any, path: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{path}")


def _both(real_mlflow: Any, scenario: Callable[[Any], Any]) -> tuple[Any, Any]:
    return scenario(gittrack), scenario(real_mlflow)


# ----------------------------------------------------------------- exceptions
def _error_codes_scenario(ml: Any) -> dict[str, Any]:
    exceptions = _module(ml, "exceptions")
    ml.create_experiment("twice")
    caught = {}
    calls = {
        "duplicate experiment": lambda: ml.create_experiment("twice"),
        "missing run": lambda: ml.get_run("0" * 32),
        "missing model": lambda: (
            _module(ml, "tracking.client").MlflowClient().get_registered_model("nope")
        ),
    }
    for name, call in calls.items():
        with pytest.raises(exceptions.MlflowException) as info:
            call()
        caught[name] = (info.value.error_code, info.value.get_http_status_code())
    return caught


def test_mlflow_exception_carries_mlflow_error_codes_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _error_codes_scenario)
    assert ours == theirs


def test_the_exception_classes_mlflow_scripts_catch_import_and_catch_gittrack_errors() -> None:
    from gittrack import errors, exceptions

    mlflow_exceptions = pytest.importorskip("mlflow.exceptions")
    for name in exceptions.__all__:
        assert hasattr(mlflow_exceptions, name), name
        assert issubclass(getattr(exceptions, name), exceptions.MlflowException)
    assert exceptions.MlflowException is errors.GittrackError
    assert issubclass(exceptions.InvalidUrlException, errors.InvalidInputError)


def test_a_script_may_raise_mlflow_exception_with_an_error_code() -> None:
    from gittrack.exceptions import MlflowException

    error = MlflowException("bad value", error_code="INVALID_PARAMETER_VALUE")
    assert (error.message, error.error_code, error.get_http_status_code()) == (
        "bad value",
        "INVALID_PARAMETER_VALUE",
        400,
    )


# ------------------------------------------------------------ module paths
def test_mlflow_client_imports_from_tracking_client_and_is_the_client(repo: Path) -> None:
    from gittrack.tracking.client import MlflowClient

    assert MlflowClient is gittrack.Client
    experiment_id = MlflowClient().create_experiment("from-module-path")
    assert gittrack.get_experiment(experiment_id).name == "from-module-path"


def test_mlflow_tag_constants_have_mlflow_values() -> None:
    ours = _module(gittrack, "utils.mlflow_tags")
    theirs = pytest.importorskip("mlflow.utils.mlflow_tags")
    names = [name for name in dir(ours) if name.startswith("MLFLOW_")]
    assert {"MLFLOW_RUN_NAME", "MLFLOW_PARENT_RUN_ID", "MLFLOW_GIT_COMMIT"} <= set(names)
    assert {n: getattr(ours, n) for n in names} == {n: getattr(theirs, n) for n in names}


def test_the_tags_gittrack_writes_are_named_by_the_tag_constants(repo: Path) -> None:
    from gittrack.utils import mlflow_tags

    with gittrack.start_run(run_name="outer") as outer:
        with gittrack.start_run(run_name="inner", nested=True) as inner:
            pass
    tags = gittrack.get_run(inner.info.run_id).data.tags
    assert tags[mlflow_tags.MLFLOW_RUN_NAME] == "inner"
    assert tags[mlflow_tags.MLFLOW_PARENT_RUN_ID] == outer.info.run_id
    assert mlflow_tags.MLFLOW_GIT_COMMIT in tags
