"""The tracking branch: read files at a commit, and commit changes with compare-and-swap.

A commit is built from objects only: blobs for the changed files, new trees along the changed
paths (the untouched subtrees are reused by id), ``commit-tree``-style commit objects, then a
ref update that succeeds only if the branch is still where it was read. When another writer got
there first, the changes are rebuilt on the new tip and the update is tried again, so
concurrent writers never lose each other's runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    GittrackError,
    InvalidStateError,
    RepositoryError,
)
from gittrack.store.commits import clean_message
from gittrack.store.git import GitRepo
from gittrack.store.refs import LockState, RefLockedError, RefMovedError
from gittrack.store.trees import TreeEntry

BLOB_MODE = "100644"
EXEC_MODE = "100755"
TREE_MODE = "40000"


@dataclass(frozen=True)
class Blob:
    """New file content for a path; written as a blob when the commit is built."""

    data: bytes
    mode: str = BLOB_MODE


@dataclass(frozen=True)
class ObjectRef:
    """An existing object (blob or tree) placed at a path."""

    sha: str
    mode: str


# A change maps a path on the branch to new content, an existing object, or None (delete).
Change = Blob | ObjectRef | None
Changes = Mapping[str, Change]

_RESERVED_NAMES = frozenset(("", ".", "..", ".git"))


def unsafe_name_problem(name: str) -> str | None:
    """Why a tree entry name cannot become a file name under a destination, or None.

    git's default push and fetch accept trees with entries named ``..``, ``.git`` or with a
    slash in them; written out as they are, such names escape the destination directory or
    plant a repository inside it. Everything that materialises a tree asks here first.
    """
    if name.lower() in _RESERVED_NAMES:
        return "a reserved name ('', '.', '..' or '.git' in any case) is not allowed"
    if "/" in name or "\\" in name or "\0" in name:
        return "a name with '/', '\\' or NUL in it is not allowed"
    return None


def check_entry_name(directory: str, name: str) -> None:
    """Raise ``CorruptDataError`` naming the entry when ``name`` is unsafe to write out."""
    problem = unsafe_name_problem(name)
    if problem is not None:
        raise CorruptDataError(f"{directory}/{name!r}: unsafe tree entry name: {problem}")


class BranchSnapshot:
    """The branch as of one commit (or empty, before the first commit)."""

    def __init__(self, repo: GitRepo, commit: str | None) -> None:
        self.repo = repo
        self.commit = commit
        self.tree = repo.commit_tree_info(commit)[0] if commit else None

    def entry(self, path: str) -> TreeEntry | None:
        if self.tree is None:
            return None
        current: TreeEntry | None = TreeEntry(TREE_MODE, "", self.tree)
        for part in path.strip("/").split("/"):
            if current is None or not current.is_tree:
                return None
            current = self.repo.tree_entry(current.sha, part)
        return current

    def read(self, path: str) -> bytes | None:
        found = self.entry(path)
        if found is None or found.is_tree:
            return None
        return self.repo.read_blob(found.sha)

    def listdir(self, path: str) -> list[TreeEntry]:
        found = self.entry(path)
        if found is None or not found.is_tree:
            return []
        return self.repo.read_tree(found.sha)

    def walk(
        self,
        path: str,
        prefix: str = "",
        on_problem: Callable[[str, str], None] | None = None,
    ) -> Iterator[tuple[str, TreeEntry]]:
        """Every blob below ``path`` as (relative path, entry).

        An entry whose name is unsafe to write out (see ``unsafe_name_problem``), or that
        repeats a name of its tree (a blob and a tree both named ``x`` cannot both be
        written out), raises ``CorruptDataError`` naming it. With ``on_problem`` it is
        reported there as (path on the branch, problem) and skipped instead, and so is a
        subtree that cannot be read (missing, or not a tree), so that one bad entry does not
        hide the rest.
        """
        try:
            children = self.listdir(path)
        except CorruptDataError as exc:
            if on_problem is None:
                raise
            on_problem(path, exc.message)
            return
        seen: set[str] = set()
        for child in children:
            problem = unsafe_name_problem(child.name)
            if problem is None and child.name in seen:
                problem = "a name that appears twice in one tree is not allowed"
            seen.add(child.name)
            if problem is not None:
                message = f"unsafe tree entry name: {problem}"
                if on_problem is None:
                    raise CorruptDataError(f"{path}/{child.name!r}: {message}")
                on_problem(f"{path}/{child.name!r}", message)
                continue
            rel = f"{prefix}{child.name}"
            if child.is_tree:
                yield from self.walk(f"{path}/{child.name}", rel + "/", on_problem)
            else:
                yield rel, child


def _split(changes: Changes) -> dict[tuple[str, ...], Change]:
    return {
        tuple(p for p in path.strip("/").split("/") if p): value for path, value in changes.items()
    }


def apply_changes(
    repo: GitRepo, tree: str | None, changes: Mapping[tuple[str, ...], Change]
) -> str | None:
    """Write the trees along the changed paths; return the new tree id (None when empty)."""
    updates: dict[str, TreeEntry | None] = {}
    nested: dict[str, dict[tuple[str, ...], Change]] = {}
    for parts, value in changes.items():
        name = parts[0]
        if len(parts) > 1:
            nested.setdefault(name, {})[parts[1:]] = value
        elif value is None:
            updates[name] = None
        elif isinstance(value, Blob):
            updates[name] = TreeEntry(value.mode, name, repo.write_object("blob", value.data))
        else:
            updates[name] = TreeEntry(value.mode, name, value.sha)
    for name, sub_changes in nested.items():
        new_sha = apply_changes(repo, repo.subtree(tree, name) if tree else None, sub_changes)
        updates[name] = None if new_sha is None else TreeEntry(TREE_MODE, name, new_sha)
    return repo.update_tree(tree, updates)


class TrackingBranch:
    """Reads and writes ``refs/heads/<name>`` of one repository."""

    MAX_ATTEMPTS = 200

    def __init__(
        self,
        repo: GitRepo,
        name: str,
        initial_files: Callable[[], Changes],
    ) -> None:
        self.repo = repo
        self.name = name
        self.ref = f"refs/heads/{name}"
        self._initial_files = initial_files
        self._exists = False  # once seen, a branch is not expected to vanish mid-process
        self._tip_hint: str | None = None  # the tip as last read or written here
        # Called once, before this handle's first commit (the tracking layer recovers the
        # orphaned runs of dead processes there: reads never write, DESIGN §4).
        self.before_first_write: Callable[[], None] | None = None

    def tip(self) -> str | None:
        tip = self.repo.read_ref(self.ref)
        if tip is None:
            tip = self._adopt_remote_branch()
        self._tip_hint = tip
        return tip

    def _adopt_remote_branch(self) -> str | None:
        """No local branch yet: start it at the remote's, if one was fetched, so a clone sees
        the runs already shared (and its own commits build on them)."""
        remote = self._remote_tip()
        if remote is None:
            return None
        with contextlib.suppress(ConflictError):  # another process created it meanwhile
            self.repo.update_ref(self.ref, remote, None, "gittrack: start from the remote's")
        return self.repo.read_ref(self.ref)

    def snapshot(self, at: str | None = None) -> BranchSnapshot:
        return BranchSnapshot(self.repo, at if at is not None else self.tip())

    def ensure_exists(self) -> str:
        """Create the branch with its initial files (one root commit) if it is missing.

        When several processes start at once, one creates it and the others use theirs
        (they may find its ref locked for a moment, so they look again)."""
        commit = None
        for attempt in range(self.MAX_ATTEMPTS):
            tip = self.tip()
            if tip is not None:
                self._exists = True
                return tip
            if commit is None:
                tree = apply_changes(self.repo, None, _split(self._initial_files()))
                commit = self.repo.write_commit(
                    tree or self.repo.write_tree([]), [], "Initialize gittrack tracking branch\n"
                )
            try:
                self.repo.update_ref(self.ref, commit, None, "gittrack: initialize")
            except ConflictError as exc:
                _give_up_on_stale_lock(exc)
                time.sleep(random.uniform(0.0005, 0.002 * min(attempt + 1, 10)))
        raise self._gave_up(f"could not create {self.ref}")

    def _remote_tip(self) -> str | None:
        """The remote's branch as fetched (``refs/remotes/<remote>/<name>``; ``origin`` first):
        a clone starts from the runs already shared, never from a root of its own, which
        would leave the remote's runs invisible and its own push rejected (DESIGN §10).
        Read from the ref files, without spawning git (a new repository asks on every read)."""
        suffix = f"/{self.name}"
        remotes = {
            ref[len("refs/remotes/") : -len(suffix)]
            for ref in self.repo.packed_refs()
            if ref.startswith("refs/remotes/") and ref.endswith(suffix)
        }
        with contextlib.suppress(OSError):
            remotes.update(os.listdir(self.repo.common_dir / "refs" / "remotes"))
        for remote in sorted(remotes, key=lambda r: (r != "origin", r)):
            tip = self.repo.read_ref(f"refs/remotes/{remote}{suffix}")
            if tip is not None:
                return tip
        return None

    def commit(
        self,
        build: Callable[[BranchSnapshot], Changes | None],
        message: str,
        extra_parents: tuple[str, ...] = (),
    ) -> str:
        """Apply ``build(snapshot)`` on the current tip and move the branch, retrying on races.

        ``build`` is called again on the new tip after a lost race, so read-modify-write
        changes (an experiment's tags, a run's lifecycle) see the other writer's result.
        Returns the new tip (the old one when nothing changed).
        """
        self.run_before_first_write()
        if not self._exists:
            self.ensure_exists()
        self.refuse_if_checked_out()
        message = clean_message(message)  # also its first line, the reflog's entry
        # The first attempt builds on the tip as last seen here, without reading the ref:
        # the update checks it under the ref's lock, and objects are written only then.
        hint = self._tip_hint
        for attempt in range(self.MAX_ATTEMPTS):
            snap = self.snapshot(hint) if hint else self.snapshot()
            guessed, hint = hint is not None, None
            if snap.commit is None:  # deleted behind our back: start it again
                self.ensure_exists()
                continue
            try:
                changes = build(snap)
            except GittrackError:
                if guessed:  # judged on a stale tip (e.g. a pull since): judge the real one
                    continue
                raise
            if not changes:
                if guessed:  # "nothing to do" must hold for the actual tip
                    continue
                return snap.commit
            with self.repo.collected_objects() as objects:
                tree = apply_changes(self.repo, snap.tree, _split(changes)) or (
                    self.repo.write_tree([])
                )
                if tree == snap.tree:  # nothing new (e.g. a recovery of a committed run)
                    if guessed:
                        continue
                    return snap.commit
                commit = self.repo.write_commit(tree, (snap.commit, *extra_parents), message)
            try:
                self.repo.update_ref(
                    self.ref,
                    commit,
                    snap.commit,
                    f"gittrack: {message.splitlines()[0]}",
                    before_swap=objects.write,
                )
                self._tip_hint = commit
                return commit
            except ConflictError as exc:
                if guessed and isinstance(exc, RefMovedError):
                    continue  # only the guess was stale: rebuild on the tip at once
                _give_up_on_stale_lock(exc)
                # Another writer got there first, or holds the lock: back off a little.
                time.sleep(random.uniform(0.0005, 0.002 * min(attempt + 1, 10)))
        raise self._gave_up(
            f"{self.ref} kept moving: gave up after {self.MAX_ATTEMPTS} attempts to commit"
        )

    def run_before_first_write(self) -> None:
        """Run the ``before_first_write`` hook if it has not run yet (it is dropped first, so
        the commits the hook makes itself do not call it again)."""
        hook, self.before_first_write = self.before_first_write, None
        if hook is not None:
            hook()

    def refuse_if_checked_out(self) -> None:
        """git never moves a branch a work tree has checked out (``git fetch`` and ``git
        branch -f`` refuse): that work tree's index would then show the new commits as
        changes undone, and the user's next ``git commit`` would undo them."""
        where = self.repo.checked_out_in(self.ref)
        if where is not None:
            raise InvalidStateError(
                f"{self.ref} is checked out in {where}: gittrack does not move a branch you "
                "have checked out (your work tree and index would show its new commits as "
                "undone); switch to another branch (`git switch -`) and try again: nothing "
                "was written, and a live run stays live"
            )

    def _gave_up(self, message: str) -> GittrackError:
        """The error after the last attempt: the lock's own, when a lock is in the way (it
        names the file and what to do), else ``message``."""
        lock = f"{self.repo.common_dir}/{self.ref}.lock"
        if self.repo.refs.lock_state(lock) is not LockState.ABSENT:
            return self.repo.refs.locked_error(self.ref, lock)
        return RepositoryError(message)

    def lock_left_behind(self) -> bool:
        """Whether the branch's lock file exists with no running gittrack process holding
        it (left by a writer that stopped, or git's for a moment)."""
        lock = f"{self.repo.common_dir}/{self.ref}.lock"
        return self.repo.refs.lock_state(lock) in (LockState.RECENT, LockState.STALE)

    def clear_stale_lock(self) -> bool:
        """Remove the branch's lock when the writer that took it stopped (``gittrack
        recover``); a recent one nobody holds is waited for until it can be judged."""
        return self.repo.refs.clear_stale_lock(f"{self.repo.common_dir}/{self.ref}.lock")


def _give_up_on_stale_lock(exc: ConflictError) -> None:
    """Raise a lock error at once when the lock was left by a writer that stopped: no
    amount of waiting removes it."""
    if isinstance(exc, RefLockedError) and exc.stale:
        raise exc
