"""Git commits: who writes them, their messages, and their tree and parents.

Whatever the data holds (a run name with a NUL or a newline), a commit object stays valid
for ``git fsck``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gittrack.errors import CorruptDataError
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.objects import ObjectStore

# A commit's tree and parents, kept for the commits this handle reads or writes: a writer
# asks for the branch tip's, a walk of the history for each commit once. 20,000 are 9 MB.
MAX_CACHED_COMMITS = 20_000


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
    """Who writes a commit: the name and email of its author and committer lines."""

    name: str
    email: str

    def signature(self, timestamp: float | None = None) -> str:
        """``Name <email> seconds +hhmm`` as git writes it, for ``timestamp`` (default: now)."""
        ts = int(time.time() if timestamp is None else timestamp)
        return f"{self.name} <{self.email}> {ts} {_utc_offset(ts)}"


class CommitStore:
    """Writes commits and reads their tree and parents through an ``ObjectStore``."""

    def __init__(self, objects: ObjectStore, identity: Callable[[], Identity]) -> None:
        """A commit store writing through ``objects``.

        Args:
            objects: the object database commits are read from and written to.
            identity: who commits (resolved by the repository, once).
        """
        self._objects = objects
        self._identity = identity
        self._commit_cache: BoundedCache[str, tuple[str, list[str]]] = BoundedCache(
            MAX_CACHED_COMMITS
        )

    def commit_tree_info(self, sha: str) -> tuple[str, list[str]]:
        """The tree and the parents of a commit."""
        known = self._commit_cache.get(sha)
        if known is not None:
            return known
        kind, body = self._objects.read_object(sha)
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
        self._commit_cache.put(sha, (tree, parents))

    def write_commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        """Write a commit of ``tree`` on ``parents`` (message cleaned, ``clean_message``) and
        return its id."""
        parents = list(parents)
        ident = self._identity().signature()
        lines = [f"tree {tree}"]
        lines += [f"parent {p}" for p in parents]
        lines += [f"author {ident}", f"committer {ident}", "", clean_message(message)]
        text = "\n".join(lines)
        if not text.endswith("\n"):
            text += "\n"
        sha = self._objects.write_object("commit", text.encode())
        self._remember_commit(sha, tree, parents)
        return sha


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
