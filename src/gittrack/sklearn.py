"""``gittrack.sklearn``: scikit-learn models in runs and the registry, as ``mlflow.sklearn``.

``log_model`` saves the estimator in MLflow's model format (``MLmodel`` with the
``python_function`` and ``sklearn`` flavors, requirements, signature) into the active run's
artifacts, and with ``registered_model_name`` registers it as a new version. ``load_model``
takes the same URIs as ``gittrack.pyfunc.load_model``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gittrack.models import sklearn_flavor
from gittrack.models.model_format import ModelInfo
from gittrack.models.signature import ModelSignature
from gittrack.pyfunc import LoggedModelInfo, log_saved_model

FLAVOR_NAME = sklearn_flavor.FLAVOR_NAME
SERIALIZATION_FORMATS = sklearn_flavor.SERIALIZATION_FORMATS
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
DEFAULT_ARTIFACT_PATH = "model"

__all__ = ["LoggedModelInfo", "autolog", "load_model", "log_model", "save_model"]


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
) -> ModelInfo:
    """Log ``sk_model`` into the active run (one is started when none is) under ``name``.

    ``name`` is MLflow 3's spelling of ``artifact_path``; either may be given (default
    ``"model"``). With ``registered_model_name`` the logged model is registered as a new
    version of that model, which is created if needed. ``signature`` and ``input_example``
    are stored in ``MLmodel`` as MLflow stores them, and ``predict`` enforces the signature.

    Returns:
        The ``ModelInfo``: ``model_id`` (``models:/<model_id>`` loads the model),
        ``model_uri`` (``runs:/<run_id>/<name>``), ``registered_model_version`` when it
        registered. ``gittrack.last_logged_model()`` names the same model.

    Raises:
        InvalidInputError: both ``name`` and ``artifact_path`` given and different, or a bad
            serialization format, signature or input example (nothing is logged).
    """

    def save(local: Path, run: str, where: str) -> ModelInfo:
        return sklearn_flavor.save_model(
            sk_model,
            local,
            serialization_format=serialization_format,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            metadata=metadata,
            run_id=run,
            artifact_path=where,
            pyfunc_predict_fn=pyfunc_predict_fn,
            skops_trusted_types=skops_trusted_types,
        )

    return log_saved_model(
        save,
        artifact_path=artifact_path,
        name=name,
        run_id=run_id,
        registered_model_name=registered_model_name,
    )


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
        disable=disable,
        silent=silent,
        max_tuning_runs=max_tuning_runs,
        serialization_format=serialization_format,
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags=extra_tags,
    )
