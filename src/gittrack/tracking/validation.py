"""MLflow's rules that only runs have, checked before anything is written (DESIGN §3): run
names, metric values, steps and times, artifact paths and locations, run ids and statuses.

Keys, tag values, names and free text follow the generic rules of ``store/validation.py``,
which this module builds on (its ``check_key`` and ``check_string_value`` are the ones
``validation.check_key`` reaches here).
"""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from gittrack.entities import RunStatus
from gittrack.errors import InvalidInputError
from gittrack.store import layout
from gittrack.store.validation import (
    MAX_TAG_VALUE_LENGTH,
    as_text,
    check_key,
    check_name,
    check_name_characters,
    check_string_value,
    shorten,
)
from gittrack.store.validation import check_tags as _check_tags
from gittrack.utils.mlflow_tags import MLFLOW_RUN_NAME

# A run name is the value of its ``mlflow.runName`` tag, so MLflow takes any name a tag value
# may hold; an experiment name has its own limit (MLflow's MAX_EXPERIMENT_NAME_LENGTH).
RUN_NAME_TAG = MLFLOW_RUN_NAME
MAX_RUN_NAME_LENGTH = MAX_TAG_VALUE_LENGTH
MAX_EXPERIMENT_NAME_LENGTH = 500
# Steps and metric timestamps are MLflow's 64-bit integers; run times are written as
# ISO-8601 with a four-digit year, so they end at 9999-12-31T23:59:59.999Z.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_TIME_MS = 253_402_300_799_999
# An artifact path becomes files in the staging area: one name at most 255 bytes (the limit
# of Linux, macOS and Windows file systems), the whole well below PATH_MAX.
MAX_ARTIFACT_NAME_BYTES = 255
MAX_ARTIFACT_PATH_BYTES = 1024
_HFS_IGNORED = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


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
    check_name_characters(path, "artifact path")
    _check_artifact_path_size(path)
    return posixpath.normpath(path).strip("/")


def _check_artifact_path_size(path: str) -> None:
    """Refuse what the file system cannot hold, before a file is created for it."""
    size = len(path.encode())
    if size > MAX_ARTIFACT_PATH_BYTES:
        raise InvalidInputError(
            f"artifact path {path[:40]!r}... is {size} bytes long; at most "
            f"{MAX_ARTIFACT_PATH_BYTES} are allowed"
        )
    for name in path.split("/"):
        if _is_dotgit(name):
            raise InvalidInputError(
                f"artifact path {path[:60]!r} contains {name!r}: git refuses a tree entry that "
                "reads as '.git' (git fsck: hasDotgit), so no artifact may be named so"
            )
        if len(name.encode()) > MAX_ARTIFACT_NAME_BYTES:
            raise InvalidInputError(
                f"artifact name {name[:40]!r}... in {path[:40]!r}... is {len(name.encode())} "
                f"bytes long; a file or directory name may have at most "
                f"{MAX_ARTIFACT_NAME_BYTES}"
            )


def _is_dotgit(name: str) -> bool:
    """Whether git reads ``name`` as ``.git`` on some file system: any case, trailing dots
    or spaces (NTFS), the short name ``git~1``, or with characters HFS+ ignores."""
    folded = _HFS_IGNORED.sub("", name).lower().rstrip(". ")
    return folded in (".git", "git~1")


def check_run_name(name: object) -> str:
    """A run name (also the value of the ``mlflow.runName`` tag): MLflow's tag value limit."""
    return check_name(name, "run name", MAX_RUN_NAME_LENGTH)


def check_tags(tags: Mapping[str, object] | None, kind: str = "tag") -> dict[str, str]:
    """Run tags as stored: keys and values checked, the run name tag as a run name."""
    if kind == "tag" and tags and RUN_NAME_TAG in tags:
        check_run_name(as_text(tags[RUN_NAME_TAG], "run name"))
    return _check_tags(tags, kind)


def check_params(params: Mapping[str, object]) -> dict[str, str]:
    """Params as stored: keys and string values checked."""
    return {check_key(k, "param"): check_string_value(v, "param", k) for k, v in params.items()}


def check_metric_value(value: object, key: str) -> float:
    """A metric value as a float, converted as MLflow converts it.

    Args:
        value: a number, a bool (1.0 or 0.0), a string ``float()`` reads (``"1.5"``,
            ``"nan"``) or a one-element array.
        key: the metric's key, named in messages.

    Returns:
        The value as a Python float.

    Raises:
        InvalidInputError: anything else (None, ``"abc"``, a complex number, a longer array),
            or a number a float cannot hold (``10**400``), rather than rounding it.
    """
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        try:
            return float(value)  # type: ignore[arg-type]
        except (OverflowError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"metric {key!r} got value {shorten(value)} that is not a 64-bit float ({exc})"
            ) from exc
    scalar = _single_item(value)
    if isinstance(scalar, (str, numbers.Real)):
        try:
            return float(scalar)
        except (OverflowError, ValueError, TypeError):
            pass
    raise InvalidInputError(
        f"metric {key!r} got value {shorten(value)} of type {type(value).__name__}: metric "
        "values must be numbers (int, float, bool, NaN or ±inf) or text that reads as one"
    )


def _single_item(value: object) -> object:
    """The one number an array or tensor of one element holds (its ``item()``), else
    ``value`` itself."""
    item = getattr(value, "item", None)
    if isinstance(value, str) or not callable(item):
        return value
    try:
        return item()
    except (ValueError, TypeError, RuntimeError):
        return value


def check_step(step: object, key: str) -> int:
    """A metric step: an integer that fits MLflow's 64-bit step."""
    if step is None:
        return 0
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        step = int(step)
        if INT64_MIN <= step <= INT64_MAX:
            return step
        raise InvalidInputError(
            f"metric {key!r} got step {shorten(step)}: a step must fit in 64 bits "
            f"({INT64_MIN} to {INT64_MAX})"
        )
    raise InvalidInputError(f"metric {key!r} got step {shorten(step)}: a step must be an integer")


def check_timestamp(timestamp: object, key: str) -> int | None:
    """A metric timestamp: non-negative integer milliseconds that fit in 64 bits (MLflow)."""
    if timestamp is None:
        return None
    if isinstance(timestamp, numbers.Integral) and not isinstance(timestamp, bool):
        timestamp = int(timestamp)
        if 0 <= timestamp <= INT64_MAX:
            return timestamp
        raise InvalidInputError(
            f"metric {key!r} got timestamp {shorten(timestamp)}: a timestamp is milliseconds "
            f"from 0 to {INT64_MAX}"
        )
    raise InvalidInputError(
        f"metric {key!r} got timestamp {shorten(timestamp)}: a timestamp is integer milliseconds"
    )


def check_time(ms: object, what: str) -> int | None:
    """A run's start or end time in epoch milliseconds (None: not given). Checked before
    anything is written: it must be a time ``meta.yaml`` can spell (1970 to year 9999)."""
    if ms is None:
        return None
    if isinstance(ms, numbers.Real) and not isinstance(ms, bool):
        try:
            value = int(ms)
        except (OverflowError, ValueError) as exc:
            raise InvalidInputError(f"{what} {ms!r} is not a time in milliseconds") from exc
        if 0 <= value <= MAX_TIME_MS:
            return value
        raise InvalidInputError(
            f"{what} {shorten(ms)} is out of range: epoch milliseconds from 0 "
            f"(1970-01-01) to {MAX_TIME_MS} (9999-12-31) are allowed"
        )
    raise InvalidInputError(
        f"{what} {shorten(ms)} of type {type(ms).__name__} must be integer epoch milliseconds"
    )


_URI_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def check_artifact_location(location: object) -> str | None:
    """An experiment's ``artifact_location``, checked before anything is written.

    Args:
        location: a local path (relative ones are made absolute, as MLflow does) or a
            ``file://`` URI; None or "" when not given.

    Returns:
        The location as stored (an absolute path, or a ``file://`` URI of one), or None.

    Raises:
        InvalidInputError: another scheme (``s3://``, ``gs://``, ``http(s)://``...: gittrack
            has no remote artifact store), a ``file://`` URI naming another host, or a
            directory that cannot be created or written.
    """
    if location is None or location == "":
        return None
    if not isinstance(location, str):
        raise InvalidInputError(
            f"artifact_location {location!r} must be a string (a local path or file:// URI), "
            f"not {type(location).__name__}"
        )
    check_name_characters(location, "artifact_location")
    scheme = _URI_SCHEME.match(location)
    if scheme and len(scheme.group(1)) > 1 and scheme.group(1).lower() != "file":
        raise InvalidInputError(
            f"artifact_location {location!r} uses the scheme {scheme.group(1)!r}: gittrack "
            "has no remote artifact store, so only a local path or a file:// URI is allowed"
        )
    if scheme and len(scheme.group(1)) > 1:
        parsed = urllib.parse.urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInputError(
                f"artifact_location {location!r} names the host {parsed.netloc!r}: a file:// "
                "URI must name a local directory (file:///path)"
            )
        directory = Path(urllib.request.url2pathname(parsed.path)).absolute()
        stored = directory.as_uri()
    else:
        directory = Path(location).absolute()
        stored = str(directory)
    _check_writable(directory, location)
    return stored


def artifact_location_path(location: str) -> Path:
    """The local directory of an ``artifact_location`` or artifact URI (a path or a
    ``file://`` URI, as ``check_artifact_location`` stores it)."""
    if location.lower().startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(location).path))
    return Path(location)


def _check_writable(directory: Path, location: str) -> None:
    """Refuse a directory that this process could not create or write into: its nearest
    existing ancestor must be a writable directory."""
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(
            f"artifact_location {location!r} cannot be a directory: {str(existing)!r} is a file"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInputError(
            f"artifact_location {location!r} is not writable: this user may not write in "
            f"{str(existing)!r}"
        )


def check_max_results(max_results: object) -> int:
    """A page size: a positive integer (MLflow refuses 0, negatives and non-integers; a
    slice would silently take them as "all but the last" or "none")."""
    if isinstance(max_results, bool) or not isinstance(max_results, numbers.Integral):
        raise InvalidInputError(f"max_results {shorten(max_results)} must be a positive integer")
    if max_results <= 0:
        raise InvalidInputError(f"max_results {shorten(max_results)} must be a positive integer")
    return int(max_results)


def asks_for_no_results(max_results: object) -> bool:
    """Whether ``max_results`` is an integer of 0 or less.

    MLflow's fluent searches (``search_runs``, ``search_experiments``,
    ``search_registered_models``, ``search_model_versions``) and
    ``MlflowClient.search_registered_models`` answer such a page size with no results, where
    the other client searches refuse it (``check_max_results``).

    Args:
        max_results: the page size given.

    Returns:
        True for an int (not a bool) of 0 or less; False otherwise, None included.
    """
    return (
        isinstance(max_results, numbers.Integral)
        and not isinstance(max_results, bool)
        and max_results <= 0
    )


def check_run_status(status: object) -> str:
    """A run status, one of MLflow's (``RunStatus.from_string`` refuses any other)."""
    if status not in RunStatus.ALL:
        raise InvalidInputError(f"run status {status!r} is not one of {', '.join(RunStatus.ALL)}")
    return status  # type: ignore[return-value]


def check_run_id(run_id: object) -> str:
    """A run id given by a caller.

    Args:
        run_id: the id given.

    Returns:
        The id itself.

    Raises:
        InvalidInputError: not a string of 32 lowercase hex digits.
    """
    if not layout.is_run_id(run_id):
        raise InvalidInputError(f"run id {run_id!r} is not 32 lowercase hex digits")
    return run_id
