"""Source capture: which code a run ran on (DESIGN §5).

The commit, branch and dirty flag come from the repository that holds the working directory.
On a dirty tree a snapshot commit of the working state is written with a private index (a copy
of the user's, so ``git add`` stays fast), never the user's own index. Captures are cached per
process while HEAD, the index and the stat data of the work tree's files are unchanged, so a
sweep of short runs pays for ``git status`` once.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from gittrack.entities import SourceInfo
from gittrack.errors import RepositoryError
from gittrack.store.git import GitRepo
from gittrack.store.refs import read_small_file

CAPTURE_MODES = ("none", "commit", "snapshot")
SNAPSHOT_MESSAGE = "gittrack: snapshot of uncommitted changes\n"
UPDATE_INDEX_ATTEMPTS = 5


@dataclass(frozen=True)
class _Cached:
    fingerprint: tuple
    watched: tuple[str, ...]
    info: SourceInfo


def _stat_key(path: str) -> tuple:
    try:
        st = os.lstat(path)
    except OSError:
        return (path, None)
    return (path, st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)


class SourceCapture:
    """Captures the code state of one repository, with a per-process cache."""

    def __init__(
        self, repo: GitRepo | None, mode: str = "snapshot", size_cap: int = 1_000_000
    ) -> None:
        self.repo = repo
        self.mode = mode
        self.size_cap = size_cap
        self._cached: _Cached | None = None

    @classmethod
    def for_cwd(cls, mode: str, size_cap: int) -> SourceCapture:
        try:
            repo = GitRepo(os.getcwd())
        except RepositoryError:
            repo = None
        if repo is not None and repo.work_tree is None:
            repo = None
        return cls(repo, mode, size_cap)

    # ------------------------------------------------------------- fingerprint
    def _head(self) -> tuple[str | None, str | None]:
        """(commit, branch) from the HEAD file, without spawning git."""
        assert self.repo is not None
        head = read_small_file(f"{self.repo.git_dir}/HEAD").strip()
        if not head:
            return None, None
        if head.startswith("ref: "):
            ref = head[5:]
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
            return self.repo.read_ref(ref), branch
        return head or None, None

    def _watched(self, files: tuple[str, ...]) -> tuple[str, ...]:
        """The paths whose stat data stand for the code state: HEAD and its branch, the
        index, every listed file, and their directories (where a new file would appear)."""
        assert self.repo is not None and self.repo.work_tree is not None
        root = str(self.repo.work_tree)
        dirs = {""}
        for rel in files:
            parent = rel.rpartition("/")[0]
            while parent not in dirs:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
        common = self.repo.common_dir
        head = read_small_file(f"{self.repo.git_dir}/HEAD").strip()
        branch_ref = (f"{common}/{head[5:]}",) if head.startswith("ref: ") else ()
        return (
            # HEAD and the branch it names: a commit or checkout replaces one of them
            f"{self.repo.git_dir}/HEAD",
            *branch_ref,
            f"{common}/packed-refs",
            f"{self.repo.git_dir}/index",
            *(f"{root}/{rel}" for rel in files),
            *(f"{root}/{d}" if d else root for d in sorted(dirs)),
        )

    @staticmethod
    def _fingerprint(watched: tuple[str, ...]) -> tuple:
        return tuple(map(_stat_key, watched))

    # ----------------------------------------------------------------- capture
    def capture(self, entry_point: str | None = None) -> SourceInfo:
        if self.repo is None or self.mode == "none":
            return SourceInfo(entry_point=entry_point)
        cached = self._cached
        if cached is not None and cached.fingerprint == self._fingerprint(cached.watched):
            return _with_entry_point(cached.info, entry_point)
        files = self._list_files()
        watched = self._watched(files)
        fingerprint = self._fingerprint(watched)
        info = self._capture_now(files)
        self._cached = _Cached(fingerprint, watched, info)
        return _with_entry_point(info, entry_point)

    def _list_files(self) -> tuple[str, ...]:
        assert self.repo is not None
        out = self.repo.git("ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
        return tuple(sorted({p for p in out.decode(errors="surrogateescape").split("\0") if p}))

    def _capture_now(self, files: tuple[str, ...]) -> SourceInfo:
        assert self.repo is not None
        commit, branch = self._head()
        status = self.repo.git(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=dirty"
        ).stdout
        dirty = bool(status.strip(b"\0"))
        if not dirty or self.mode != "snapshot":
            return SourceInfo(commit=commit, branch=branch, dirty=dirty)
        snapshot, skipped = self._snapshot(commit, status)
        return SourceInfo(
            commit=commit, branch=branch, dirty=dirty, snapshot=snapshot, untracked_skipped=skipped
        )

    def _snapshot(self, head: str | None, status: bytes) -> tuple[str | None, tuple[str, ...]]:
        """Commit the working state (parent HEAD) through a private copy of the index.

        The paths ``git status`` reported go to ``git update-index --add --remove``, which
        drops a path that vanished since (``git add`` would refuse it) and adds the rest: a
        file deleted or created meanwhile (a build, a data loader, ``git stash -u``) makes the
        snapshot a moment older, never the run fail.
        """
        assert self.repo is not None and self.repo.work_tree is not None
        repo = self.repo
        changed, untracked = _status_paths(status)
        small, skipped = self._split_by_size(untracked)
        tmp_dir = repo.gittrack_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        index = tmp_dir / f"snapshot-index-{os.getpid()}"
        try:
            user_index = repo.git_dir / "index"
            if user_index.exists():
                shutil.copyfile(user_index, index)
            env = {"GIT_INDEX_FILE": str(index)}
            paths = changed + small
            if paths:
                self._update_index(paths, env)
            tree = repo.git_text("write-tree", env=env).strip()
        finally:
            index.unlink(missing_ok=True)
        if head is not None and repo.commit_tree_info(head)[0] == tree:
            return None, tuple(skipped)
        snapshot = repo.write_commit(tree, [head] if head else [], SNAPSHOT_MESSAGE)
        return snapshot, tuple(skipped)

    def _split_by_size(self, untracked: list[str]) -> tuple[list[str], list[str]]:
        """(untracked files within the size cap, those over it); vanished ones are left out."""
        assert self.repo is not None and self.repo.work_tree is not None
        small, skipped = [], []
        for rel in untracked:
            try:
                size = os.lstat(self.repo.work_tree / rel).st_size
            except OSError:
                continue
            (skipped if size > self.size_cap else small).append(rel)
        return small, skipped

    def _update_index(self, paths: list[str], env: dict[str, str]) -> None:
        """Stage ``paths`` as they are now. A file that vanishes between git's ``lstat`` and
        its ``open`` still stops git: asked again, git then sees it gone and drops it."""
        assert self.repo is not None
        request = "\0".join(paths).encode(errors="surrogateescape") + b"\0"
        args = ("update-index", "--add", "--remove", "-z", "--stdin")
        for _ in range(UPDATE_INDEX_ATTEMPTS - 1):
            if self.repo.git(*args, input=request, env=env, check=False).returncode == 0:
                return
        self.repo.git(*args, input=request, env=env)


def _status_paths(status: bytes) -> tuple[list[str], list[str]]:
    """(tracked paths changed in the work tree, untracked paths) from ``git status
    --porcelain=v1 -z``; changes already staged are in the copied index."""
    changed: list[str] = []
    untracked: list[str] = []
    entries = iter(status.decode(errors="surrogateescape").split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(entries, None)  # the path it was renamed or copied from
        if code == "??":
            untracked.append(path)
        elif code[1] != " ":
            changed.append(path)
    return changed, untracked


def _with_entry_point(info: SourceInfo, entry_point: str | None) -> SourceInfo:
    if info.entry_point == entry_point:
        return info
    return SourceInfo(
        commit=info.commit,
        branch=info.branch,
        dirty=info.dirty,
        snapshot=info.snapshot,
        untracked_skipped=info.untracked_skipped,
        entry_point=entry_point,
    )


def default_entry_point(work_tree: Path | None) -> str | None:
    """The script being run, relative to the work tree when inside it."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else None
    if not argv0 or argv0 in ("-c", "-m"):
        return None
    return _entry_point(argv0, os.getcwd(), work_tree)


@functools.lru_cache(maxsize=64)
def _entry_point(argv0: str, cwd: str, work_tree: Path | None) -> str:
    path = Path(cwd, argv0).resolve()
    if work_tree is not None:
        try:
            return path.relative_to(work_tree).as_posix()
        except ValueError:
            pass
    return path.name
