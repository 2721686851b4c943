"""Resolve model URIs to local model directories.

``models:/<model_id>`` URIs go to the run that logged the model (see ``logged_models``), other
``models:/`` URIs through the registry to the version's source; a ``runs:/`` source is a
directory of the run's artifacts. For a committed run that directory is a git tree, so it is
materialized once under ``$GIT_DIR/gittrack/cache/models/<tree id>`` and reused by every later
load (the id changes whenever a byte changes). A live run's artifacts, a ``dst_path`` request
and a single file are copied fresh each time. Local paths and ``file://`` URIs are used as
they are.

Loading a pickle runs code from the file. When the model was committed by someone other than the
local git user (fetched from a remote, into a remote-tracking or straight into the local branch,
or copied out of such a run with ``download_artifacts``), :func:`untrusted_pickle_notice` says
which run, commit and author it came from and offers skops, so that a user loading someone
else's model knows whose code is about to run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from gittrack.errors import InvalidInputError, NotFoundError
from gittrack.models.model_format import MLMODEL_FILE_NAME, PYFUNC_FLAVOR, read_model_config
from gittrack.registry.service import RegistryService
from gittrack.store import layout
from gittrack.store.branch import BranchSnapshot
from gittrack.tracking import logged_models, model_uris, validation
from gittrack.tracking.repository import TrackingRepository

MAX_INDIRECTIONS = 8
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model URI led: the local directory, and the run and git tree behind it."""

    uri: str
    path: Path
    run_id: str | None = None
    artifact_path: str | None = None
    tree: str | None = None


@dataclass(frozen=True)
class ArtifactOrigin:
    """The branch (local or remote-tracking) and commit that brought a run's artifacts."""

    ref: str
    commit: str
    author: str
    date: str


def resolve_model_uri(
    uri: str | os.PathLike[str],
    repository: TrackingRepository,
    dst_path: str | os.PathLike[str] | None = None,
) -> ResolvedModel:
    """The local model directory ``uri`` names (see the module docstring)."""
    text = os.fspath(uri)
    current = text
    for _ in range(MAX_INDIRECTIONS):
        model_id = model_uris.model_id_of(current)
        if model_id is not None:
            current = logged_models.find_logged_model(repository, model_id).runs_uri
            continue
        if model_uris.is_models_uri(current):
            version = RegistryService(repository).version_for_uri(
                model_uris.parse_models_uri(current)
            )
            if not version.source:
                raise NotFoundError(f"{current!r}: model version {version.version} has no source")
            current = version.source
            continue
        if model_uris.is_runs_uri(current):
            return _resolve_run_artifacts(
                text, model_uris.parse_runs_uri(current), repository, dst_path
            )
        return ResolvedModel(text, local_path(current))
    raise InvalidInputError(f"{text!r}: model sources refer to each other more than 8 times")


def _resolve_run_artifacts(
    uri: str,
    parsed: model_uris.RunsUri,
    repository: TrackingRepository,
    dst_path: str | os.PathLike[str] | None,
) -> ResolvedModel:
    run_id = validation.check_run_id(parsed.run_id)
    path = validation.check_artifact_path(parsed.path)
    runs = repository.runs
    tree = None
    if not repository.staging.exists(run_id):
        entry = repository.branch.snapshot().entry(_artifact_path_on_branch(run_id, path))
        # A run of an experiment with an artifact_location keeps its artifacts outside git.
        if entry is None and runs.external_artifacts(run_id) is None:
            runs.get(run_id)  # a missing run says so; a missing path is reported below
            raise NotFoundError(f"run {run_id} has no artifact {path!r} (from {uri!r})")
        tree = entry.sha if entry is not None and entry.is_tree else None
    if tree is not None and dst_path is None:
        cached = _cached_tree(repository, run_id, path, tree)
        return ResolvedModel(uri, cached, run_id, path, tree)
    target = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="gittrack-"))
    local = runs.download_artifacts(run_id, path, target)
    return ResolvedModel(uri, Path(local), run_id, path, tree)


def _cached_tree(repository: TrackingRepository, run_id: str, path: str, tree: str) -> Path:
    cache = repository.repo.gittrack_dir / "cache" / "models"
    final = cache / tree
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"tmp-{tree[:12]}-", dir=cache))
    try:
        local = repository.runs.download_artifacts(run_id, path, staging)
        try:
            os.rename(local, final)
        except OSError:
            if not final.is_dir():  # another process finished first otherwise
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _artifact_path_on_branch(run_id: str, path: str) -> str:
    base = f"{layout.run_dir(run_id)}/artifacts"
    return f"{base}/{path}" if path else base


def local_path(text: str) -> Path:
    if text.startswith("file:"):
        return Path(unquote(urlparse(text).path))
    if "://" in text or text.startswith(("runs:", "models:")):
        raise InvalidInputError(
            f"model URI {text!r} is not supported: use runs:/, models:/, a local path or file://"
        )
    return Path(text)


# ---------------------------------------------------------------------------- provenance


class UntrustedPickleWarning(UserWarning):
    """A pickle-based model about to be loaded was committed by someone else."""


def is_pickle_based(model_dir: Path) -> bool:
    """Whether loading the model unpickles a file (cloudpickle or pickle serialization)."""
    if not (model_dir / MLMODEL_FILE_NAME).is_file():
        return False
    config = read_model_config(model_dir)
    sklearn_conf = config.flavors.get("sklearn")
    if sklearn_conf is not None:
        return (sklearn_conf.get("serialization_format") or "pickle") in ("pickle", "cloudpickle")
    pyfunc_conf = config.flavors.get(PYFUNC_FLAVOR, {})
    if pyfunc_conf.get("python_model"):  # a cloudpickled custom PythonModel
        return True
    model_path = str(pyfunc_conf.get("model_path") or "")
    return model_path.endswith(_PICKLE_SUFFIXES)


def artifact_origin(
    repository: TrackingRepository, run_id: str, artifact_path: str, tree: str | None = None
) -> ArtifactOrigin | None:
    """The commit that last changed a run's artifact directory, and the ref it was found
    on: a remote-tracking branch, else the local tracking branch (which a branch fetched
    straight into it also leaves). With ``tree``, only a ref holding exactly that tree counts."""
    repo = repository.repo
    on_branch = _artifact_path_on_branch(run_id, artifact_path)
    for ref, commit in _tracking_refs(repository):
        entry = BranchSnapshot(repo, commit).entry(on_branch)
        if entry is None or (tree is not None and entry.sha != tree):
            continue
        log = repo.git_text("log", "-1", "--format=%H%x1f%an <%ae>%x1f%cI", commit, "--", on_branch)
        found, author, date = (log.strip().split("\x1f") + ["", "", ""])[:3]
        return ArtifactOrigin(ref.removeprefix("refs/remotes/"), found or commit, author, date)
    return None


def _tracking_refs(repository: TrackingRepository) -> list[tuple[str, str]]:
    """(ref, commit) of every remote's copy of the tracking branch, then of the local one
    (a model found on both was fetched with the remote's)."""
    branch = repository.branch
    listing = repository.repo.git_text(
        "for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/"
    )
    refs = []
    for line in listing.splitlines():
        ref, _, commit = line.partition(" ")
        if ref.endswith(f"/{branch.name}"):
            refs.append((ref, commit))
    local = repository.repo.read_ref(branch.ref)
    return refs + [(branch.ref, local)] if local else refs


def recorded_run(model_dir: Path) -> tuple[str, str] | None:
    """(run id, artifact path) the model's ``MLmodel`` records, when it was logged in a run:
    a directory copied out with ``download_artifacts`` is traced back to its run this way."""
    config = read_model_config(model_dir)
    if config.run_id is None or not layout.is_run_id(config.run_id):
        return None
    return config.run_id, config.artifact_path or ""


def untrusted_pickle_notice(
    repository: TrackingRepository,
    model_dir: Path,
    run_id: str,
    artifact_path: str,
    tree: str | None = None,
) -> str | None:
    """A warning when the pickle in ``model_dir``, logged as ``artifact_path`` of run
    ``run_id``, was committed by someone other than the local git user, naming the run, the
    commit and its author; None when the local user committed it or no commit holds it."""
    origin = artifact_origin(repository, run_id, artifact_path, tree)
    me = repository.repo.identity().email
    if origin is None or origin.author.lower().endswith(f"<{me.lower()}>"):
        return None
    via = "" if origin.ref.startswith("refs/heads/") else f", fetched with {origin.ref}"
    return (
        f"gittrack: the model in {model_dir} is a pickle from run {run_id}, committed by "
        f"{origin.author} ({origin.date}) in commit {origin.commit[:12]}{via}, not by you "
        f"({me}). Unpickling runs code from the file: load it only if you trust its author. "
        "To share models safely, save them with serialization_format='skops' (pip install "
        "skops), which loads without running code."
    )
