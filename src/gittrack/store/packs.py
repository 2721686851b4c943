"""Writing a batch of objects as one pack file (git's pack format version 2 with a v2 index).

A run's commit is about ten small objects (blobs, the trees along its path, the commit).
Writing them as loose objects costs ten file creations; on a busy disk file creation, not
hashing or compression, is what a short run waits for. One pack and its index are two.
Format: https://git-scm.com/docs/gitformat-pack (SHA-1 repositories only).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

from gittrack.store.files import replace_file

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


def build_pack(objects: Mapping[str, tuple[str, bytes]]) -> tuple[bytes, bytes, str]:
    """(pack bytes, index bytes, pack checksum hex) for objects keyed by their SHA-1."""
    body = bytearray(b"PACK" + struct.pack(">II", 2, len(objects)))
    offsets: dict[str, int] = {}
    crcs: dict[str, int] = {}
    for sha, (kind, data) in objects.items():
        entry = _entry_header(TYPE_CODES[kind], len(data)) + zlib.compress(data, 1)
        offsets[sha] = len(body)
        crcs[sha] = zlib.crc32(entry) & 0xFFFFFFFF
        body += entry
    checksum = hashlib.sha1(body).digest()
    pack = bytes(body) + checksum

    ordered = sorted(objects)
    fanout = [0] * 256
    for sha in ordered:
        fanout[int(sha[:2], 16)] += 1
    running = 0
    for i in range(256):
        running += fanout[i]
        fanout[i] = running
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    index += struct.pack(">256I", *fanout)
    index += b"".join(bytes.fromhex(sha) for sha in ordered)
    index += struct.pack(f">{len(ordered)}I", *(crcs[s] for s in ordered))
    index += struct.pack(f">{len(ordered)}I", *(offsets[s] for s in ordered))
    index += checksum
    index += hashlib.sha1(index).digest()
    return pack, bytes(index), checksum.hex()


def write_pack(pack_dir: Path, objects: Mapping[str, tuple[str, bytes]]) -> Path:
    """Write the pack, then its index: git sees the pack only once the index exists."""
    pack, index, name = build_pack(objects)
    final = pack_dir / f"pack-{name}"
    replace_file(final.with_suffix(".pack"), pack, 0o444)
    replace_file(final.with_suffix(".idx"), index, 0o444)
    return final.with_suffix(".pack")
