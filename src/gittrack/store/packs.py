"""Writing a batch of objects as one pack file (git's pack format version 2 with a v2 index).

A run's commit is about ten small objects (blobs, the trees along its path, the commit).
Writing them as loose objects costs ten file creations; on a busy disk file creation, not
hashing or compression, is what a short run waits for. One pack and its index are two.
Format: https://git-scm.com/docs/gitformat-pack (SHA-1 repositories only).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import os
import struct
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

from gittrack.store import process
from gittrack.store.background import Background
from gittrack.store.files import SpareFiles, replace_file

TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def _entry_header(type_code: int, size: int) -> bytes:
    first = (type_code << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(first | 0x80)
        first = size & 0x7F
        size >>= 7
    out.append(first)
    return bytes(out)


STORE_BELOW = 4096


def deflate(kind: str, data: bytes) -> bytes:
    """An object's zlib stream, as cheap to make as its content allows.

    Every ``zlib.compress`` call allocates and clears about 256 KiB of state: 20-30 µs, more
    than compressing a small file takes and most of a short run's compression time. So
    objects under 4 KiB, and trees of any size (mostly SHA-1 bytes, which do not compress),
    are written as stored (uncompressed) deflate blocks, built here without zlib's state;
    ``git gc`` compresses them when it repacks them as deltas. Larger blobs are compressed.
    """
    if kind != "tree" and len(data) >= STORE_BELOW:
        return zlib.compress(data, 1)
    return _stored_zlib(data)


def _stored_zlib(data: bytes) -> bytes:
    """A valid zlib stream (RFC 1950) holding ``data`` in stored deflate blocks (RFC 1951)."""
    size = len(data)
    if size <= 0xFFFF:  # one final block
        return b"".join(
            (
                struct.pack("<2sBHH", b"\x78\x01", 1, size, size ^ 0xFFFF),
                data,
                struct.pack(">I", zlib.adler32(data)),
            )
        )
    out = bytearray(b"\x78\x01")
    view = memoryview(data)
    pos = 0
    while True:
        block = view[pos : pos + 0xFFFF]
        pos += len(block)
        final = pos >= len(data)
        out += struct.pack("<BHH", 1 if final else 0, len(block), len(block) ^ 0xFFFF)
        out += block
        if final:
            break
    out += struct.pack(">I", zlib.adler32(data))
    return bytes(out)


def pack_entries(objects: Mapping[str, tuple[str, bytes]]) -> dict[str, bytes]:
    """Each object as its pack entry (type-and-size header, then zlib data), by SHA-1."""
    return {
        sha: _entry_header(TYPE_CODES[kind], len(data)) + deflate(kind, data)
        for sha, (kind, data) in objects.items()
    }


def build_pack(entries: Mapping[str, bytes]) -> tuple[bytes, bytes, str]:
    """(pack bytes, index bytes, pack checksum hex) for pack entries keyed by SHA-1.

    Entries are written in SHA-1 order, the index's order, so that every table of the index
    comes out of one C-level pass (merged packs hold hundreds of entries).
    """
    shas = sorted(entries)
    blobs = [entries[sha] for sha in shas]
    header = b"PACK" + struct.pack(">II", 2, len(shas))
    offsets = list(itertools.accumulate(map(len, blobs), initial=len(header)))[:-1]
    body = header + b"".join(blobs)
    checksum = hashlib.sha1(body).digest()
    names = bytes.fromhex("".join(shas))
    first_bytes = names[::20]
    if len(first_bytes) < 256:  # a commit's pack: count its few entries
        counts = [0] * 256
        for byte in first_bytes:
            counts[byte] += 1
        fanout = list(itertools.accumulate(counts))
    else:  # a merged pack: 256 binary searches
        fanout = [bisect.bisect_right(first_bytes, byte) for byte in range(256)]
    count = len(shas)
    index = b"".join(
        [
            b"\xfftOc" + struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            names,
            struct.pack(f">{count}I", *map(zlib.crc32, blobs)),
            struct.pack(f">{count}I", *offsets),
            checksum,
        ]
    )
    return body + checksum, index + hashlib.sha1(index).digest(), checksum.hex()


def write_pack(
    pack_dir: str | Path, entries: Mapping[str, bytes], spares: SpareFiles | None = None
) -> str:
    """Write the pack, then its index: git sees the pack only once the index exists.
    Returns the path of the pack (``.pack``; the index has the same stem)."""
    pack, index, name = build_pack(entries)
    stem = f"{pack_dir}/pack-{name}"
    replace_file(f"{stem}.pack", pack, 0o444, spares)
    replace_file(f"{stem}.idx", index, 0o444, spares)
    return f"{stem}.pack"


class SmallPacks:
    """The small packs this process wrote, merged into one every ``limit`` packs.

    One pack per commit keeps a commit cheap, but thousands of packs slow every object
    lookup (git's included) and fill ``objects/pack``. The compressed entries of recent
    packs are kept in memory (up to ``max_bytes``), written again as one pack, and only then
    are the small packs deleted, so every object stays readable throughout; git re-scans the
    pack directory when an object is not where it looked. With ``chores``, merges run on
    that background thread, off the committing one. A pack that is gone by the time of the
    merge (delta-compressed by ``compaction.py``, or merged by another process) is left out:
    its objects are in another pack already, and writing them again would undo that work.
    ``after_merge`` runs on the background thread after each first-level merge and once at
    the first commit of a process (the compaction trigger).
    """

    def __init__(
        self,
        pack_dir: str | Path,
        spares: SpareFiles | None = None,
        chores: Background | None = None,
        limit: int = 32,
        max_bytes: int = 32 << 20,
        levels: int = 2,
        after_merge: Callable[[], None] | None = None,
    ) -> None:
        self.pack_dir = pack_dir
        self.after_merge = after_merge
        self.spares = spares
        self.chores = chores
        self.limit = limit
        self.max_bytes = max_bytes
        # Merged packs are merged again one level up (32 commits, then 32 x 16, ...); the
        # upper level is only touched by merges, so in the background by one thread only.
        self._upper = (
            SmallPacks(pack_dir, spares, None, 16, max_bytes * 4, levels - 1)
            if levels > 1
            else None
        )
        self._packs: list[str] = []
        self._entries: list[Mapping[str, bytes]] = []  # each pack's, in ``_packs`` order
        self._bytes = 0
        self._pid = process.pid()
        self._swept = False  # whether this process merged the packs others left yet

    def add(self, pack: str, entries: Mapping[str, bytes]) -> None:
        if self._pid != process.pid():  # a forked child leaves its parent's packs alone
            self._reset()
            self._pid = process.pid()
            self._swept = False
        if not self._swept and self.chores is not None:
            self._swept = True
            self.chores.submit(self._merge_leftovers)
        size = sum(len(entry) for entry in entries.values())
        if self._bytes + size > self.max_bytes:
            self._reset()  # too large to keep: leave these packs to git gc
            return
        self._packs.append(pack)
        self._entries.append(entries)
        self._bytes += size
        if len(self._packs) >= self.limit:
            self.merge()

    def merge(self) -> None:
        packs, entries = self._packs, self._entries
        self._reset()
        if len(packs) < 2:
            return
        if self.chores is None:
            self._merge(packs, entries)
        else:
            self.chores.submit(lambda: self._merge(packs, entries))

    def _merge(self, packs: list[str], entries: list[Mapping[str, bytes]]) -> None:
        present = [i for i, pack in enumerate(packs) if _is_complete(pack)]
        if len(present) >= 2:
            found: dict[str, bytes] = {}
            for i in present:
                found.update(entries[i])
            merged = replace_packs(self.pack_dir, [packs[i] for i in present], found, self.spares)
            if self._upper is not None:
                self._upper.add(merged, found)
        if self._upper is not None:  # the first level: also merge what others left
            self._merge_leftovers()

    def _merge_leftovers(self) -> None:
        """Merge the small packs of processes that died before they merged theirs (or
        exited between two merges): one merge per process start, then one per merge of
        its own, on the background thread."""
        own = {*self._packs, *(self._upper._packs if self._upper is not None else ())}
        merge_small_packs(self.pack_dir, exclude=own, spares=self.spares)
        if self.after_merge is not None:
            self.after_merge()

    def _reset(self) -> None:
        self._packs, self._entries, self._bytes = [], [], 0


def replace_packs(
    pack_dir: str | Path,
    packs: Iterable[str],
    entries: Mapping[str, bytes],
    spares: SpareFiles | None = None,
) -> str:
    """Write ``entries`` (every object of ``packs``, at least) as one pack, then delete
    ``packs``: each object is in some pack throughout. Returns the new pack's path."""
    merged = write_pack(pack_dir, entries, spares)
    for pack in packs:
        if pack != merged:  # the same objects make the same pack: it is the merged one
            remove_pack(pack)
    return merged


def remove_pack(pack: str) -> None:
    """Delete a pack: its index first, as git does, so no reader finds an index whose pack
    is gone; a pack already deleted by someone else is no error."""
    for suffix in (".idx", ".pack"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pack.removesuffix(".pack") + suffix)


def _is_complete(pack: str) -> bool:
    return os.path.exists(pack.removesuffix(".pack") + ".idx")


LEFTOVER_PACK_BYTES = 1 << 20  # a pack up to this size is a commit's or a merge of a few
LEFTOVER_MERGE_BYTES = 32 << 20  # read and written at once by one merge
_PACK_FILES = {".pack", ".idx"}


def merge_small_packs(
    pack_dir: str | Path,
    exclude: Collection[str] = (),
    spares: SpareFiles | None = None,
) -> str | None:
    """Merge the small packs in ``pack_dir`` into one; returns its path (None: fewer than
    two were found).

    A process that dies, or exits between two merges of ``SmallPacks``, leaves its small
    packs behind; without this they pile up by hundreds. Taken are complete packs (index
    in place; a pack is never written again once it is) of full objects only (what gittrack
    writes; a delta refers to its pack), with no other file beside them (``.keep``,
    ``.bitmap``, ``.mtimes``, ``.promisor``: git's), checked against their checksums. A
    pack that disappears or fails a check is left out, never deleted. Merging is writing
    the new pack, then deleting the old ones, so it is safe alongside live writers and
    other merges: their objects are in some pack at every moment. Nothing is done while a
    ``multi-pack-index`` (which names packs) exists.
    """
    pack_dir = os.fspath(pack_dir)
    try:
        names = os.listdir(pack_dir)
    except FileNotFoundError:
        return None
    if "multi-pack-index" in names:
        return None
    packs, entries, total = [], {}, 0
    for path in _leftover_candidates(pack_dir, names, exclude):
        found = read_pack_entries(path)
        if found is None:
            continue
        size = sum(map(len, found.values()))
        if total + size > LEFTOVER_MERGE_BYTES:
            break
        packs.append(path)
        entries.update(found)
        total += size
    if len(packs) < 2:
        return None
    return replace_packs(pack_dir, packs, entries, spares)


def pack_files(names: Iterable[str]) -> dict[str, set[str]]:
    """The files of each pack among a pack directory's ``names``: stem -> suffixes
    (``.pack``, ``.idx``, ``.keep``, ...)."""
    files: dict[str, set[str]] = {}
    for name in names:
        stem, dot, suffix = name.rpartition(".")
        if dot and stem.startswith("pack-"):
            files.setdefault(stem, set()).add(f".{suffix}")
    return files


def _leftover_candidates(pack_dir: str, names: list[str], exclude: Collection[str]) -> list[str]:
    out = []
    for stem, suffixes in sorted(pack_files(names).items()):
        path = f"{pack_dir}/{stem}.pack"
        if suffixes != _PACK_FILES or path in exclude:
            continue
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_size <= LEFTOVER_PACK_BYTES:
                out.append(path)
    return out


def read_pack_entries(pack_path: str) -> dict[str, bytes] | None:
    """The entries of a pack of full objects, by SHA-1, as ``pack_entries`` makes them;
    None when the pack is gone, damaged, or holds anything else (deltas, SHA-256)."""
    try:
        with open(pack_path.removesuffix(".pack") + ".idx", "rb") as fh:
            index = fh.read()
        with open(pack_path, "rb") as fh:
            pack = fh.read()
    except FileNotFoundError:
        return None
    if len(index) < 8 + 1024 + 40 or index[:8] != b"\xfftOc" + struct.pack(">I", 2):
        return None
    count = struct.unpack_from(">I", index, 8 + 255 * 4)[0]
    names_at = 8 + 1024
    crcs_at = names_at + 20 * count
    offsets_at = crcs_at + 4 * count
    if (
        len(index) != offsets_at + 4 * count + 40
        or len(pack) < 32
        or pack[:8] != b"PACK" + struct.pack(">I", 2)
        or struct.unpack_from(">I", pack, 8)[0] != count
        or pack[-20:] != index[-40:-20]
        or hashlib.sha1(index[:-20]).digest() != index[-20:]
        or hashlib.sha1(pack[:-20]).digest() != pack[-20:]
    ):
        return None
    offsets = struct.unpack_from(f">{count}I", index, offsets_at)
    crcs = struct.unpack_from(f">{count}I", index, crcs_at)
    ends = dict(zip(sorted(offsets), [*sorted(offsets)[1:], len(pack) - 20]))
    entries = {}
    for i, offset in enumerate(offsets):
        if offset & 0x80000000:  # a large-offset table: not a small pack
            return None
        entry = pack[offset : ends[offset]]
        if not entry or not 1 <= (entry[0] >> 4) & 7 <= 4 or zlib.crc32(entry) != crcs[i]:
            return None
        entries[index[names_at + 20 * i : names_at + 20 * (i + 1)].hex()] = entry
    return entries


_IDX_HEADER = b"\xfftOc" + struct.pack(">I", 2)
_NAMES_AT = 8 + 1024
_OFFSETS_CHECKED = 64  # in SHA-1 order by chance: one git pack in 64! (10^89)


def entry_object(entry: bytes) -> tuple[str, bytes]:
    """(kind, content) of a full-object pack entry, as ``read_pack_entries`` returns them."""
    at = 0
    while entry[at] & 0x80:  # the type-and-size header
        at += 1
    kind = _KINDS[(entry[0] >> 4) & 7]
    return kind, zlib.decompress(entry[at + 1 :])


_KINDS = {code: kind for kind, code in TYPE_CODES.items()}


def index_object_ids(index: bytes) -> list[str] | None:
    """The object ids a v2 pack index (SHA-1) lists, in its order; None when ``index`` is
    not one."""
    if len(index) < _NAMES_AT + 40 or index[:8] != _IDX_HEADER:
        return None
    count = struct.unpack_from(">I", index, 8 + 255 * 4)[0]
    if len(index) < _NAMES_AT + 28 * count + 40:
        return None
    names = index[_NAMES_AT : _NAMES_AT + 20 * count].hex()
    return [names[i : i + 40] for i in range(0, 40 * count, 40)]


def written_by_gittrack(pack_path: str) -> bool:
    """Whether ``build_pack`` wrote this pack (a commit's, or a merge of them): at least
    three objects, entries in SHA-1 order (the index's order: offsets ascend from the
    header), the first compressed by this module (zlib header ``78 01``). git orders a pack's
    entries by type and recency and compresses at level 6 (``78 9c``) by default, so the
    packs of ``git gc``, ``fetch`` or ``repack`` are not mistaken for these. Reads the
    index's header and its first offsets only: a user's pack may be gigabytes.
    """
    stem = pack_path.removesuffix(".pack")
    try:
        with open(f"{stem}.idx", "rb") as idx, open(pack_path, "rb") as pack:
            header = idx.read(_NAMES_AT)
            if len(header) < _NAMES_AT or header[:8] != _IDX_HEADER:
                return False
            count = struct.unpack_from(">I", header, 8 + 255 * 4)[0]
            if count < 3:
                return False
            checked = min(count, _OFFSETS_CHECKED)
            idx.seek(_NAMES_AT + 24 * count)
            raw = idx.read(4 * checked)
            head = pack.read(64)
    except FileNotFoundError:
        return False
    if len(raw) < 4 * checked:
        return False
    offsets = struct.unpack(f">{checked}I", raw)
    if offsets[0] != 12 or any(a >= b for a, b in zip(offsets, offsets[1:])):
        return False
    at = 12
    while at < len(head) and head[at] & 0x80:  # the entry's type-and-size header
        at += 1
    return head[at + 1 : at + 3] == b"\x78\x01"
