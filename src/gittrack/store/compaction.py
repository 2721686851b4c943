"""Delta-compressing the packs gittrack wrote, in a detached process.

A commit's objects are written as full objects (``packs.py``): the cheapest way to commit a
run, and five to six times the size git stores them in once they are deltas of each other
(every run's ``meta.yaml`` is much like the last). So, once the full-object packs reach a
threshold, a detached process (its own interpreter, at nice 10, one thread) hands
their objects to ``git pack-objects`` with delta search and replaces them by the pack git
writes. Writers never wait for it: they only decide, on their background thread every 32
commits, whether to start one.

Git's safety rules for repacking are kept: the new pack is written and fsynced, and
recorded, before the packs it replaces are deleted (index first), so every object is in
some pack at every moment, for live writers and readers alike. Taken are only the packs
gittrack wrote (``packs.written_by_gittrack``) and the packs a compaction wrote (recorded in
``$GIT_DIR/gittrack/compacted-packs``), never one with a ``.keep`` or any other file beside
it, never anything while a ``multi-pack-index`` exists: the user's own packs, from
``git gc`` or a fetch, are left to git. Compacted packs are merged geometrically (as
``git repack --geometric=2`` does: a pack smaller than twice the ones below it is merged
with them), reusing their deltas, so there are few of them.

When: the full-object bytes reach ``max(RAW_MIN_BYTES, RAW_FRACTION x compacted bytes)``,
so the store stays within about ``1 + RAW_FRACTION`` times what ``git repack -adf`` would
make of it, at any size, with a number of compactions logarithmic in the number of runs.

One compaction at a time: the writer that starts one takes an ``flock`` on
``$GIT_DIR/gittrack/compaction.lock`` and hands it to the process it starts, which holds it
until it is done (and looks again before it exits: runs committed meanwhile are compacted
too). ``wait_for_compaction`` waits for that lock to be free.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gittrack.store.files import make_durable, read_file, replace_file
from gittrack.store.git_process import run_git
from gittrack.store.packs import (
    TYPE_CODES,
    entry_object,
    index_object_ids,
    pack_files,
    read_pack_entries,
    remove_pack,
    written_by_gittrack,
)
from gittrack.store.trees import parse_tree

RAW_MIN_BYTES = 2 << 20  # below this, full-object packs are left as they are
RAW_FRACTION = 0.5  # ... and below this share of the compacted bytes
GEOMETRIC_FACTOR = 2
LOCK_NAME = "compaction.lock"
RECORD_NAME = "compacted-packs"
_SIDE_FILES = {".pack", ".idx"}
TREE_CODE = TYPE_CODES["tree"]


@dataclass
class PackSurvey:
    """The packs of a pack directory that compaction may take, with their sizes."""

    raw: dict[str, int] = field(default_factory=dict)  # full-object packs gittrack wrote
    compacted: dict[str, int] = field(default_factory=dict)  # packs compaction wrote
    blocked: bool = False  # a multi-pack-index names the packs: leave them to git

    def due(self) -> bool:
        raw = sum(self.raw.values())
        return (
            not self.blocked
            and len(self.raw) >= 1
            and raw >= max(RAW_MIN_BYTES, RAW_FRACTION * sum(self.compacted.values()))
        )


class PackDirectory:
    """A repository's pack directory as compaction sees it.

    :param common_dir: the git directory shared by all worktrees (objects and
        ``gittrack/`` live there).
    """

    def __init__(self, common_dir: str | os.PathLike[str]) -> None:
        self.common_dir = Path(os.path.abspath(common_dir))
        self.pack_dir = f"{self.common_dir}/objects/pack"
        self.lock_path = f"{self.common_dir}/gittrack/{LOCK_NAME}"
        self.record_path = f"{self.common_dir}/gittrack/{RECORD_NAME}"
        self._written_by_gittrack: dict[str, bool] = {}  # pack names are content hashes

    def survey(self) -> PackSurvey:
        survey = PackSurvey()
        try:
            names = os.listdir(self.pack_dir)
        except FileNotFoundError:
            return survey
        if "multi-pack-index" in names:
            survey.blocked = True
            return survey
        compacted = self.compacted_names()
        seen: dict[str, bool] = {}
        for stem, suffixes in pack_files(names).items():
            if suffixes != _SIDE_FILES:  # incomplete, or kept, or with git's own files
                continue
            path = f"{self.pack_dir}/{stem}.pack"
            try:
                size = os.stat(path).st_size + os.stat(f"{self.pack_dir}/{stem}.idx").st_size
            except FileNotFoundError:
                continue
            if f"{stem}.pack" in compacted:
                survey.compacted[path] = size
                continue
            known = self._written_by_gittrack.get(path)
            seen[path] = known if known is not None else written_by_gittrack(path)
            if seen[path]:
                survey.raw[path] = size
        self._written_by_gittrack = seen  # forget packs that are gone
        return survey

    def compacted_names(self) -> set[str]:
        """The packs compaction wrote (a line each); an unreadable record names none: its
        packs are then left to git, which is safe."""
        raw = read_file(self.record_path) or b""
        return {
            line
            for line in raw.decode("ascii", "replace").split()
            if line.startswith("pack-") and line.endswith(".pack")
        }

    def record(self, added: list[str], removed: list[str]) -> None:
        names = (self.compacted_names() | {os.path.basename(p) for p in added}) - {
            os.path.basename(p) for p in removed
        }
        present = {name for name in names if os.path.exists(f"{self.pack_dir}/{name}")}
        replace_file(self.record_path, "".join(f"{n}\n" for n in sorted(present)).encode())


# --------------------------------------------------------------------------- compacting
@dataclass
class CompactionReport:
    """What one ``compact`` did: packs taken and written, bytes before and after."""

    taken: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0


def compact(common_dir: str | os.PathLike[str], force: bool = False) -> CompactionReport:
    """Compact the full-object packs gittrack wrote when they are due (``force``: whenever
    there are any), then merge the compacted packs geometrically. The caller holds the
    compaction lock (``compaction_lock``). Raises ``RepositoryError`` when git fails;
    nothing is deleted then."""
    directory = PackDirectory(common_dir)
    report = CompactionReport()
    survey = directory.survey()
    if survey.due() or (force and survey.raw and not survey.blocked):
        _replace(directory, list(survey.raw), survey.raw, reuse=False, report=report)
        survey = directory.survey()
    merged = geometric_merge(survey.compacted)
    if len(merged) >= 2:
        _replace(directory, merged, survey.compacted, reuse=True, report=report)
    return report


def geometric_merge(sizes: dict[str, int]) -> list[str]:
    """The smallest packs to merge so that each pack left is at least ``GEOMETRIC_FACTOR``
    times the size of all smaller ones together (``git repack --geometric``'s rule)."""
    ordered = sorted(sizes, key=lambda path: (sizes[path], path))
    below, split = 0, 0
    for i, path in enumerate(ordered):
        if i and sizes[path] < GEOMETRIC_FACTOR * below:
            split = i + 1
        below += sizes[path]
    return ordered[:split]


def _replace(
    directory: PackDirectory,
    packs: list[str],
    sizes: dict[str, int],
    reuse: bool,
    report: CompactionReport,
) -> None:
    """Write the objects of ``packs`` as one delta-compressed pack, make it durable and
    record it, and only then delete ``packs``."""
    found = _named_objects(packs) if not reuse else _objects(packs)
    if not found:
        return
    ids, readable = found
    if reuse:
        _name_by_walk(directory, ids)
    written = _pack_objects(directory, ids, reuse)
    make_durable([written, written.removesuffix(".pack") + ".idx"])
    taken = [pack for pack in readable if pack != written]
    directory.record(added=[written], removed=taken)
    for pack in taken:
        remove_pack(pack)
    report.taken += taken
    report.written.append(written)
    report.bytes_before += sum(sizes.get(pack, 0) for pack in taken)
    report.bytes_after += sum(
        os.stat(written.removesuffix(".pack") + suffix).st_size for suffix in _SIDE_FILES
    )


def _objects(packs: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The object ids of ``packs`` (from their indexes), and the packs that were readable:
    a pack gone meanwhile (merged elsewhere) is not ours to delete."""
    ids: dict[str, str] = {}
    readable = []
    for pack in packs:
        found = index_object_ids(read_file(pack.removesuffix(".pack") + ".idx") or b"")
        if found is not None:
            ids.update(dict.fromkeys(found, ""))
            readable.append(pack)
    return (ids, readable) if ids else None


def _name_by_walk(directory: PackDirectory, ids: dict[str, str]) -> None:
    """Name the objects of compacted packs (their trees are deltas: not read here) by
    their paths from the commits among them: ``rev-list --objects --no-walk`` lists each
    tree and blob of those commits once, and never walks to a parent (so never into the
    user's history). With names, the full shard trees each compaction had to start its
    delta chains from find the versions of the same directory in the other packs."""
    git_dir = f"--git-dir={directory.common_dir}"
    listing = "".join(f"{sha}\n" for sha in ids).encode()
    kinds = run_git(
        [git_dir, "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=directory.common_dir,
        input=listing,
    )
    lines = kinds.stdout.decode().splitlines()
    commits = [line[:40] for line in lines if line.endswith(" commit")]
    if not commits:
        return
    walked = run_git(
        [git_dir, "rev-list", "--objects", "--no-walk", "--stdin"],
        cwd=directory.common_dir,
        input="".join(f"{sha}\n" for sha in commits).encode(),
    )
    for line in walked.stdout.decode("utf-8", "replace").splitlines():
        sha, _, path = line.partition(" ")
        if path and sha in ids:
            ids[sha] = path


def _named_objects(packs: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The objects of full-object ``packs``, each with its name in the tree that holds it
    (in the same packs: a commit writes the trees along the paths it changes). git groups
    objects by name for its delta search; without names the shard trees of different
    directories are compared with each other, and the branch's trees come out twice as
    large. A pack that is gone or fails its checksums is left out and left in place."""
    names: dict[str, str] = {}
    members: list[str] = []
    readable = []
    for pack in packs:
        entries = read_pack_entries(pack)
        if entries is None:
            continue
        readable.append(pack)
        members += entries
        for entry in entries.values():
            if (entry[0] >> 4) & 7 == TREE_CODE:
                for child in parse_tree(entry_object(entry)[1]):
                    if "\n" not in child.name:  # one object a line, to pack-objects
                        names[child.sha] = child.name
    packed = {sha: names.get(sha, "") for sha in members}
    return (packed, readable) if packed else None


def _pack_objects(directory: PackDirectory, ids: dict[str, str], reuse: bool) -> str:
    """``git pack-objects`` of exactly ``ids`` (no reachability walk: the user's history,
    which a tracking commit reaches through its source parent, is never read) into the
    pack directory; returns the new pack's path. Full objects are recompressed
    (``--no-reuse-object``): gittrack stores small ones uncompressed."""
    args = [
        f"--git-dir={directory.common_dir}",
        "pack-objects",
        "--delta-base-offset",
        "--threads=1",
        "-q",
    ]
    if not reuse:
        args.append("--no-reuse-object")
    args.append(f"{directory.pack_dir}/pack")
    lines = "".join(f"{sha} {name}\n" if name else f"{sha}\n" for sha, name in ids.items())
    proc = run_git(args, cwd=directory.common_dir, input=lines.encode())
    name = proc.stdout.decode().strip()
    return f"{directory.pack_dir}/pack-{name}.pack"


# ------------------------------------------------------------------------------ locking
def _open_lock(directory: PackDirectory) -> int:
    os.makedirs(os.path.dirname(directory.lock_path), exist_ok=True)
    return os.open(directory.lock_path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def compaction_lock(common_dir: str | os.PathLike[str], wait: bool = True) -> Iterator[bool]:
    """Hold the compaction lock for the block (yields False, without waiting, when another
    compaction holds it and ``wait`` is false)."""
    fd = _open_lock(PackDirectory(common_dir))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def wait_for_compaction(common_dir: str | os.PathLike[str], timeout: float = 600.0) -> bool:
    """Wait until no compaction is pending or running; False when ``timeout`` passed first."""
    fd = _open_lock(PackDirectory(common_dir))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- starting
class CompactionTrigger:
    """Starts a detached compaction when one is due; called on a writer's background
    thread (``SmallPacks.after_merge``), never on the committing one."""

    def __init__(self, common_dir: str | os.PathLike[str]) -> None:
        self.directory = PackDirectory(common_dir)

    def __call__(self) -> None:
        try:
            if self.directory.survey().due():
                start_compaction(self.directory)
        except (OSError, ValueError, struct.error, subprocess.SubprocessError):
            return  # a pack directory that cannot be read now is looked at again later


def start_compaction(directory: PackDirectory) -> bool:
    """Start a detached compaction process holding the compaction lock; False when another
    one holds it (it looks again before it exits, so nothing is missed)."""
    fd = _open_lock(directory)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # The package's ``__init__`` (the whole public API) is not imported: the process
        # needs the store alone, and starts in a third of the time.
        package = str(Path(__file__).resolve().parents[1])
        code = (
            "import sys, types; gittrack = types.ModuleType('gittrack'); "
            f"gittrack.__path__ = [{package!r}]; sys.modules['gittrack'] = gittrack; "
            "from gittrack.store.compaction import main; main(sys.argv[1:])"
        )
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", code, str(directory.common_dir), str(fd)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
            start_new_session=True,
        )
        return True
    finally:
        os.close(fd)  # the child holds the lock through its copy of the descriptor


def main(argv: list[str]) -> None:
    """The detached process: compact until nothing is due, at low priority, then release
    the lock (by exiting). A failure is written to ``$GIT_DIR/gittrack/compaction.log``
    (there is no terminal to report it to) and leaves every pack in place."""
    common_dir, _lock_fd = argv[0], int(argv[1])
    with contextlib.suppress(OSError):
        os.nice(10)  # writers come first (about ten to one), yet it finishes on a busy machine
    log = f"{common_dir}/gittrack/compaction.log"
    try:
        for _ in range(64):  # bounded: a writer faster than compaction gets the next one
            report = compact(common_dir)
            if not report.written:
                break
    except Exception as exc:  # noqa: BLE001 - detached: record it, never raise
        with contextlib.suppress(OSError):
            replace_file(log, f"{time.time():.0f} compaction failed: {exc}\n".encode())
