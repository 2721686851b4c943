"""``gittrack.pyfunc``: load any saved model by URI and predict, as ``mlflow.pyfunc`` does.

``load_model`` takes ``models:/Name/3``, ``models:/Name/Production``, ``models:/Name@alias``,
``models:/Name/latest``, ``runs:/<run_id>/<path>``, a local directory or a ``file://`` URI.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gittrack.errors import GittrackError
from gittrack.models import uris
from gittrack.models.pyfunc_model import PyFuncModel
from gittrack.models.pyfunc_model import load_model as _load_local

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

__all__ = ["PyFuncModel", "load_model", "local_model_dir"]


def load_model(
    model_uri: str | os.PathLike[str],
    suppress_warnings: bool = False,
    dst_path: str | os.PathLike[str] | None = None,
    model_config: dict[str, Any] | None = None,
) -> PyFuncModel:
    """Load the model ``model_uri`` names as a ``PyFuncModel`` with one ``predict``."""
    return _load_local(local_model_dir(model_uri, dst_path))


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
    if not (uris.is_runs_uri(text) or uris.is_models_uri(text)):
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
