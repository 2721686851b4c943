"""The one clock: "now" as epoch milliseconds, the unit MLflow stores every time in, and a
``datetime`` in that unit.

Every run, experiment, registry and autologging time stamp reads this function, so a test
that needs a fixed or stepping time monkeypatches ``gittrack.utils.clock.now_ms`` once. Callers
import the module (``from gittrack.utils import clock``; ``clock.now_ms()``) rather than the
name, so the patch reaches them.
"""

from __future__ import annotations

import time
from datetime import datetime


def now_ms() -> int:
    """The current time.

    Returns:
        Milliseconds since the Unix epoch (UTC), truncated to an integer.
    """
    return time.time_ns() // 1_000_000


def to_ms(when: datetime) -> int:
    """A point in time as epoch milliseconds, the unit of ``now_ms``.

    Args:
        when: a ``datetime`` (a pandas ``Timestamp`` too); a naive one is read as local
            time, as ``datetime.timestamp`` reads it.

    Returns:
        Milliseconds since the Unix epoch, truncated to an integer.
    """
    return int(when.timestamp() * 1000)
