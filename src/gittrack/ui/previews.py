"""How the run page previews an artifact file: text, JSON, YAML, CSV as a table, an image, the
MLmodel file; anything else is described, never sent as markup.

A preview reads at most ``PREVIEW_BYTES`` of the file; the JSON says when it was cut.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from typing import Any

import yaml

PREVIEW_BYTES = 1 << 20
IMAGE_BYTES = 20 << 20  # images larger than this are not shown
CSV_ROWS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
_TEXT_SUFFIXES = {
    ".txt",
    ".log",
    ".md",
    ".py",
    ".json",
    ".yaml",
    ".yml",
    ".csv",
    ".tsv",
    ".ini",
    ".cfg",
    ".toml",
    ".html",
    ".xml",
    ".sh",
    "",
}


def kind_of(path: str) -> str:
    """``image``, ``mlmodel``, ``json``, ``yaml``, ``csv``, ``text`` or ``binary`` by name."""
    name = posixpath.basename(path)
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in IMAGE_TYPES:
        return "image"
    if name == "MLmodel":
        return "mlmodel"
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "text" if suffix in _TEXT_SUFFIXES else "binary"


def preview(path: str, data: bytes, size: int) -> dict[str, Any]:
    """The JSON the run page shows for one artifact file.

    Args:
        path: the artifact's path in the run.
        data: its first bytes (at most ``PREVIEW_BYTES``).
        size: the file's full size.
    Returns:
        ``{"path", "kind", "size", "truncated"}`` plus ``text`` (text kinds), ``data`` (the
        parsed JSON/YAML/MLmodel document when it parses) or ``rows`` (CSV).
    """
    kind = kind_of(path)
    out: dict[str, Any] = {"path": path, "kind": kind, "size": size, "truncated": len(data) < size}
    if kind == "image":
        return out
    text = data.decode("utf-8", errors="replace")
    if kind == "binary":
        if b"\0" in data[:8192]:
            return out
        kind = out["kind"] = "text"
    out["text"] = text
    if kind == "csv":
        dialect = "excel-tab" if path.lower().endswith(".tsv") else "excel"
        out["rows"] = [
            row for _, row in zip(range(CSV_ROWS + 1), csv.reader(io.StringIO(text), dialect))
        ]
    elif kind in ("json", "yaml", "mlmodel") and not out["truncated"]:
        out["data"] = _parsed(kind, text)
    return out


def _parsed(kind: str, text: str) -> Any:
    """The document, or None when it does not parse (the text is shown instead)."""
    try:
        if kind == "json":
            return json.loads(text)
        document = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return None
    return json.loads(json.dumps(document, default=str))  # dates and such as strings
