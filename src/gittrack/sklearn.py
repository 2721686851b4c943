"""``gittrack.sklearn``: scikit-learn models in runs and the registry, as ``mlflow.sklearn``.

``log_model`` saves the estimator in MLflow's model format (``MLmodel`` with the
``python_function`` and ``sklearn`` flavors, requirements, signature) into the active run's
artifacts, and with ``registered_model_name`` registers it as a new version. ``load_model``
takes the same URIs as ``gittrack.pyfunc.load_model``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gittrack.errors import InvalidInputError
from gittrack.models import sklearn_flavor
from gittrack.models.model_format import ModelInfo
from gittrack.models.signature import ModelSignature
from gittrack.tracking import validation

FLAVOR_NAME = sklearn_flavor.FLAVOR_NAME
SERIALIZATION_FORMATS = sklearn_flavor.SERIALIZATION_FORMATS
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
DEFAULT_ARTIFACT_PATH = "model"

__all__ = ["LoggedModelInfo", "autolog", "load_model", "log_model", "save_model"]


@dataclass(frozen=True)
class LoggedModelInfo(ModelInfo):
    """What ``log_model`` produced; ``registered_model_version`` is set when it registered."""

    registered_model_version: int | None = None


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    code_paths: Any = None,
    mlflow_model: Any = None,
    serialization_format: str = sklearn_flavor.DEFAULT_SERIALIZATION_FORMAT,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: Mapping[str, Any] | None = None,
    *,
    skops_trusted_types: Iterable[str] | None = None,
) -> ModelInfo:
    """Save ``sk_model`` as an MLflow-format model directory at ``path`` (a local path)."""
    return sklearn_flavor.save_model(
        sk_model,
        path,
        serialization_format=serialization_format,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        metadata=metadata,
        pyfunc_predict_fn=pyfunc_predict_fn,
        skops_trusted_types=skops_trusted_types,
    )


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Any = None,
    serialization_format: str = sklearn_flavor.DEFAULT_SERIALIZATION_FORMAT,
    registered_model_name: str | None = None,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    await_registration_for: int | None = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    skops_trusted_types: Iterable[str] | None = None,
    run_id: str | None = None,
    **_ignored: Any,
) -> LoggedModelInfo:
    """Log ``sk_model`` into the active run (one is started when none is) under ``name``.

    ``name`` is MLflow 3's spelling of ``artifact_path``; either may be given (default
    ``"model"``). With ``registered_model_name`` the logged model is registered as a new
    version of that model, which is created if needed.
    """
    from gittrack import fluent
    from gittrack.client import Client

    if artifact_path and name and artifact_path != name:
        raise InvalidInputError(
            f"log_model got artifact_path={artifact_path!r} and name={name!r}: give one of them"
        )
    where = validation.check_artifact_path(name or artifact_path or DEFAULT_ARTIFACT_PATH)
    if not where:
        raise InvalidInputError("log_model needs a non-empty name (artifact path) for the model")
    if run_id is None:
        active = fluent.active_run() or fluent.start_run()
        run_id = active.info.run_id
    client = Client(fluent.get_tracking_uri())
    with tempfile.TemporaryDirectory(prefix="gittrack-model-") as scratch:
        local = Path(scratch) / "model"
        info = sklearn_flavor.save_model(
            sk_model,
            local,
            serialization_format=serialization_format,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            metadata=metadata,
            run_id=run_id,
            artifact_path=where,
            pyfunc_predict_fn=pyfunc_predict_fn,
            skops_trusted_types=skops_trusted_types,
        )
        client.log_artifacts(run_id, local, where)
    model_uri = f"runs:/{run_id}/{where}"
    version = None
    if registered_model_name is not None:
        from gittrack.registry.fluent import register_model

        version = int(register_model(model_uri, registered_model_name).version)
    values = {f.name: getattr(info, f.name) for f in fields(ModelInfo)}
    values.update(path=model_uri, model_uri=model_uri)
    return LoggedModelInfo(**values, registered_model_version=version)


def load_model(
    model_uri: str | os.PathLike[str], dst_path: str | os.PathLike[str] | None = None
) -> Any:
    """The scikit-learn estimator ``model_uri`` names (same URIs as ``pyfunc.load_model``)."""
    from gittrack.pyfunc import local_model_dir

    return sklearn_flavor.load_model(local_model_dir(model_uri, dst_path))


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = None,
    log_post_training_metrics: bool = True,
    serialization_format: str = sklearn_flavor.DEFAULT_SERIALIZATION_FORMAT,
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> None:
    """Log params, training metrics, tags and the model on every scikit-learn ``fit``.

    See :mod:`gittrack.autologging.sklearn`; ``disable=True`` restores the original methods.
    """
    from gittrack.autologging import sklearn as sklearn_autolog

    sklearn_autolog.autolog(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        log_datasets=log_datasets,
        disable=disable,
        silent=silent,
        max_tuning_runs=max_tuning_runs,
        serialization_format=serialization_format,
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags=extra_tags,
    )
