"""Live runs: the files of a run that has not been committed yet, inside ``$GIT_DIR``.

A live run is a directory ``$GIT_DIR/gittrack/live/<run_id>/`` with the same files as a
committed run plus ``lock``. The process that owns the run holds an exclusive ``flock`` on
``lock`` for as long as the run is open; the kernel drops it when the process dies however it
dies, so "lock can be taken" means "owner is gone" (no pid guessing, no pid reuse issue).
Metric points are appended with one ``write`` per call on an ``O_APPEND`` descriptor: once
``log_metric`` returns, the point is in the kernel and survives ``kill -9`` of the process.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gittrack.errors import ConflictError, NotFoundError, RepositoryError, RunEndedError
from gittrack.store import process
from gittrack.store.background import Background
from gittrack.store.files import (
    read_file,
    read_rest,
    replace_file,
    storage_error,
    take_back,
    write_all,
)
from gittrack.utils import clock

META = "meta.yaml"
PARAMS = "params.yaml"
METRICS = "metrics.jsonl"
ARTIFACTS = "artifacts"
LOCK = "lock"


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_DATA_FILES = (META, PARAMS, METRICS)
# Data files are opened for reading too, so the owner reads what it appended through the
# descriptor it holds (``read_appended``, ``stamp``) without looking the path up again.
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT


def rewrite_in_place(fd: int, document: bytes, size: int | None = None) -> int:
    """Overwrite a small JSON file through its descriptor, padding with spaces (which JSON
    ignores) instead of truncating: one write, no new file. ``size``: the file's size when
    the caller knows it. Returns the size after the write."""
    if size is None:
        size = os.fstat(fd).st_size
    os.pwrite(fd, document.ljust(size), 0)
    return max(size, len(document))


class LiveRun:
    """An open live run directory. ``owner`` is true when this process holds its lock.

    ``metrics.jsonl`` and ``params.yaml`` only grow (points are appended, params never change),
    and new tags are appended to ``meta.yaml``, whose ``tags`` mapping is written last: each
    such change is one ``write`` on a descriptor kept open, with no file created. A crash can
    only tear the last line, which readers drop. Other changes rewrite the file atomically.
    """

    def __init__(
        self,
        path: Path | str,
        lock_fd: int | None,
        fds: dict[str, int] | None = None,
        lock_doc: dict | None = None,
        inodes: dict[str, int] | None = None,
        lock_size: int | None = None,
    ) -> None:
        self._base = str(path)  # paths are joined as strings: pathlib costs µs per join
        self._path = path if isinstance(path, Path) else None
        self._lock_doc = lock_doc  # what this process wrote into ``lock``, when it did
        self._lock_size = lock_size  # the lock file's size, when known
        self.run_id = self._base.rpartition("/")[2]
        self._lock_fd = lock_fd
        self._fds: dict[str, int] = dict(fds or {})
        self._inodes: dict[str, int] = dict(inodes or {})  # of the files behind ``_fds``
        # The points this handle appended and their lines, while they are all the metrics
        # file holds (None: unknown, or beyond REMEMBERED_METRIC_BYTES): the commit then
        # neither reads nor parses the file.
        self._points: list[tuple[str, float, int, int]] | None = None
        self._lines: list[bytes] = []
        self._line_bytes = 0
        self._sealed = False  # whether this handle holds the exclusive lock (see ``seal``)

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self._base)
        return self._path

    @property
    def location(self) -> str:
        """The directory's path as a string."""
        return self._base

    @property
    def owner(self) -> bool:
        return self._lock_fd is not None

    @property
    def artifacts_dir(self) -> Path:
        return self.path / ARTIFACTS

    def file(self, name: str) -> str:
        return f"{self._base}/{name}"

    def read(self, name: str) -> bytes | None:
        """A file's bytes; for YAML files without a torn last line (see the class)."""
        data = read_file(f"{self._base}/{name}")
        if data is None:
            return None
        if name.endswith(".yaml") and data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
        return data

    def read_appended(self, name: str) -> bytes | None:
        """The whole of a file that is only ever appended to (``metrics.jsonl``), read
        through the descriptor this handle appends with when it has one."""
        fd = self._fds.get(name)
        if fd is None:
            return read_file(f"{self._base}/{name}")
        return read_rest(fd, 0)

    def stamp(self, name: str) -> tuple[int, int] | tuple[()]:
        """(size, inode) of the file at ``name`` (``()`` when missing): it changes when
        anyone appends to the file or replaces it. An inode cannot be reused while this
        handle holds a descriptor on it, and it holds one on each file it appends to."""
        try:
            st = os.stat(f"{self._base}/{name}")
        except FileNotFoundError:
            return ()
        return (st.st_size, st.st_ino)

    def stamp_of_own(self, name: str, size: int) -> tuple[int, int] | tuple[()]:
        """The stamp of a file this handle wrote last and knows the ``size`` of: no system
        call when the inode behind its descriptor is known."""
        inode = self._inodes.get(name) if name in self._fds else None
        return self.stamp(name) if inode is None else (size, inode)

    def reopen(self, name: str) -> None:
        """Forget the descriptor on a file someone else replaced (the next append opens the
        file now at that path)."""
        fd = self._fds.pop(name, None)
        self._inodes.pop(name, None)
        if fd is not None:
            os.close(fd)

    def has_artifacts(self) -> bool:
        return os.path.isdir(f"{self._base}/{ARTIFACTS}")

    def write(self, name: str, data: bytes) -> None:
        """Replace a file atomically (the descriptor kept for appends is reopened later);
        when the disk refuses, the file keeps its previous content (``RepositoryError``)."""
        try:
            if self._lock_fd is None:
                with self._still_live():
                    replace_file(self.path / name, data)
            else:
                replace_file(self.path / name, data)
        except OSError as exc:
            raise storage_error(
                exc, f"could not rewrite {self.file(name)}; it keeps its previous content"
            ) from exc
        self.reopen(name)

    def append(self, name: str, data: bytes) -> None:
        """One ``write`` per call: what returns is in the kernel. A write the disk refuses
        (full, over quota, I/O error) is taken back, so that no partial line stays to merge
        with the next one, and raised as ``RepositoryError``."""
        if self._lock_fd is None:
            self._append_shared(name, data)
            return
        fd = self._fds.get(name)
        try:
            if fd is None:
                fd = self._open_appended(name)
            write_all(fd, data)
        except OSError as exc:
            raise self._refused_append(fd, name, data, exc) from exc

    def _refused_append(
        self, fd: int | None, name: str, data: bytes, exc: OSError
    ) -> RepositoryError:
        """Take back what a failed append wrote, and say what happened."""
        left = take_back(fd, data, exc) if fd is not None else 0
        where = self.file(name)
        if left:
            return storage_error(
                exc,
                f"could not append to {where}; a partial line of {left} bytes is left, "
                "which readers skip",
            )
        return storage_error(exc, f"could not append to {where}; nothing of this call was written")

    def _open_appended(self, name: str) -> int:
        fd = self._fds[name] = os.open(f"{self._base}/{name}", _APPEND_FLAGS, 0o644)
        self._inodes[name] = os.fstat(fd).st_ino
        return fd

    def _append_shared(self, name: str, data: bytes) -> None:
        with self._still_live():
            fd = self._fds.get(name)
            try:
                if fd is None:
                    fd = self._open_appended(name)
                write_all(fd, data)
            except OSError as exc:
                raise self._refused_append(fd, name, data, exc) from exc

    # A process that does not own the run writes under a shared lock on ``metrics.jsonl``
    # and only while that file is still the one in this run's live directory; the owner
    # (or whoever commits the run) seals the run with the exclusive lock before it reads
    # the files and releases it once the directory has left ``live/``. So a write by
    # another process is either in the commit or refused: never lost, and never in the
    # owner's next run, which reuses the directory and its files.
    def _metrics_fd(self) -> int:
        fd = self._fds.get(METRICS)
        return self._open_appended(METRICS) if fd is None else fd

    @contextlib.contextmanager
    def _still_live(self) -> Iterator[None]:
        """Hold the shared lock of a run this process does not own while it is live."""
        for _attempt in range(3):  # a run made live again meanwhile is looked at anew
            try:
                fd = self._metrics_fd()
            except FileNotFoundError:
                raise self._gone() from None
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                if _inode(f"{self._base}/{METRICS}") == self._inodes.get(METRICS):
                    yield
                    return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._close_data()  # the files of a run that is gone, or was made live again
            if not os.path.exists(f"{self._base}/{LOCK}"):
                break
        raise self._gone()

    @contextlib.contextmanager
    def adding_files(self) -> Iterator[None]:
        """Hold a run live while files (artifacts) are added to it. A process that does not
        own the run takes the shared lock, as for its appends: the owner's commit then has
        the files, or the run has left ``live/`` and the call is refused. Without it, a copy
        made while the owner commits returns but is in no run."""
        if self._lock_fd is not None:
            yield
            return
        with self._still_live():
            yield

    def _gone(self) -> RunEndedError:
        return RunEndedError(
            f"run {self.run_id} has ended (it was committed while this process was logging "
            "to it): nothing of this call was written to its live directory"
        )

    def seal(self) -> None:
        """Wait for writes other processes have under way, and hold off new ones, before
        the run's files are read for its commit; ``unseal`` (or closing the handle) lets
        them go on. Sealing a sealed handle does nothing."""
        if not self._sealed:
            fcntl.flock(self._metrics_fd(), fcntl.LOCK_EX)
            self._sealed = True

    def unseal(self) -> None:
        fd = self._fds.get(METRICS)
        if self._sealed and fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._sealed = False

    def append_metrics(
        self, data: bytes, points: list[tuple[str, float, int, int]] | None = None
    ) -> None:
        """Append lines to ``metrics.jsonl``; ``points``: what they hold, to remember."""
        self.append(METRICS, data)
        if self._points is not None:
            self._remember(data, points)

    def append_metric(self, data: bytes, key: str, value: float, step: int, ts: int) -> None:
        """``append_metrics`` for one point (the hot path of ``log_metric``)."""
        self.append(METRICS, data)
        if self._points is not None:
            self._remember(data, ((key, value, step, ts),))

    def _remember(self, data: bytes, points: Iterable[tuple[str, float, int, int]] | None) -> None:
        if points is None or self._line_bytes + len(data) > REMEMBERED_METRIC_BYTES:
            self._points, self._lines = None, []  # from now on, the file is read back
            return
        self._points.extend(points)  # type: ignore[union-attr]
        self._lines.append(data)
        self._line_bytes += len(data)

    def remember_metrics(self) -> None:
        """Start remembering appended points (the metrics file is empty)."""
        self._points, self._lines, self._line_bytes = [], [], 0

    def appended_metrics(self) -> tuple[bytes, list[tuple[str, float, int, int]]] | None:
        """(the metrics file's bytes, its points) from memory, when this handle appended all
        of it (a size check: another process may have appended too); else None."""
        fd = self._fds.get(METRICS)
        if self._points is None or fd is None or os.fstat(fd).st_size != self._line_bytes:
            return None
        return b"".join(self._lines), self._points

    def mark_ending(self, status: str, end_time: str) -> None:
        """Record the final status in the lock file (rewritten in place: no new file), so a
        crash between the commit and the removal of the live run recovers that status."""
        if self._lock_fd is None:
            return
        info = self._lock_doc if self._lock_doc is not None else self.lock_info()
        info = {**info, "ending": status, "end_time": end_time}
        try:
            self._lock_size = rewrite_in_place(
                self._lock_fd, json.dumps(info).encode(), self._lock_size
            )
        except OSError as exc:
            raise storage_error(
                exc, f"could not record the run's ending in {self.file(LOCK)}; it is still live"
            ) from exc

    def lock_info(self) -> dict:
        try:
            return json.loads((self.path / LOCK).read_text() or "{}")
        except (FileNotFoundError, ValueError):
            return {}

    def _close_data(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._inodes.clear()
        self._sealed = False  # closing the descriptor released the lock

    def close(self) -> None:
        self._close_data()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def detach(self) -> tuple[int | None, dict[str, int], dict[str, int], int | None]:
        """Hand the lock and file descriptors over (for recycling the directory): the lock's
        descriptor, the data files' descriptors and inodes, and the lock file's size."""
        handed = (self._lock_fd, self._fds, self._inodes, self._lock_size)
        self._lock_fd, self._fds, self._inodes = None, {}, {}
        return handed

    def remove(self, cleaner: Background | None = None) -> None:
        """Retire the directory after a successful commit: one rename takes it out of
        ``live/`` (so nothing can recover it twice), then its files are deleted, in the
        background when a cleaner is given."""
        retired = self.path.with_name(f"{RETIRED_PREFIX}{self.run_id}-{process.token(4)}")
        try:
            os.rename(self.path, retired)
        except FileNotFoundError:
            retired = self.path
        self.close()  # after the rename: closing releases the seal (see ``seal``)
        if cleaner is not None:
            cleaner.remove_tree(retired)
        else:
            shutil.rmtree(retired, ignore_errors=True)


REMEMBERED_METRIC_BYTES = 1 << 20

RETIRED_PREFIX = ".done-"
NEW_PREFIX = ".new-"
SPARE_PREFIX = ".new-spare-"


@dataclass
class _Spare:
    """A prepared, locked live directory with empty data files, waiting for a run."""

    path: str
    lock_fd: int
    fds: dict[str, int]
    pid: int
    inodes: dict[str, int]
    lock_size: int | None


class Staging:
    """The set of live runs of one repository."""

    KEEP_SPARES = 2  # ready or in the making: a run rarely waits for one
    MAX_SPARES = 3  # ready; more are removed (see ``recycle``)
    SPARE_WAIT_SECONDS = 0.02

    def __init__(self, root: Path) -> None:
        self.root = root / "live"
        self.cleaner = Background("gittrack-staging")
        self._spares: collections.deque[_Spare] = collections.deque()
        self._preparing = False
        self._in_making = 0  # spares being emptied or prepared in the background
        self._spare_ready = threading.Condition()
        self._spare_pid: int | None = None

    def sweep(self, min_age_seconds: float = 3600.0) -> None:
        """Delete retired directories, and unfinished creations older than ``min_age_seconds``."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return
        now = time.time()
        for name in names:
            path = self.root / name
            if name.startswith(RETIRED_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
            elif name.startswith(SPARE_PREFIX):
                self._sweep_spare(path)
            elif name.startswith(NEW_PREFIX):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > min_age_seconds:
                        shutil.rmtree(path, ignore_errors=True)

    def _lock_doc(self) -> dict:
        return {"pid": process.pid(), "host": process.host(), "locked_at": clock.now_ms()}

    def _sweep_spare(self, path: Path) -> None:
        """A spare whose lock can be taken belongs to a process that is gone."""
        try:
            fd = os.open(path / LOCK, os.O_RDWR)
        except OSError:
            return
        try:
            if _try_flock(fd):
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)

    def _make_shell(self, name: str) -> _Spare:
        """A locked directory with empty data files, not yet visible as a run."""
        path = f"{self.root}/{name}"
        try:
            os.mkdir(path)
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            os.mkdir(path)
        lock_fd = os.open(f"{path}/{LOCK}", os.O_RDWR | os.O_CREAT, 0o644)
        _try_flock(lock_fd)
        fds = {name: os.open(f"{path}/{name}", _APPEND_FLAGS, 0o644) for name in _DATA_FILES}
        inodes = {name: os.fstat(fd).st_ino for name, fd in fds.items()}
        return _Spare(path, lock_fd, fds, process.pid(), inodes, 0)

    def recycle(self, live: LiveRun, has_artifacts: bool | None = None) -> None:
        """After its commit, make a run's directory the next spare: one rename takes it out
        of ``live/``; its files are emptied in place, so the next run creates none, and its
        artifacts are deleted in the background. ``has_artifacts``: whether the directory
        held artifacts when it was committed, when the caller looked already. Anything
        else in it (a temporary file left by a writer that crashed) stays unused."""
        if has_artifacts is None:
            has_artifacts = live.has_artifacts()
        if not live.owner or self._spare_pid != process.pid():
            live.remove(self.cleaner)
            return
        spare_path = f"{self.root}/{SPARE_PREFIX}{process.pid()}-{process.token(4)}"
        try:
            os.rename(live.location, spare_path)
        finally:
            live.unseal()
        lock_fd, fds, inodes, lock_size = live.detach()
        assert lock_fd is not None
        if has_artifacts:
            retired = self.root / f"{RETIRED_PREFIX}{live.run_id}-{process.token(4)}"
            os.rename(f"{spare_path}/{ARTIFACTS}", retired)
            self.cleaner.remove_tree(retired)
        spare = _Spare(spare_path, lock_fd, fds, process.pid(), inodes, lock_size)
        # Emptying the files frees their blocks (100 µs and more on ext4): done off this
        # thread; a run starting meanwhile waits for it rather than create files itself.
        with self._spare_ready:
            self._in_making += 1
        self.cleaner.submit(lambda: self._empty_spare(spare))

    def _empty_spare(self, spare: _Spare) -> None:
        try:
            for name in _DATA_FILES:
                fd = spare.fds.get(name)
                # Only meta.yaml is ever replaced (the other files only grow): when another
                # process replaced it, the descriptor is on the old file and is reopened.
                if (
                    fd is not None
                    and name == META
                    and _inode(f"{spare.path}/{name}") != spare.inodes.get(name)
                ):
                    os.close(spare.fds.pop(name))
                    fd = None
                if fd is None:
                    fd = spare.fds[name] = os.open(f"{spare.path}/{name}", _APPEND_FLAGS, 0o644)
                    spare.inodes[name] = os.fstat(fd).st_ino
                os.ftruncate(fd, 0)
        except OSError:
            self._discard(spare)
            self._offer_spare(None)
            raise
        self._offer_spare(spare)

    def _prepare_spare(self) -> None:
        spare = None
        try:
            spare = self._make_shell(f"{SPARE_PREFIX}{process.pid()}-{process.token(4)}")
        finally:
            self._preparing = False
            self._offer_spare(spare)

    def _offer_spare(self, spare: _Spare | None) -> None:
        """Add a spare made in the background to the ready ones (beyond ``MAX_SPARES`` it is
        removed), and wake a run waiting for one."""
        if (spare is not None and spare.pid != process.pid()) or self._spare_pid != process.pid():
            return
        with self._spare_ready:
            self._in_making -= 1
            if spare is not None and len(self._spares) >= self.MAX_SPARES:
                self._discard(spare)
            elif spare is not None:
                self._spares.append(spare)
            self._spare_ready.notify_all()

    def _request_spare(self) -> None:
        """Prepare a spare in the background when fewer than ``KEEP_SPARES`` are ready or
        on their way (recycled directories then keep the count there)."""
        if not self._preparing and len(self._spares) + self._in_making < self.KEEP_SPARES:
            self._preparing = True
            with self._spare_ready:
                self._in_making += 1
            self.cleaner.submit(self._prepare_spare)

    def _take_shell(self, run_id: str) -> _Spare:
        """A spare when one is ready or being made (waited for briefly), else a shell made
        now; either way the next spare is then prepared in the background (one at a time)."""
        pid = process.pid()
        if self._spare_pid != pid:  # a forked child leaves its parent's spares alone
            self._spares, self._preparing, self._spare_pid = collections.deque(), False, pid
            self._in_making, self._spare_ready = 0, threading.Condition()
            atexit.register(self.discard_spares)
        with self._spare_ready:
            if not self._spares and self._in_making:
                self._spare_ready.wait(self.SPARE_WAIT_SECONDS)
            spare = self._spares.popleft() if self._spares else None
        shell = spare or self._make_shell(f"{NEW_PREFIX}{run_id}-{pid}")
        self._request_spare()
        return shell

    def discard_spares(self) -> None:
        """Remove this process's unused spares (at exit)."""
        self.cleaner.drain()
        while self._spares and self._spare_pid == process.pid():
            self._discard(self._spares.popleft())

    @staticmethod
    def _discard(spare: _Spare) -> None:
        shutil.rmtree(spare.path, ignore_errors=True)
        for fd in (spare.lock_fd, *spare.fds.values()):
            os.close(fd)

    def create(self, run_id: str, files: dict[str, bytes]) -> LiveRun:
        """Create a live run owned by this process; it appears complete or not at all."""
        final = f"{self.root}/{run_id}"
        try:
            shell = self._take_shell(run_id)
        except OSError as exc:
            raise storage_error(exc, f"could not create the live run {final}") from exc
        lock_doc = self._lock_doc()
        try:
            lock_size = rewrite_in_place(
                shell.lock_fd, json.dumps(lock_doc).encode(), shell.lock_size
            )
            for name, data in files.items():
                fd = shell.fds.get(name)
                if fd is None:
                    Path(shell.path, name).write_bytes(data)
                else:
                    write_all(fd, data)
        except OSError as exc:
            self._discard(shell)
            raise storage_error(exc, f"could not create the live run {final}") from exc
        try:
            os.rename(shell.path, final)
        except OSError as exc:
            for fd in (shell.lock_fd, *shell.fds.values()):
                os.close(fd)
            shutil.rmtree(shell.path, ignore_errors=True)
            raise ConflictError(f"run {run_id} is already live in {final}") from exc
        live = LiveRun(final, shell.lock_fd, shell.fds, lock_doc, shell.inodes, lock_size)
        if not files.get(METRICS):
            live.remember_metrics()
        return live

    def exists(self, run_id: str) -> bool:
        return (self.root / run_id / LOCK).exists()

    def open(self, run_id: str, claim: bool = False) -> LiveRun:
        """Open a live run; with ``claim``, take its lock (only possible if its owner is gone).

        Without the lock the handle can still append metrics and rewrite files: a second
        process logging to someone else's live run is allowed, as MLflow allows it.
        """
        path = self.root / run_id
        if not (path / LOCK).exists():
            raise NotFoundError(f"run {run_id} is not live in {self.root}")
        if not claim:
            return LiveRun(path, None)
        fd = os.open(path / LOCK, os.O_RDWR)
        if not _try_flock(fd):
            os.close(fd)
            info = LiveRun(path, None).lock_info()
            raise ConflictError(
                f"run {run_id} is open in process {info.get('pid', '?')} on "
                f"{info.get('host', '?')}; end it there first"
            )
        lock_doc = self._lock_doc()
        rewrite_in_place(fd, json.dumps(lock_doc).encode())
        return LiveRun(path, fd, lock_doc=lock_doc)

    def claim_orphan(self, run_id: str) -> LiveRun | None:
        """Take over a live run whose owner died; None when the owner is alive."""
        path = self.root / run_id
        try:
            fd = os.open(path / LOCK, os.O_RDWR)
        except FileNotFoundError:
            return None
        if not _try_flock(fd):
            os.close(fd)
            return None
        if not (path / LOCK).exists():  # committed and removed while we opened it
            os.close(fd)
            return None
        return LiveRun(path, fd)

    def run_ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith("."))
