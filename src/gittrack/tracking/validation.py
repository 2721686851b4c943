"""MLflow's rules for keys and values, checked before anything is written (DESIGN §3)."""

from __future__ import annotations

import numbers
import posixpath
import re

from gittrack.errors import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 6000
_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-. /]+")
_valid_keys: set[tuple[str, str]] = set()


def check_key(key: object, kind: str) -> str:
    """A param, metric or tag key, or an artifact path; returns it when it is valid."""
    if (kind, key) in _valid_keys:  # type: ignore[comparison-overlap]
        return key  # type: ignore[return-value]
    if not isinstance(key, str):
        raise InvalidInputError(f"{kind} key {key!r} must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidInputError(f"{kind} key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{kind} key {key[:40]!r}... is {len(key)} characters long; at most {MAX_KEY_LENGTH} are allowed"
        )
    if not _KEY_CHARS.fullmatch(key):
        bad = sorted({c for c in key if not _KEY_CHARS.fullmatch(c)})
        raise InvalidInputError(
            f"{kind} key {key!r} contains {''.join(bad)!r}: only letters, digits, '_', '-', '.', "
            "'/' and space are allowed"
        )
    _check_path_shape(key, f"{kind} key")
    if len(_valid_keys) < 100_000:
        _valid_keys.add((kind, key))
    return key


def _check_path_shape(path: str, what: str) -> None:
    normalized = posixpath.normpath(path)
    if path.startswith("/"):
        raise InvalidInputError(f"{what} {path!r} must not start with '/'")
    if normalized != path.rstrip("/") or normalized == "." or normalized.startswith(".."):
        raise InvalidInputError(
            f"{what} {path!r} must be a normalized relative path (no '..', '.', or '//')"
        )


def check_artifact_path(path: str | None) -> str:
    """A relative path inside the run's artifact directory ('' for its root)."""
    if path is None or path in ("", "."):
        return ""
    if not isinstance(path, str):
        raise InvalidInputError(f"artifact path {path!r} must be a string")
    path = path.replace("\\", "/")
    if path.startswith("/") or path.split("/")[0] == ".." or ".." in path.split("/"):
        raise InvalidInputError(
            f"artifact path {path!r} escapes the run's artifact directory: use a relative path "
            "without '..'"
        )
    return posixpath.normpath(path).strip("/")


def check_string_value(value: object, kind: str, key: str) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInputError(
            f"{kind} {key!r} has a value of {len(text)} characters; at most {MAX_VALUE_LENGTH} are allowed"
        )
    return text


def check_metric_value(value: object, key: str) -> float:
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        return float(value)  # type: ignore[arg-type]
    raise InvalidInputError(
        f"metric {key!r} got value {value!r} of type {type(value).__name__}: metric values must "
        "be numbers (int, float, NaN or ±inf)"
    )


def check_step(step: object, key: str) -> int:
    if step is None:
        return 0
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    raise InvalidInputError(f"metric {key!r} got step {step!r}: a step must be an integer")


def check_timestamp(timestamp: object, key: str) -> int | None:
    if timestamp is None:
        return None
    if isinstance(timestamp, numbers.Integral) and not isinstance(timestamp, bool):
        return int(timestamp)
    raise InvalidInputError(
        f"metric {key!r} got timestamp {timestamp!r}: a timestamp is integer milliseconds"
    )


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidInputError(f"run id {run_id!r} is not 32 lowercase hex digits")
    return run_id
