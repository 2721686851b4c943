"""Git objects: hashing, writing (one pack per commit, or loose) and reading.

Reads go through one persistent ``git cat-file --batch`` (with loose objects read directly).
A commit's objects are written as one pack with its index (``packs.py``; loose objects in
git's documented format for tiny batches), so a commit costs no process spawn.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from gittrack.errors import CorruptDataError, RepositoryError
from gittrack.store import process
from gittrack.store.background import Background
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.files import SpareFiles, replace_file, storage_error
from gittrack.store.git_process import git_env
from gittrack.store.packs import SmallPacks, deflate, pack_entries, write_pack

# How many object ids are remembered as present on disk (see ``ObjectStore._known_objects``).
MAX_KNOWN_OBJECTS = 100_000
# A batch is written as one pack below this size, as loose objects above it: the pack index
# written here has 32-bit offsets only (git's 64-bit offset table starts at 2 GiB).
MAX_PACKED_BATCH = 1 << 30


class ObjectReader:
    """Reads objects: loose ones straight from disk, the rest through ``cat-file --batch``."""

    def __init__(self, git_dir: Path, objects_dir: Path) -> None:
        self._git_dir = git_dir
        self._objects_dir = objects_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = process.pid()
        self._lock = threading.Lock()

    def read(self, sha: str) -> tuple[str, bytes]:
        """(kind, body) of one object; ``CorruptDataError`` when it is missing."""
        loose = self._objects_dir / sha[:2] / sha[2:]
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
            raise CorruptDataError(f"object {sha} is missing from {self._git_dir}")
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
        base = str(self._objects_dir)
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
                f"{len(missing)} objects are missing from {self._git_dir}, e.g. {missing[0]}"
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
            results, missing = _read_answers(stdout, shas)
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
                cwd=self._git_dir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=git_env({"GIT_DIR": str(self._git_dir)}),
            )
        return self._proc

    def close(self) -> None:
        """Stop the ``cat-file`` process, if one runs (the next read starts another)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            proc.wait()


_READ_SIZE = 1 << 20


def _read_answers(
    stdout: io.BufferedReader, shas: list[str]
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The answers of ``cat-file --batch`` to ``shas``: each object's (kind, body), ("", b"")
    for the missing, and the missing ids; fewer answers when git stopped.

    The output is read in large pieces and cut up here: a read call per object costs more
    than git takes to inflate a small one.
    """
    results: list[tuple[str, bytes]] = []
    missing: list[str] = []
    buffer = b""
    pos = 0
    for sha in shas:
        newline = buffer.find(b"\n", pos)
        while newline < 0:
            more = stdout.read1(_READ_SIZE)
            if not more:
                return results, missing
            buffer, pos = buffer[pos:] + more, 0
            newline = buffer.find(b"\n")
        parts = buffer[pos:newline].split()
        pos = newline + 1
        if len(parts) == 2 and parts[1] == b"missing":
            missing.append(sha)
            results.append(("", b""))
            continue
        end = pos + int(parts[2])
        if len(buffer) <= end:  # the rest of the body and its line break, in one read
            rest = stdout.read(end + 1 - len(buffer))
            buffer, end, pos = buffer[pos:] + rest, end - pos, 0
            if len(buffer) <= end:
                return results, missing
        results.append((parts[1].decode(), buffer[pos:end]))
        pos = end + 1
    return results, missing


class PendingObjects:
    """Objects collected by ``ObjectStore.collected_objects``, not yet on disk."""

    def __init__(self, store: ObjectStore, objects: dict[str, tuple[str, bytes]] | None) -> None:
        self._store = store
        self._objects = objects  # None: an outer batch writes them

    def write(self) -> None:
        """Write them (once): as one pack, or loose objects for a few or huge ones."""
        objects, self._objects = self._objects, None
        if objects:
            self._store._write_batch(objects)


class ObjectStore:
    """A repository's object database: ids, writes (batched per thread) and reads."""

    def __init__(
        self,
        git_dir: Path,
        objects_dir: Path,
        object_format: str,
        spare_files: SpareFiles,
        chores: Background,
        after_merge: Callable[[], None] | None,
        git: Callable[..., subprocess.CompletedProcess[bytes]],
    ) -> None:
        """The object database of one repository.

        Args:
            git_dir: the repository's git directory (where ``cat-file`` runs).
            objects_dir: its ``objects`` directory (shared by all worktrees).
            object_format: ``sha1`` or ``sha256``.
            spare_files: files made ahead, so a write creates none.
            chores: where small packs are merged in the background.
            after_merge: what runs after small packs were merged (compaction), if anything.
            git: runs one git command in the repository (``GitRepo.git``).
        """
        self.objects_dir = objects_dir
        self.object_format = object_format
        self._hash = hashlib.sha256 if object_format == "sha256" else hashlib.sha1
        self.digest_size = self._hash().digest_size
        self.reader = ObjectReader(git_dir, objects_dir)
        self._spare_files = spare_files
        self._git = git
        # Objects known to be on disk: a sweep writes about ten a run, and a forgotten object
        # is at worst written again. 100,000 ids are about 20 MB.
        self._known_objects: BoundedCache[str, bool] = BoundedCache(MAX_KNOWN_OBJECTS)
        self._batches = threading.local()  # see ``_pending``
        self._pack_dir = f"{objects_dir}/pack"
        self._packs = SmallPacks(self._pack_dir, spare_files, chores, after_merge=after_merge)

    def hash_object(self, kind: str, data: bytes) -> str:
        """The id ``data`` has as an object of ``kind`` (written or not)."""
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
            pack = write_pack(self._pack_dir, entries, self._spare_files)
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
            replace_file(target, deflate(kind, raw), 0o444, self._spare_files)
        except OSError as exc:
            raise storage_error(exc, f"could not write object {sha} into {directory}") from exc
        return sha

    def has_object(self, sha: str) -> bool:
        """Whether the object ``sha`` is in the repository (or the open batch)."""
        if self._pending is not None and sha in self._pending:
            return True
        if sha in self._known_objects:
            return True
        if os.path.exists(f"{self.objects_dir}/{sha[:2]}/{sha[2:]}"):
            self._remember_present((sha,))  # a present object stays while we run
            return True
        if self._git("cat-file", "-e", sha, check=False).returncode != 0:
            return False
        self._remember_present((sha,))  # packed objects do not go away while we run
        return True

    def _remember_present(self, shas: Iterable[str]) -> None:
        """Note objects known to be on disk. The least recently used are forgotten past
        ``MAX_KNOWN_OBJECTS`` (a sweep writes ten a run): a forgotten object is at worst
        written again."""
        self._known_objects.add_all(shas, True)

    def read_object(self, sha: str) -> tuple[str, bytes]:
        """(kind, body) of one object; ``CorruptDataError`` when it is missing."""
        if self._pending is not None and sha in self._pending:
            return self._pending[sha]
        return self.reader.read(sha)

    def read_blob(self, sha: str) -> bytes:
        """A blob's bytes; ``CorruptDataError`` when ``sha`` is missing or not a blob."""
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

    def close(self) -> None:
        """Stop the reader process (it starts again on the next read)."""
        self.reader.close()
