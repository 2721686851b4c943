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
from collections.abc import Mapping
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
    that background thread, off the committing one.
    """

    def __init__(
        self,
        pack_dir: str | Path,
        spares: SpareFiles | None = None,
        chores: Background | None = None,
        limit: int = 32,
        max_bytes: int = 32 << 20,
        levels: int = 2,
    ) -> None:
        self.pack_dir = pack_dir
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
        self._entries: dict[str, bytes] = {}
        self._bytes = 0
        self._pid = process.pid()

    def add(self, pack: str, entries: Mapping[str, bytes]) -> None:
        if self._pid != process.pid():  # a forked child leaves its parent's packs alone
            self._reset()
            self._pid = process.pid()
        size = sum(len(entry) for entry in entries.values())
        if self._bytes + size > self.max_bytes:
            self._reset()  # too large to keep: leave these packs to git gc
            return
        self._packs.append(pack)
        self._entries.update(entries)
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

    def _merge(self, packs: list[str], entries: dict[str, bytes]) -> None:
        merged = write_pack(self.pack_dir, entries, self.spares)
        for pack in packs:
            for suffix in (".idx", ".pack"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pack.removesuffix(".pack") + suffix)
        if self._upper is not None:
            self._upper.add(merged, entries)

    def _reset(self) -> None:
        self._packs, self._entries, self._bytes = [], {}, 0
