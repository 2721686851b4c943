"""Parsing of the model URIs: ``runs:/<run_id>/<path>`` and ``models:/...``.

The grammar sits in ``tracking``, below both ``models`` (which loads what a URI names) and
``registry`` (which resolves ``models:/`` names to versions), so neither imports the other
for it (DESIGN §7).

``models:/Name/3`` names a version, ``models:/Name/Production`` the latest version in a stage,
``models:/Name/latest`` the latest version, ``models:/Name@alias`` the version holding an alias, and ``models:/m-<32 hex digits>`` the logged
model with that id (MLflow 3's form, see ``logged_models``).
Model names may contain ``/``, so the last segment decides: digits are a version, ``latest`` is
the latest, anything else a stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gittrack.errors import InvalidInputError

RUNS_SCHEME = "runs:/"
MODELS_SCHEME = "models:/"
MODEL_ID_PREFIX = "m-"
MODEL_ID_PATTERN = re.compile(re.escape(MODEL_ID_PREFIX) + r"[0-9a-f]{32}")
"""A logged model's id: ``m-`` and 32 lowercase hex digits (its model uuid, as MLflow 3)."""


@dataclass(frozen=True)
class RunsUri:
    run_id: str
    path: str


@dataclass(frozen=True)
class ModelsUri:
    """A ``models:/`` URI: exactly one of ``version``, ``stage``, ``alias``, ``latest``."""

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False


def is_runs_uri(uri: str) -> bool:
    return uri.startswith(RUNS_SCHEME)


def is_models_uri(uri: str) -> bool:
    return uri.startswith(MODELS_SCHEME)


def model_id_of(uri: str) -> str | None:
    """The model id a ``models:/<model_id>`` URI names; None for any other URI."""
    if not is_models_uri(uri):
        return None
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    return rest if MODEL_ID_PATTERN.fullmatch(rest) else None


def parse_runs_uri(uri: str) -> RunsUri:
    rest = uri[len(RUNS_SCHEME) :].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidInputError(f"{uri!r} names no run: use runs:/<run_id>/<artifact path>")
    return RunsUri(run_id, path.strip("/"))


def parse_models_uri(uri: str) -> ModelsUri:
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    usage = (
        "use models:/<name>/<version>, models:/<name>/<stage>, models:/<name>/latest "
        "or models:/<name>@<alias>"
    )
    if not rest:
        raise InvalidInputError(f"{uri!r} names no model: {usage}")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if not name or not alias or "/" in alias:
            raise InvalidInputError(f"{uri!r} is not a model URI: {usage}")
        return ModelsUri(name, alias=alias)
    name, _, selector = rest.rpartition("/")
    if not name or not selector:
        raise InvalidInputError(f"{uri!r} is not a model URI: {usage}")
    if selector.isascii() and selector.isdigit():  # int() refuses '²', which isdigit() takes
        if len(selector) > 19:
            raise InvalidInputError(f"{uri[:80]!r}: version {selector[:20]}... is over 2**63-1")
        return ModelsUri(name, version=int(selector))
    if selector.lower() == "latest":
        return ModelsUri(name, latest=True)
    return ModelsUri(name, stage=selector)
