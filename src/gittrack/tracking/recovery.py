"""Recovery of orphaned live runs: a live run whose owning process is gone is committed with
the status it had (KILLED when it was running), its torn last metric line dropped and named.

Runs before a process's first write and in ``gittrack recover``, never from a read.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, NamedTuple

from gittrack.entities import RunStatus
from gittrack.errors import CorruptDataError, GittrackError
from gittrack.store import layout
from gittrack.store.codecs import format_time, load_yaml, parse_metric_lines
from gittrack.store.run_documents import meta_for_disk
from gittrack.store.schemas import check_stored
from gittrack.store.staging import META, METRICS, PARAMS, LiveRun
from gittrack.utils import clock

if TYPE_CHECKING:
    from gittrack.tracking.live_runs import LiveRunStore


class RecoveredRun(NamedTuple):
    """One orphaned live run a recovery found: committed (``note``: a torn last line that
    was dropped, if any), or kept in place because it could not be (``note``: why)."""

    run_id: str
    note: str | None
    committed: bool = True


def _problem(exc: Exception) -> str:
    """An error as one line for a report."""
    if isinstance(exc, GittrackError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class OrphanRecovery:
    """Commits the orphaned live runs of one tracking repository."""

    def __init__(self, runs: LiveRunStore) -> None:
        """:param runs: the run store whose live runs are recovered (its own are skipped)."""
        self.runs = runs

    def recover_orphans(self) -> list[RecoveredRun]:
        """Commit live runs whose owning process is gone.

        Runs before a process's first write (``TrackingRepository.prepare_write``) and in
        ``gittrack recover``, so one orphan that cannot be committed (a corrupt file, a field
        the schema refuses) must not stop the others or that write: it is reported
        with ``committed=False``, left in place with every file it has, and retried by the
        next recovery (once fixed by hand, or by a version that accepts it).
        """
        recovered = []
        self.runs.staging.sweep()
        self.runs.repo.spare_files.sweep()
        self._release_committed_snapshots()
        for run_id in self.runs.staging.run_ids():
            if self.runs.owns(run_id):
                continue
            try:
                live = self.runs.staging.claim_orphan(run_id)
            except OSError as exc:  # not a directory, an unreadable lock: reported, kept
                recovered.append(RecoveredRun(run_id, _problem(exc), committed=False))
                continue
            if live is None:
                continue
            try:
                torn = self._recover_orphan(live)
            except (GittrackError, OSError) as exc:
                live.close()  # kept as it is, lock released: a later recovery retries it
                recovered.append(RecoveredRun(run_id, _problem(exc), committed=False))
                continue
            recovered.append(RecoveredRun(run_id, torn))
        return recovered

    def _recover_orphan(self, live: LiveRun) -> str | None:
        """Commit one claimed orphan; returns the note on a torn last metric line, if any."""
        live.seal()  # a process still logging to it is in the commit, or refused
        meta = load_yaml(live.read(META) or b"", f"{live.path}/{META}")
        params = load_yaml(live.read(PARAMS) or b"", f"{live.path}/{PARAMS}") or {}
        if not isinstance(meta, dict) or "run_id" not in meta:
            raise CorruptDataError(f"{live.path}/{META} is not a run's meta.yaml")
        # Checked as read, so a hand-edited file fails here, naming its field, and not
        # deeper with a KeyError; the commit checks the final documents again.
        check_stored({**meta_for_disk(meta), "metrics": {}}, "meta", f"{live.path}/{META}")
        check_stored(params, "params", f"{live.path}/{PARAMS}")
        ending = live.lock_info()
        if ending.get("ending") in RunStatus.TERMINATED:
            # The owner was committing it when it died: keep the status it chose.
            meta["status"], meta["end_time"] = ending["ending"], ending["end_time"]
        elif meta.get("status") in (RunStatus.RUNNING, RunStatus.SCHEDULED):
            meta["status"] = RunStatus.KILLED
            meta["end_time"] = format_time(self._last_activity(live))
        points_raw = live.read(METRICS) or b""
        _, torn = parse_metric_lines(points_raw, f"{live.path}/{METRICS}")
        self.runs.commit_live(live, meta, params)
        return torn

    def _last_activity(self, live: LiveRun) -> int:
        stamps = [os.stat(p).st_mtime for p in live.path.iterdir() if p.is_file()]
        return int(max(stamps) * 1000) if stamps else clock.now_ms()

    def _release_committed_snapshots(self) -> None:
        """Remove the snapshot refs of runs already on the branch (their owner died
        between the commit and the removal)."""
        live_refs = self.runs.repo.refs_under(layout.LIVE_SNAPSHOTS_PREFIX)
        if not live_refs:
            return
        snap = self.runs.branch.snapshot()
        for ref, sha in live_refs.items():
            run_id = ref[len(layout.LIVE_SNAPSHOTS_PREFIX) :]
            if layout.is_run_id(run_id) and snap.entry(layout.run_dir(run_id)) is not None:
                with contextlib.suppress(GittrackError, OSError):
                    self.runs.repo.delete_ref(ref, sha)
