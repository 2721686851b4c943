"""The registry's mutable metadata on the tracking branch (DESIGN §2).

``models/<name>/model.yaml`` holds a registered model's description and tags;
``models/<name>/versions/<N>.yaml`` one version's source, run, description and tags. What a
version *is* (its number, its commit, its stage and aliases) lives in the tags; these files hold
what can be edited afterwards. Every document is validated against its schema on the way out
and on the way in.
"""

from __future__ import annotations

from typing import Any

from gittrack.store import layout
from gittrack.store.branch import BranchSnapshot
from gittrack.store.codecs import dump_yaml, load_yaml
from gittrack.store.schemas import check_outgoing, check_stored

MODEL_FILE = "model.yaml"
VERSIONS_DIR = "versions"


def model_path(name: str) -> str:
    return f"{layout.model_dir(name)}/{MODEL_FILE}"


def versions_path(name: str) -> str:
    return f"{layout.model_dir(name)}/{VERSIONS_DIR}"


def version_path(name: str, number: int) -> str:
    return f"{versions_path(name)}/{number}.yaml"


def read_model(snap: BranchSnapshot, name: str) -> dict[str, Any] | None:
    """``model.yaml`` of ``name`` at ``snap``, or None when there is none."""
    where = model_path(name)
    raw = snap.read(where)
    if raw is None:
        return None
    doc = load_yaml(raw, where)
    check_stored(doc, "registered_model", where)
    return doc


def read_version(snap: BranchSnapshot, name: str, number: int) -> dict[str, Any] | None:
    """``versions/<N>.yaml`` of ``name`` at ``snap``, or None when there is none."""
    where = version_path(name, number)
    raw = snap.read(where)
    if raw is None:
        return None
    doc = load_yaml(raw, where)
    check_stored(doc, "model_version", where)
    return doc


def version_numbers(snap: BranchSnapshot, name: str) -> list[int]:
    """Numbers of the version files of ``name`` (registered or only reserved)."""
    numbers = []
    for entry in snap.listdir(versions_path(name)):
        stem, dot, suffix = entry.name.partition(".")
        if dot and suffix == "yaml" and stem.isdigit() and not entry.is_tree:
            numbers.append(int(stem))
    return sorted(numbers)


def model_names(snap: BranchSnapshot) -> list[str]:
    """Every model with a ``model.yaml``; names may contain ``/``, so the tree is walked."""
    names = []
    for rel, _entry in snap.walk(layout.MODELS_DIR):
        if rel == MODEL_FILE or rel.endswith(f"/{MODEL_FILE}"):
            names.append(rel[: -len(MODEL_FILE)].rstrip("/"))
    return sorted(n for n in names if n)


def encode_model(doc: dict[str, Any]) -> bytes:
    check_outgoing(doc, "registered_model", model_path(doc["name"]))
    return dump_yaml(doc)


def encode_version(doc: dict[str, Any]) -> bytes:
    check_outgoing(doc, "model_version", version_path(doc["name"], doc["version"]))
    return dump_yaml(doc)
