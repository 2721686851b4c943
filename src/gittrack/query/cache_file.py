"""The run index on disk, in ``$GIT_DIR/gittrack/cache/``: derived data, safe to delete.

One manifest per tracking branch (``runs-<branch hash>.json``) names the data file holding the
run frame (an Arrow IPC file; pyarrow is a required dependency, and the cache never holds a
pickle, so loading it runs no code), the branch
tip and ``.tracking/runs`` tree the frame describes, the gittrack version and cache format that
wrote it, and a CRC-32 of the data file. Arrow's IPC format is read without decoding (a
100,000-run index loads in tens of milliseconds, where Parquet takes half a second), and the
checksum costs ~0.15 ms a megabyte. A data file is written under a temporary name and
renamed, then the manifest is replaced the same way: readers see the old index or the new one,
concurrent writers each publish a complete index and the last one wins. Anything unexpected
when loading (missing or truncated file, digest mismatch, other version, unreadable data)
makes ``load`` return None, and the caller rebuilds.

An index of ``BACKGROUND_MIN`` runs or more is written by a background thread
(``store/background.py``) once its frame is ready: encoding and writing 100,000 runs takes
most of a second the caller need not wait for. Every load, column read or save of an index in
this process first waits for the writes queued before it, and the process waits for them when
it exits; a killed process leaves the previous index (the files are replaced atomically), and
the next build writes it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gittrack._version import __version__
from gittrack.store.background import Background
from gittrack.store.files import replace_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

CACHE_FORMAT = 5
_STORAGE = "arrow"
_STALE_SECONDS = 120
BACKGROUND_MIN = 5_000
"""From this many runs, ``IndexCache.save_soon`` writes the index from a background thread."""
_writes = Background("gittrack-index-cache")
_writes_lock = threading.Lock()  # a save queued while another thread waits is not lost


def _wait_for_writes() -> None:
    """Wait until the index writes queued in this process are done."""
    with _writes_lock:
        _writes.drain(timeout=None)


@dataclass(frozen=True)
class CachedIndex:
    """The run frame of ``runs_tree`` at ``tip``; ``skipped`` maps the run ids left out of it
    (unreadable runs) to the reason, so every later search still reports them."""

    frame: pd.DataFrame
    tip: str
    runs_tree: str | None
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedColumns:
    """Some columns of a saved index (name -> one value a run, None where the frame has
    NaN or None) and the runs it left out (run id -> why)."""

    columns: dict[str, list]
    skipped: dict[str, str]


def _checksum(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


class IndexCache:
    """Load and save the run index of one tracking branch."""

    def __init__(self, directory: Path, ref: str) -> None:
        self.directory = directory
        self.ref = ref
        self._stem = "runs-" + hashlib.sha1(ref.encode()).hexdigest()[:12]
        self.manifest = directory / f"{self._stem}.json"
        self.problem: str | None = None

    def _expected(self) -> dict:
        import pandas as pd

        return {
            "cache_format": CACHE_FORMAT,
            "gittrack": __version__,
            "pandas": pd.__version__,
            "ref": self.ref,
            "storage": _STORAGE,
        }

    def load(self) -> CachedIndex | None:
        """The saved index, or None (``problem`` says why when a file was there)."""
        self.problem = None
        _wait_for_writes()
        try:
            manifest = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.problem = f"unreadable manifest: {exc}"
            return None
        try:
            return self._load(manifest)
        except Exception as exc:  # any failure of a derived file means: rebuild
            self.problem = f"{type(exc).__name__}: {exc}"
            return None

    def read_columns(
        self,
        tip: str,
        wanted: Callable[[str], bool],
        where: tuple[str, Collection[str]] | None = None,
    ) -> SavedColumns | None:
        """The columns of the saved index that ``wanted`` accepts, as Python lists, read
        through pyarrow alone (no pandas), when the saved index describes ``tip``; else None.
        ``where`` (a column and values) keeps only the rows whose value is one of those:
        only that column is turned into Python objects in full.

        This is the fast path of commands that only read a few columns of a current index
        (``gittrack log``): importing pandas costs more than the whole read. Anything else
        (another tip, another format, a damaged file) returns None and the caller builds the frame.
        """
        _wait_for_writes()
        try:
            manifest = json.loads(self.manifest.read_text())
            if manifest.get("tip") != tip or not self._current_arrow(manifest):
                return None
            data = (self.directory / manifest["file"]).read_bytes()
            if _checksum(data) != manifest["digest"]:
                return None
            import pyarrow as pa

            table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
            skipped = manifest.get("skipped") or {}
            if table.num_rows != manifest["rows"] or not isinstance(skipped, dict):
                return None
            names = [name for name in table.column_names if wanted(name)]
            if where is None:
                columns = {name: table.column(name).to_pylist() for name in names}
            else:
                columns = _rows_where(table, names, *where)
            return SavedColumns(columns, {str(k): str(v) for k, v in skipped.items()})
        except Exception:  # a derived file: whatever is wrong, the frame path rebuilds it
            return None

    def _current_arrow(self, manifest: dict) -> bool:
        """Whether this gittrack wrote the manifest as Arrow (pandas' version is not
        compared: reading columns through pyarrow does not depend on it)."""
        name = manifest.get("file", "")
        return (
            manifest.get("cache_format") == CACHE_FORMAT
            and manifest.get("gittrack") == __version__
            and manifest.get("ref") == self.ref
            and manifest.get("storage") == _STORAGE
            and isinstance(name, str)
            and "/" not in name
            and name.startswith(self._stem)
        )

    def _load(self, manifest: dict) -> CachedIndex | None:
        stale = [k for k, v in self._expected().items() if manifest.get(k) != v]
        if stale:
            self.problem = f"written by another version ({', '.join(stale)})"
            return None
        name = manifest["file"]
        if "/" in name or not name.startswith(self._stem):
            self.problem = f"manifest names an unexpected file {name!r}"
            return None
        data = (self.directory / name).read_bytes()
        if _checksum(data) != manifest["digest"]:
            self.problem = f"{name} does not match its digest"
            return None
        frame = _decode(data)
        if len(frame) != manifest["rows"]:
            self.problem = f"{name} has {len(frame)} rows, the manifest says {manifest['rows']}"
            return None
        skipped = manifest.get("skipped") or {}
        if not all(type(k) is str and type(v) is str for k, v in skipped.items()):
            self.problem = "manifest lists skipped runs in an unexpected form"
            return None
        return CachedIndex(frame, manifest["tip"], manifest["runs_tree"], skipped)

    def save_soon(self, index: CachedIndex) -> None:
        """Publish an index: now when it is small, else from a background thread (see the
        module's docstring), so the caller goes on while it is written.

        Args:
            index: the index to publish; its frame is not changed (the thread encodes a
                shallow copy, so columns the caller adds later are not saved).
        """
        if len(index.frame) < BACKGROUND_MIN:
            self.save(index)
            return
        snapshot = CachedIndex(
            index.frame.copy(deep=False), index.tip, index.runs_tree, dict(index.skipped)
        )
        with _writes_lock:
            _writes.submit(lambda: self._write_in_background(snapshot))

    def save(self, index: CachedIndex) -> bool:
        """Publish an index now, after the writes queued before it.

        Args:
            index: the index to publish.

        Returns:
            False when the cache directory cannot be written.
        """
        _wait_for_writes()
        return self._write(index)

    def _write_in_background(self, index: CachedIndex) -> None:
        """``_write`` on the background thread: any failure (a column Arrow cannot encode,
        say) is reported as a warning, not as a thread's traceback; the next build of the
        index saves it again."""
        try:
            self._write(index)
        except Exception as exc:  # derived data: not saving it costs the next build only
            warnings.warn(
                f"gittrack: the search index could not be saved ({type(exc).__name__}: {exc}); "
                "the next search builds it again",
                RuntimeWarning,
                stacklevel=1,
            )

    def _write(self, index: CachedIndex) -> bool:
        try:
            data = _encode(index.frame)
            digest = _checksum(data)
            name = f"{self._stem}-{digest}-{os.urandom(4).hex()}.{_STORAGE}"
            self.directory.mkdir(parents=True, exist_ok=True)
            replace_file(self.directory / name, data)
            manifest = {
                **self._expected(),
                "tip": index.tip,
                "runs_tree": index.runs_tree,
                "rows": len(index.frame),
                "skipped": index.skipped,
                "file": name,
                "digest": digest,
                "written_at": int(time.time()),
            }
            replace_file(self.manifest, json.dumps(manifest, indent=1).encode())
        except OSError:
            return False
        self._remove_stale(keep=name)
        return True

    def _remove_stale(self, keep: str) -> None:
        """Drop older data files; recent ones may belong to a concurrent writer's manifest."""
        now = time.time()
        for path in self.directory.iterdir():
            name = path.name
            is_ours = name.startswith((self._stem + "-", f"tmp_{self._stem}"))
            if not is_ours or name == keep:
                continue
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > _STALE_SECONDS:
                    path.unlink()


def _rows_where(
    table: pa.Table, names: list[str], key: str, values: Collection[str]
) -> dict[str, list]:
    """The ``names`` columns of the rows whose ``key`` is one of ``values``. Cells are read
    one by one: building an Arrow array from Python (``pa.array``, a filter's value set)
    makes pyarrow import pandas, which this path exists to avoid."""
    wanted = set(values)
    rows = [row for row, value in enumerate(table.column(key).to_pylist()) if value in wanted]
    columns = {}
    for name in names:
        column = table.column(name)
        columns[name] = [column[row].as_py() for row in rows]
    return columns


def _encode(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa

    # Without pandas' schema metadata, reading skips rebuilding indexes from JSON (a third of
    # the load time); column types come back the same from the Arrow types.
    # One thread (no executor): a background save may still run while the interpreter exits,
    # when no new executor work can be scheduled.
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _decode(data: bytes) -> pd.DataFrame:
    import pyarrow as pa

    return pa.ipc.open_file(pa.BufferReader(data)).read_all().to_pandas()
