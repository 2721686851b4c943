"""``gittrack.pyfunc``: load any saved model by URI and predict, as ``mlflow.pyfunc`` does.

``load_model`` takes ``models:/Name/3``, ``models:/Name/Production``, ``models:/Name@alias``,
``models:/Name/latest``, ``runs:/<run_id>/<path>``, a local directory or a ``file://`` URI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gittrack.models import uris
from gittrack.models.pyfunc_model import PyFuncModel
from gittrack.models.pyfunc_model import load_model as _load_local

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
    is a pickle that arrived with a branch fetched from a remote, a notice on stderr names the
    run and commit it came from.
    """
    text = os.fspath(model_uri)
    if not (uris.is_runs_uri(text) or uris.is_models_uri(text)):
        from gittrack.models.resolve import local_path

        return local_path(text)
    from gittrack import fluent
    from gittrack.models.resolve import pickle_origin_notice, resolve_model_uri
    from gittrack.tracking.repository import open_repository

    repository = open_repository(fluent.get_tracking_uri())
    resolved = resolve_model_uri(text, repository, dst_path)
    notice = pickle_origin_notice(repository, resolved)
    if notice:
        print(notice, file=sys.stderr)
    return resolved.path
