"""Git refs in the files format: reading (loose, packed), and updating them in process.

A ref moves under git's own lock protocol (``RefUpdater``), so a commit costs no process
spawn (DESIGN §4); ``packed-refs`` is read, and re-read only when it changed.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gittrack.errors import ConflictError
from gittrack.store import process
from gittrack.store.files import (
    PartialWriteError,
    exchange,
    read_file,
    read_rest,
    rename_noreplace,
    storage_error,
    take_back,
    write_all,
)

if TYPE_CHECKING:
    from gittrack.store.git import GitRepo

LOCK_MODE = 0o644  # a ref's mode (git: 0666 less the umask)


class RefMovedError(ConflictError):
    """The ref is not at the expected value (another writer moved it)."""


class RefLockedError(ConflictError):
    """Another writer holds the ref's lock file, or a writer that stopped left it behind."""

    def __init__(self, message: str, lock: str, stale: bool = False) -> None:
        super().__init__(message)
        self.lock = lock
        self.stale = stale  # left by a writer that stopped: waiting will not help


class LockState(enum.Enum):
    """What a ref's lock file says about its writer (see ``RefUpdater.lock_state``)."""

    ABSENT = "absent"
    HELD = "held"  # a running gittrack process holds it
    RECENT = "recent"  # nobody holds it, but it is new: git may be using it for a moment
    STALE = "stale"  # nobody holds it and it is old: its writer stopped


# A lock nobody holds an flock on is left behind once it is this old. gittrack writers hold
# an flock on their lock for as long as it exists (the kernel drops it when they die, however
# they die); git does not, but it holds a ref's lock only while it writes 41 bytes.
STALE_LOCK_SECONDS = 2.0


class RefUpdater:
    """Compare-and-swap ref updates with git's own lock protocol, in process.

    Exactly what ``git update-ref`` does for a loose ref, without a process round trip:
    create ``<ref>.lock`` exclusively, holding the new value (so git and every other writer
    wait for us), check the ref still has the expected value, run ``before_swap`` (a
    commit's objects are written there), append the reflog line, and put the lock in the
    ref's place. On Linux the two are exchanged and the ref's previous file is then moved
    aside and deleted in the background (never written again: a reader that opened it just
    before still reads the value it held); elsewhere the lock is renamed over the ref.

    While it holds a lock, the writer also holds an ``flock`` on the lock file (as ``git
    gc`` records its pid in ``gc.pid``, but without pid reuse or host questions): a lock
    without one whose file is older than ``STALE_LOCK_SECONDS`` was left by a writer that
    died, and ``clear_stale_lock`` removes it. Any failure removes the lock it took.
    """

    def __init__(self, repo: GitRepo) -> None:
        self._repo = repo
        self._lock = threading.Lock()
        self._reflogs: dict[str, tuple[int, int, int]] = {}
        self._log_all: str | None = None  # core.logAllRefUpdates, read on first use

    def _autocreates_reflog(self, ref: str) -> bool:
        """Whether git would start a reflog for ``ref`` (``core.logAllRefUpdates``).

        ``always``: every ref. ``true`` (git's default in a repository with a work tree):
        branches, remote-tracking refs, notes and HEAD. ``false`` (the default in a bare
        repository): none. The setting is read once per handle, at the first ref update
        that needs it (one ``git config`` call), as git reads it once per command.
        """
        if self._log_all is None:
            proc = self._repo.git("config", "--get", "core.logAllRefUpdates", check=False)
            raw = proc.stdout.decode().strip().lower() if proc.returncode == 0 else ""
            if raw == "always":
                self._log_all = "always"
            elif raw in ("true", "yes", "on", "1") or (raw == "" and not self._repo.bare):
                self._log_all = "true"
            else:  # false, no, off, 0, or unset in a bare repository
                self._log_all = "false"
        if self._log_all == "always":
            return True
        if self._log_all == "true":
            return ref == "HEAD" or ref.startswith(("refs/heads/", "refs/remotes/", "refs/notes/"))
        return False

    def update(
        self,
        ref: str,
        new: str,
        old: str | None,
        message: str = "gittrack",
        before_swap: Callable[[], None] | None = None,
        reflog: bool = True,
    ) -> None:
        """Point ``ref`` at ``new`` only if it is at ``old`` (None: must not exist yet).

        ``before_swap`` runs under the lock once the ref is known to be at ``old`` (the
        objects of a commit are written there: nothing is written for an update that
        cannot happen). The reflog line follows git's rules: ``core.logAllRefUpdates`` says
        which refs get a new reflog (``_autocreates_reflog``), and a reflog that already
        exists is always appended to; ``reflog=False`` writes none (a private ref). Raises ``RefMovedError`` when
        the ref moved, ``RefLockedError`` when another writer holds its lock (the caller
        rebuilds and retries), and ``RepositoryError`` when the disk refuses a write (the
        ref is then unchanged).
        """
        repo = self._repo
        path = f"{repo.common_dir}/{ref}"
        lock = f"{path}.lock"
        with self._lock:
            held = self._take_lock(ref, lock, f"{new}\n".encode())
            try:
                raw = _read_loose_ref(path) or b""
                current = raw.strip().decode(errors="surrogateescape") or repo.read_ref(ref)
                if current != old:
                    raise RefMovedError(f"{ref} is at {current}, expected {old}")
                if before_swap is not None:
                    before_swap()
                if reflog:
                    self._append_reflog(ref, old, new, message)
                if raw.strip() and self._swap_in(lock, path):
                    # The lock now holds the old value: moving it away releases the lock.
                    # It is never refilled: a reader may have opened it as the ref file.
                    with contextlib.suppress(OSError):
                        repo.spare_files.retire(lock)
                else:
                    self._loose_ref_file(ref, path)
                    os.replace(lock, path)
            except BaseException as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
                if isinstance(exc, OSError):
                    raise storage_error(exc, f"could not update {ref}; it is unchanged") from exc
                raise
            finally:
                os.close(held)

    def delete(self, ref: str, old: str) -> None:
        """Remove ``ref`` if it is at ``old``; nothing to do when it is already gone.

        The loose file goes under ``<ref>.lock``, as ``git update-ref -d`` removes it. A
        ref that ``git gc`` packed into ``packed-refs`` is removed from there by git itself
        (rewriting that file is git's business). Raises ``RefMovedError`` when the ref
        points elsewhere, ``ConflictError`` when another writer holds its lock.
        """
        repo = self._repo
        path = f"{repo.common_dir}/{ref}"
        lock = f"{path}.lock"
        with self._lock:
            held = self._take_lock(ref, lock, f"{old}\n".encode())
            try:
                raw = _read_loose_ref(path)
                current = (raw or b"").strip().decode(errors="surrogateescape") or repo.read_ref(
                    ref
                )
                if current is None:
                    return
                if current != old:
                    raise RefMovedError(f"{ref} is at {current}, expected {old}")
                if raw is not None:
                    os.unlink(path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
                os.close(held)
        if repo.read_ref(ref) is not None:  # packed: git rewrites packed-refs
            repo.git("update-ref", "-d", ref, old)

    @staticmethod
    def _loose_ref_file(ref: str, path: str) -> None:
        """Refuse a ref where a directory holds other refs (``refs/tags/a/b`` when creating
        ``refs/tags/a``), as git refuses it."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise ConflictError(
                f"{ref} cannot be created: refs exist below it ({path} is a directory)"
            )

    @staticmethod
    def _swap_in(lock: str, path: str) -> bool:
        """Exchange the lock and the loose ref file; False when the system cannot."""
        try:
            return exchange(lock, path)
        except FileNotFoundError:
            return False

    def _take_lock(self, ref: str, lock: str, content: bytes) -> int:
        """Create ``lock`` exclusively, holding ``content``, with an flock on it; returns
        its descriptor (closing it drops the flock). ``RefLockedError`` when the lock
        exists; on any other failure no lock is left."""
        try:
            fd = self._rename_spare(lock, content)
            if fd is not None:
                return fd
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(lock), exist_ok=True)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                write_all(fd, content)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                raise
            return fd
        except FileExistsError as exc:
            raise self.locked_error(ref, lock) from exc
        except OSError as exc:
            raise storage_error(exc, f"could not lock {ref} to update it; it is unchanged") from exc

    def _rename_spare(self, lock: str, content: bytes) -> int | None:
        """Fill a ready spare file, take an flock on it, and make it the lock by a rename
        that fails when the name exists, just as ``O_EXCL`` does, at a fraction of the cost
        of creating a file. Returns the spare's descriptor; None when no spare is ready or
        the system cannot (the caller creates the lock)."""
        taken = self._repo.spare_files.take()
        if taken is None:
            return None
        spare, fd = taken
        try:
            write_all(fd, content)
            os.fchmod(fd, LOCK_MODE)  # pool spares are read-only
            # Blocking, yet brief: only a ``lock_state`` look may hold it for a moment.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if rename_noreplace(spare, lock):
                return fd
        except BaseException as exc:  # the lock exists, a full disk, no refs directory...
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(spare)
            if not isinstance(exc, OSError) or isinstance(
                exc, (FileExistsError, PartialWriteError)
            ):
                raise
            return None
        os.close(fd)
        os.unlink(spare)
        return None

    def locked_error(self, ref: str, lock: str) -> RefLockedError:
        """The error for a lock that is in the way, saying whether to wait or to recover."""
        state, age = self._judge(lock)
        if state is LockState.STALE:
            return RefLockedError(
                f"{ref} is locked by {lock}, left {age:.0f} s ago by a process that stopped "
                "(none holds it): run `gittrack recover` to remove it",
                lock,
                stale=True,
            )
        return RefLockedError(
            f"{ref} is being updated by another process ({lock} exists): wait for it to "
            "finish; if no git or gittrack process is running, run `gittrack recover`",
            lock,
        )

    def lock_state(self, lock: str) -> LockState:
        """Whether ``lock`` is absent, held by a running gittrack process, recent, or stale."""
        return self._judge(lock)[0]

    # A writer that swaps its lock into the ref leaves the ref's previous file (nobody holds
    # it, and it is as old as the last update) under the lock's name for an instant, until
    # it moves it away: a lock is stale only when it is the same file a moment later.
    SECOND_LOOK_SECONDS = 0.05

    def _judge(self, lock: str) -> tuple[LockState, float]:
        """(state, seconds since the lock was last written) of a lock file."""
        state, age, inode = _lock_look(lock)
        if state is not LockState.STALE:
            return state, age
        time.sleep(self.SECOND_LOOK_SECONDS)
        again, age, same = _lock_look(lock)
        if again is LockState.STALE and same != inode:
            return LockState.RECENT, 0.0  # another file by now: judged on a later look
        return again, age

    def clear_stale_lock(self, lock: str, wait: bool = True) -> bool:
        """Remove ``lock`` if its writer stopped; True when it was removed. With ``wait``,
        a recent lock nobody holds is looked at again until it is old enough to judge (it
        is gone by then when git was using it)."""
        while True:
            state, age = self._judge(lock)
            if state is LockState.RECENT and wait:
                time.sleep(min(0.1, max(0.01, STALE_LOCK_SECONDS - age)))
                continue
            if state is not LockState.STALE:
                return False
            removed = _remove_if_stale(lock)
            if removed is not None:
                return removed

    def _append_reflog(self, ref: str, old: str | None, new: str, message: str) -> None:
        repo = self._repo
        log = f"{repo.common_dir}/logs/{ref}"
        summary = message.splitlines()[0] if message else ""
        line = f"{old or repo.null_sha} {new} {repo.identity().signature()}\t{summary}\n"
        fd = self._reflog_fd(ref, log)
        if fd is not None:
            data = line.encode()
            try:
                write_all(fd, data)
            except OSError as exc:
                take_back(fd, data, exc)  # no partial line: git would not read the reflog
                raise

    def _reflog_fd(self, ref: str, log: str) -> int | None:
        """An append descriptor on the reflog, kept open across commits; reopened when the
        file was replaced (``git reflog expire`` rewrites it) or this is a forked child."""
        cached = self._reflogs.get(log)
        try:
            on_disk = os.stat(log).st_ino
        except FileNotFoundError:
            on_disk = None
        if cached is not None:
            fd, inode, pid = cached
            if inode == on_disk and pid == process.pid():
                return fd
            if pid == process.pid():
                os.close(fd)
            del self._reflogs[log]
        if on_disk is None and not self._autocreates_reflog(ref):
            return None  # git starts no reflog for this ref (core.logAllRefUpdates)
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(log), exist_ok=True)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._reflogs[log] = (fd, os.fstat(fd).st_ino, process.pid())
        return fd

    def close(self) -> None:
        """Close the reflog descriptors kept open (those of this process)."""
        for fd, _inode, pid in self._reflogs.values():
            if pid == process.pid():
                os.close(fd)
        self._reflogs.clear()


def _lock_look(lock: str) -> tuple[LockState, float, int]:
    """(state, seconds since it was last written, inode) of a ref's lock file."""
    try:
        fd = os.open(lock, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return LockState.ABSENT, 0.0, 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockState.HELD, 0.0, 0
        st = os.fstat(fd)
    finally:
        os.close(fd)
    age = time.time() - st.st_mtime
    state = LockState.STALE if age >= STALE_LOCK_SECONDS else LockState.RECENT
    return state, age, st.st_ino


def _remove_if_stale(lock: str) -> bool | None:
    """Remove a lock judged stale, under an exclusive flock (no writer can take the file
    meanwhile): True when removed, False when it is held or gone, None when it changed
    since it was judged (judge it again)."""
    try:
        fd = os.open(lock, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        st = os.fstat(fd)
        if time.time() - st.st_mtime < STALE_LOCK_SECONDS or os.lstat(lock).st_ino != st.st_ino:
            return None
        os.unlink(lock)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


_REF_LINE = re.compile(r"^([0-9a-f]{40,64}) (\S+)$")


class RefReader:
    """Reads refs without spawning git: loose files, then ``packed-refs``."""

    def __init__(self, common_dir: str) -> None:
        """A reader of the refs below ``common_dir``.

        Args:
            common_dir: the git directory shared by all worktrees (where refs live).
        """
        self.common_dir = common_dir
        self._packed: tuple[tuple[int, int, int], dict[str, str]] | None = None

    def read_ref(self, ref: str) -> str | None:
        """Resolve a full ref name without spawning git (loose file, then packed-refs)."""
        value = read_small_file(f"{self.common_dir}/{ref}").strip()
        if value.startswith("ref: "):
            return self.read_ref(value[5:])
        if value:
            return value
        return self._packed_refs().get(ref)

    def packed_refs(self) -> dict[str, str]:
        """The refs in ``packed-refs`` (name -> id); a loose ref of the same name wins."""
        return dict(self._packed_refs())

    def packed_ref_map(self) -> Mapping[str, str]:
        """``packed-refs`` parsed, not copied: the same mapping object until the file
        changes (read-only; see ``GitRepo.packed_ref_map``)."""
        return self._packed_refs()

    def _packed_refs(self) -> dict[str, str]:
        """``packed-refs`` parsed, re-read only when the file changed."""
        path = f"{self.common_dir}/packed-refs"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._packed is not None and self._packed[0] == stamp:
            return self._packed[1]
        refs: dict[str, str] = {}
        for line in read_small_file(path).splitlines():
            match = _REF_LINE.match(line)
            if match:
                refs[match.group(2)] = match.group(1)
        self._packed = (stamp, refs)
        return refs

    def refs_under(self, prefix: str) -> dict[str, str]:
        """Every ref whose name starts with ``prefix`` (a directory, ``refs/x/``) and its
        value: loose files (a walk of that one directory) and packed entries."""
        found = {ref: sha for ref, sha in self._packed_refs().items() if ref.startswith(prefix)}
        root = f"{self.common_dir}/{prefix}"
        for directory, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith(".lock"):
                    continue
                ref = f"{prefix}{os.path.relpath(f'{directory}/{name}', root)}"
                value = (
                    (_read_loose_ref(f"{directory}/{name}") or b"")
                    .strip()
                    .decode(errors="surrogateescape")
                )
                if value:
                    found[ref] = value
        return found

    def ref_locks(self, prefix: str) -> list[str]:
        """The lock files (``<ref>.lock``) below ``prefix`` (``refs/tags``), as paths."""
        found = []
        for top, _dirs, files in os.walk(f"{self.common_dir}/{prefix}"):
            found += [f"{top}/{name}" for name in files if name.endswith(".lock")]
        return sorted(found)


def _head_of(path: str) -> bytes | None:
    """A HEAD (or ``gitdir``) file's content without surrounding space; None when missing."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).strip()
    except OSError:
        return None


def _read_loose_ref(path: str) -> bytes | None:
    """A loose ref file's bytes; None when there is no regular file (missing, a symbolic
    ref, a symbolic link or a directory), "ref: " files included (resolved elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    try:
        data = read_rest(fd)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)
    return None if data.startswith(b"ref: ") else data


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def read_small_file(path: str) -> str:
    """A small text file's content ("" when it is missing or a directory). Bytes that are
    not UTF-8 (git allows them in ref names) are kept as surrogates, which name the same
    file again."""
    try:
        return (read_file(path) or b"").decode(errors="surrogateescape")
    except IsADirectoryError:
        return ""


def checked_out_in(common_dir: str, bare: bool, ref: str) -> str | None:
    """The work tree whose HEAD is the branch ``ref``, if one is (the main one, then linked
    ones), read from the HEAD files: one read, and one listing of ``worktrees/`` (usually
    missing)."""
    wanted = f"ref: {ref}".encode()
    if not bare and _head_of(f"{common_dir}/HEAD") == wanted:
        return os.path.dirname(common_dir)
    try:
        linked = os.listdir(f"{common_dir}/worktrees")
    except OSError:
        return None
    for name in linked:
        if _head_of(f"{common_dir}/worktrees/{name}/HEAD") == wanted:
            gitdir = _head_of(f"{common_dir}/worktrees/{name}/gitdir") or b""
            return os.path.dirname(gitdir.decode(errors="replace")) or name
    return None
