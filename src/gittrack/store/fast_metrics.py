"""A fast reader for ``metrics.jsonl`` as gittrack writes it, with the general parser behind it.

``codecs.metric_line`` writes one canonical line per point
(``{"key": "loss", "value": 0.31, "step": 3, "timestamp": 1763800000123}``). When every line of
a file has exactly that shape, one anchored regular expression reads them all at C speed into
columns; otherwise (a torn or partial line, a hand-edited file, another writer's spacing)
``codecs.parse_metric_lines`` reads the file and reports what it had to skip.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from gittrack.errors import CorruptDataError
from gittrack.store.codecs import parse_metric_lines

_LINE = re.compile(
    rb'^\{"key": ("(?:[^"\\\n]|\\.)*"), "value": (?:"(NaN|Infinity|-Infinity)"|'
    rb"(-?[0-9][0-9.eE+-]*)), \"step\": (-?[0-9]+), \"timestamp\": (-?[0-9]+)\}$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class MetricColumns:
    """The points of one ``metrics.jsonl``, column by column, in file order."""

    keys: list[str]
    values: np.ndarray  # float64
    steps: np.ndarray  # int64
    timestamps: np.ndarray  # int64
    problem: str | None = None  # what the general parser skipped (torn or invalid lines)

    def __len__(self) -> int:
        return len(self.keys)


def read_metric_columns(data: bytes, where: str) -> MetricColumns:
    """Parse ``metrics.jsonl``; a line that is not a point is skipped and named in
    ``problem``, as ``parse_metric_lines`` does; ``CorruptDataError`` when a step or timestamp does not fit in 64 bits (MLflow's range for both)."""
    try:
        return _read(data, where)
    except OverflowError:
        raise CorruptDataError(f"{where}: {_out_of_range(data, where)}") from None


def _read(data: bytes, where: str) -> MetricColumns:
    if not data:
        return _columns([], [], [], [])
    matches = _LINE.findall(data)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if len(matches) == lines:
        try:
            return _from_matches(matches)
        except ValueError:
            pass  # a number Python does not read (e.g. "1e"): the general parser explains
    points, problem = parse_metric_lines(data, where)
    return _columns(
        [p[0] for p in points],
        [p[1] for p in points],
        [p[2] for p in points],
        [p[3] for p in points],
        problem,
    )


def _out_of_range(data: bytes, where: str) -> str:
    """Which line has a step or timestamp that a 64-bit column cannot hold (written by an
    older version or by hand: writers refuse them)."""
    points, _ = parse_metric_lines(data, where)
    for number, (_key, _value, step, timestamp) in enumerate(points, start=1):
        if not (_INT64_MIN <= step <= _INT64_MAX and _INT64_MIN <= timestamp <= _INT64_MAX):
            return f"point {number} has step {step} or timestamp {timestamp} outside 64 bits"
    return "a step or timestamp is outside 64 bits"


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _from_matches(matches: list[tuple[bytes, ...]]) -> MetricColumns:
    names: dict[bytes, str] = {}
    keys = []
    for raw, *_ in matches:
        name = names.get(raw)
        if name is None:
            name = names[raw] = json.loads(raw) if b"\\" in raw else raw[1:-1].decode()
        keys.append(name)
    values = [float(special or number) for _, special, number, _, _ in matches]
    steps = [int(m[3]) for m in matches]
    timestamps = [int(m[4]) for m in matches]
    return _columns(keys, values, steps, timestamps)


def _columns(
    keys: list[str],
    values: list[float],
    steps: list[int],
    timestamps: list[int],
    problem: str | None = None,
) -> MetricColumns:
    return MetricColumns(
        keys,
        np.asarray(values, dtype=np.float64),
        np.asarray(steps, dtype=np.int64),
        np.asarray(timestamps, dtype=np.int64),
        problem,
    )
