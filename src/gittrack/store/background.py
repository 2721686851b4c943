"""One daemon thread per owner for file-system chores kept off the logging path.

On a busy disk, creating or unlinking a file costs from tens of microseconds to half a
millisecond of kernel time; a short run would otherwise wait for several of them. Chores are
queued here and done on another core: deleting retired live directories, preparing the next
live directory, creating spare files.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import threading
from collections.abc import Callable

from gittrack.store import process


class Background:
    """A queue of chores done in order by one daemon thread (restarted after a fork)."""

    def __init__(self, name: str = "gittrack-chores") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = process.pid()

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is None or self._pid != process.pid() or not self._thread.is_alive():
            self._queue = queue.SimpleQueue()
            self._pid = process.pid()
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
            atexit.register(self.drain)
        self._queue.put(job)

    def remove_tree(self, path: str | os.PathLike[str]) -> None:
        self.submit(lambda: shutil.rmtree(path, ignore_errors=True))

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with contextlib.suppress(OSError):
                job()

    def drain(self, timeout: float | None = 10.0) -> None:
        """Finish the chores queued so far (left-overs are swept by a later start).

        Args:
            timeout: how long to wait for them, in seconds (None: until they are done).
        """
        thread = self._thread
        if thread is None or self._pid != process.pid() or not thread.is_alive():
            return
        self._queue.put(None)
        thread.join(timeout)
        self._thread = None
