"""Git trees: parsing, encoding and updating one path of a tree without decoding the rest.

A commit rewrites the trees along one path (root, experiment, shard, run), each up to 256
entries of which one changes: the unchanged entries are copied in their encoded form, and
what is learnt about a tree is kept (trees never change) in bounded caches.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from gittrack.errors import CorruptDataError
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.objects import ObjectStore

# What the tree caches keep. Trees are bounded by their number of entries, not of trees: at
# 100,000 runs a branch holds some 65,000 shard trees of one or two runs, but also 257 of
# about 256 entries, and every commit writes new versions of those. An entry costs about
# 350 bytes parsed and 220 bytes encoded, so 100,000 entries are at most 35 MB and 22 MB
# (20,000 trees of any shape, the former bound, could be 1.5 GB), and still hold 20,000 run
# directories or a commit's whole path (under 600 entries) many times over. A looked-up
# entry ((tree, name) -> entry) costs about 400 bytes: 20,000 are 8 MB, for the few paths
# walked on every run.
MAX_CACHED_TREE_ENTRIES = 100_000
MAX_CACHED_LOOKUPS = 20_000


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree: git's mode (``40000`` for a tree), its name and object id."""

    mode: str
    name: str
    sha: str

    @property
    def is_tree(self) -> bool:
        """Whether the entry is a subtree."""
        return self.mode == "40000"


class TreeStore:
    """Reads and writes trees through an ``ObjectStore``, keeping what it learns."""

    def __init__(self, objects: ObjectStore) -> None:
        """A tree store reading and writing through ``objects``.

        Args:
            objects: the object database the trees are read from and written to.
        """
        self._objects = objects
        self._digest_size = objects.digest_size
        self._tree_cache: BoundedCache[str, list[TreeEntry]] = BoundedCache(
            MAX_CACHED_TREE_ENTRIES, weigh=len
        )
        self._tree_parts: BoundedCache[str, tuple[list[str], list[bytes]]] = BoundedCache(
            MAX_CACHED_TREE_ENTRIES, weigh=_entry_count
        )
        # (tree, name) -> entry: paths like ``.tracking/experiments`` are walked on every run.
        self._entries: BoundedCache[tuple[str, str], TreeEntry | None] = BoundedCache(
            MAX_CACHED_LOOKUPS
        )

    def read_trees(self, shas: Sequence[str]) -> list[list[TreeEntry]]:
        """The entries of many trees at once, in order; not kept in the tree cache."""
        digest_size = self._digest_size
        trees = []
        for sha, (kind, body) in zip(shas, self._objects.read_objects(shas)):
            if kind != "tree":
                raise CorruptDataError(f"object {sha} is a {kind}, expected a tree")
            trees.append(_parse_tree(body, digest_size))
        return trees

    def read_tree_files(self, shas: Sequence[str], names: Collection[str]) -> list[dict[str, str]]:
        """The regular files (modes 100644 and 100755) called one of ``names`` in each of
        many trees, name -> blob id, in order; only those entries are decoded.

        Raises:
            CorruptDataError: an object is not a tree, or a tree is malformed.
        """
        digest_size = self._digest_size
        found = []
        for sha, (kind, body) in zip(shas, self._objects.read_objects(shas)):
            if kind != "tree":
                raise CorruptDataError(f"object {sha} is a {kind}, expected a tree")
            found.append(
                {
                    name: body[stop - digest_size : stop].hex()
                    for mode, name, _start, stop in _tree_entries(body, digest_size)
                    if name in names and mode in _FILE_MODES
                }
            )
        return found

    def read_tree(self, sha: str) -> list[TreeEntry]:
        """The entries of one tree (kept); ``CorruptDataError`` when ``sha`` is not a tree."""
        cached = self._tree_cache.get(sha)
        if cached is not None:
            return cached
        entries = _parse_tree(self._tree_body(sha), self._digest_size)
        self._tree_cache.put(sha, entries)
        return entries

    def write_tree(self, entries: Iterable[TreeEntry]) -> str:
        """Write a tree holding ``entries`` (any order, sorted as git does) and return its id."""
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
            self._tree_parts.pop(base)
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
        self._entries.put((tree, name), found)
        return found

    def _write_tree_parts(self, keys: list[str], parts: list[bytes]) -> str:
        sha = self._objects.write_object("tree", b"".join(parts))
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
        known = self._tree_parts.get(sha)
        if known is not None:  # written or read here: no round trip to git
            return b"".join(known[1])
        kind, body = self._objects.read_object(sha)
        if kind != "tree":
            raise CorruptDataError(f"object {sha} is a {kind}, expected a tree")
        return body

    def _remember_parts(self, sha: str, keys: list[str], parts: list[bytes]) -> None:
        self._tree_parts.put(sha, (keys, parts))


_UNKNOWN = object()


def _entry_count(split: tuple[list[str], list[bytes]]) -> int:
    """How many entries a tree cut into (sort keys, encoded entries) has."""
    return len(split[0])


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


_FILE_MODES = (b"100644", b"100755")


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
