"""Writing files so that readers see all of a file or none of it.

Each file is written under a temporary name and renamed over its target. Creating a file is
the expensive step on a busy ext4 disk (60-500 µs of kernel time, against 5 µs to open an
existing one and 20 µs to rename it), so a writer that commits often takes its temporary
files from ``SpareFiles``: empty files made ahead of need on a background thread.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gittrack.errors import RepositoryError
from gittrack.store import process
from gittrack.store.background import Background

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class PartialWriteError(OSError):
    """``write_all`` failed after ``written`` bytes of its data reached the file (a full
    disk usually takes part of a write before it refuses the rest)."""

    def __init__(self, cause: OSError, written: int) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.written = written


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (one call for small data).

    Raises ``PartialWriteError`` (an ``OSError``) saying how much was written before the
    failure, so that an appender can take its partial line back.
    """
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError as exc:
            raise PartialWriteError(exc, len(data) - len(view)) from exc


def take_back(fd: int, data: bytes, exc: OSError) -> int:
    """After ``write_all(fd, data)`` on an append descriptor failed with ``exc``: truncate
    the file back to where the append started, when the bytes at its end are the part of
    ``data`` that was written (nobody appended after them). Returns the bytes left behind:
    0 when the file is as it was before the append."""
    written = exc.written if isinstance(exc, PartialWriteError) else 0
    if written:
        with contextlib.suppress(OSError):
            start = os.fstat(fd).st_size - written
            if start >= 0 and os.pread(fd, written, start) == data[:written]:
                os.ftruncate(fd, start)  # shrinking a file needs no space
                written = 0
    return written


_WHAT_HAPPENED = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission is denied",
    errno.EPERM: "the operation is not permitted",
    errno.EIO: "the disk reported an input/output error",
    errno.EFBIG: "the file would be too large",
}


def storage_error(exc: OSError, action: str) -> RepositoryError:
    """The error a user sees when the disk refuses a write: what was being done, what the
    system said (full disk, permissions, ...) and the file, as one ``RepositoryError``.

    :param action: what failed and what it means, e.g. "could not append to X; nothing of
        this call was written".
    """
    what = _WHAT_HAPPENED.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in action else ""
    return RepositoryError(f"{action}: {what}{where}")


def read_file(path: str) -> bytes | None:
    """A file's bytes, None when it is missing, in the fewest system calls (no pathlib)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return read_rest(fd)
    finally:
        os.close(fd)


def read_rest(fd: int, offset: int | None = None) -> bytes:
    """What is left to read from ``fd`` (from ``offset`` with ``pread``). A read shorter
    than asked for is taken as the end, as it is for regular files: a small file (a ref, a
    run's metrics) costs one read, not two."""
    chunks = []
    size = 1 << 16
    while True:
        chunk = os.read(fd, size) if offset is None else os.pread(fd, size, offset)
        chunks.append(chunk)
        if len(chunk) < size:
            return b"".join(chunks)
        if offset is not None:
            offset += size
        size = 1 << 20


def replace_file(
    target: str | Path,
    data: bytes,
    mode: int = 0o644,
    spares: SpareFiles | None = None,
    scratch: str | Path | None = None,
) -> None:
    """Write ``data`` to a fresh temporary file and rename it over ``target``; the directory
    is created when missing. The temporary file is a spare when ``spares`` has one ready.

    :param scratch: the directory of the temporary file (on the same file system), when a
        file a crash leaves in the target's directory would be mistaken for data (a run's
        artifacts); by default the target's directory.
    """
    target = os.fspath(target)
    spare = spares.take() if spares is not None else None
    if spare is not None and _replace_with_spare(spare, target, data, mode):
        return
    directory, _, name = target.rpartition("/")
    tmp = _temporary_name(scratch or directory, name)
    try:
        fd = os.open(tmp, _CREATE, mode)
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, _CREATE, mode)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:  # a full disk, say: the target keeps its content, no file is left
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_durable(paths: list[str]) -> None:
    """fsync each file, then the directories that hold them: what git does for a pack
    before it deletes the packs it replaces, so that a crash cannot keep the deletions and
    lose the new pack."""
    for path in [*paths, *sorted({os.path.dirname(path) or "." for path in paths})]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def copy_file(source: str | Path, target: str | Path, scratch: str | Path | None = None) -> None:
    """Copy ``source`` to ``target`` under a temporary name renamed into place: a disk that
    fills up part way leaves no truncated copy (and ``target`` as it was). ``scratch``: as
    for ``replace_file``."""
    with replacing(target, scratch) as tmp:
        shutil.copyfile(source, tmp)


@contextlib.contextmanager
def replacing(target: str | Path, scratch: str | Path | None = None) -> Iterator[str]:
    """A temporary path to write ``target``'s new content to, for a writer that wants a path
    (a library's ``to_parquet``, ``copyfile``) rather than bytes (``replace_file``).

    Args:
        target: the file to replace; its directory must exist.
        scratch: as for ``replace_file``.

    Yields:
        The temporary file's path. When the block ends normally it is renamed over
        ``target``; when it raises, it is removed and ``target`` is left as it was.
    """
    target = os.fspath(target)
    directory, name = os.path.split(target)
    tmp = _temporary_name(scratch or directory or ".", name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _temporary_name(directory: str | Path, name: str) -> str:
    return f"{directory}/tmp_{name}_{process.pid()}_{process.token(6)}"


def _replace_with_spare(spare: tuple[str, int], target: str, data: bytes, mode: int) -> bool:
    """Fill a spare through its open descriptor and rename it over ``target``; False (spare
    gone) when that cannot be done, so the caller writes the file the ordinary way."""
    spare, fd = spare
    try:
        try:
            write_all(fd, data)
            if mode != SpareFiles.MODE:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(spare)
        raise
    try:
        os.replace(spare, target)
    except FileNotFoundError:
        if not os.path.exists(spare):
            return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(spare, target)
    except OSError as exc:  # another file system (EXDEV), or renames refused
        with contextlib.suppress(OSError):
            os.unlink(spare)
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EACCES):
            return False
        raise
    return True


class SpareFiles:
    """Empty files created on a background thread before they are needed.

    ``take`` hands out the path of a spare this process owns with a write descriptor on it
    (or None when none is ready, and the caller creates its file itself); the pool is then
    topped up in the background. Spares are read-only (``MODE``), as packs are: write
    access comes from creating them. ``retire`` takes a file that served its purpose (a
    ref's previous file) out of the way and deletes it in the background; it is never
    written again, since a reader may still hold it open (DESIGN §4). A spare is renamed
    (``replace_file``, a ref's lock) to where it is used, which must be on the same file
    system. Each batch of spares is created in a new directory of its own:
    creating a file locks its directory for the whole creation, and a rename out of a
    directory being filled waits for that (about 10x slower). Names carry host and pid, so
    ``sweep`` can remove the spares of processes that are gone; a forked child does not use
    its parent's spares.
    """

    MODE = 0o444  # what packs and their indexes are written with

    def __init__(self, directory: Path, chores: Background, batch: int = 32) -> None:
        self.directory = directory
        self.batch = batch
        self._chores = chores
        self._ready: collections.deque[tuple[str, int]] = collections.deque()
        self._batches: collections.deque[str] = collections.deque()
        self._filling = False
        self._pid: int | None = None
        self._prefix = ""
        self._count = 0

    def take(self) -> tuple[str, int] | None:
        """A spare's path and a write descriptor on it (the caller closes it), or None."""
        if self._pid != process.pid():
            self._start()
        spare = self._ready.popleft() if self._ready else None
        if len(self._ready) < self.batch and not self._filling:
            self._filling = True
            self._chores.submit(self._fill)
        return spare

    def retire(self, path: str) -> None:
        """Move a file this process no longer needs out of the way at once, and delete it
        in the background (deleting an inode costs ext4 50-150 µs on the spot). Its
        contents are never overwritten: a reader that opened it before it was replaced
        still reads what it held then."""
        target = self._move_aside(path)
        if target is not None:
            self._chores.submit(lambda: os.unlink(target))

    def _move_aside(self, path: str) -> str | None:
        """Rename ``path`` into this process's trash directory; None when it is gone, or
        could not be moved and was deleted on the spot."""
        if self._pid != process.pid():
            self._start()
        trash = f"{self.directory}/{self._prefix}trash"
        target = f"{trash}/{process.token(6)}"
        try:
            try:
                os.rename(path, target)
            except FileNotFoundError:
                if not os.path.exists(path):
                    return None
                os.makedirs(trash, exist_ok=True)
                os.rename(path, target)
        except OSError:
            os.unlink(path)
            return None
        return target

    def _start(self) -> None:
        if self._pid is not None:  # a forked child: the descriptors are copies of its parent's
            for _path, fd in self._ready:
                os.close(fd)
        self._pid = process.pid()
        self._ready = collections.deque()
        self._batches = collections.deque()
        self._filling = False
        self._prefix = f"{process.host()}-{self._pid}-"
        atexit.register(self.discard)

    def _fill(self) -> None:
        try:
            self._remove_used_batches()
            self._count += 1
            batch = os.path.join(self.directory, f"{self._prefix}{self._count}")
            os.makedirs(batch)
            self._batches.append(batch)
            made = []
            for index in range(self.batch):
                path = f"{batch}/{index}"
                # Kept open: filling a spare then costs no open, and (write access being
                # granted by O_CREAT whatever the mode) no chmod to make it read-only.
                made.append((path, os.open(path, _CREATE, self.MODE)))
            if self._pid == process.pid():
                self._ready.extend(made)
            else:
                for _path, fd in made:
                    os.close(fd)
        finally:
            self._filling = False

    def _remove_used_batches(self) -> None:
        """Remove the directories of earlier batches once all their spares are used."""
        while len(self._batches) > 1:
            try:
                os.rmdir(self._batches[0])
            except FileNotFoundError:
                pass
            except OSError:
                return  # not empty yet
            self._batches.popleft()

    def discard(self) -> None:
        """Remove this process's unused spares and their directories (at exit)."""
        self._chores.drain()
        if self._pid != process.pid():
            return
        while self._ready:
            os.close(self._ready.popleft()[1])
        while self._batches:
            shutil.rmtree(self._batches.popleft(), ignore_errors=True)
        shutil.rmtree(f"{self.directory}/{self._prefix}trash", ignore_errors=True)

    def sweep(self, min_age_seconds: float = 86400.0) -> None:
        """Remove the spares of processes that are gone (this host), or old ones (others)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        host = process.host()
        now = time.time()
        for name in names:
            path = os.path.join(self.directory, name)
            owner_host, _, pid = name.rpartition("-")[0].rpartition("-")
            try:
                if owner_host == host and pid.isdigit():
                    if _process_exists(int(pid)):
                        continue
                elif now - os.stat(path).st_mtime < min_age_seconds:
                    continue
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)


_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Any = None  # the C function once looked up; False where there is none


def rename_noreplace(src: str, dst: str) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (``FileExistsError``): as exclusive
    as ``O_EXCL``, without creating a file. False where the system cannot do it."""
    return _rename2(src, dst, _RENAME_NOREPLACE)


def exchange(first: str, second: str) -> bool:
    """Swap two existing names atomically. Unlike a rename over an existing file, this does
    not make ext4 flush the new file and free the old one's inode on the spot (50-150 µs).
    False where the system cannot do it."""
    return _rename2(first, second, _RENAME_EXCHANGE)


def _rename2(src: str, dst: str, flags: int) -> bool:
    """Linux ``renameat2``; False when it is missing or the file system refuses the flag."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2 is False:
        return False
    import ctypes

    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), src, None, dst)


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc, or glibc older than 2.28
        return False
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
