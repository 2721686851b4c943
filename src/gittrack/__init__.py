"""gittrack: experiment tracking and a model registry inside your own git repository.

``import gittrack as mlflow`` runs MLflow-style scripts: runs are committed to the
``gittrack`` branch of the repository you work in.
"""

from __future__ import annotations

import importlib
from typing import Any

from gittrack import entities, errors, exceptions
from gittrack._version import __version__ as __version__
from gittrack.client import Client
from gittrack.entities import Experiment, Metric, Param, Run, RunTag, ViewType
from gittrack.errors import GittrackError, MlflowException
from gittrack.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_registry_uri,
    get_run,
    get_tracking_uri,
    is_tracking_uri_set,
    last_active_run,
    last_logged_model,
    load_table,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    register_model,
    search_experiments,
    search_model_versions,
    search_registered_models,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_registry_uri,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

MlflowClient = Client


def _mlflow_client_paths() -> None:
    """Bind the client under MLflow's module paths, ``gittrack.tracking.MlflowClient`` and
    ``gittrack.tracking.client.MlflowClient``: the tracking domain may not import the client
    (DESIGN §7), so the root does it, as names only."""
    import sys
    import types

    import gittrack.tracking as tracking

    module = types.ModuleType(
        "gittrack.tracking.client", "MLflow's module path for the client: gittrack.Client."
    )
    module.MlflowClient = Client  # type: ignore[attr-defined]
    module.__all__ = ["MlflowClient"]  # type: ignore[attr-defined]
    sys.modules.setdefault("gittrack.tracking.client", module)
    tracking.client = sys.modules["gittrack.tracking.client"]  # type: ignore[attr-defined]
    tracking.MlflowClient = Client  # type: ignore[attr-defined]


_mlflow_client_paths()

# Flavor and registry modules pull in scikit-learn or pandas: loaded on first attribute access.
_LAZY_MODULES = {"sklearn", "pyfunc", "models", "registry", "query", "types", "utils", "data"}
_LAZY_ATTRIBUTES = {
    "autolog": "gittrack.autologging",
    "compare_runs": "gittrack.query.compare",
    "evaluate": "gittrack.evaluation",
}


def __getattr__(name: str) -> Any:
    target = f"gittrack.{name}" if name in _LAZY_MODULES else _LAZY_ATTRIBUTES.get(name)
    if target is None:
        raise AttributeError(f"module 'gittrack' has no attribute {name!r}")
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name != target:
            raise
        raise AttributeError(f"module 'gittrack' has no attribute {name!r}") from exc
    return module if name in _LAZY_MODULES else getattr(module, name)


__all__ = [
    "ActiveRun",
    "Client",
    "Experiment",
    "GittrackError",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "Param",
    "Run",
    "RunTag",
    "ViewType",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "entities",
    "errors",
    "exceptions",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "load_table",
    "register_model",
    "search_experiments",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
