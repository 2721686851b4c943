"""MLflow's rules for keys, tag values, names and free text, checked before anything is
written (DESIGN §3): the one validator every domain calls.

A kind names what is checked and carries MLflow's limit for its value: ``"param"`` (6,000
characters), ``"tag"`` (a run tag, 8,000), ``"experiment tag"`` (20,000),
``"registered model tag"`` and ``"model version tag"`` (100,000). MLflow cuts an over-long param
or run tag value (``MLFLOW_TRUNCATE_LONG_VALUES``, on by default) and refuses any other
over-long value. Keys share one rule whatever their kind: at most 250 characters of letters,
digits, ``_ - . / :`` and space, a normalized relative path. ``tracking/validation.py`` adds
the rules that only runs have (run names, metric values, artifact paths).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Mapping

from gittrack.errors import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 6000  # a param value (MLflow's MAX_PARAM_VAL_LENGTH)
MAX_TAG_VALUE_LENGTH = 8000  # a run tag value (MLflow's MAX_TAG_VAL_LENGTH)
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000  # MLflow's MAX_EXPERIMENT_TAG_VAL_LENGTH
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000  # MLflow's MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
_VALUE_LIMITS = {
    "param": MAX_VALUE_LENGTH,
    "tag": MAX_TAG_VALUE_LENGTH,
    "experiment tag": MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    "registered model tag": MAX_REGISTRY_TAG_VALUE_LENGTH,
    "model version tag": MAX_REGISTRY_TAG_VALUE_LENGTH,
}
_KEY_CHARS = re.compile(r"[/\w.\- :]+")  # MLflow 3 (POSIX): \w is any Unicode letter or digit
# C0 and C1 control characters (NUL, escapes, newlines) and lone surrogates, which UTF-8
# cannot encode: refused in every name (DESIGN §3).
_UNSAFE_IN_NAME = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_valid_keys: set[tuple[str, str]] = set()
# MLflow cuts an over-long param or run tag value to its limit (MLFLOW_TRUNCATE_LONG_VALUES,
# on by default) but refuses an over-long experiment or registry tag value.
_TRUNCATED_KINDS = ("param", "tag")
_logger = logging.getLogger(__name__)


def check_key(key: object, kind: str) -> str:
    """A param, metric or tag key, checked by MLflow's key rule.

    Args:
        key: the key given.
        kind: what it names (``"param"``, ``"metric"``, ``"tag"``, ``"experiment tag"``,
            ``"registered model tag"``...), named in messages.

    Returns:
        The key itself.

    Raises:
        InvalidInputError: not a string, empty, over 250 characters, a character other than
            letters, digits, ``_ - . / :`` and space, or not a normalized relative path.
    """
    if isinstance(key, str) and (kind, key) in _valid_keys:
        return key
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
            "'/', ':' and space are allowed (MLflow's rule; letters and digits of any script)"
        )
    _check_path_shape(key, f"{kind} key")
    if len(_valid_keys) < 100_000:
        _valid_keys.add((kind, key))
    return key


def _check_path_shape(path: str, what: str) -> None:
    normalized = posixpath.normpath(path)
    if path.startswith("/"):
        raise InvalidInputError(f"{what} {path!r} must not start with '/'")
    if normalized != path or normalized == "." or normalized.startswith(".."):
        raise InvalidInputError(
            f"{what} {path!r} must be a normalized relative path (no '..', '.', '//' or trailing '/')"
        )


def check_name_characters(name: str, what: str) -> None:
    """Refuse control characters and lone surrogates in a name or path.

    Args:
        name: the name to check.
        what: what it is (``"artifact path"``), named in the message.

    Raises:
        InvalidInputError: ``name`` holds a C0/C1 control character or a lone surrogate.
    """
    bad = _UNSAFE_IN_NAME.search(name)
    if bad is not None:
        raise InvalidInputError(
            f"{what} {name[:60]!r} contains {bad.group()!r} at position {bad.start()}: "
            "control characters (NUL, newlines, escapes) and lone surrogates are not allowed "
            "in names"
        )


def check_name(name: object, what: str, max_length: int) -> str:
    """A run, experiment or other display name: a string of at most ``max_length``
    characters without control characters, so it can go into files, commit messages and
    terminals as it is.

    Args:
        name: the name given.
        what: what it is (``"experiment name"``), named in messages.
        max_length: the most characters allowed.

    Returns:
        The name itself.

    Raises:
        InvalidInputError: not a string, too long, or holding a control character.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"{what} {name!r} must be a string, not {type(name).__name__}")
    check_length(name, what, max_length)
    check_name_characters(name, what)
    return name


def check_length(text: str, what: str, max_length: int) -> str:
    """A string of at most ``max_length`` characters (names, dataset fields, input tags).

    Args:
        text: the string given.
        what: what it is (``"dataset name"``), named in messages.
        max_length: the most characters allowed.

    Returns:
        The string itself.

    Raises:
        InvalidInputError: it is longer.
    """
    if len(text) > max_length:
        raise InvalidInputError(
            f"{what} {text[:40]!r}... has {len(text)} characters; at most {max_length} are allowed"
        )
    return text


def check_string_value(value: object, kind: str, key: str) -> str:
    """A param or tag value as stored: its text, within MLflow's limit for ``kind``.

    Args:
        value: the value given; anything ``str()`` can spell.
        kind: ``"param"``, ``"tag"``, ``"experiment tag"``, ``"registered model tag"`` or
            ``"model version tag"`` (each has MLflow's limit).
        key: the key, named in messages.

    Returns:
        The text to store. A param or run tag value over its limit is cut to the limit with a
        warning, as MLflow does by default; with ``MLFLOW_TRUNCATE_LONG_VALUES=false`` (or
        for an experiment or registry tag) it is refused instead.

    Raises:
        InvalidInputError: the value is too long and may not be cut, or is not valid text.
    """
    text = value if value.__class__ is str else as_text(value, f"{kind} {key!r} value")
    limit = _VALUE_LIMITS.get(kind, MAX_VALUE_LENGTH)
    if len(text) > limit:
        if kind not in _TRUNCATED_KINDS or not _truncation_enabled():
            raise InvalidInputError(
                f"{kind} {key!r} has a value of {len(text)} characters; at most {limit} are allowed"
            )
        _logger.warning(
            "%s %r has a value of %d characters: only its first %d are stored (as MLflow "
            "does; set MLFLOW_TRUNCATE_LONG_VALUES=false to refuse it instead)",
            kind,
            key,
            len(text),
            limit,
        )
        text = text[:limit]
    _check_encodable(text, f"{kind} {key!r} has a value that")
    return text


def _truncation_enabled() -> bool:
    """MLflow's ``MLFLOW_TRUNCATE_LONG_VALUES`` switch (on unless set to false or 0)."""
    setting = os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES", "true").strip().lower()
    return setting not in ("false", "0")


def check_text(value: object, what: str) -> str | None:
    """Free text such as a description or a source URI (any character UTF-8 can encode,
    NUL and newlines included, is stored escaped).

    Args:
        value: the text given, or None.
        what: what it is (``"description"``), named in messages.

    Returns:
        The text itself, or None.

    Raises:
        InvalidInputError: not a string, or holding a lone surrogate.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{what} {shorten(value)} must be a string, not {type(value).__name__}"
        )
    _check_encodable(value, f"{what} {value[:40]!r}")
    return value


def _check_encodable(text: str, subject: str) -> None:
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise InvalidInputError(
            f"{subject} contains a lone surrogate {bad.group()!r} at position {bad.start()}: "
            "text must be valid Unicode"
        )


def shorten(value: object) -> str:
    """A value as a message shows it.

    Args:
        value: any value.

    Returns:
        Its ``repr``, cut to about 40 characters when longer than 60, or a description of its
        type when it has no ``repr`` (an int of more than 4300 digits).
    """
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits has no repr (Python's own limit)
        return _unprintable(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"


def _unprintable(value: object) -> str:
    if isinstance(value, int):
        return f"<an integer of {value.bit_length()} bits>"
    return f"<a {type(value).__name__}>"


def as_text(value: object, subject: str) -> str:
    """A value as the text to store.

    Args:
        value: any value.
        subject: what it is, named in the message.

    Returns:
        ``str(value)``.

    Raises:
        InvalidInputError: Python cannot spell it (an int of more than 4300 digits).
    """
    try:
        return str(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"{subject} {_unprintable(value)} cannot be written as text: {exc}"
        ) from exc


def check_tags(tags: Mapping[str, object] | None, kind: str) -> dict[str, str]:
    """Tags as stored: each key and value checked by MLflow's rules for ``kind``.

    Args:
        tags: the tags given (None: no tags).
        kind: ``"tag"``, ``"experiment tag"``, ``"registered model tag"`` or
            ``"model version tag"``.

    Returns:
        The tags with their values as the text to store.

    Raises:
        InvalidInputError: a key breaks the key rule or a value its kind's limit.
    """
    return {check_key(k, kind): check_string_value(v, kind, k) for k, v in (tags or {}).items()}
