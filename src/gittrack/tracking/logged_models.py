"""Find a logged model by its id: what ``models:/<model_id>`` resolves through.

MLflow 3 stores each logged model as its own entity with an id (``m-`` and 32 hex digits).
gittrack keeps models in their run's artifacts, as MLflow 2 did, and records the id in the
model's ``MLmodel`` (``model_id: m-...``), so the id is found by searching the ``MLmodel``
files: of live runs on disk, and of committed runs with one ``git grep`` over the tracking
branch (no checkout, no index). A model id names one model in one run for ever, so no
separate index has to be kept up to date.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from gittrack.errors import GittrackError, InvalidInputError, NotFoundError, warn_skipped
from gittrack.store import layout
from gittrack.store.layout import MLMODEL_FILE_NAME
from gittrack.tracking.model_uris import MODEL_ID_PATTERN
from gittrack.tracking.repository import TrackingRepository

_ARTIFACTS = "/artifacts/"


@dataclass(frozen=True)
class LoggedModelLocation:
    """Where a logged model lives: its run and its path in the run's artifacts."""

    model_id: str
    run_id: str
    artifact_path: str

    @property
    def runs_uri(self) -> str:
        """``runs:/<run_id>/<artifact_path>``, the URI every gittrack loader takes."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


def find_logged_model(repository: TrackingRepository, model_id: str) -> LoggedModelLocation:
    """The run and artifact path of the model whose ``MLmodel`` records ``model_id``.

    Args:
        repository: the tracking repository to search (live runs, then the branch).
        model_id: an id as ``log_model`` returns it (``m-`` and 32 hex digits).

    Returns:
        The model's location.

    Raises:
        InvalidInputError: ``model_id`` is not of the form ``m-<32 hex digits>``.
        NotFoundError: no logged model has that id.
    """
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidInputError(
            f"{model_id!r} is not a model id: ids are 'm-' and 32 hex digits, as log_model "
            "returns them in ModelInfo.model_id"
        )
    found = _find_in_live_runs(repository, model_id) or _find_on_branch(repository, model_id)
    if found is None:
        raise NotFoundError(
            f"no logged model has id {model_id!r}: no MLmodel of a live or committed run in "
            f"{repository.repo.path} records it"
        )
    return found


def model_id_at(repository: TrackingRepository, run_id: str, artifact_path: str) -> str | None:
    """The ``model_id`` the ``MLmodel`` at ``artifact_path`` of a run records, else None.

    None also when there is no such file or it cannot be read: a version registered from
    anything but a gittrack-logged model simply has no model id. The file is read as
    ``find_logged_model`` reads it (its ``model_id`` field), not validated as a whole model.
    """
    rel = f"{artifact_path.strip('/')}/{MLMODEL_FILE_NAME}".lstrip("/")
    try:
        with tempfile.TemporaryDirectory(prefix="gittrack-mlmodel-") as scratch:
            local = repository.runs.download_artifacts(run_id, rel, Path(scratch))
            data = yaml.safe_load(local.read_bytes())
    except (GittrackError, OSError, yaml.YAMLError):
        return None
    model_id = data.get("model_id") if isinstance(data, dict) else None
    return model_id if isinstance(model_id, str) else None


def _find_in_live_runs(repository: TrackingRepository, model_id: str) -> LoggedModelLocation | None:
    staging = repository.staging
    for run_id in staging.run_ids():
        try:
            artifacts = staging.open(run_id).artifacts_dir
            found = _find_in_directory(artifacts, model_id)
        except (NotFoundError, OSError):  # not a run, or committed while it was read
            continue
        if found is not None:
            return LoggedModelLocation(model_id, run_id, found)
    return None


def _find_in_directory(artifacts: Path, model_id: str) -> str | None:
    """The artifact path of the model recording ``model_id`` under ``artifacts``, else None."""
    for mlmodel in sorted(artifacts.rglob(MLMODEL_FILE_NAME)):
        if _records_id(mlmodel.read_bytes(), model_id, mlmodel):
            return mlmodel.parent.relative_to(artifacts).as_posix()
    return None


def _find_on_branch(repository: TrackingRepository, model_id: str) -> LoggedModelLocation | None:
    commit = repository.repo.read_ref(repository.branch.ref)
    if commit is None:
        return None
    proc = repository.repo.git(
        "grep",
        "-l",
        "-e",
        f"^model_id: {model_id}$",  # the id is hex digits and a dash: nothing to escape
        commit,
        "--",
        f"{layout.RUNS_DIR}/*/{MLMODEL_FILE_NAME}",
        check=False,
    )
    snapshot = repository.branch.snapshot(commit)
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        path = line.partition(":")[2]
        location = _location_from_path(model_id, path)
        entry = snapshot.entry(path)
        if location is None or entry is None:
            continue
        if _records_id(repository.repo.read_blob(entry.sha), model_id, f"{commit[:12]}:{path}"):
            return location
    return None


def _location_from_path(model_id: str, path: str) -> LoggedModelLocation | None:
    run_part, sep, rest = path.partition(_ARTIFACTS)
    if not sep or not rest.endswith(MLMODEL_FILE_NAME):
        return None
    run_id = run_part.rpartition("/")[2]
    artifact_path = rest[: -len(MLMODEL_FILE_NAME)].rstrip("/")
    return LoggedModelLocation(model_id, run_id, artifact_path)


def _records_id(text: bytes, model_id: str, where: str | Path) -> bool:
    """Whether an ``MLmodel``'s ``model_id`` is ``model_id``; one that is not YAML is skipped."""
    if model_id.encode() not in text:
        return False
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        warn_skipped(f"{where}: not valid YAML, skipped while looking for {model_id}: {exc}")
        return False
    return isinstance(data, dict) and data.get("model_id") == model_id
