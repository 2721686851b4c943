"""Artifacts of runs: written into a live run (committed with it), added to an ended run in one
commit, or kept outside git when the run's experiment has an ``artifact_location`` (MLflow's
``<location>/<run_id>/artifacts`` layout); listed and downloaded from any of those places.
Files from the LFS threshold on go to Git LFS (``ArtifactBlobs``), so a run commit never
holds a large blob.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gittrack.entities import LifecycleStage
from gittrack.errors import (
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    RunEndedError,
)
from gittrack.store import layout
from gittrack.store.branch import Blob, BranchSnapshot, check_entry_name
from gittrack.store.codecs import load_yaml
from gittrack.store.files import copy_file, replace_file, storage_error
from gittrack.store.git import GitRepo
from gittrack.store.lfs import MAX_POINTER_SIZE, LfsPointer, LfsStore, parse_pointer
from gittrack.store.staging import ARTIFACTS, META
from gittrack.tracking import validation

if TYPE_CHECKING:
    from gittrack.tracking.live_runs import LiveRunStore


def _artifact_rel(artifact_path: str | None, name: str) -> str:
    """The checked path in the run's artifacts of a file ``name`` under ``artifact_path``."""
    rel = validation.check_artifact_path(artifact_path)
    return validation.check_artifact_path(f"{rel}/{name}" if rel else name)


def _prepared_target(root: Path, rel: str, run_id: str) -> Path:
    """The path of artifact ``rel`` under a run's artifact directory ``root`` (live, or
    outside git), its parent directories made; refused when it would leave ``root``
    (through a symbolic link) or clash with an artifact already there."""
    target = (root / rel).resolve()
    if root.resolve() not in target.parents:
        raise InvalidInputError(f"artifact path {rel!r} escapes the run's artifact directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConflictError(
            f"artifact {rel!r} of run {run_id} cannot be written: a part of its path is "
            "already an artifact file"
        ) from exc
    except OSError as exc:
        raise storage_error(exc, f"could not create the directory of artifact {rel!r}") from exc
    if target.is_dir():
        raise ConflictError(f"artifact {rel!r} of run {run_id} is already a directory of artifacts")
    return target


def _list_directory(root: Path, rel: str) -> list[tuple[str, bool, int | None]]:
    """(path, is_dir, size) of the entries of ``rel`` in an artifact directory on disk."""
    directory = root / rel
    if not directory.is_dir():
        return []
    return [
        (f"{rel}/{p.name}" if rel else p.name, p.is_dir(), None if p.is_dir() else p.stat().st_size)
        for p in sorted(directory.iterdir())
    ]


def _copy_from_directory(root: Path, rel: str, dst: Path, run_id: str) -> Path:
    """Copy artifact ``rel`` (a file or a directory; "" for all) from an artifact directory
    on disk into ``dst``; returns the copy's path."""
    source = root / rel
    if not source.exists():
        raise NotFoundError(f"run {run_id} has no artifact {rel!r}")
    _check_links_stay_inside(root, source, run_id)
    target = dst / (source.name if rel else "")
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, target)
    return target if rel else dst


def _check_links_stay_inside(root: Path, source: Path, run_id: str) -> None:
    """Refuse to read through a symbolic link (``source`` itself or any entry under it) that
    leads out of the artifact directory ``root``: a link placed in a shared location must not
    make another file of the machine an artifact (nor be served by the web UI).

    Raises:
        InvalidInputError: such a link, named with where it leads; checked before any copy.
    """
    inside = root.resolve()
    entries = [source, *source.rglob("*")] if source.is_dir() else [source]
    for entry in entries:
        resolved = entry.resolve()
        if resolved != inside and not resolved.is_relative_to(inside):
            name = entry.relative_to(root).as_posix()
            raise InvalidInputError(
                f"artifact {name!r} of run {run_id} is a link to {str(resolved)!r}, outside "
                f"the run's artifact directory {str(root)!r}; only files inside it are read"
            )


def check_artifact_slot(snap: BranchSnapshot, run_id: str, rel: str) -> None:
    """Refuse an artifact of a committed run whose path is a directory of artifacts, or
    runs through an artifact file (the same rules as for a live run).

    Raises:
        ConflictError: the path ``rel`` clashes with an artifact already in ``snap``.
    """
    base = f"{layout.run_dir(run_id)}/{ARTIFACTS}"
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        entry = snap.entry(f"{base}/{'/'.join(parts[:depth])}")
        if entry is None:
            return
        if not entry.is_tree:
            raise ConflictError(
                f"artifact {rel!r} of run {run_id} cannot be written: a part of its path is "
                "already an artifact file"
            )
    entry = snap.entry(f"{base}/{rel}")
    if entry is not None and entry.is_tree:
        raise ConflictError(f"artifact {rel!r} of run {run_id} is already a directory of artifacts")


class ArtifactBlobs:
    """The blobs of artifact files as a run commit stores them: their bytes, or from the LFS
    threshold on (and for a small file that reads as a pointer) an LFS pointer."""

    def __init__(self, repo: GitRepo, lfs_threshold: Callable[[], int]) -> None:
        """:param lfs_threshold: the size from which an artifact goes to Git LFS (read from
        the configuration when a run with artifacts is committed)."""
        self.lfs = LfsStore(repo.common_dir)
        self._lfs_threshold = lfs_threshold

    def add_directory(self, artifacts: Path, base: str, changes: dict[str, Blob]) -> None:
        """Blobs for a live run's artifact files. A file at or over the LFS threshold is
        stored in the LFS object store, streamed, and its pointer goes on the branch; so is a
        small file that reads as a pointer, so that every pointer on the branch is ours."""
        threshold = self._lfs_threshold()
        for path in sorted(artifacts.rglob("*")):
            rel = path.relative_to(artifacts).as_posix()
            blob = self._artifact_blob(path, rel, threshold)
            if blob is not None:
                changes[f"{base}/{rel}"] = blob

    def _artifact_blob(self, path: Path, rel: str, threshold: int) -> Blob | None:
        """The blob of one artifact file (None when ``path`` is not a regular file, e.g. a
        dangling link): its bytes, or its LFS pointer from ``threshold`` bytes on (see
        ``add_directory``)."""
        try:
            info = path.stat()
        except FileNotFoundError:  # a dangling link is no file, as before
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        size = info.st_size
        mode = "100755" if os.access(path, os.X_OK) else "100644"
        try:
            data = path.read_bytes() if size < threshold else None
        except OSError as exc:
            raise storage_error(exc, f"could not read artifact file {path}") from exc
        if data is None or (size < MAX_POINTER_SIZE and parse_pointer(data)):
            data = self._store_in_lfs(path, rel)
        return Blob(data, mode)

    def file_blobs(self, files: dict[str, Path]) -> dict[str, Blob]:
        """Blobs of local files logged to an ended run, by the rules of a live run's commit
        (large ones in Git LFS); made before the commit, which may be rebuilt."""
        threshold = self._lfs_threshold()
        blobs = {}
        for rel, path in files.items():
            blob = self._artifact_blob(path, rel, threshold)
            if blob is None:
                raise NotFoundError(f"artifact file {str(path)!r} is not a regular file")
            blobs[rel] = blob
        return blobs

    def bytes_blob(self, rel: str, data: bytes) -> Blob:
        """``file_blobs`` for bytes (``log_text``, ``log_dict``, figures)."""
        if len(data) < self._lfs_threshold() and not (
            len(data) < MAX_POINTER_SIZE and parse_pointer(data)
        ):
            return Blob(data)
        with tempfile.TemporaryDirectory(prefix="gittrack-") as scratch:
            path = Path(scratch) / "artifact"
            path.write_bytes(data)
            return Blob(self._store_in_lfs(path, rel))

    def _store_in_lfs(self, path: Path, rel: str) -> bytes:
        """The pointer file of an artifact put in the LFS store (before any ref lock)."""
        try:
            return self.lfs.store(path).encode()
        except OSError as exc:
            raise storage_error(
                exc, f"could not store artifact {rel!r} in the Git LFS store {self.lfs.root}"
            ) from exc


class RunArtifacts:
    """The artifact operations of the runs of one tracking repository."""

    def __init__(self, runs: LiveRunStore, blobs: ArtifactBlobs) -> None:
        """:param runs: the runs the artifacts belong to; ``blobs``: their blob maker."""
        self.runs = runs
        self.blobs = blobs

    def artifact_target(self, run_id: str, artifact_path: str | None, name: str) -> Path:
        """Where a file named ``name`` logged under ``artifact_path`` goes: in the run's
        directory outside git when its experiment has an ``artifact_location``, else in the
        live run (``RunEndedError`` when the run is committed: see ``write_artifact``)."""
        rel = _artifact_rel(artifact_path, name)
        external = self.external_artifacts(run_id, writing=True)
        if external is not None:
            return _prepared_target(external, rel, run_id)
        opened = self.runs.writable(run_id)
        return _prepared_target(opened.live.artifacts_dir, rel, run_id)

    def external_artifacts(self, run_id: str, writing: bool = False) -> Path | None:
        """The directory outside git that holds the run's artifacts (its experiment has an
        ``artifact_location``), or None when they are in the run itself.

        Raises:
            NotFoundError: there is no such run.
            InvalidStateError: ``writing`` to a deleted run, or under a location this clone
                does not trust (``tracking/artifact_roots.py``).
            CorruptDataError: the run's ``artifact_uri`` is not ``<root>/<run_id>/artifacts``
                outside the repository.
        """
        meta = self._run_meta(run_id)
        uri = meta.get("artifact_uri")
        if uri is None:
            return None
        if writing and meta.get("lifecycle") == LifecycleStage.DELETED:
            raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
        return self.runs.artifact_roots.run_directory(uri, run_id, writing)

    def _run_meta(self, run_id: str) -> dict:
        """The run's ``meta.yaml`` as it is now: live (this process's or another's) or
        committed."""
        validation.check_run_id(run_id)
        opened = self.runs.live_handle(run_id)
        if opened is not None:
            return opened.meta
        if self.runs.staging.exists(run_id):
            live = self.runs.staging.open(run_id)
            return load_yaml(live.read(META) or b"", f"{live.path}/{META}")
        return self.runs.committed_meta(run_id, self.runs.branch.snapshot())

    def _write_external(self, run_id: str, root: Path, files: dict[str, Path | bytes]) -> None:
        """Write artifact files (a file to copy, or bytes) into a run's directory outside
        git, each whole or not at all; nothing is committed."""
        targets = {rel: _prepared_target(root, rel, run_id) for rel in files}
        for rel, content in files.items():
            try:
                if isinstance(content, bytes):
                    replace_file(targets[rel], content)
                else:
                    copy_file(content, targets[rel])
            except OSError as exc:
                raise storage_error(
                    exc, f"could not write {rel} into the artifacts of run {run_id} at {root}"
                ) from exc

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise NotFoundError(f"artifact file {str(source)!r} does not exist or is not a file")
        external = self.external_artifacts(run_id, writing=True)
        if external is not None:
            self._write_external(
                run_id, external, {_artifact_rel(artifact_path, source.name): source}
            )
            return
        try:
            with self._adding_files(run_id):
                self._copy_artifact(
                    run_id, source, self.artifact_target(run_id, artifact_path, source.name)
                )
        except RunEndedError:
            rel = _artifact_rel(artifact_path, source.name)
            self.runs.log_to_ended(run_id, artifacts=self.blobs.file_blobs({rel: source}))

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_dir)
        if not source.is_dir():
            raise NotFoundError(f"artifact directory {str(source)!r} does not exist")
        base = validation.check_artifact_path(artifact_path)
        files = {}  # every name is checked before the first copy: a refused one leaves no part
        for path in sorted(source.rglob("*")):
            if path.is_file():
                rel = path.relative_to(source).as_posix()
                parent, _, name = (f"{base}/{rel}" if base else rel).rpartition("/")
                files[_artifact_rel(parent or None, name)] = path
        external = self.external_artifacts(run_id, writing=True)
        if external is not None:
            self._write_external(run_id, external, dict(files))
            return
        try:
            with self._adding_files(run_id):
                for rel, path in files.items():
                    parent, _, name = rel.rpartition("/")
                    self._copy_artifact(
                        run_id, path, self.artifact_target(run_id, parent or None, name)
                    )
        except RunEndedError:  # all in one commit (files copied before are the same)
            self.runs.log_to_ended(run_id, artifacts=self.blobs.file_blobs(files))

    def _adding_files(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Keep the run live while artifacts are added (see ``LiveRun.adding_files``)."""
        return self.runs.writable(run_id).live.adding_files()

    def _copy_artifact(self, run_id: str, source: Path, target: Path) -> None:
        """Copy a file into a live run whole or not at all: a full disk leaves no part, and
        the copy is made outside ``artifacts/``, so a crash leaves nothing to commit."""
        try:
            copy_file(source, target, self.runs.opened(run_id).live.location)
        except OSError as exc:
            raise storage_error(
                exc, f"could not copy {source} into the artifacts of run {run_id}; none was"
            ) from exc

    def write_artifact(self, run_id: str, artifact_file: str, data: bytes) -> None:
        parent, _, name = validation.check_artifact_path(artifact_file).rpartition("/")
        if not name:
            raise InvalidInputError(f"artifact file {artifact_file!r} must name a file")
        external = self.external_artifacts(run_id, writing=True)
        if external is not None:
            self._write_external(run_id, external, {_artifact_rel(parent or None, name): data})
            return
        try:
            with self._adding_files(run_id):
                target = self.artifact_target(run_id, parent or None, name)
                try:
                    replace_file(target, data, scratch=self.runs.opened(run_id).live.location)
                except OSError as exc:
                    raise storage_error(
                        exc, f"could not write {artifact_file} into the artifacts of run {run_id}"
                    ) from exc
        except RunEndedError:
            rel = _artifact_rel(parent or None, name)
            self.runs.log_to_ended(run_id, artifacts={rel: self.blobs.bytes_blob(rel, data)})

    def list_artifacts(
        self, run_id: str, path: str | None = None
    ) -> list[tuple[str, bool, int | None]]:
        """(path, is_dir, size) of the direct children of ``path`` in the run's artifacts."""
        rel = validation.check_artifact_path(path)
        external = self.external_artifacts(run_id)
        if external is not None:
            return _list_directory(external, rel)
        if self.runs.is_live(run_id):
            return _list_directory(self.runs.staging.open(run_id).artifacts_dir, rel)
        snap = self.runs.branch.snapshot()
        base = f"{layout.run_dir(run_id)}/{ARTIFACTS}" + (f"/{rel}" if rel else "")
        self.runs.committed_meta(run_id, snap)
        out = []
        for entry in snap.listdir(base):
            check_entry_name(base, entry.name)
            size = None if entry.is_tree else self._stored_size(entry.sha)
            out.append((f"{rel}/{entry.name}" if rel else entry.name, entry.is_tree, size))
        return out

    def _stored_size(self, sha: str) -> int:
        """The size of a committed artifact: its content's, when the blob is an LFS pointer."""
        data, pointer = self._stored_artifact(sha)
        return pointer.size if pointer is not None else len(data)

    def _stored_artifact(self, sha: str) -> tuple[bytes, LfsPointer | None]:
        """A committed artifact's blob and, when it is an LFS pointer, what it points to."""
        data = self.runs.repo.read_blob(sha)
        return data, parse_pointer(data) if len(data) < MAX_POINTER_SIZE else None

    def download_artifacts(self, run_id: str, path: str | None, dst: Path) -> Path:
        rel = validation.check_artifact_path(path)
        external = self.external_artifacts(run_id)
        dst.mkdir(parents=True, exist_ok=True)
        if external is not None:
            return _copy_from_directory(external, rel, dst, run_id)
        if self.runs.is_live(run_id):
            return _copy_from_directory(
                self.runs.staging.open(run_id).artifacts_dir, rel, dst, run_id
            )
        snap = self.runs.branch.snapshot()
        self.runs.committed_meta(run_id, snap)
        base = f"{layout.run_dir(run_id)}/{ARTIFACTS}" + (f"/{rel}" if rel else "")
        entry = snap.entry(base)
        if entry is None:
            raise NotFoundError(f"run {run_id} has no artifact {rel!r}")
        if not entry.is_tree:
            target = dst / rel.rpartition("/")[2]
            self._copy_out(run_id, rel, entry.sha, target)
            return target
        target = dst / rel.rpartition("/")[2] if rel else dst
        files = list(snap.walk(base))  # an unsafe entry name raises before anything is written
        for sub, blob in files:  # and so does a missing LFS object
            _data, pointer = self._stored_artifact(blob.sha)
            if pointer is not None:
                self.blobs.lfs.check_present(
                    pointer, self._what(run_id, rel, sub), self._fetch_hint
                )
        for sub, blob in files:
            out = target / sub
            out.parent.mkdir(parents=True, exist_ok=True)
            self._copy_out(run_id, f"{rel}/{sub}" if rel else sub, blob.sha, out)
        return target

    def _copy_out(self, run_id: str, rel: str, sha: str, target: Path) -> None:
        """Write a committed artifact to ``target``; LFS content is copied in chunks."""
        data, pointer = self._stored_artifact(sha)
        if pointer is None:
            target.write_bytes(data)
        else:
            self.blobs.lfs.copy_out(pointer, target, self._what(run_id, rel), self._fetch_hint)

    @staticmethod
    def _what(run_id: str, rel: str, sub: str = "") -> str:
        path = "/".join(p for p in (rel, sub) if p)
        return f"artifact {path!r} of run {run_id}"

    def _fetch_hint(self) -> str:
        """The command that fetches missing LFS content: from ``origin``, or the only remote."""
        remotes = self.runs.repo.git_text("remote").split()
        if "origin" in remotes or not remotes:
            remote = "origin"
        else:
            remote = remotes[0] if len(remotes) == 1 else "<remote>"
        return f"git lfs fetch {remote} {self.runs.branch.name}"
