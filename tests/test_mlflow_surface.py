"""MLflow's module paths and names that scripts import (issue 11 item 4), against MLflow itself.

Each scenario runs under gittrack (in a git repository) and under the installed MLflow on a
sqlite store, and the normalised results are compared.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gittrack


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store of its own; its fluent state is left clean.

    MLflow's ``set_experiment`` keeps the experiment in a global and in the environment
    (``MLFLOW_EXPERIMENT_ID``), which gittrack reads too: both are forgotten afterwards.
    """
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


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


# ------------------------------------------------------------ fluent functions
def _experiment_tags_scenario(ml: Any) -> dict[str, str]:
    ml.set_experiment("tagged")
    ml.set_experiment_tag("team", "vision")
    ml.set_experiment_tags({"owner": "ana", "team": "nlp"})
    tags = ml.get_experiment_by_name("tagged").tags
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


def test_set_experiment_tags_tag_the_active_experiment_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _experiment_tags_scenario)
    assert ours == theirs == {"team": "nlp", "owner": "ana"}


def _parent_run_scenario(ml: Any) -> tuple[bool, bool, bool]:
    with ml.start_run() as outer:
        with ml.start_run(nested=True) as inner:
            pass
    parent = ml.get_parent_run(inner.info.run_id)
    return (
        parent.info.run_id == outer.info.run_id,
        parent.data.tags["mlflow.runName"] == outer.info.run_name,
        ml.get_parent_run(outer.info.run_id) is None,
    )


def test_get_parent_run_returns_the_parent_or_none_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _parent_run_scenario)
    assert ours == theirs == (True, True, True)


def _asynchronous_logging_scenario(ml: Any) -> dict[str, Any]:
    with ml.start_run() as run:
        returned = {
            "log_param sync": ml.log_param("p", 5),
            "log_metric sync": ml.log_metric("m0", 1.0),
        }
        operations = [
            ml.log_param("q", "x", synchronous=False),
            ml.log_params({"r": 1}, synchronous=False),
            ml.log_metric("m", 0.5, step=2, synchronous=False),
            ml.log_metrics({"n": 2.0}, synchronous=False),
            ml.set_tag("t", "v", synchronous=False),
            ml.set_tags({"u": "w"}, synchronous=False),
        ]
        returned["waits"] = [(type(op).__name__, op.wait()) for op in operations]
        ml.flush_async_logging()
    data = ml.get_run(run.info.run_id).data
    returned["stored"] = (
        data.params,
        data.metrics,
        {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")},
    )
    return returned


def test_asynchronous_logging_returns_operations_whose_wait_works_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _asynchronous_logging_scenario)
    assert ours == theirs
    assert ours["waits"] == [("RunOperations", None)] * 6


def _registry_search_scenario(ml: Any) -> dict[str, Any]:
    client = _module(ml, "tracking.client").MlflowClient()
    with ml.start_run() as run:
        ml.log_text("weights", "model/weights.txt")
    source = f"runs:/{run.info.run_id}/model"
    for name in ("beta", "alpha", "alpine"):
        client.create_registered_model(name)
    for name in ("alpha", "alpha", "beta"):
        client.create_model_version(name, source, run_id=run.info.run_id)
    return {
        "models": [m.name for m in ml.search_registered_models()],
        "filtered": [m.name for m in ml.search_registered_models(filter_string="name LIKE 'alp%'")],
        "first": [m.name for m in ml.search_registered_models(max_results=1)],
        "ordered": [m.name for m in ml.search_registered_models(order_by=["name DESC"])],
        # MLflow's sqlite store numbers versions with int, gittrack with str.
        "versions": sorted(
            (v.name, str(v.version))
            for v in ml.search_model_versions(filter_string="name = 'alpha'")
        ),
        "all versions": len(ml.search_model_versions()),
        "types": (type(ml.search_registered_models()), type(ml.search_model_versions())),
    }


def test_fluent_registry_searches_return_every_match_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _registry_search_scenario)
    ours["types"] = tuple(t is list or issubclass(t, list) for t in ours["types"])
    theirs["types"] = tuple(t is list or issubclass(t, list) for t in theirs["types"])
    assert ours == theirs


def test_the_registry_uri_is_the_tracking_uri_when_unset_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    assert gittrack.get_registry_uri() == gittrack.get_tracking_uri()
    assert real_mlflow.get_registry_uri() == real_mlflow.get_tracking_uri()


def test_the_registry_uri_may_name_the_tracking_repository(repo: Path) -> None:
    gittrack.set_registry_uri(str(repo))
    gittrack.set_registry_uri(f"git+file://{repo}")
    assert gittrack.get_registry_uri() == gittrack.get_tracking_uri()


def test_a_registry_uri_naming_another_place_is_refused_not_ignored(
    repo: Path, tmp_path: Path
) -> None:
    from gittrack.errors import InvalidInputError

    from .conftest import make_repo

    other = make_repo(tmp_path / "other")
    for uri in (str(other), "databricks-uc", "sqlite:///registry.db", str(tmp_path / "none")):
        with pytest.raises(InvalidInputError, match="registry URI"):
            gittrack.set_registry_uri(uri)
    assert gittrack.get_registry_uri() == gittrack.get_tracking_uri()


# -------------------------------------------------------------------- entities
def _run_dictionary_scenario(ml: Any) -> dict[str, Any]:
    with ml.start_run(run_name="dumped") as run:
        ml.log_param("lr", 0.1)
        ml.log_metric("loss", 0.25)
        ml.set_tag("team", "vision")
    stored = ml.get_run(run.info.run_id)
    dumped = stored.to_dictionary()
    dumped["data"]["tags"] = {
        k: v for k, v in dumped["data"]["tags"].items() if k in ("team", "mlflow.runName")
    }
    for volatile in ("artifact_uri", "run_id", "start_time", "end_time", "user_id"):
        assert dumped["info"].pop(volatile) is not None
    return {
        "dictionary": dumped,
        "inputs": (
            stored.inputs.dataset_inputs,
            stored.inputs.model_inputs,
            stored.inputs.to_dictionary(),
        ),
    }


def test_run_to_dictionary_and_inputs_have_mlflow_shape(repo: Path, real_mlflow: Any) -> None:
    ours, theirs = _both(real_mlflow, _run_dictionary_scenario)
    assert ours == theirs
    assert ours["dictionary"]["info"] == {
        "experiment_id": "0",
        "lifecycle_stage": "active",
        "run_name": "dumped",
        "status": "FINISHED",
    }


def test_a_run_dictionary_of_a_live_run_has_no_end_time_and_dumps_as_json(repo: Path) -> None:
    import json

    with gittrack.start_run() as run:
        dumped = gittrack.get_run(run.info.run_id).to_dictionary()
        assert dumped["info"]["end_time"] is None
        assert dumped["info"]["status"] == "RUNNING"
        assert json.loads(json.dumps(dumped)) == dumped
        assert gittrack.active_run().to_dictionary()["info"]["run_id"] == run.info.run_id


def _dataset_scenario(ml: Any) -> dict[str, Any]:
    entities = _module(ml, "entities")
    dataset = entities.Dataset(
        name="wine", digest="a1b2", source_type="local", source='{"uri": "wine.csv"}'
    )
    described = entities.Dataset("wine", "a1b2", "local", "s", schema="{}", profile='{"n": 3}')
    used = entities.DatasetInput(dataset, tags=[entities.InputTag("mlflow.data.context", "train")])
    tag = entities.InputTag(key="k", value="v")
    return {
        "dataset": dataset.to_dictionary(),
        "described": (described.schema, described.profile, described.to_dictionary()),
        "input": used.to_dictionary(),
        "untagged": entities.DatasetInput(dataset).to_dictionary(),
        "fields": (used.dataset.name, [(t.key, t.value) for t in used.tags], tag.key, tag.value),
        "equal": dataset == entities.Dataset("wine", "a1b2", "local", '{"uri": "wine.csv"}'),
    }


def test_dataset_entities_build_and_dump_as_in_mlflow(real_mlflow: Any) -> None:
    ours, theirs = _both(real_mlflow, _dataset_scenario)
    assert ours == theirs


def _client_asynchronous_logging_scenario(ml: Any) -> dict[str, Any]:
    entities = _module(ml, "entities")
    client = _module(ml, "tracking.client").MlflowClient()
    run_id = client.create_run("0").info.run_id
    operations = [
        client.log_metric(run_id, "m", 0.5, step=1, synchronous=False),
        client.log_param(run_id, "p", "x", synchronous=False),
        client.set_tag(run_id, "t", "v", synchronous=False),
        client.log_batch(run_id, params=[entities.Param("q", "1")], synchronous=False),
    ]
    returned = {
        "waits": [(type(op).__name__, op.wait()) for op in operations],
        "sync": (client.log_param(run_id, "s", 2), client.log_metric(run_id, "n", 1.0)),
    }
    client.set_terminated(run_id)
    data = client.get_run(run_id).data
    returned["stored"] = (data.params, data.metrics, data.tags["t"])
    return returned


def test_client_asynchronous_logging_returns_operations_whose_wait_works_as_in_mlflow(
    repo: Path, real_mlflow: Any
) -> None:
    ours, theirs = _both(real_mlflow, _client_asynchronous_logging_scenario)
    assert ours == theirs
    assert ours["waits"] == [("RunOperations", None)] * 4
