"""One tracking repository: the git repo, its tracking branch, staging, runs and experiments.

Handles are shared per process and repository (``open_repository``): the process owns its live
runs, so every ``Client`` of the process must see the same open runs.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

from gittrack.errors import CorruptDataError, InvalidInputError
from gittrack.store import layout
from gittrack.store.branch import Blob, Changes, TrackingBranch
from gittrack.store.codecs import dump_yaml, load_yaml
from gittrack.store.git import GitRepo
from gittrack.store.lfs import DEFAULT_THRESHOLD
from gittrack.store.schemas import check_stored
from gittrack.store.staging import Staging
from gittrack.tracking.experiments import ExperimentStore, default_experiment_document
from gittrack.tracking.recovery import RecoveredRun
from gittrack.tracking.runs import RunStore
from gittrack.tracking.source import CAPTURE_MODES, SourceCapture
from gittrack.utils import clock

_URI_PREFIXES = ("git+file://", "file://")


def tracking_path_from_uri(uri: str | None) -> Path:
    """The repository path a tracking URI names; no URI means the current directory.

    Environment: ``GITTRACK_TRACKING_URI``, then ``MLFLOW_TRACKING_URI`` when it is a path
    (an MLflow server URL there is ignored, so scripts shared with MLflow users keep working).
    """
    if uri is None:
        uri = os.environ.get("GITTRACK_TRACKING_URI") or None
    if uri is None:
        mlflow_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if (
            mlflow_uri
            and "://" not in mlflow_uri.replace("file://", "", 1).replace("git+", "", 1)
            or mlflow_uri.startswith(_URI_PREFIXES)
        ):
            uri = mlflow_uri
    if uri is None or uri == "":
        return Path.cwd()
    for prefix in _URI_PREFIXES:
        if uri.startswith(prefix):
            return Path(uri[len(prefix) :]).expanduser().resolve()
    if "://" in uri or uri.startswith(("databricks", "http:", "https:")):
        raise InvalidInputError(
            f"tracking URI {uri!r} is not supported: gittrack tracks into a git repository; "
            "give a path to one (or git+file:///path)"
        )
    return Path(uri).expanduser().resolve()


def _warn_about_kept_orphans(recovered: list[RecoveredRun]) -> None:
    """One warning per orphaned live run the first write could not commit: the write goes
    on, and ``gittrack recover`` lists them again."""
    for found in recovered:
        if not found.committed:
            warnings.warn(
                f"live run {found.run_id} of a process that is gone could not be "
                f"committed and is kept in the staging area: {found.note}",
                RuntimeWarning,
                stacklevel=4,
            )


class TrackingRepository:
    def __init__(
        self, repo: GitRepo | str | os.PathLike[str] | None = None, branch: str | None = None
    ) -> None:
        self.repo = repo if isinstance(repo, GitRepo) else GitRepo(repo)
        self.branch_name = branch or os.environ.get("GITTRACK_BRANCH") or layout.DEFAULT_BRANCH
        self.branch = TrackingBranch(self.repo, self.branch_name, self._initial_files)
        self.staging = Staging(self.repo.gittrack_dir)
        root = f"git+file://{self.repo.path}#{self.branch_name}"
        self.experiments = ExperimentStore(self.branch, f"{root}:{layout.EXPERIMENTS_DIR}")
        self.runs = RunStore(self.branch, self.staging, lfs_threshold=self.lfs_threshold)
        self._config: tuple[str | None, dict] | None = None
        self._source: SourceCapture | None = None
        # Reads never write: the orphaned runs of dead processes are committed before this
        # process's first write (``prepare_write``) or by ``gittrack recover``, never by
        # opening the repository for a search or a listing (DESIGN §4).
        self.recovered: list[RecoveredRun] = []
        self.branch.before_first_write = self._recover_at_first_write

    def _recover_at_first_write(self) -> None:
        """Commit the orphans once, unless a lock left on the branch would make every
        start wait for it and fail: ``gittrack recover`` removes it first (``recover``)."""
        if self.branch.lock_left_behind():
            return
        self.recovered = self.runs.recover_orphans()
        _warn_about_kept_orphans(self.recovered)

    def prepare_write(self) -> None:
        """Call before a write that does not commit to the branch (starting a run): the
        orphans of dead processes are committed first, once per process and repository."""
        self.branch.run_before_first_write()

    @property
    def path(self) -> Path:
        return self.repo.path

    def recover(self) -> list[RecoveredRun]:
        """Bring the repository back after a crash: remove the locks of the branch, of the
        live runs' snapshot refs and of registry tags (GTO names hold ``@`` or ``#``) when
        the writer that took them stopped, then commit the live runs whose process died."""
        self.branch.before_first_write = None  # this is the recovery
        self.branch.clear_stale_lock()
        for lock in self.repo.ref_locks(layout.LIVE_SNAPSHOTS_PREFIX.rstrip("/")):
            self.repo.refs.clear_stale_lock(lock)
        tags = f"{self.repo.common_dir}/refs/tags/"
        for lock in self.repo.ref_locks("refs/tags"):
            if any(mark in lock.removeprefix(tags) for mark in "@#"):
                self.repo.refs.clear_stale_lock(lock)
        return self.runs.recover_orphans()

    @staticmethod
    def _initial_files() -> Changes:
        now = clock.now_ms()
        return {
            layout.CONFIG_PATH: Blob(dump_yaml(layout.initial_config())),
            layout.experiment_path(layout.DEFAULT_EXPERIMENT_ID): Blob(
                dump_yaml(default_experiment_document(now))
            ),
        }

    def init(self) -> str:
        return self.branch.ensure_exists()

    def config(self) -> dict:
        """``.tracking/config.yaml`` at the branch tip (defaults when the branch is new)."""
        snap = self.branch.snapshot()
        entry = snap.entry(layout.CONFIG_PATH)
        sha = entry.sha if entry else None
        if self._config is not None and self._config[0] == sha:
            return self._config[1]
        if entry is None:
            doc = layout.initial_config()
        else:
            doc = load_yaml(self.repo.read_blob(entry.sha), layout.CONFIG_PATH)
            check_stored(doc, "config", layout.CONFIG_PATH)
        self._config = (sha, doc)
        return doc

    def lfs_threshold(self) -> int:
        """The size in bytes from which an artifact is stored with Git LFS
        (``artifacts.lfs_threshold`` in config.yaml, default 10 MB)."""
        section = self.config().get("artifacts") or {}
        return int(section.get("lfs_threshold", DEFAULT_THRESHOLD))

    def source_capture(self) -> SourceCapture:
        if self._source is None:
            source_cfg = self.config().get("source") or {}
            mode = os.environ.get("GITTRACK_SOURCE_CAPTURE") or source_cfg.get(
                "capture", "snapshot"
            )
            if mode not in CAPTURE_MODES:
                raise CorruptDataError(
                    f"source capture mode {mode!r} is not one of {', '.join(CAPTURE_MODES)}"
                )
            self._source = SourceCapture.for_cwd(
                mode, int(source_cfg.get("untracked_size_cap", 1_000_000))
            )
        return self._source

    def shares_objects_with(self, other: GitRepo | None) -> bool:
        return other is not None and other.common_dir == self.repo.common_dir


_lock = threading.Lock()
_by_path: dict[tuple[str, str], TrackingRepository] = {}
_by_git_dir: dict[tuple[str, str], TrackingRepository] = {}


def open_repository(uri: str | None = None, branch: str | None = None) -> TrackingRepository:
    """The process-wide handle of the repository a tracking URI names."""
    path = tracking_path_from_uri(uri)
    branch_name = branch or os.environ.get("GITTRACK_BRANCH") or layout.DEFAULT_BRANCH
    key = (str(path), branch_name)
    with _lock:
        handle = _by_path.get(key)
        if handle is None:
            repo = GitRepo(path)
            handle = _by_git_dir.get((str(repo.common_dir), branch_name))
            if handle is None:
                handle = TrackingRepository(repo, branch_name)
                _by_git_dir[(str(repo.common_dir), branch_name)] = handle
            _by_path[key] = handle
        return handle


def forget_repositories() -> None:
    """Close and drop every cached handle (used between tests and by long-lived hosts)."""
    with _lock:
        for handle in {id(h): h for h in (*_by_path.values(), *_by_git_dir.values())}.values():
            handle.staging.discard_spares()
            handle.repo.close()
        _by_path.clear()
        _by_git_dir.clear()
