"""A call made in a forked child process, for work large enough to want a second core.

A cold build of a large run index is CPU work in Python (parsing tens of thousands of
documents), which one process does on one core whatever its threads. ``ForkedCall`` runs a
function in a child forked from this process (it sees the modules and objects already
loaded, so it starts in milliseconds and takes unpicklable arguments) and brings back its
pickled result through a pipe.

Only where fork is the platform's usual way (Linux) and at least two cores are free to this
process; elsewhere, when the child cannot start, or when it fails, ``start`` or ``result``
give None and the caller does the work itself. Nothing the child does reaches the caller's
state but its result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["ForkedCall"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ForkedCall:
    """``function(*args)`` running in a forked child; ``result()`` waits for its value."""

    def __init__(self, process: Any, receiver: Any) -> None:
        self._process = process
        self._receiver = receiver

    @classmethod
    def start(cls, function: Callable[..., Any], *args: Any) -> ForkedCall | None:
        """Start ``function(*args)`` in a forked child.

        Args:
            function: what the child runs; its result must pickle.
            args: its arguments (not pickled: the child has its own copy of them).

        Returns:
            The running call, or None when no child can be forked here (another platform,
            a single core, a limit on processes).
        """
        if not sys.platform.startswith("linux") or _cores() < 2:
            return None
        import multiprocessing

        try:
            context = multiprocessing.get_context("fork")
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_child, args=(sender, function, args), name="gittrack-forked", daemon=True
            )
            process.start()
        except (OSError, ValueError, RuntimeError):
            return None
        sender.close()
        return cls(process, receiver)

    def result(self) -> Any | None:
        """The function's value; None when the child failed or died before giving it."""
        try:
            outcome = self._receiver.recv()
        except (EOFError, OSError):
            outcome = None
        finally:
            self._receiver.close()
            self._process.join()
        if not isinstance(outcome, tuple) or outcome[0] != "ok":
            return None
        return outcome[1]


def _child(sender: Any, function: Callable[..., Any], args: tuple) -> None:
    try:
        outcome: tuple = ("ok", function(*args))
    except BaseException as exc:  # reported to the parent, which does the work itself
        outcome = ("failed", repr(exc))
    try:
        sender.send(outcome)
    finally:
        sender.close()
