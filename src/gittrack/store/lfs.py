"""Large artifacts as Git LFS pointer files (DESIGN §2, §10).

git keeps every blob whole in memory and in every clone, and hosts refuse big files (GitHub:
100 MB). A file at or over the configured threshold is therefore not put in git: the branch
holds a pointer file in git-lfs's format (spec v1: ``version``, ``oid sha256:<hex>``,
``size N``) and the content goes to the repository's own LFS object store,
``$GIT_COMMON_DIR/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>``, the layout ``git lfs push`` and
``git lfs fetch`` read and fill. So local use needs no git-lfs at all; only moving objects
between repositories does.

Content is hashed and copied in chunks (or hard-linked), never read whole: a gigabyte
artifact costs a megabyte of memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gittrack.errors import CorruptDataError, NotFoundError
from gittrack.store.files import copy_file

SPEC_URL = "https://git-lfs.github.com/spec/v1"
DEFAULT_THRESHOLD = 10 * 1024 * 1024
# git-lfs reads only blobs under this size as pointers (its ``blobSizeCutoff``).
MAX_POINTER_SIZE = 1024
_CHUNK = 1 << 20
_OID = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class LfsPointer:
    """What a pointer file says: the content's SHA-256 and its size in bytes."""

    oid: str
    size: int

    def encode(self) -> bytes:
        """The canonical pointer file (the bytes ``git lfs clean`` writes)."""
        return f"version {SPEC_URL}\noid sha256:{self.oid}\nsize {self.size}\n".encode()


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer ``data`` holds, or None when it is ordinary content.

    Follows the spec: ``version`` first, then ``key value`` lines in key order (extensions
    allowed), an ``oid`` of ``sha256:`` and 64 hex digits and a decimal ``size``.
    """
    if len(data) >= MAX_POINTER_SIZE or not data.startswith(b"version "):
        return None
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return None
    if lines[-1] != "" or lines[0] != f"version {SPEC_URL}":
        return None
    fields: dict[str, str] = {}
    for line in lines[1:-1]:
        key, sep, value = line.partition(" ")
        if not sep or key in fields or (fields and key < list(fields)[-1]):
            return None
        fields[key] = value
    oid, size = fields.get("oid", ""), fields.get("size", "")
    if not oid.startswith("sha256:") or not _OID.fullmatch(oid[7:]) or not _SIZE.fullmatch(size):
        return None
    return LfsPointer(oid[7:], int(size))


class LfsStore:
    """The LFS object store of one repository (shared by its worktrees)."""

    def __init__(self, common_dir: str | os.PathLike[str]) -> None:
        self.root = Path(common_dir) / "lfs"

    def object_path(self, oid: str) -> Path:
        return self.root / "objects" / oid[0:2] / oid[2:4] / oid

    def has(self, pointer: LfsPointer) -> bool:
        """Whether the content is here, whole (a partial download has another size)."""
        try:
            return self.object_path(pointer.oid).stat().st_size == pointer.size
        except OSError:
            return False

    def store(self, source: str | os.PathLike[str]) -> LfsPointer:
        """Put ``source`` in the store and return its pointer.

        The file is hashed in chunks, then hard-linked in (its bytes are not copied: a live
        run's artifact is never rewritten in place) or, across file systems, copied under a
        temporary name and renamed, so the store never holds a partial object.
        """
        pointer = hash_file(source)
        if self.has(pointer):
            return pointer
        target = self.object_path(pointer.oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
            return pointer
        except FileExistsError:  # another writer's (then done) or a partial one (replaced)
            if self.has(pointer):
                return pointer
        except OSError:  # another file system, or links not allowed: copy instead
            pass
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        copy_file(source, target, scratch=tmp_dir)
        return pointer

    def copy_out(
        self, pointer: LfsPointer, target: Path, what: str, fetch_hint: Callable[[], str]
    ) -> None:
        """Copy the content a pointer names to ``target``, in chunks.

        :param what: the artifact, as named in errors.
        :param fetch_hint: the command that brings missing content (``git lfs fetch ...``),
            asked for only when it is missing.
        """
        source = self.check_present(pointer, what, fetch_hint)
        shutil.copyfile(source, target)

    def check_present(self, pointer: LfsPointer, what: str, fetch_hint: Callable[[], str]) -> Path:
        """The object file of ``pointer``; a GittrackError naming the fix when it is missing
        or has the wrong size."""
        path = self.object_path(pointer.oid)
        try:
            size = path.stat().st_size
        except OSError:
            raise NotFoundError(
                f"{what} is stored with Git LFS (oid {pointer.oid}, {pointer.size} bytes) and "
                f"its content is not in {self.root / 'objects'}: fetch it with `{fetch_hint()}` "
                "(git-lfs must be installed for that)"
            ) from None
        if size != pointer.size:
            raise CorruptDataError(
                f"{what}: Git LFS object {path} has {size} bytes, its pointer says "
                f"{pointer.size}; remove it and fetch it again with `{fetch_hint()}`"
            )
        return path


def hash_file(path: str | os.PathLike[str]) -> LfsPointer:
    """The pointer of a file's content, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            size += n
    return LfsPointer(digest.hexdigest(), size)


def has_objects(common_dir: str | os.PathLike[str]) -> bool:
    """Whether the repository's LFS store holds any object (stops at the first found)."""
    root = Path(common_dir) / "lfs" / "objects"
    return any(files for _dir, _subdirs, files in os.walk(root))
