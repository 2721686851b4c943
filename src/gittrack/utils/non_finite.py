"""The one spelling of NaN and the infinities in gittrack's documents and JSON.

JSON has no NaN or infinity, and YAML's ``.nan``/``.inf`` are not what MLflow's REST API or a
JSON reader expects, so gittrack spells them as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (DESIGN §3): in ``metrics.jsonl`` lines and ``meta.yaml`` summaries
(``store/codecs.py`` writes and reads them through this module), in the command line's
``--json`` output and in the web UI's JSON. This module sits below every layer, so that the
UI, which may not import the store, uses the same spelling. CSV is not JSON: the CSV that
``runs export`` writes (and the UI downloads) follows pandas' ``to_csv``, which its readers
expect (an empty cell for NaN, ``inf``), and the tables of the command line show
``store/codecs.format_number``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any

NAN = "NaN"
INFINITY = "Infinity"
MINUS_INFINITY = "-Infinity"
_VALUES = {NAN: math.nan, INFINITY: math.inf, MINUS_INFINITY: -math.inf}


def spell(value: float) -> float | str:
    """A float as a document carries it.

    Args:
        value: the number.

    Returns:
        ``value`` when it is finite, else ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
    """
    if value != value:
        return NAN
    if value == math.inf:
        return INFINITY
    if value == -math.inf:
        return MINUS_INFINITY
    return value


def read(raw: Any) -> float:
    """A number as ``spell`` wrote it, back as a float.

    Args:
        raw: a JSON/YAML number (not a boolean) or one of the three spellings.

    Returns:
        The float.

    Raises:
        ValueError: anything else.
    """
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    value = _VALUES.get(raw) if isinstance(raw, str) else None
    if value is None:
        raise ValueError(f"not a metric value: {raw!r}")
    return value


def json_ready(value: Any, dates: Callable[[date], Any]) -> Any:
    """``value`` ready for ``json.dumps(..., allow_nan=False)``.

    Args:
        value: a number, string, date, dict, list or tuple, nested at will.
        dates: how a ``date``/``datetime`` (a pandas ``Timestamp`` too) is written: the
            command line writes ISO-8601 text, the web UI epoch milliseconds.

    Returns:
        A copy with every non-finite float spelled by ``spell``, every date passed through
        ``dates``, dict keys as strings and tuples as lists; other values as they are.
    """
    if isinstance(value, float):
        return spell(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v, dates) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, dates) for v in value]
    if isinstance(value, date):
        return dates(value)
    return value
