"""Python's cyclic garbage collector, paused around bulk work that makes no cycles.

Building the run index or the registry state makes hundreds of thousands of small containers
(rows, documents, tag records) that hold no reference cycles and are kept. Every allocation
burst triggers collections that walk them again and again: a quarter of a cold index build
at 100,000 runs, and of a first registry listing at 10,000 tags. Callers wrap such work in
``paused()``; reference counting still frees everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector off for the block, then back as it was (a nested or concurrent
    pause that found it off leaves it off; the one that turned it off turns it on)."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
