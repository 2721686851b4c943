"""``gittrack.pyfunc``: load any saved model by URI and predict, as ``mlflow.pyfunc`` does.

``load_model`` takes ``models:/Name/3``, ``models:/Name/Production``, ``models:/Name@alias``,
``models:/Name/latest``, ``runs:/<run_id>/<path>``, a local directory or a ``file://`` URI.

Custom models subclass ``PythonModel``; ``save_model``/``log_model`` store them with their
``artifacts`` in MLflow's format (see :mod:`gittrack.models.python_model`). ``log_saved_model``
is the one path by which every flavor's ``log_model`` puts a model into a run and registers it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gittrack.errors import GittrackError, InvalidInputError
from gittrack.models import python_model as _python_model
from gittrack.models.model_format import ModelInfo
from gittrack.models.pyfunc_model import PyFuncModel
from gittrack.models.pyfunc_model import load_model as _load_local
from gittrack.models.python_model import PythonModel, PythonModelContext
from gittrack.models.signature import ModelSignature
from gittrack.tracking import model_uris, validation

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

__all__ = [
    "LoggedModelInfo",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "local_model_dir",
    "log_model",
    "save_model",
]

DEFAULT_ARTIFACT_PATH = "model"


LoggedModelInfo = ModelInfo
"""Former name of what ``log_model`` returns, kept for existing imports."""


def load_model(
    model_uri: str | os.PathLike[str],
    suppress_warnings: bool = False,
    dst_path: str | os.PathLike[str] | None = None,
    model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> PyFuncModel:
    """Load the model ``model_uri`` names as a ``PyFuncModel`` with one ``predict``.

    Args:
        model_uri: ``models:/``, ``runs:/``, a local directory or a ``file://`` URI.
        suppress_warnings: accepted for MLflow compatibility.
        dst_path: where a run's artifacts are copied (default: a cache or temporary directory).
        model_config: overrides of the keys a custom ``PythonModel`` saved in its
            ``model_config``: a mapping or a YAML/JSON file.

    Returns:
        The loaded model.

    Raises:
        NotFoundError: the URI names no model; InvalidInputError: the flavor is unsupported.
    """
    return _load_local(local_model_dir(model_uri, dst_path), model_config)


def save_model(
    path: str | os.PathLike[str],
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    mlflow_model: Any = None,
    python_model: Any = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    extra_pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    streamable: bool | None = None,
    resources: Any = None,
    auth_policy: Any = None,
    uv_project_path: Any = None,
    uv_groups: Any = None,
    uv_extras: Any = None,
) -> ModelInfo:
    """Save a custom ``python_model`` as an MLflow-format model directory at ``path``.

    ``artifacts`` map names to local paths, ``file://``, ``runs:/`` or ``models:/`` URIs
    (resolved in the tracking repository); each is copied into the model. The other
    arguments are those of :func:`gittrack.models.python_model.save_model`; MLflow's
    ``conda_env``, ``mlflow_model``, ``infer_code_paths``, ``streamable``, ``resources``,
    ``auth_policy`` and ``uv_*`` are accepted and ignored.

    Returns:
        The saved model's ``ModelInfo``.

    Raises:
        InvalidInputError: ``loader_module``/``data_path`` models, a bad ``python_model`` or
            a missing artifact; ConflictError: ``path`` exists and is not empty. Nothing is
            written when either is raised.
    """
    _check_custom_model_only(loader_module, data_path, python_model)
    return _python_model.save_model(
        path,
        python_model,
        artifacts=artifacts,
        fetch_artifact=_fetch_artifact,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        code_paths=code_paths,
        model_config=model_config,
        metadata=metadata,
    )


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    infer_code_paths: bool = False,
    conda_env: Any = None,
    python_model: Any = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    await_registration_for: int | None = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    extra_pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
    **_ignored: Any,
) -> LoggedModelInfo:
    """Log a custom ``python_model`` into the active run (one is started when none is).

    ``name`` is MLflow 3's spelling of ``artifact_path`` (default ``"model"``). The artifacts
    are copied into the model directory, so the run holds everything the model needs. With
    ``registered_model_name`` the model is registered as a new version.

    Returns:
        The ``LoggedModelInfo`` (``model_uri`` is ``runs:/<run_id>/<name>``).

    Raises:
        InvalidInputError: as ``save_model``, or both ``name`` and ``artifact_path`` given.
    """
    _check_custom_model_only(loader_module, data_path, python_model)

    def save(local: Path, run: str, where: str) -> ModelInfo:
        return _python_model.save_model(
            local,
            python_model,
            artifacts=artifacts,
            fetch_artifact=_fetch_artifact,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            code_paths=code_paths,
            model_config=model_config,
            metadata=metadata,
            run_id=run,
            artifact_path=where,
        )

    return log_saved_model(
        save,
        artifact_path=artifact_path,
        name=name,
        run_id=run_id,
        registered_model_name=registered_model_name,
    )


def log_saved_model(
    save: Callable[[Path, str, str], ModelInfo],
    *,
    artifact_path: str | None,
    name: str | None,
    run_id: str | None,
    registered_model_name: str | None,
) -> LoggedModelInfo:
    """Save a model into a scratch directory, log it as ``name`` of a run, maybe register it.

    Args:
        save: writes the model: ``save(directory, run_id, artifact_path)``.
        artifact_path: the deprecated spelling of ``name``.
        name: the model's path in the run's artifacts (default ``"model"``).
        run_id: the run to log into; default the active run, started when there is none.
        registered_model_name: register the logged model as a new version of this model.

    Returns:
        The ``LoggedModelInfo`` of the logged model.

    Raises:
        InvalidInputError: ``name`` and ``artifact_path`` differ, or the path is invalid.
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
        info = save(local, run_id, where)
        client.log_artifacts(run_id, local, where)
    model_uri = f"runs:/{run_id}/{where}"
    version = None
    if registered_model_name is not None:
        version = int(fluent.register_model(model_uri, registered_model_name).version)
    fluent.record_logged_model(info.model_id, where, run_id)
    return dataclasses.replace(
        info, path=model_uri, model_uri=model_uri, registered_model_version=version
    )


def _check_custom_model_only(
    loader_module: str | None, data_path: str | None, python_model: Any
) -> None:
    if loader_module is not None or data_path is not None:
        raise InvalidInputError(
            "loader_module/data_path models are not supported: pass python_model= (a "
            "gittrack.pyfunc.PythonModel instance or a function of one argument)"
        )
    if python_model is None:
        raise InvalidInputError(
            "python_model is required: a gittrack.pyfunc.PythonModel instance or a function "
            "of one argument"
        )


def _fetch_artifact(uri: str, scratch: Path) -> Path:
    """Copy the artifact a ``runs:/`` or ``models:/`` URI names into ``scratch``."""
    from gittrack.models.resolve import resolve_model_uri

    return resolve_model_uri(uri, _tracking_repository(), scratch).path


def local_model_dir(
    model_uri: str | os.PathLike[str], dst_path: str | os.PathLike[str] | None = None
) -> Path:
    """The local directory of the model ``model_uri`` names.

    Registry and run URIs are resolved in the tracking repository of the module-level API
    (``set_tracking_uri``, else the repository around the working directory). When the model
    is a pickle committed by someone other than the local git user (a local directory is
    traced through the run its ``MLmodel`` names), an ``UntrustedPickleWarning`` names the
    run, the commit and its author.
    """
    from gittrack.models.resolve import local_path, resolve_model_uri

    text = os.fspath(model_uri)
    if not (model_uris.is_runs_uri(text) or model_uris.is_models_uri(text)):
        path = local_path(text)
        _warn_if_untrusted(path)
        return path
    repository = _tracking_repository()
    resolved = resolve_model_uri(text, repository, dst_path)
    _warn_if_untrusted(
        resolved.path, repository, resolved.run_id, resolved.artifact_path, resolved.tree
    )
    return resolved.path


def _tracking_repository() -> TrackingRepository:
    from gittrack import fluent
    from gittrack.tracking.repository import open_repository

    return open_repository(fluent.get_tracking_uri())


def _warn_if_untrusted(
    model_dir: Path,
    repository: TrackingRepository | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tree: str | None = None,
) -> None:
    """Warn before a pickle someone else committed is loaded (see ``untrusted_pickle_notice``).
    A local directory is traced through the run its ``MLmodel`` records; one whose origin
    cannot be read loads without a warning (its loader reports what is wrong with it)."""
    from gittrack.models import resolve

    try:
        if not resolve.is_pickle_based(model_dir):
            return
        if run_id is None:
            recorded = resolve.recorded_run(model_dir)
            if recorded is None:
                return
            run_id, artifact_path = recorded
        repository = repository or _tracking_repository()
        notice = resolve.untrusted_pickle_notice(
            repository, model_dir, run_id, artifact_path or "", tree
        )
    except GittrackError:
        return
    if notice:
        warnings.warn(notice, resolve.UntrustedPickleWarning, stacklevel=4)
