"""This process's id, its host's name, and unique names for its temporary files, without a
system call each.

``os.getpid`` and ``os.urandom`` are system calls; a short run asked for them some twenty
times. Both are kept here and renewed in a forked child, so a child never takes its parent's
id for its own or repeats its parent's names.
"""

from __future__ import annotations

import functools
import os
import random
import socket

_pid = os.getpid()
_names = random.Random()


def pid() -> int:
    """``os.getpid()``, as of the last fork."""
    return _pid


@functools.cache
def host() -> str:
    """This host's name, as it names the owner of a lock or of a temporary file beside the pid.

    Returns:
        ``socket.gethostname()``, read once per process.
    """
    return socket.gethostname()


def token(nbytes: int = 4) -> str:
    """Random hex for a temporary name; unique with the pid (and host) beside it."""
    return f"{_names.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()
    _names.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
