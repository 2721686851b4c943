"""Encoding and decoding of the files on the branch: YAML documents and JSONL metric lines."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any

import yaml

from gittrack.errors import CorruptDataError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(doc: Any) -> bytes:
    """YAML as people diff it: block style, keys in the given order, unicode kept."""
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    ).encode()


def load_yaml(data: bytes | str, where: str) -> Any:
    """Parse YAML; a syntax error names the file and the line."""
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorruptDataError(f"{where}:{line} is not valid YAML: {problem}") from exc


_SPECIAL = {math.inf: '"Infinity"', -math.inf: '"-Infinity"'}


def encode_metric_value(value: float) -> str:
    """A metric value as a JSON token: a finite number, or "NaN"/"Infinity"/"-Infinity"."""
    if value != value:
        return '"NaN"'
    special = _SPECIAL.get(value)
    if special is not None:
        return special
    text = repr(value)
    return text


def decode_metric_value(raw: Any) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if raw == "NaN":
        return math.nan
    if raw == "Infinity":
        return math.inf
    if raw == "-Infinity":
        return -math.inf
    raise ValueError(f"not a metric value: {raw!r}")


def metric_line(key_json: str, value: float, step: int, timestamp: int) -> bytes:
    """One ``metrics.jsonl`` line; ``key_json`` is the key already JSON-encoded."""
    return (
        f'{{"key": {key_json}, "value": {encode_metric_value(value)}, '
        f'"step": {step}, "timestamp": {timestamp}}}\n'
    ).encode()


def parse_metric_lines(
    data: bytes, where: str
) -> tuple[list[tuple[str, float, int, int]], str | None]:
    """Parse ``metrics.jsonl``: (points, problem). A torn last line (crash) is dropped and
    reported as the problem; a bad line elsewhere is corruption and raises."""
    points: list[tuple[str, float, int, int]] = []
    lines = data.split(b"\n")
    torn: str | None = None
    last_index = len(lines) - 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            point = (
                doc["key"],
                decode_metric_value(doc["value"]),
                int(doc["step"]),
                int(doc["timestamp"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            if number - 1 == last_index:
                torn = f"{where}: line {number} is incomplete and was skipped ({len(line)} bytes)"
                continue
            raise CorruptDataError(f"{where}: line {number} is not a metric point: {exc}") from exc
        points.append(point)
    return points, torn


def format_time(ms: int | None) -> str | None:
    """Integer epoch milliseconds as ISO-8601 UTC with milliseconds (``...T12:00:00.123Z``)."""
    if ms is None:
        return None
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_time(text: str | None) -> int | None:
    """The inverse of ``format_time``."""
    if text is None:
        return None
    stamp = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    millis = int(text[20:23]) if len(text) >= 23 and text[19] == "." else 0
    return int(stamp.timestamp()) * 1000 + millis
