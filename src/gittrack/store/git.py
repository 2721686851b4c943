"""The one place that reaches git.

Reads go through one persistent ``git cat-file --batch`` (with loose objects read directly).
A commit's objects are written as one pack with its index (``packs.py``; loose objects in
git's documented format for tiny batches), and refs move in process under git's own lock
protocol (``RefUpdater``), so a commit costs no process spawn.
Everything else (status, snapshots, tags) runs ``git`` with optional locks disabled, so that
nothing refreshes the user's index behind their back.
"""

from __future__ import annotations

import bisect
import contextlib
import enum
import fcntl
import getpass
import hashlib
import os
import re
import socket
import stat
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gittrack.errors import ConflictError, CorruptDataError, RepositoryError
from gittrack.store import process
from gittrack.store.background import Background
from gittrack.store.files import (
    PartialWriteError,
    SpareFiles,
    exchange,
    read_file,
    read_rest,
    rename_noreplace,
    replace_file,
    storage_error,
    take_back,
    write_all,
)
from gittrack.store.packs import SmallPacks, deflate, pack_entries, write_pack

# A batch is written as one pack below this size, as loose objects above it: the pack index
# written here has 32-bit offsets only (git's 64-bit offset table starts at 2 GiB).
MAX_KNOWN_OBJECTS = 100_000
MAX_PACKED_BATCH = 1 << 30

NESTED_HOOK_ENV = "GITTRACK_HOOK_RUNNING"
# Every git gittrack starts carries NESTED_HOOK_ENV, so the gittrack part of the hooks it fires
# (reference-transaction on its own fetch, push and update-ref) sits out instead of recursing.
_GIT_ENV_BASE = {
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
    "GIT_TERMINAL_PROMPT": "0",
    NESTED_HOOK_ENV: "1",
}


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_GIT_ENV_BASE)
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Iterable[str],
    cwd: str | os.PathLike[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command; on failure raise ``RepositoryError`` with git's own message."""
    cmd = ["git", "--no-optional-locks", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, input=input, env=_git_env(env), capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise RepositoryError("git is not installed or not on PATH") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise RepositoryError(f"git {' '.join(args)} failed: {message}")
    return proc


def _utc_offset(ts: int) -> str:
    """The local time zone's offset at ``ts`` as git writes it (``+0100``); the last answer
    is kept for the rest of its minute (a commit asks two or three times)."""
    global _last_offset
    minute = ts // 60
    if _last_offset[0] != minute:
        offset = -time.altzone if time.localtime(ts).tm_isdst > 0 else -time.timezone
        sign = "+" if offset >= 0 else "-"
        offset = abs(offset)
        _last_offset = (minute, f"{sign}{offset // 3600:02d}{offset % 3600 // 60:02d}")
    return _last_offset[1]


_last_offset: tuple[int, str] = (-1, "")


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def signature(self, timestamp: float | None = None) -> str:
        ts = int(time.time() if timestamp is None else timestamp)
        return f"{self.name} <{self.email}> {ts} {_utc_offset(ts)}"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    name: str
    sha: str

    @property
    def is_tree(self) -> bool:
        return self.mode == "40000"


class ObjectReader:
    """Reads objects: loose ones straight from disk, the rest through ``cat-file --batch``."""

    def __init__(self, repo: GitRepo) -> None:
        self._repo = repo
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = process.pid()
        self._lock = threading.Lock()

    def read(self, sha: str) -> tuple[str, bytes]:
        loose = self._repo.objects_dir / sha[:2] / sha[2:]
        try:
            raw = zlib.decompress(loose.read_bytes())
        except FileNotFoundError:
            return self._read_batch(sha)
        header, _, body = raw.partition(b"\0")
        kind, _, _size = header.decode().partition(" ")
        return kind, body

    # About a second in all: on a loaded machine the process that merges packs can be
    # descheduled between writing the merged pack and removing the small ones for longer
    # than a few milliseconds (seen with four writers on two busy cores). Only a missing
    # object waits, and a truly missing one is an error either way.
    MISSING_RETRIES = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5)

    def _read_batch(self, sha: str) -> tuple[str, bytes]:
        """One object through ``cat-file --batch``. Asked again when reported missing: git
        rescans the pack directory once per lookup, and an object another process moves
        from its small packs into a merged pack in between can escape that one scan."""
        for delay in self.MISSING_RETRIES:
            found = self._ask_batch(sha)
            if found is not None:
                return found
            time.sleep(delay)
        found = self._ask_batch(sha)
        if found is None:
            raise CorruptDataError(f"object {sha} is missing from {self._repo.git_dir}")
        return found

    def _ask_batch(self, sha: str) -> tuple[str, bytes] | None:
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(sha.encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline()
            except BrokenPipeError:
                header = b""
            if not header:
                self.close()
                raise RepositoryError(f"git cat-file stopped while reading object {sha}")
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                return None
            size = int(parts[2])
            body = proc.stdout.read(size + 1)[:-1]
            return parts[1].decode(), body

    def read_many(self, shas: Sequence[str]) -> list[tuple[str, bytes]]:
        """(kind, body) of each object, in order.

        Loose objects are read from disk; the others go to ``cat-file --batch`` in one
        pipelined round (a thread writes the ids while this one reads the answers), so a
        thousand packed objects cost one round trip, not a thousand.
        """
        base = str(self._repo.objects_dir)
        results: list[tuple[str, bytes]] = []
        packed: list[int] = []
        loose = self._loose_fanout(base) if len(shas) > 64 else None
        for index, sha in enumerate(shas):
            try:
                if loose is not None and sha[:2] not in loose:
                    raise FileNotFoundError(sha)
                with open(f"{base}/{sha[:2]}/{sha[2:]}", "rb") as fh:
                    raw = zlib.decompress(fh.read())
            except FileNotFoundError:
                packed.append(index)
                results.append(("", b""))
                continue
            header, _, body = raw.partition(b"\0")
            results.append((header.split(b" ", 1)[0].decode(), body))
        if packed:
            for index, item in zip(packed, self._read_batch_many([shas[i] for i in packed])):
                results[index] = item
        return results

    @staticmethod
    def _loose_fanout(base: str) -> set[str]:
        """The ``objects/xx`` directories present: in a packed repository there are none, and
        probing for thousands of loose files that do not exist is then skipped."""
        try:
            return {name for name in os.listdir(base) if len(name) == 2}
        except FileNotFoundError:
            return set()

    def _read_batch_many(self, shas: list[str]) -> list[tuple[str, bytes]]:
        results, missing = self._ask_many(shas)
        for delay in self.MISSING_RETRIES:  # asked again (see ``_read_batch``)
            if not missing:
                return results
            time.sleep(delay)
            asked = missing
            again, missing = self._ask_many(asked)
            still = set(missing)
            found = {sha: item for sha, item in zip(asked, again) if sha not in still}
            results = [found.get(sha, item) for sha, item in zip(shas, results)]
        if missing:
            raise CorruptDataError(
                f"{len(missing)} objects are missing from {self._repo.git_dir}, e.g. {missing[0]}"
            )
        return results

    def _ask_many(self, shas: list[str]) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Each object's (kind, body), ("", b"") for the missing, and the missing ids."""
        with self._lock:
            proc = self._ensure()
            stdin, stdout = proc.stdin, proc.stdout
            assert stdin is not None and stdout is not None
            request = "".join(f"{sha}\n" for sha in shas).encode()
            failure: list[BaseException] = []

            def send() -> None:
                try:
                    stdin.write(request)
                    stdin.flush()
                except (BrokenPipeError, ValueError) as exc:
                    failure.append(exc)

            writer = threading.Thread(target=send, daemon=True)
            writer.start()
            results: list[tuple[str, bytes]] = []
            missing: list[str] = []
            for sha in shas:
                header = stdout.readline()
                if not header:
                    break
                parts = header.split()
                if len(parts) == 2 and parts[1] == b"missing":
                    missing.append(sha)
                    results.append(("", b""))
                    continue
                body = stdout.read(int(parts[2]) + 1)[:-1]
                results.append((parts[1].decode(), body))
            writer.join()
            if len(results) != len(shas) or failure:
                self.close()
                raise RepositoryError(f"git cat-file stopped while reading {len(shas)} objects")
        return results, missing

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._pid != process.pid():  # a forked child must not share its parent's pipes
            self._proc, self._pid = None, process.pid()
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self._repo.git_dir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_git_env({"GIT_DIR": str(self._repo.git_dir)}),
            )
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            proc.wait()


LOCK_MODE = 0o644  # a ref's mode (git: 0666 less the umask)


class PendingObjects:
    """Objects collected by ``GitRepo.collected_objects``, not yet on disk."""

    def __init__(self, repo: GitRepo, objects: dict[str, tuple[str, bytes]] | None) -> None:
        self._repo = repo
        self._objects = objects  # None: an outer batch writes them

    def write(self) -> None:
        """Write them (once): as one pack, or loose objects for a few or huge ones."""
        objects, self._objects = self._objects, None
        if objects:
            self._repo._write_batch(objects)


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
    ref's place. On Linux the two are exchanged, and the ref's previous file is kept to be
    the next lock; elsewhere the lock is renamed over the ref.

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
                current = raw.strip().decode() or repo.read_ref(ref)
                if current != old:
                    raise RefMovedError(f"{ref} is at {current}, expected {old}")
                if before_swap is not None:
                    before_swap()
                if reflog:
                    self._append_reflog(ref, old, new, message)
                if raw.strip() and self._swap_in(lock, path):
                    # The lock now holds the old value: moving it away releases the lock,
                    # and the file serves again as a later lock (same size, no new file).
                    with contextlib.suppress(OSError):
                        repo.spare_files.keep(lock, len(raw))
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
                current = (raw or b"").strip().decode() or repo.read_ref(ref)
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
        spares = self._repo.spare_files
        spare = spares.take_kept(len(content))
        if spare is not None:  # a ref file an earlier update replaced: overwritten whole
            try:
                fd = os.open(spare, os.O_WRONLY)
            except OSError:
                return None
            mode = None
        else:
            taken = spares.take()
            if taken is None:
                return None
            (spare, fd), mode = taken, LOCK_MODE  # pool spares are read-only
        try:
            write_all(fd, content)
            if mode is not None:
                os.fchmod(fd, mode)
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


class GitRepo:
    """A git repository as gittrack uses it: object store, refs and plain commands."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        start = Path(path if path is not None else os.getcwd()).expanduser()
        if not start.exists():
            raise RepositoryError(f"tracking repository path {str(start)!r} does not exist")
        proc = run_git(
            [
                "rev-parse",
                "--is-bare-repository",
                "--absolute-git-dir",
                "--git-common-dir",
                "--show-object-format",
                "--show-toplevel",
            ],
            cwd=start,
            check=False,
        )
        if proc.returncode != 0 and b"refstorage" in proc.stderr.lower():
            raise RepositoryError(_reftable_message(str(start)))
        if proc.returncode != 0:
            raise RepositoryError(
                f"{str(start)!r} is not inside a git repository: run `git init` (or "
                "`gittrack init`) there first, or point GITTRACK_TRACKING_URI at a repository"
            )
        lines = proc.stdout.decode().splitlines()
        self.bare = lines[0] == "true"
        self.git_dir = Path(lines[1])
        common = Path(lines[2])
        self.common_dir = common if common.is_absolute() else (start / common).resolve()
        self.object_format = lines[3]
        self.work_tree: Path | None = Path(lines[4]) if len(lines) > 4 and lines[4] else None
        if (self.common_dir / "reftable").is_dir():
            raise RepositoryError(_reftable_message(str(start)))
        self.objects_dir = self.common_dir / "objects"
        self.null_sha = "0" * (64 if self.object_format == "sha256" else 40)
        self._hash = hashlib.sha256 if self.object_format == "sha256" else hashlib.sha1
        self._digest_size = self._hash().digest_size
        self.reader = ObjectReader(self)
        self.refs = RefUpdater(self)
        self._tree_cache: dict[str, list[TreeEntry]] = {}
        self._tree_parts: dict[str, tuple[list[str], list[bytes]]] = {}
        self._entries: dict[tuple[str, str], TreeEntry | None] = {}  # (tree, name) -> entry
        self._known_objects: set[str] = set()
        self._batches = threading.local()  # see ``_pending``
        self._commit_cache: dict[str, tuple[str, list[str]]] = {}
        self.chores = Background("gittrack-git")
        self.spare_files = SpareFiles(self.gittrack_dir / "spare", self.chores)
        self._pack_dir = f"{self.objects_dir}/pack"
        self._packs = SmallPacks(
            self._pack_dir, self.spare_files, self.chores, after_merge=self._compaction_trigger()
        )
        self._identity: Identity | None = None
        self._packed: tuple[tuple[int, int, int], dict[str, str]] | None = None

    def _compaction_trigger(self) -> Callable[[], None] | None:
        """Delta-compresses the packs this repository's writers make, in the background
        (``compaction.py``, which reaches git through this module: imported here)."""
        if self.object_format != "sha1":  # full-object packs are written in SHA-1 only
            return None
        from gittrack.store.compaction import CompactionTrigger

        return CompactionTrigger(self.common_dir)

    # ------------------------------------------------------------------ paths
    def checked_out_in(self, ref: str) -> str | None:
        """The work tree whose HEAD is the branch ``ref``, if one is (the main one, then
        linked ones), read from the HEAD files: one read, and one listing of
        ``worktrees/`` (usually missing)."""
        wanted = f"ref: {ref}".encode()
        if not self.bare and _head_of(f"{self.common_dir}/HEAD") == wanted:
            return str(self.common_dir.parent)
        try:
            linked = os.listdir(f"{self.common_dir}/worktrees")
        except OSError:
            return None
        for name in linked:
            if _head_of(f"{self.common_dir}/worktrees/{name}/HEAD") == wanted:
                gitdir = _head_of(f"{self.common_dir}/worktrees/{name}/gitdir") or b""
                return os.path.dirname(gitdir.decode(errors="replace")) or name
        return None

    @property
    def path(self) -> Path:
        """The work tree, or the git directory of a bare repository."""
        return self.work_tree or self.git_dir

    @property
    def gittrack_dir(self) -> Path:
        """Private state of gittrack: ``$GIT_DIR/gittrack`` (shared by all worktrees)."""
        return self.common_dir / "gittrack"

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        return run_git(args, cwd=self.path, input=input, env=env, check=check)

    def git_text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        return self.git(*args, env=env).stdout.decode()

    # ---------------------------------------------------------------- objects
    def hash_object(self, kind: str, data: bytes) -> str:
        digest = self._hash(f"{kind} {len(data)}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    @property
    def _pending(self) -> dict[str, tuple[str, bytes]] | None:
        """The objects the current thread's ``collected_objects`` block holds back. Per
        thread: two threads committing at once (each with its own active run) must not
        put their objects into the other's batch, which may move the branch first."""
        return getattr(self._batches, "pending", None)

    @_pending.setter
    def _pending(self, value: dict[str, tuple[str, bytes]] | None) -> None:
        self._batches.pending = value

    @contextlib.contextmanager
    def collected_objects(self) -> Iterator[PendingObjects]:
        """Collect the objects written inside the block without writing them: the caller
        writes them with ``write()`` on what this yields (or drops them). Inside an outer
        batch, the outer batch writes everything."""
        if self._pending is not None:
            yield PendingObjects(self, None)
            return
        pending = self._pending = {}
        try:
            yield PendingObjects(self, pending)
        finally:
            self._pending = None

    def _write_batch(self, pending: dict[str, tuple[str, bytes]]) -> None:
        try:
            self._write_objects(pending)
        except OSError as exc:
            raise storage_error(
                exc, f"could not write {len(pending)} objects into {self.objects_dir}"
            ) from exc

    def _write_objects(self, pending: dict[str, tuple[str, bytes]]) -> None:
        if (
            len(pending) >= 3
            and self.object_format == "sha1"
            and sum(len(data) for _kind, data in pending.values()) < MAX_PACKED_BATCH
        ):
            entries = pack_entries(pending)
            pack = write_pack(self._pack_dir, entries, self.spare_files)
            self._remember_present(pending)
            self._packs.add(pack, entries)
        else:
            for kind, data in pending.values():
                self._write_loose(kind, data)

    def write_object(self, kind: str, data: bytes) -> str:
        """Write an object (idempotent) and return its id: loose, or into the open batch."""
        if self._pending is not None:
            sha = self.hash_object(kind, data)
            if sha not in self._pending and sha not in self._known_objects:
                self._pending[sha] = (kind, data)
            return sha
        return self._write_loose(kind, data)

    def _write_loose(self, kind: str, data: bytes) -> str:
        raw = f"{kind} {len(data)}\0".encode() + data
        sha = self._hash(raw).hexdigest()
        directory = self.objects_dir / sha[:2]
        target = directory / sha[2:]
        if target.exists():
            return sha
        # Readers see the whole object or none; a concurrent writer of the same object
        # renames identical bytes over it, which is harmless.
        try:
            replace_file(target, deflate(kind, raw), 0o444, self.spare_files)
        except OSError as exc:
            raise storage_error(exc, f"could not write object {sha} into {directory}") from exc
        return sha

    def has_object(self, sha: str) -> bool:
        if self._pending is not None and sha in self._pending:
            return True
        if sha in self._known_objects:
            return True
        if os.path.exists(f"{self.objects_dir}/{sha[:2]}/{sha[2:]}"):
            self._remember_present((sha,))  # a present object stays while we run
            return True
        if self.git("cat-file", "-e", sha, check=False).returncode != 0:
            return False
        self._remember_present((sha,))  # packed objects do not go away while we run
        return True

    def _remember_present(self, shas: Iterable[str]) -> None:
        """Note objects known to be on disk. Forgotten past ``MAX_KNOWN_OBJECTS`` (a
        sweep writes ten a run): a forgotten object is at worst written again."""
        if len(self._known_objects) > MAX_KNOWN_OBJECTS:
            self._known_objects.clear()
        self._known_objects.update(shas)

    def read_object(self, sha: str) -> tuple[str, bytes]:
        if self._pending is not None and sha in self._pending:
            return self._pending[sha]
        return self.reader.read(sha)

    def read_blob(self, sha: str) -> bytes:
        kind, body = self.read_object(sha)
        if kind != "blob":
            raise CorruptDataError(f"object {sha} is a {kind}, expected a blob")
        return body

    def read_objects(self, shas: Sequence[str]) -> list[tuple[str, bytes]]:
        """(kind, body) of many objects at once, in order (see ``ObjectReader.read_many``)."""
        pending = self._pending
        if pending and any(sha in pending for sha in shas):
            return [pending[sha] if sha in pending else self.read_object(sha) for sha in shas]
        return self.reader.read_many(shas)

    def read_trees(self, shas: Sequence[str]) -> list[list[TreeEntry]]:
        """The entries of many trees at once, in order; not kept in the tree cache."""
        digest_size = self._digest_size
        trees = []
        for sha, (kind, body) in zip(shas, self.read_objects(shas)):
            if kind != "tree":
                raise CorruptDataError(f"object {sha} is a {kind}, expected a tree")
            trees.append(_parse_tree(body, digest_size))
        return trees

    def read_tree(self, sha: str) -> list[TreeEntry]:
        cached = self._tree_cache.get(sha)
        if cached is not None:
            return cached
        entries = _parse_tree(self._tree_body(sha), self._digest_size)
        if len(self._tree_cache) > 20_000:
            self._tree_cache.clear()
        self._tree_cache[sha] = entries
        return entries

    def write_tree(self, entries: Iterable[TreeEntry]) -> str:
        ordered = sorted(entries, key=_tree_sort_key)
        return self._write_tree_parts(
            [_tree_sort_key(e) for e in ordered], [_encode_entry(e) for e in ordered]
        )

    def update_tree(self, base: str | None, changes: Mapping[str, TreeEntry | None]) -> str | None:
        """A tree like ``base`` (None: empty) with the entries named in ``changes`` replaced,
        added, or removed (None); returns its id, or None when no entry is left.

        The unchanged entries are copied in their encoded form: a commit rewrites the trees
        along one path, each up to 256 entries of which one changes.
        """
        keys, parts = self._parts_of(base) if base else ([], [])
        keys, parts = keys.copy(), parts.copy()
        if base:
            # The new tree supersedes its base, which is rarely read again: its entries are
            # dropped (a shard tree holds up to 256), so a long sweep's memory stays flat.
            self._tree_parts.pop(base, None)
        for name, entry in changes.items():
            for key in (name, name + "/"):  # a blob and a tree of that name sort apart
                at = _position(keys, key)
                if at is not None:
                    del keys[at], parts[at]
            if entry is not None:
                key = _tree_sort_key(entry)
                at = bisect.bisect_left(keys, key)
                keys.insert(at, key)
                parts.insert(at, _encode_entry(entry))
        return self._write_tree_parts(keys, parts) if keys else None

    def subtree(self, tree: str, name: str) -> str | None:
        """The id of the subtree called ``name`` in ``tree`` (None: no such subtree)."""
        keys, parts = self._parts_of(tree)
        at = _position(keys, name + "/")
        return None if at is None else parts[at][-self._digest_size :].hex()

    def tree_entry(self, tree: str, name: str) -> TreeEntry | None:
        """The entry called ``name`` in ``tree``, without decoding the others (trees never
        change, so the answers are kept: paths like ``.tracking/experiments`` are walked
        on every run)."""
        known = self._entries.get((tree, name), _UNKNOWN)
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        keys, parts = self._parts_of(tree)
        found = None
        for key in (name + "/", name):
            at = _position(keys, key)
            if at is not None:
                found = _parse_tree(parts[at], self._digest_size)[0]
                break
        if len(self._entries) > 20_000:
            self._entries.clear()
        self._entries[(tree, name)] = found
        return found

    def _write_tree_parts(self, keys: list[str], parts: list[bytes]) -> str:
        sha = self.write_object("tree", b"".join(parts))
        self._remember_parts(sha, keys, parts)
        return sha

    def _parts_of(self, sha: str) -> tuple[list[str], list[bytes]]:
        """A tree's entries as (sort keys, encoded entries), both in git's order."""
        known = self._tree_parts.get(sha)
        if known is not None:
            return known
        keys, parts = _split_tree(self._tree_body(sha), self._digest_size)
        self._remember_parts(sha, keys, parts)
        return keys, parts

    def _tree_body(self, sha: str) -> bytes:
        kind, body = self.read_object(sha)
        if kind != "tree":
            raise CorruptDataError(f"object {sha} is a {kind}, expected a tree")
        return body

    def _remember_parts(self, sha: str, keys: list[str], parts: list[bytes]) -> None:
        if len(self._tree_parts) > 20_000:
            self._tree_parts.clear()
        self._tree_parts[sha] = (keys, parts)

    def commit_tree_info(self, sha: str) -> tuple[str, list[str]]:
        """The tree and the parents of a commit."""
        known = self._commit_cache.get(sha)
        if known is not None:
            return known
        kind, body = self.read_object(sha)
        if kind != "commit":
            raise CorruptDataError(f"object {sha} is a {kind}, expected a commit")
        tree = ""
        parents: list[str] = []
        for line in body.split(b"\n"):
            if not line:
                break
            if line.startswith(b"tree "):
                tree = line[5:].decode()
            elif line.startswith(b"parent "):
                parents.append(line[7:].decode())
        self._remember_commit(sha, tree, parents)
        return tree, parents

    def _remember_commit(self, sha: str, tree: str, parents: list[str]) -> None:
        if len(self._commit_cache) > 20_000:
            self._commit_cache.clear()
        self._commit_cache[sha] = (tree, parents)

    def write_commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        parents = list(parents)
        ident = self.identity().signature()
        lines = [f"tree {tree}"]
        lines += [f"parent {p}" for p in parents]
        lines += [f"author {ident}", f"committer {ident}", "", clean_message(message)]
        text = "\n".join(lines)
        if not text.endswith("\n"):
            text += "\n"
        sha = self.write_object("commit", text.encode())
        self._remember_commit(sha, tree, parents)
        return sha

    def identity(self) -> Identity:
        """Who commits: git's own resolution (env vars, then config), else the OS user."""
        if self._identity is None:
            proc = self.git("var", "GIT_COMMITTER_IDENT", check=False)
            match = re.match(rb"^(.*) <(.*)> \d+ [+-]\d{4}$", proc.stdout.strip())
            if proc.returncode == 0 and match:
                self._identity = Identity(match.group(1).decode(), match.group(2).decode())
            else:
                user = getpass.getuser()
                self._identity = Identity(user, f"{user}@{socket.gethostname()}")
        return self._identity

    # ------------------------------------------------------------------- refs
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
        """``packed-refs`` parsed (name -> id), not copied: the same mapping object until the
        file changes, so a caller can tell by identity that nothing was packed or pruned.
        Read-only; a loose ref of the same name wins over its entry here."""
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

    def update_ref(
        self,
        ref: str,
        new: str,
        old: str | None,
        message: str = "gittrack",
        before_swap: Callable[[], None] | None = None,
        reflog: bool = True,
    ) -> None:
        self.refs.update(ref, new, old, message, before_swap, reflog)

    def delete_ref(self, ref: str, old: str) -> None:
        """Remove ``ref`` if it is at ``old`` (see ``RefUpdater.delete``)."""
        self.refs.delete(ref, old)

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
                value = (_read_loose_ref(f"{directory}/{name}") or b"").strip().decode()
                if value:
                    found[ref] = value
        return found

    def ref_locks(self, prefix: str) -> list[str]:
        """The lock files (``<ref>.lock``) below ``prefix`` (``refs/tags``), as paths."""
        found = []
        for top, _dirs, files in os.walk(f"{self.common_dir}/{prefix}"):
            found += [f"{top}/{name}" for name in files if name.endswith(".lock")]
        return sorted(found)

    def rev_parse(self, rev: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def close(self) -> None:
        """Release what this handle holds: the reader process, reflog descriptors and the
        spare files made ahead (each an open descriptor)."""
        self.reader.close()
        self.refs.close()
        self.spare_files.discard()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        with contextlib.suppress(Exception):
            self.close()


def _reftable_message(where: str) -> str:
    """Why gittrack refuses a repository whose refs are kept in git's reftable format."""
    return (
        f"the git repository at {where!r} keeps its refs in the reftable format "
        "(extensions.refStorage = reftable); gittrack writes refs in process in git's files "
        "format (DESIGN §4) and supports only that. Convert the repository with "
        "`git refs migrate --ref-format=files` (git 2.46 or newer), or track into a "
        "repository created without --ref-format=reftable"
    )


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
    """A small text file's content ("" when it is missing or a directory)."""
    try:
        return (read_file(path) or b"").decode()
    except IsADirectoryError:
        return ""


_UNKNOWN = object()


def _position(keys: list[str], key: str) -> int | None:
    """Where ``key`` is in the sorted ``keys`` (None: absent)."""
    at = bisect.bisect_left(keys, key)
    return at if at < len(keys) and keys[at] == key else None


def _tree_sort_key(entry: TreeEntry) -> str:
    """git orders a tree's entries by name, a subtree's name as if it ended in '/'."""
    return entry.name + "/" if entry.mode == "40000" else entry.name


def _encode_entry(entry: TreeEntry) -> bytes:
    """One tree entry in git's binary form."""
    return f"{entry.mode} {entry.name}\0".encode("utf-8", "surrogateescape") + bytes.fromhex(
        entry.sha
    )


def _tree_entries(body: bytes, digest_size: int) -> Iterator[tuple[bytes, str, int, int]]:
    """Each entry of a tree's body as (mode, name, start, end of the entry's bytes)."""
    pos = 0
    end = len(body)
    while pos < end:
        space = body.find(b" ", pos)
        nul = body.find(b"\0", space)
        stop = nul + 1 + digest_size
        if space < 0 or nul < 0 or stop > end:
            raise CorruptDataError(f"a tree object is malformed at byte {pos}")
        # Names are bytes to git; one that is not UTF-8 (a fetched tree can hold any) is kept
        # byte for byte rather than failing the read of its whole tree.
        yield body[pos:space], body[space + 1 : nul].decode("utf-8", "surrogateescape"), pos, stop
        pos = stop


def _split_tree(body: bytes, digest_size: int) -> tuple[list[str], list[bytes]]:
    """A tree's body cut into its encoded entries, with each entry's sort key."""
    keys: list[str] = []
    parts: list[bytes] = []
    for mode, name, start, stop in _tree_entries(body, digest_size):
        keys.append(name + "/" if mode == b"40000" else name)
        parts.append(body[start:stop])
    return keys, parts


def parse_tree(body: bytes, digest_size: int = 20) -> list[TreeEntry]:
    """The entries of a tree object's body (for readers of raw objects, such as packs)."""
    return _parse_tree(body, digest_size)


def _parse_tree(body: bytes, digest_size: int) -> list[TreeEntry]:
    return [
        TreeEntry(mode.decode(), name, body[stop - digest_size : stop].hex())
        for mode, name, _start, stop in _tree_entries(body, digest_size)
    ]


# Characters a commit message must not carry: NUL makes ``git fsck --strict`` fail
# (nulInCommit) and servers with receive.fsckObjects refuse the push; other control
# characters garble ``git log`` in a terminal; lone surrogates cannot be encoded as UTF-8.
_UNSAFE_IN_MESSAGE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_IN_FIELD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_MESSAGE_FIELD = 200


def _escape(match: re.Match[str]) -> str:
    return ascii(match.group())[1:-1]


def clean_message(message: str) -> str:
    """A commit message as written: unsafe characters spelled as escapes (``\\x00``), lines
    and tabs kept. Whatever the data, the commit object stays valid for ``git fsck``."""
    if _UNSAFE_IN_MESSAGE.search(message) is None:
        return message
    return _UNSAFE_IN_MESSAGE.sub(_escape, message)


def message_field(value: object) -> str:
    """A value (a run or experiment name) for one line of a commit message: control
    characters and newlines escaped, so it cannot add lines or trailers, and shortened."""
    text = _UNSAFE_IN_FIELD.sub(_escape, str(value))
    if len(text) > MAX_MESSAGE_FIELD:
        return f"{text[: MAX_MESSAGE_FIELD - 3]}..."
    return text
