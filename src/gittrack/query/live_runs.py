"""Rows of this clone's live runs, read from the staging area at query time.

A live run's ``meta.yaml`` has no metric summary yet: it is computed from ``metrics.jsonl``.
Each run's parsed documents are kept with the size and modification time of its files, so a
search re-reads only the live runs that changed since the previous one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from gittrack.errors import CorruptDataError, NotFoundError
from gittrack.store.codecs import parse_metric_lines
from gittrack.store.fast_yaml import load_yaml_fast
from gittrack.store.run_documents import meta_for_disk, summarize_metrics
from gittrack.store.staging import META, METRICS, PARAMS, Staging

_FILES = (META, PARAMS, METRICS)


@dataclass(frozen=True)
class LiveRecord:
    """The documents of one live run, as ``FrameBuilder.add`` takes them."""

    run_id: str
    meta: dict
    params: dict
    summaries: dict[str, dict]
    where: str


class LiveRuns:
    """The live runs of one staging area."""

    def __init__(self, staging: Staging) -> None:
        self.staging = staging
        self._known: dict[str, tuple[tuple, LiveRecord]] = {}
        self.skipped: dict[str, str] = {}  # live runs the last ``records`` could not read

    def records(self) -> list[LiveRecord]:
        """The readable live runs; the others are named in ``skipped`` with the reason."""
        found = []
        self.skipped = {}
        ids = self.staging.run_ids()
        for run_id in ids:
            try:
                record = self._record(run_id)
            except CorruptDataError as exc:
                self.skipped[run_id] = exc.message
                continue
            except OSError as exc:  # a file where the run's directory belongs, and such
                self.skipped[run_id] = f"{self.staging.root / run_id}: cannot be read ({exc})"
                continue
            if record is not None:
                found.append(record)
        for gone in self._known.keys() - set(ids):
            del self._known[gone]
        return found

    def _record(self, run_id: str) -> LiveRecord | None:
        path = self.staging.root / run_id
        stamps = tuple(_stamp(os.path.join(path, name)) for name in _FILES)
        known = self._known.get(run_id)
        if known is not None and known[0] == stamps:
            return known[1]
        try:
            live = self.staging.open(run_id)
            raw_meta = live.read(META)
            if raw_meta is None:
                return None
            where = str(live.path)
            meta = load_yaml_fast(raw_meta, f"{where}/{META}")
            params = load_yaml_fast(live.read(PARAMS) or b"{}", f"{where}/{PARAMS}") or {}
            points, _torn = parse_metric_lines(live.read(METRICS) or b"", f"{where}/{METRICS}")
        except NotFoundError:
            return None  # committed and removed since the listing: the branch has it
        except CorruptDataError:
            if not (path / META).exists():
                return None
            raise
        if isinstance(meta, dict) and "_parents" in meta:  # private to the owner, not stored
            meta = meta_for_disk(meta)
        record = LiveRecord(run_id, meta, params, summarize_metrics(points), where)
        self._known[run_id] = (stamps, record)
        return record


def live_stamp(staging: Staging) -> str:
    """A digest of which runs are live and the size and time of their files: it changes
    whenever a live run starts, logs or ends, and costs a few ``stat`` calls per run."""
    digest = hashlib.sha1()
    for run_id in sorted(staging.run_ids()):
        path = staging.root / run_id
        digest.update(repr((run_id, [_stamp(os.path.join(path, n)) for n in _FILES])).encode())
    return digest.hexdigest()


def _stamp(path: str) -> tuple:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ()
    return (st.st_mtime_ns, st.st_size, st.st_ino)
