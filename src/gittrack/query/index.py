"""The run index: one row per run of the tracking branch, kept up to date incrementally.

The index is the run frame (see ``run_rows``) of the branch tip, built from each run's
``meta.yaml`` (info, tags, metric summaries) and ``params.yaml``; ``metrics.jsonl`` is never
read. It lives in memory and in ``$GIT_DIR/gittrack/cache/`` (``cache_file``), labelled with the
tip and the ``.tracking/runs`` tree it describes. When the tip moves, the two runs trees are
compared (``run_tree``) and only the run directories that differ are read again, with batched
object reads. A run's documents in the layout gittrack writes are read straight into its row
(``canonical_rows``); any other document goes through the YAML reader (``store/fast_yaml``)
and ``FrameBuilder.add``, which give the same row or name what is wrong. From
``PARALLEL_MIN`` runs to read (a first build of a large project), a forked child process
reads half of them (``forked``) on the second core; in a first build (estimated from the shard
directories) it also lists its half of the run directories, so the listing is shared too.

The comparison is between trees, so it is right whatever happened to the history in between
(a pull, a rebase, a force-push). When the cached tree can no longer be read (its objects were
pruned), the cache is unreadable, or it was written by another version of gittrack, the index
is built from scratch. Live runs of this clone are merged in at query time by ``frame()``.

A run that cannot be read (invalid YAML, a schema violation, a missing ``meta.yaml``, a
``run_id`` that is not its directory's...) is left out of the frame; the index remembers it
(in the cache too) and every query warns about it, naming the file, until it changes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from gittrack.errors import CorruptDataError, RepositoryError, warn_skipped
from gittrack.query.cache_file import CachedIndex, IndexCache
from gittrack.query.canonical_rows import read_row
from gittrack.query.forked import ForkedCall
from gittrack.query.live_runs import LiveRecord, LiveRuns
from gittrack.query.progress import Progress
from gittrack.query.run_rows import FrameBuilder, RowBatch, empty_frame, normalize
from gittrack.query.run_tree import RunDirChanges, diff_run_dirs, estimated_runs, runs_tree
from gittrack.store import layout
from gittrack.store.fast_yaml import load_yaml_fast
from gittrack.store.git import GitRepo
from gittrack.store.staging import META, PARAMS
from gittrack.utils import collector

if TYPE_CHECKING:
    from gittrack.tracking.repository import TrackingRepository

_CHUNK = 2_000
PARALLEL_MIN = 20_000
"""From this many runs to read, a forked child reads half of them (``RunIndex._read_runs``)."""
_DOCUMENTS = frozenset((META, PARAMS))


@dataclass(frozen=True)
class Refresh:
    """What the last refresh of the committed runs did.

    ``mode`` is ``memory`` (tip unchanged since the last query in this process), ``disk``
    (the saved index was current), ``incremental`` (only changed runs were read) or ``full``;
    ``processes`` is 2 when a forked child read half of the runs (``PARALLEL_MIN``).
    """

    mode: str
    rows_read: int = 0
    rows_removed: int = 0
    rows: int = 0
    reason: str | None = None
    processes: int = 1


class RunIndex:
    """The run index of one tracking repository's branch."""

    def __init__(self, repository: TrackingRepository) -> None:
        self.repository = repository
        self.repo = repository.repo
        self.cache = IndexCache(self.repo.gittrack_dir / "cache", repository.branch.ref)
        self.live = LiveRuns(repository.staging)
        self.last_refresh = Refresh("none")
        self._current: CachedIndex | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    def frame(self) -> pd.DataFrame:
        """Every run: the committed ones at the branch tip, with this clone's live runs."""
        live = self.live.records()  # before the tip: a run committed meanwhile is in the tip
        committed = self.committed()
        skipped = dict(self._current.skipped) if self._current is not None else {}
        skipped.update(self.live.skipped)
        if not live:
            _warn(skipped)
            return committed
        builder = FrameBuilder()
        for record in live:
            builder.try_add(record.run_id, _live_documents, record)
        live_frame = builder.frame()
        skipped.update(builder.skipped)
        _warn(skipped)
        kept = committed[~committed["run_id"].isin(live_frame["run_id"])]
        if kept.empty:
            return live_frame
        return normalize(pd.concat([kept, live_frame], ignore_index=True))

    def committed(self) -> pd.DataFrame:
        """The committed runs at the branch tip."""
        with self._lock:
            tip = self.repository.branch.tip()
            current = self._current
            if current is not None and current.tip == tip:
                self.last_refresh = Refresh("memory", rows=len(current.frame))
                return current.frame
            with collector.paused():
                self._current = self._refresh(tip, current)
            return self._current.frame

    # ------------------------------------------------------------------ refresh
    def _refresh(self, tip: str | None, current: CachedIndex | None) -> CachedIndex:
        if tip is None:
            self.last_refresh = Refresh("full")
            return CachedIndex(empty_frame(), "", None, {})
        reason = None
        if current is None:
            current = self.cache.load()
            reason = self.cache.problem
            if current is not None and current.tip == tip:
                self.last_refresh = Refresh("disk", rows=len(current.frame))
                return current
        new_tree = runs_tree(self.repo, self.repo.commit_tree_info(tip)[0])
        updated = None
        if current is not None:
            try:
                changes = diff_run_dirs(self.repo, current.runs_tree, new_tree)
            except (CorruptDataError, RepositoryError) as exc:
                reason = f"the cached tree cannot be compared: {exc}"
            else:
                updated = self._incremental(current, tip, new_tree, changes)
        if updated is None:
            updated = self._full(tip, new_tree, reason)
        self.cache.save_soon(updated)
        return updated

    def _incremental(
        self, base: CachedIndex, tip: str, new_tree: str | None, changes: RunDirChanges
    ) -> CachedIndex:
        gone = changes.removed | changes.changed.keys() | changes.not_directories
        frame = base.frame
        kept = frame[~frame["run_id"].isin(gone)] if gone else frame
        removed = int(frame["run_id"].isin(changes.removed).sum()) if changes.removed else 0
        skipped = {k: v for k, v in base.skipped.items() if k not in gone}
        processes = 1
        if changes.changed:
            fresh, fresh_skipped, processes = self._read_runs(changes.changed)
            frame = normalize(pd.concat([kept, fresh], ignore_index=True))
            skipped.update(fresh_skipped)
        else:
            frame = kept.reset_index(drop=True)
        skipped.update(_not_directories(changes.not_directories))
        self.last_refresh = Refresh(
            "incremental", len(changes.changed), removed, len(frame), processes=processes
        )
        return CachedIndex(frame, tip, new_tree, skipped)

    def _full(self, tip: str, new_tree: str | None, reason: str | None) -> CachedIndex:
        shared = None
        if estimated_runs(self.repo, new_tree) >= PARALLEL_MIN:
            shared = self._list_and_read_halves(new_tree)
        if shared is None:
            changes = diff_run_dirs(self.repo, None, new_tree)
            frame, skipped, processes = (
                self._read_runs(changes.changed) if changes.changed else (empty_frame(), {}, 1)
            )
            read, not_directories = len(changes.changed), changes.not_directories
        else:
            frame, skipped, read, not_directories, processes = shared
        self.last_refresh = Refresh("full", read, 0, len(frame), reason, processes=processes)
        return CachedIndex(frame, tip, new_tree, {**skipped, **_not_directories(not_directories)})

    def _list_and_read_halves(
        self, tree: str | None
    ) -> tuple[pd.DataFrame, dict[str, str], int, set[str], int] | None:
        """A first build by two processes from the start: a forked child lists and reads the
        run directories under the first-level shards ``00``-``7f`` while this process lists
        and reads those under ``80``-``ff`` (and any other name), so the listing of some
        65,000 shard directories is shared too. The child's runs come first: the frame is the
        one a single process builds.

        Returns:
            The frame, the runs that could not be read, how many run directories were read,
            the run ids that are files and how many processes read them; None when no child
            could start (the caller does it all). When the child fails, this process lists and
            reads its half too.
        """
        helper = ForkedCall.start(_read_in_child, self.repo.path, [], {}, tree)
        if helper is None:
            return None
        own = diff_run_dirs(self.repo, None, tree, _upper_shard)
        ids = sorted(own.changed)
        progress = Progress("reading runs", total=2 * len(ids))
        builder = FrameBuilder()
        share, forked = _in_two(
            helper,
            lambda mine: _read_share(self.repo, ids, own.changed, mine, progress),
            lambda: _list_and_read(self.repo, tree, _lower_shard, progress),
            builder,
            progress,
        )
        progress.close()
        not_directories = share.not_directories | own.not_directories
        read = share.read + len(ids)
        return builder.frame(), builder.skipped, read, not_directories, 2 if forked else 1

    def _read_runs(self, run_dirs: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str], int]:
        """Rows of the given run directories (run id -> tree id), the runs that could not be
        read (run id -> why), and how many processes read them.

        From ``PARALLEL_MIN`` runs on, a forked child (``forked.py``) reads the first half
        while this process reads the second, each through its own ``git cat-file``; the
        halves are joined in id order, so the frame is the one a single process builds. When
        no child can start or it fails, this process reads its half too.
        """
        ids = sorted(run_dirs)
        progress = Progress("reading runs", total=len(ids))
        helper = None
        if len(ids) >= PARALLEL_MIN:
            helper = ForkedCall.start(
                _read_in_child, self.repo.path, ids[: len(ids) // 2], run_dirs
            )
        builder = FrameBuilder()
        forked = False
        if helper is None:
            _read_share(self.repo, ids, run_dirs, builder, progress)
        else:
            half = len(ids) // 2
            _, forked = _in_two(
                helper,
                lambda mine: _read_share(self.repo, ids[half:], run_dirs, mine, progress),
                lambda: _read_here(self.repo, ids[:half], run_dirs, progress),
                builder,
                progress,
            )
        progress.close()
        return builder.frame(), builder.skipped, 2 if forked else 1


def _in_two(
    helper: ForkedCall,
    read_mine: Callable[[FrameBuilder], None],
    read_theirs_here: Callable[[], _ChildShare],
    builder: FrameBuilder,
    progress: Progress,
) -> tuple[_ChildShare, bool]:
    """The one way two processes share a read: this process reads its share
    (``read_mine``) while the forked ``helper`` reads the other, then ``builder`` gets the
    helper's share first and this process's after, so the frame is the one a single process
    builds. When the helper fails, this process reads that share too (``read_theirs_here``).

    Returns:
        The other share, and whether the helper read it.
    """
    own = FrameBuilder()
    read_mine(own)
    mine = own.batch()  # its columns, while the child may still be at work
    theirs: _ChildShare | None = helper.result()
    forked = theirs is not None
    if theirs is None:
        theirs = read_theirs_here()
    else:
        progress.total = progress.done + theirs.read
        progress.advance(theirs.read)
    builder.extend(theirs.batch)
    builder.extend(mine)
    return theirs, forked


class _ChildShare(NamedTuple):
    """What a forked child read: its runs, how many run directories it read, and the run ids
    it found to be files (when it listed its share itself)."""

    batch: RowBatch
    read: int
    not_directories: set[str]


def _lower_shard(name: str) -> bool:
    """The first-level shards a forked child lists in a first build (``00``-``7f``)."""
    return name < "80"


def _upper_shard(name: str) -> bool:
    return not _lower_shard(name)


def _read_in_child(
    path: Path, ids: list[str], run_dirs: dict[str, str], tree: str | None = None
) -> _ChildShare:
    """``_read_share`` in a forked child, through a repository handle of its own (none of
    its parent's pipes or locks): of the runs ``ids``, or, when ``tree`` is given, of the
    run directories it lists under that ``.tracking/runs`` tree's lower shards."""
    repo = GitRepo(path)
    if tree is not None:
        return _list_and_read(repo, tree, _lower_shard, None)
    return _read_here(repo, ids, run_dirs, None)


def _read_here(
    repo: GitRepo, ids: list[str], run_dirs: dict[str, str], progress: Progress | None
) -> _ChildShare:
    """The runs ``ids`` read as one share."""
    builder = FrameBuilder()
    _read_share(repo, ids, run_dirs, builder, progress)
    return _ChildShare(builder.batch(), len(ids), set())


def _list_and_read(
    repo: GitRepo, tree: str | None, shards: Callable[[str], bool], progress: Progress | None
) -> _ChildShare:
    """The run directories under the first-level ``shards`` of a ``.tracking/runs`` tree,
    listed and read."""
    listed = diff_run_dirs(repo, None, tree, shards)
    builder = FrameBuilder()
    _read_share(repo, sorted(listed.changed), listed.changed, builder, progress)
    return _ChildShare(builder.batch(), len(listed.changed), listed.not_directories)


def _read_share(
    repo: GitRepo,
    ids: list[str],
    run_dirs: dict[str, str],
    builder: FrameBuilder,
    progress: Progress | None,
) -> None:
    """Add the runs ``ids`` to ``builder``, read in batches.

    The next batch's objects are fetched by a helper thread while this one parses the
    current batch: git inflates objects in its own process, so reading and parsing overlap.
    """
    chunks = [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(_fetch_chunk, repo, chunks[0], run_dirs) if chunks else None
        for index, chunk in enumerate(chunks):
            assert pending is not None
            documents = pending.result()
            if index + 1 < len(chunks):
                pending = reader.submit(_fetch_chunk, repo, chunks[index + 1], run_dirs)
            _parse_chunk(chunk, documents, builder)
            if progress is not None:
                progress.advance(len(chunk))


def _fetch_chunk(
    repo: GitRepo, ids: list[str], run_dirs: dict[str, str]
) -> list[tuple[bytes | None, bytes | None]]:
    """(meta.yaml, params.yaml) contents of each run, None for a missing file (or one
    that is not a blob: ``_parse_chunk`` reports it)."""
    trees = repo.read_tree_files([run_dirs[run_id] for run_id in ids], _DOCUMENTS)
    wanted: list[str] = []
    slots: list[tuple[int, int]] = []
    for blobs in trees:
        slots.append((_add(wanted, blobs.get(META)), _add(wanted, blobs.get(PARAMS))))
    objects = repo.read_objects(wanted)
    bodies = [body if kind == "blob" else None for kind, body in objects]
    return [(bodies[m] if m >= 0 else None, bodies[p] if p >= 0 else None) for m, p in slots]


def _parse_chunk(
    ids: list[str],
    documents: list[tuple[bytes | None, bytes | None]],
    builder: FrameBuilder,
) -> None:
    """Each run's row through the canonical reader, else through the general YAML path."""
    for run_id, (raw_meta, raw_params) in zip(ids, documents):
        row = read_row(run_id, raw_meta, raw_params) if raw_meta is not None else None
        if row is not None:
            builder.add_row(row, layout.run_dir(run_id))
        else:
            builder.try_add(run_id, _documents, run_id, raw_meta, raw_params)


def _documents(
    run_id: str, raw_meta: bytes | None, raw_params: bytes | None
) -> tuple[object, object, None, str]:
    """(meta, params, None, where) of a committed run, as ``FrameBuilder.try_add`` reads it."""
    where = layout.run_dir(run_id)
    if raw_meta is None:
        raise CorruptDataError(f"{where}/{META} is missing (or is not a file)")
    meta = load_yaml_fast(raw_meta, f"{where}/{META}")
    params = load_yaml_fast(raw_params, f"{where}/{PARAMS}") if raw_params else {}
    return meta, params, None, where


def _not_directories(run_ids: set[str]) -> dict[str, str]:
    return {
        run_id: f"{layout.run_dir(run_id)}: is a file, not a run directory" for run_id in run_ids
    }


def _live_documents(record: LiveRecord) -> tuple[dict, dict, dict[str, dict], str]:
    return record.meta, record.params, record.summaries, record.where


def _warn(skipped: dict[str, str]) -> None:
    for message in skipped.values():
        warn_skipped(message)


def _add(wanted: list[str], sha: str | None) -> int:
    if sha is None:
        return -1
    wanted.append(sha)
    return len(wanted) - 1


_indexes: weakref.WeakKeyDictionary[TrackingRepository, RunIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def run_index(repository: TrackingRepository) -> RunIndex:
    """The index of a repository handle (one per handle, living as long as it)."""
    with _indexes_lock:
        index = _indexes.get(repository)
        if index is None:
            index = _indexes[repository] = RunIndex(repository)
        return index
