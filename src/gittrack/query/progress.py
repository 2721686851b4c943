"""A progress bar on stderr for index builds that read many runs.

Shown, as git shows its own, only when stderr is a terminal and the work is large (at least
``THRESHOLD`` runs); ``GITTRACK_PROGRESS=1`` forces it on (e.g. under a pager or in tests),
``GITTRACK_PROGRESS=0`` off. Redrawn at most ten times a second.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

THRESHOLD = 3_000
_WIDTH = 30


def _wanted(stream: TextIO) -> bool:
    setting = os.environ.get("GITTRACK_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``update(done)`` redraws ``label: done/total [####....]``; ``close()`` ends the line."""

    def __init__(self, label: str, total: int = 0, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = total >= THRESHOLD and _wanted(self.stream)
        self._drawn = 0.0
        self._shown = False
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn < 0.1 and done < self.total:
            return
        self._drawn = now
        filled = _WIDTH * done // max(self.total, 1)
        bar = "#" * filled + "." * (_WIDTH - filled)
        self.stream.write(f"\r{self.label}: {done}/{self.total} [{bar}]")
        self.stream.flush()
        self._shown = True

    @property
    def done(self) -> int:
        """How many are done, as of the last update."""
        return self._done

    def advance(self, count: int) -> None:
        """``update`` with ``count`` more done than at the last update."""
        self.update(self._done + count)

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
