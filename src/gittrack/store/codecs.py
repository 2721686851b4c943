"""Encoding and decoding of the files on the branch: YAML documents and JSONL metric lines."""

from __future__ import annotations

import calendar
import functools
import json
import math
import re
import time
from datetime import datetime
from typing import Any

import yaml

from gittrack.errors import CorruptDataError
from gittrack.utils import non_finite

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(doc: Any) -> bytes:
    """YAML as people diff it: block style, keys in the given order, unicode kept.

    The documents gittrack writes are mappings of plain scalars, lists (of scalars or of
    mappings) and mappings; they are
    emitted directly (PyYAML's representer costs ~0.3 ms a document, a quarter of a run's
    commit). Strings that could read as anything but themselves are double-quoted with JSON
    escapes, which YAML reads back verbatim. Anything else goes through PyYAML.
    """
    try:
        lines: list[str] = []
        _emit(doc, 0, lines)
    except _Unsupported:
        return yaml.dump(
            doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
        ).encode()
    return ("\n".join(lines) + "\n").encode()


class _Unsupported(Exception):
    pass


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .\-/]*")
_UNPRINTABLE = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_RESERVED = {
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "y",
    "n",
}
"""Words YAML 1.1 reads as booleans or null; only what ``_PLAIN`` lets through is listed."""


@functools.lru_cache(maxsize=16384)
def _string(value: str) -> str:
    """A string as a YAML scalar: plain when it cannot read as anything else, else quoted.
    Cached: keys and most values (tag names, statuses, ids) repeat across documents."""
    if (
        _PLAIN.fullmatch(value)
        and value.lower() not in _RESERVED
        and not value.endswith((" ", ":"))
        and " #" not in value
    ):
        return value
    if _UNPRINTABLE.search(value):
        raise _Unsupported("characters YAML must escape its own way")
    return json.dumps(value, ensure_ascii=False)


def _float(value: float) -> str:
    if value and value == value:  # not 0.0/-0.0 (equal, written apart) nor NaN
        return _float_cached(value)
    return _float_text(value)


@functools.lru_cache(maxsize=4096)
def _float_cached(value: float) -> str:
    """Cached: a run's summary writes each single-point metric's value three times."""
    return _float_text(value)


def _float_text(value: float) -> str:
    text = repr(value)
    if "e" not in text and text[-1].isdigit():  # e.g. 0.123 or 12.0: nothing to adjust
        return text
    if value != value:
        return ".nan"
    if value in (math.inf, -math.inf):
        return ".inf" if value > 0 else "-.inf"
    # PyYAML (YAML 1.1) reads a float only with a dot in the mantissa: 1.0e+20, not 1e+20.
    mantissa, e, exponent = repr(value).partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}{e}{exponent}"


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is float:
        return _float(value)
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(str(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(float(value))
    raise _Unsupported(kind.__name__)


def _emit(node: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(node, dict):
        if not node:
            if indent:
                raise _Unsupported("nested empty mapping handled by the parent")
            lines.append("{}")
            return
        append = lines.append
        for key, value in node.items():
            if type(key) is not str:
                raise _Unsupported("non-string key")
            kind = type(value)
            # The common scalars inline: a run's meta.yaml is some 80 of these lines.
            if kind is str:
                append(f"{pad}{_string(key)}: {_string(value)}")
            elif kind is float:
                append(f"{pad}{_string(key)}: {_float(value)}")
            elif kind is int:
                append(f"{pad}{_string(key)}: {value}")
            else:
                _emit_entry(f"{pad}{_string(key)}:", value, indent, lines)
        return
    if isinstance(node, list):
        raise _Unsupported("top-level list")
    lines.append(pad + _scalar(node))


_SUMMARY_KEYS = ("value", "step", "timestamp", "min", "max", "count")


def _emit_entry(prefix: str, value: Any, indent: int, lines: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            lines.append(prefix + " {}")
            return
        if tuple(value) == _SUMMARY_KEYS and _emit_summary(prefix, value, indent, lines):
            return
        lines.append(prefix)
        _emit(value, indent + 2, lines)
    elif isinstance(value, list):
        if not value:
            lines.append(prefix + " []")
            return
        lines.append(prefix)
        for item in value:
            if isinstance(item, dict) and item:  # a mapping item (a run's dataset inputs)
                first = len(lines)
                _emit(item, indent + 2, lines)
                lines[first] = f"{' ' * indent}- {lines[first][indent + 2 :]}"
                continue
            if isinstance(item, (dict, list)):
                raise _Unsupported("nested collection in a list")
            lines.append(f"{' ' * indent}- {_scalar(item)}")
    else:
        lines.append(f"{prefix} {_scalar(value)}")


def _emit_summary(prefix: str, entry: dict, indent: int, lines: list[str]) -> bool:
    """A metric's summary (``meta.yaml`` holds one per metric) as one piece of text, exactly
    as ``_emit`` writes it; False when a field is not of the usual type."""
    value, step, timestamp, low, high, count = entry.values()
    if not (
        type(step) is int
        and type(timestamp) is int
        and type(count) is int
        and type(value) is float
        and type(low) is float
        and type(high) is float
    ):
        return False
    pad = " " * (indent + 2)
    lines.append(
        f"{prefix}\n{pad}value: {_float(value)}\n{pad}step: {step}\n{pad}timestamp: {timestamp}"
        f"\n{pad}min: {_float(low)}\n{pad}max: {_float(high)}\n{pad}count: {count}"
    )
    return True


def load_yaml(data: bytes | str, where: str) -> Any:
    """Parse YAML; a syntax error names the file and the line."""
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorruptDataError(f"{where}:{line} is not valid YAML: {problem}") from exc


def encode_metric_value(value: float) -> str:
    """A metric value as a JSON token: a finite number, or "NaN"/"Infinity"/"-Infinity"."""
    spelled = non_finite.spell(value)
    return f'"{spelled}"' if isinstance(spelled, str) else repr(value)


stored_metric_value = non_finite.spell
"""A metric number as a YAML document stores it (DESIGN §3): ``utils/non_finite.spell``."""

decode_metric_value = non_finite.read
"""A stored metric number as a float (``ValueError`` for anything else):
``utils/non_finite.read``, the one reader of the spelling the two above write."""


def metric_line(key_json: str, value: float, step: int, timestamp: int) -> bytes:
    """One ``metrics.jsonl`` line; ``key_json`` is the key already JSON-encoded."""
    return (
        f'{{"key": {key_json}, "value": {encode_metric_value(value)}, '
        f'"step": {step}, "timestamp": {timestamp}}}\n'
    ).encode()


def parse_metric_lines(
    data: bytes, where: str
) -> tuple[list[tuple[str, float, int, int]], str | None]:
    """Parse ``metrics.jsonl``: (points, problem).

    A line that is not a metric point (torn by a crash, cut short by a full disk, edited by
    hand) is skipped wherever it is and named in ``problem``; it never makes the rest of the
    file unreadable. A partial line that a later point was appended to (a failed append of
    an older version) gives that point back.
    """
    if data.endswith(b"\n") and b"\n\n" not in data:
        try:  # the usual case, whole lines only: parsed as one JSON array
            docs = json.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
            return [
                (d["key"], decode_metric_value(d["value"]), int(d["step"]), int(d["timestamp"]))
                for d in docs
            ], None
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            pass  # find the bad lines below
    points: list[tuple[str, float, int, int]] = []
    skipped: list[str] = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        point = _metric_point(line)
        if point is None:
            at = line.rfind(b'{"key"', 1)
            point = _metric_point(line[at:]) if at > 0 else None
            incomplete = number == len(lines) or point is not None
            kind = "is incomplete" if incomplete else "is not a metric point"
            skipped.append(
                f"line {number} {kind} and was skipped ({at if point else len(line)} bytes)"
            )
        if point is not None:
            points.append(point)
    return points, _skipped_lines(where, skipped)


def _metric_point(line: bytes) -> tuple[str, float, int, int] | None:
    """One line's point; None when it is not one."""
    try:
        doc = json.loads(line)
        point = (
            doc["key"],
            decode_metric_value(doc["value"]),
            int(doc["step"]),
            int(doc["timestamp"]),
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    return point if isinstance(point[0], str) else None


def _skipped_lines(where: str, skipped: list[str]) -> str | None:
    """What ``parse_metric_lines`` skipped, as one message (the first few lines named)."""
    if not skipped:
        return None
    more = f"; and {len(skipped) - 3} more lines" if len(skipped) > 3 else ""
    return f"{where}: {'; '.join(skipped[:3])}{more}"


def format_time(ms: int | None) -> str | None:
    """Integer epoch milliseconds as ISO-8601 UTC with milliseconds (``...T12:00:00.123Z``)."""
    if ms is None:
        return None
    global _last_second
    seconds, millis = divmod(int(ms), 1000)
    if _last_second[0] != seconds:  # a run formats its start and end within a second or so
        _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_last_second[1]}.{millis:03d}Z"


_last_second: tuple[int, str] = (-1, "")


def format_datetime(value: datetime) -> str:
    """A ``datetime`` (or pandas ``Timestamp``) in ``format_time``'s spelling.

    Args:
        value: the time; its own fields are written, so give it in UTC.

    Returns:
        ISO-8601 with milliseconds and a ``Z`` (``2024-05-01T12:00:00.123Z``).
    """
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_number(value: float | None, digits: int = 6) -> str:
    """A metric value as a one-line summary shows it.

    Args:
        value: the value; None (no value) is shown as NaN.
        digits: significant digits.

    Returns:
        ``"NaN"`` for None or NaN, else the value in ``digits`` significant digits
        (``0.912346``, ``1e+06``, ``inf``).
    """
    if value is None or math.isnan(value):
        return "NaN"
    return f"{value:.{digits}g}"


def parse_time(text: str | None) -> int | None:
    """The inverse of ``format_time``."""
    if text is None:
        return None
    match = _TIME.match(text)
    if match is None:  # strptime names what does not fit
        datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
        raise ValueError(f"time data {text!r} does not match format '%Y-%m-%dT%H:%M:%S.%fZ'")
    year, month, day, hour, minute, second, millis = match.groups()
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    return seconds * 1000 + (int(millis) if millis else 0)


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?")


def is_real_time(text: object) -> bool:
    """Whether ``text`` is a time as ``format_time`` writes it that names a real instant.

    The schemas' pattern lets ``2026-13-45T25:61:61.000Z`` through; the readers that turn a
    stored time into a number (the run index, ``get_run``, ``doctor``) ask here.
    """
    if not isinstance(text, str) or len(text) != 24 or not text.endswith("Z"):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True
