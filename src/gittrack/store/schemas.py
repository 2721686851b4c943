"""JSON Schemas of the stored documents, loaded from the package (or the source tree)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gittrack.errors import CorruptDataError, InvalidInputError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def schemas_dir() -> Path:
    """``gittrack/schemas`` inside an installed wheel, else ``schemas/`` of the source tree."""
    for candidate in (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent.parent / "schemas"):
        if (candidate / "meta.schema.json").is_file():
            return candidate
    raise FileNotFoundError("gittrack's JSON schemas are missing from the installation")


@cache
def validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = json.loads((schemas_dir() / f"{kind}.schema.json").read_text())
    return Draft202012Validator(schema)


def _non_string_key(doc: Any, path: str = "") -> str | None:
    """The field holding the first key that is not a string (YAML reads ``1: x`` with an int
    key, which no JSON Schema can see), or None."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if type(key) is not str:
                return f"{path or '(document)'}: key {key!r} is not a string"
            found = _non_string_key(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for position, item in enumerate(doc):
            found = _non_string_key(item, f"{path}.{position}" if path else str(position))
            if found is not None:
                return found
    return None


def problems(doc: Any, kind: str) -> list[str]:
    """Every schema violation of ``doc`` as 'field: message', most specific first."""
    key_problem = _non_string_key(doc)
    if key_problem is not None:
        return [key_problem]
    found = []
    for error in sorted(validator(kind).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        field = ".".join(str(p) for p in error.absolute_path) or "(document)"
        found.append(f"{field}: {error.message}")
    return found


@cache
def _fast_check(kind: str):
    """A compiled validator (fastjsonschema: ~5x faster than jsonschema), or None.

    The schemas only use keywords that draft-07 shares with 2020-12, so they compile as
    draft-07. On failure, ``problems`` (jsonschema) produces the message, so errors read the
    same whichever validator found them.
    """
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover - it is a dependency; degrade to jsonschema
        return None
    schema = json.loads((schemas_dir() / f"{kind}.schema.json").read_text())
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def _is_valid(doc: Any, kind: str) -> bool:
    check = _fast_check(kind)
    if check is None:
        return validator(kind).is_valid(doc)
    try:
        check(doc)
    except Exception:
        return False
    return True


def check_stored(doc: Any, kind: str, where: str) -> None:
    """Validate a document read from the branch; raise naming the file and field."""
    if _is_valid(doc, kind) and _non_string_key(doc) is None:
        return
    found = problems(doc, kind) or ["(document): does not match its schema"]
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    raise CorruptDataError(f"{where}: {found[0]}{more}")


def check_outgoing(doc: Any, kind: str, where: str) -> None:
    """Validate a document before it is written; nothing is written when it fails."""
    if _is_valid(doc, kind):
        return
    found = problems(doc, kind) or ["(document): does not match its schema"]
    raise InvalidInputError(f"refusing to write {where}: {found[0]}")
