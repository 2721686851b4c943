"""A git repository as gittrack uses it: the one handle on objects, trees, commits and refs.

``GitRepo`` composes the parts, each in a module of its own: the object database
(``objects.py``: hashing, one pack per commit, ``cat-file --batch`` reads), trees
(``trees.py``), commits (``commits.py``) and refs (``refs.py``: reads, and the in-process
ref writer under git's own lock protocol). Everything else (status, snapshots, tags) runs
``git`` (``git_process.py``) with optional locks disabled, so that nothing refreshes the
user's index behind their back.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import socket
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

from gittrack.errors import RepositoryError
from gittrack.store.background import Background
from gittrack.store.commits import CommitStore, Identity
from gittrack.store.compaction import CompactionTrigger
from gittrack.store.files import SpareFiles
from gittrack.store.git_process import run_git
from gittrack.store.objects import ObjectStore, PendingObjects
from gittrack.store.refs import RefLockedError, RefReader, RefUpdater, checked_out_in
from gittrack.store.trees import TreeEntry, TreeStore

# ``registry/`` imports the lock error from here.
__all__ = ["GitRepo", "RefLockedError"]


class GitRepo:
    """A git repository as gittrack uses it: object store, trees, commits, refs and commands."""

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
            raise RepositoryError(reftable_message(str(start)))
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
            raise RepositoryError(reftable_message(str(start)))
        self.objects_dir = self.common_dir / "objects"
        self.null_sha = "0" * (64 if self.object_format == "sha256" else 40)
        self.chores = Background("gittrack-git")
        self.spare_files = SpareFiles(self.gittrack_dir / "spare", self.chores)
        self.objects = ObjectStore(
            self.git_dir,
            self.objects_dir,
            self.object_format,
            self.spare_files,
            self.chores,
            self._compaction_trigger(),
            self.git,
        )
        self.reader = self.objects.reader
        self.trees = TreeStore(self.objects)
        self.commits = CommitStore(self.objects, self.identity)
        self.refs = RefUpdater(self)
        self._ref_reader = RefReader(str(self.common_dir))
        self._identity: Identity | None = None

    def _compaction_trigger(self) -> Callable[[], None] | None:
        """Delta-compresses the packs this repository's writers make, in the background
        (``compaction.py``)."""
        if self.object_format != "sha1":  # full-object packs are written in SHA-1 only
            return None
        return CompactionTrigger(self.common_dir)

    # ------------------------------------------------------------------ paths
    def checked_out_in(self, ref: str) -> str | None:
        """The work tree whose HEAD is the branch ``ref``, if one is (the main one, then
        linked ones; see ``refs.checked_out_in``)."""
        return checked_out_in(str(self.common_dir), self.bare, ref)

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
        """Run ``git args`` in the repository (see ``run_git``); ``RepositoryError`` on failure
        unless ``check`` is False."""
        return run_git(args, cwd=self.path, input=input, env=env, check=check)

    def git_text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """The standard output of ``git args`` in the repository, as text."""
        return self.git(*args, env=env).stdout.decode()

    # ---------------------------------------------------------------- objects
    def hash_object(self, kind: str, data: bytes) -> str:
        """The id ``data`` has as an object of ``kind`` (see ``ObjectStore.hash_object``)."""
        return self.objects.hash_object(kind, data)

    def collected_objects(self) -> contextlib.AbstractContextManager[PendingObjects]:
        """Hold back the objects written inside the block (see
        ``ObjectStore.collected_objects``)."""
        return self.objects.collected_objects()

    def write_object(self, kind: str, data: bytes) -> str:
        """Write an object (idempotent) and return its id: loose, or into the open batch."""
        return self.objects.write_object(kind, data)

    def has_object(self, sha: str) -> bool:
        """Whether the object ``sha`` is in the repository (or the open batch)."""
        return self.objects.has_object(sha)

    def read_object(self, sha: str) -> tuple[str, bytes]:
        """(kind, body) of one object; ``CorruptDataError`` when it is missing."""
        return self.objects.read_object(sha)

    def read_blob(self, sha: str) -> bytes:
        """A blob's bytes; ``CorruptDataError`` when ``sha`` is missing or not a blob."""
        return self.objects.read_blob(sha)

    def read_objects(self, shas: Sequence[str]) -> list[tuple[str, bytes]]:
        """(kind, body) of many objects at once, in order (see ``ObjectReader.read_many``)."""
        return self.objects.read_objects(shas)

    # ------------------------------------------------------------------ trees
    def read_trees(self, shas: Sequence[str]) -> list[list[TreeEntry]]:
        """The entries of many trees at once, in order; not kept in the tree cache."""
        return self.trees.read_trees(shas)

    def read_tree_files(self, shas: Sequence[str], names: Collection[str]) -> list[dict[str, str]]:
        """The regular files called one of ``names`` in each of many trees (name -> blob id),
        in order (see ``TreeStore.read_tree_files``)."""
        return self.trees.read_tree_files(shas, names)

    def read_tree(self, sha: str) -> list[TreeEntry]:
        """The entries of one tree; ``CorruptDataError`` when ``sha`` is not a tree."""
        return self.trees.read_tree(sha)

    def write_tree(self, entries: Iterable[TreeEntry]) -> str:
        """Write a tree holding ``entries`` (any order) and return its id."""
        return self.trees.write_tree(entries)

    def update_tree(self, base: str | None, changes: Mapping[str, TreeEntry | None]) -> str | None:
        """``base`` with the entries in ``changes`` replaced, added or removed (see
        ``TreeStore.update_tree``); None when no entry is left."""
        return self.trees.update_tree(base, changes)

    def subtree(self, tree: str, name: str) -> str | None:
        """The id of the subtree called ``name`` in ``tree`` (None: no such subtree)."""
        return self.trees.subtree(tree, name)

    def tree_entry(self, tree: str, name: str) -> TreeEntry | None:
        """The entry called ``name`` in ``tree`` (None: no such entry)."""
        return self.trees.tree_entry(tree, name)

    # ---------------------------------------------------------------- commits
    def commit_tree_info(self, sha: str) -> tuple[str, list[str]]:
        """The tree and the parents of a commit."""
        return self.commits.commit_tree_info(sha)

    def write_commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        """Write a commit of ``tree`` on ``parents`` by ``identity()``; returns its id."""
        return self.commits.write_commit(tree, parents, message)

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
        return self._ref_reader.read_ref(ref)

    def packed_refs(self) -> dict[str, str]:
        """The refs in ``packed-refs`` (name -> id); a loose ref of the same name wins."""
        return self._ref_reader.packed_refs()

    def packed_ref_map(self) -> Mapping[str, str]:
        """``packed-refs`` parsed (name -> id), not copied: the same mapping object until the
        file changes, so a caller can tell by identity that nothing was packed or pruned.
        Read-only; a loose ref of the same name wins over its entry here."""
        return self._ref_reader.packed_ref_map()

    def update_ref(
        self,
        ref: str,
        new: str,
        old: str | None,
        message: str = "gittrack",
        before_swap: Callable[[], None] | None = None,
        reflog: bool = True,
    ) -> None:
        """Point ``ref`` at ``new`` only if it is at ``old`` (see ``RefUpdater.update``)."""
        self.refs.update(ref, new, old, message, before_swap, reflog)

    def delete_ref(self, ref: str, old: str) -> None:
        """Remove ``ref`` if it is at ``old`` (see ``RefUpdater.delete``)."""
        self.refs.delete(ref, old)

    def refs_under(self, prefix: str) -> dict[str, str]:
        """Every ref whose name starts with ``prefix`` (``refs/x/``) and its value."""
        return self._ref_reader.refs_under(prefix)

    def ref_locks(self, prefix: str) -> list[str]:
        """The lock files (``<ref>.lock``) below ``prefix`` (``refs/tags``), as paths."""
        return self._ref_reader.ref_locks(prefix)

    def rev_parse(self, rev: str) -> str | None:
        """The commit ``rev`` names, or None when it names none."""
        proc = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def close(self) -> None:
        """Release what this handle holds: the reader process, reflog descriptors and the
        spare files made ahead (each an open descriptor)."""
        self.objects.close()
        self.refs.close()
        self.spare_files.discard()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        with contextlib.suppress(Exception):
            self.close()


def reftable_message(where: str) -> str:
    """Why gittrack refuses a repository whose refs are kept in git's reftable format (also
    said when a repository's refs are converted while gittrack holds it)."""
    return (
        f"the git repository at {where!r} keeps its refs in the reftable format "
        "(extensions.refStorage = reftable); gittrack writes refs in process in git's files "
        "format (DESIGN §4) and supports only that. Convert the repository with "
        "`git refs migrate --ref-format=files` (git 2.46 or newer), or track into a "
        "repository created without --ref-format=reftable"
    )
