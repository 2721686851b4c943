"""The run store of a tracking repository: one object for ``TrackingRepository.runs``.

The work is split by job: live runs and committed runs' documents in ``tracking.live_runs``
(``LiveRunStore``, which ``RunStore`` extends), artifacts in ``tracking.artifacts``
(``RunArtifacts``) and the recovery of orphaned live runs in ``tracking.recovery``
(``OrphanRecovery``). This module only wires them together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gittrack.store import lfs
from gittrack.store.branch import TrackingBranch
from gittrack.store.staging import Staging
from gittrack.tracking.artifacts import ArtifactBlobs, RunArtifacts
from gittrack.tracking.live_runs import LiveRunStore
from gittrack.tracking.recovery import OrphanRecovery, RecoveredRun


class RunStore(LiveRunStore):
    """All run operations of one tracking repository: those of ``LiveRunStore``, plus the
    artifact operations of ``artifacts`` and ``recover_orphans`` of ``recovery``."""

    def __init__(
        self,
        branch: TrackingBranch,
        staging: Staging,
        lfs_threshold: Callable[[], int] = lambda: lfs.DEFAULT_THRESHOLD,
    ) -> None:
        """:param lfs_threshold: the size from which an artifact goes to Git LFS (read from
        the configuration when a run with artifacts is committed)."""
        blobs = ArtifactBlobs(branch.repo, lfs_threshold)
        super().__init__(branch, staging, blobs)
        self.artifacts = RunArtifacts(self, blobs)
        self.recovery = OrphanRecovery(self)

    def artifact_target(self, run_id: str, artifact_path: str | None, name: str) -> Path:
        """See ``RunArtifacts.artifact_target``."""
        return self.artifacts.artifact_target(run_id, artifact_path, name)

    def external_artifacts(self, run_id: str, writing: bool = False) -> Path | None:
        """See ``RunArtifacts.external_artifacts``."""
        return self.artifacts.external_artifacts(run_id, writing)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """See ``RunArtifacts.log_artifact``."""
        self.artifacts.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """See ``RunArtifacts.log_artifacts``."""
        self.artifacts.log_artifacts(run_id, local_dir, artifact_path)

    def write_artifact(self, run_id: str, artifact_file: str, data: bytes) -> None:
        """See ``RunArtifacts.write_artifact``."""
        self.artifacts.write_artifact(run_id, artifact_file, data)

    def list_artifacts(
        self, run_id: str, path: str | None = None
    ) -> list[tuple[str, bool, int | None]]:
        """See ``RunArtifacts.list_artifacts``."""
        return self.artifacts.list_artifacts(run_id, path)

    def download_artifacts(self, run_id: str, path: str | None, dst: Path) -> Path:
        """See ``RunArtifacts.download_artifacts``."""
        return self.artifacts.download_artifacts(run_id, path, dst)

    def recover_orphans(self) -> list[RecoveredRun]:
        """See ``OrphanRecovery.recover_orphans``."""
        return self.recovery.recover_orphans()
