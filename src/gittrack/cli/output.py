"""Rendering command results: a readable table by default, ``--json`` or ``--csv`` for scripts."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any, TextIO

from gittrack.store.codecs import format_number
from gittrack.utils import non_finite

# Control characters (C0, DEL, C1) and the bidirectional overrides that reorder what a
# terminal shows: a run, param or model name holding them could move the cursor, retitle the
# window or disguise itself in a table. They are shown as escapes, the way git quotes paths.
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_INVISIBLE = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))},
    **{ord(char): escape for char, escape in _SHORT_ESCAPES.items()},
    **{code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
}


def visible(text: str) -> str:
    """``text`` safe to print on a terminal: control characters spelled as escapes
    (``\\x1b``, ``\\n``), everything else (non-ASCII letters included) as it is."""
    return text.translate(_INVISIBLE)


def _text(value: Any) -> str:
    """A value as CSV carries it (control characters kept: CSV quotes them)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _cell(value: Any) -> str:
    """A value as a table shows it on a terminal."""
    return visible(_text(value))


def render_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], max_width: int = 40
) -> str:
    """A plain aligned text table; long cells are shortened with an ellipsis."""
    if not rows:
        return "(no rows)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    cells = [
        [c if len(c) <= max_width else c[: max_width - 1] + "…" for c in line] for line in cells
    ]
    headers = [visible(c) for c in columns]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]
    header = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join([header, rule, *body])


def _iso(value: date) -> str:
    return value.isoformat()


def emit(
    rows: Sequence[dict[str, Any]] | dict[str, Any],
    columns: Sequence[str] | None = None,
    fmt: str = "table",
    out: TextIO | None = None,
) -> None:
    """Print rows (or one record) in the chosen format."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(non_finite.json_ready(rows, _iso), out, indent=2, default=str)
        out.write("\n")
        return
    records = [rows] if isinstance(rows, dict) else list(rows)
    columns = list(columns or (records[0].keys() if records else []))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in records:
            writer.writerow([_text(row.get(c)) for c in columns])
        out.write(buffer.getvalue())
        return
    if isinstance(rows, dict):
        keys = [visible(str(k)) for k in rows]
        width = max((len(k) for k in keys), default=0)
        for key, value in zip(keys, rows.values()):
            out.write(f"{key.ljust(width)}  {_cell(value)}\n")
        return
    out.write(render_table(records, columns) + "\n")
