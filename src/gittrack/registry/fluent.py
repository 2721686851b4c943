"""``gittrack.register_model``: register a logged model, creating the name when needed."""

from __future__ import annotations

import contextlib
from typing import Any

from gittrack.entities import ModelVersion
from gittrack.errors import ConflictError


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int | None = None,
    *,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register the model at ``model_uri`` (``runs:/<run_id>/<path>``, ``models:/...`` or a
    path) as a new version of ``name``, creating the registered model if it does not exist.

    ``await_registration_for`` is accepted for MLflow compatibility: registration is immediate.
    """
    from gittrack import fluent
    from gittrack.client import Client

    client = Client(fluent.get_tracking_uri())
    # It may exist already, or another process may create it a moment before we do.
    with contextlib.suppress(ConflictError):
        client.create_registered_model(name)
    return client.create_model_version(name, model_uri, tags=tags)
