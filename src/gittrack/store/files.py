"""Writing files so that readers see all of a file or none of it."""

from __future__ import annotations

import os
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (one call for small data)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_file(target: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a fresh temporary file beside ``target`` and rename it over
    ``target``; the directory is created when missing."""
    tmp = target.with_name(f"tmp_{target.name}_{os.getpid()}_{os.urandom(6).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp, flags, mode)
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, target)
