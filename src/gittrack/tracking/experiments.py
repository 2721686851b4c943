"""Experiments: one YAML file each under ``.tracking/experiments/`` (DESIGN §3).

Ids other than the Default experiment's ``"0"`` are derived from the name (the first 16 hex
digits of its SHA-256), so two clones creating the same experiment offline converge on one id.
A rename keeps the id; a new experiment whose derived id is held by a renamed one takes the
next derivation.
"""

from __future__ import annotations

import hashlib

from gittrack.entities import Experiment, LifecycleStage, ViewType
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
    warn_skipped,
)
from gittrack.store import layout
from gittrack.store.branch import Blob, BranchSnapshot, Changes, TrackingBranch
from gittrack.store.codecs import dump_yaml, format_time, load_yaml, parse_time
from gittrack.store.commits import message_field
from gittrack.store.schemas import check_outgoing, check_stored
from gittrack.tracking import validation
from gittrack.utils import clock


def derive_experiment_id(name: str, attempt: int = 0) -> str:
    seed = name if attempt == 0 else f"{name}\0{attempt}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def experiment_document(experiment: Experiment) -> dict:
    return {
        "name": experiment.name,
        "experiment_id": experiment.experiment_id,
        "lifecycle": experiment.lifecycle_stage,
        "creation_time": format_time(experiment.creation_time),
        "last_update_time": format_time(experiment.last_update_time),
        "tags": dict(experiment.tags),
    }


def default_experiment_document(now_ms: int) -> dict:
    return experiment_document(
        Experiment(
            experiment_id=layout.DEFAULT_EXPERIMENT_ID,
            name=layout.DEFAULT_EXPERIMENT_NAME,
            artifact_location="",
            creation_time=now_ms,
            last_update_time=now_ms,
        )
    )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"experiment name {name!r} must be a non-empty string")
    return validation.check_name(name, "experiment name", validation.MAX_EXPERIMENT_NAME_LENGTH)


class ExperimentStore:
    """Reads and writes experiments on the tracking branch."""

    def __init__(self, branch: TrackingBranch, artifact_root: str) -> None:
        self.branch = branch
        self.artifact_root = artifact_root
        self._parsed: dict[tuple[str, str], Experiment] = {}  # by (file name, blob id)
        # The last directory read: its experiments, and its unreadable files (name -> why).
        self._by_tree: dict[str, tuple[tuple[Experiment, ...], dict[str, str]]] = {}

    # ------------------------------------------------------------------ reads
    def all(self, snap: BranchSnapshot | None = None) -> list[Experiment]:
        """Every readable experiment; an unreadable file is skipped with a warning naming it
        (``get`` of its id raises)."""
        found, unreadable = self._read_all(snap or self.branch.snapshot())
        for message in unreadable.values():
            warn_skipped(message)
        return list(found)

    def _read_all(self, snap: BranchSnapshot) -> tuple[tuple[Experiment, ...], dict[str, str]]:
        directory = snap.entry(layout.EXPERIMENTS_DIR)
        if directory is None or not directory.is_tree:
            return (), {}
        known = self._by_tree.get(directory.sha)
        if known is not None:  # unchanged since it was last read: most commits are runs
            return known
        found = []
        unreadable: dict[str, str] = {}
        for entry in snap.repo.read_tree(directory.sha):
            if entry.is_tree or not entry.name.endswith(".yaml"):
                continue
            cached = self._parsed.get((entry.name, entry.sha))
            if cached is None:
                where = f"{layout.EXPERIMENTS_DIR}/{entry.name}"
                try:
                    cached = self._from_document(
                        load_yaml(snap.repo.read_blob(entry.sha), where), where
                    )
                except CorruptDataError as exc:
                    unreadable[entry.name] = exc.message
                    continue
                self._parsed[(entry.name, entry.sha)] = cached
            found.append(cached)
        self._by_tree = {directory.sha: (tuple(found), unreadable)}
        return self._by_tree[directory.sha]

    def _from_document(self, doc: dict, where: str) -> Experiment:
        check_stored(doc, "experiment", where)
        if where.rpartition("/")[2] != f"{doc['experiment_id']}.yaml":
            raise CorruptDataError(
                f"{where}: experiment_id {doc['experiment_id']!r} does not match its file name"
            )
        return Experiment(
            experiment_id=doc["experiment_id"],
            name=doc["name"],
            artifact_location=doc.get("artifact_location")
            or self._default_location(doc["experiment_id"]),
            lifecycle_stage=doc["lifecycle"],
            tags=dict(doc.get("tags") or {}),
            creation_time=parse_time(doc.get("creation_time")),
            last_update_time=parse_time(doc.get("last_update_time")),
        )

    def get(self, experiment_id: str, snap: BranchSnapshot | None = None) -> Experiment:
        experiment_id = str(experiment_id)
        found, unreadable = self._read_all(snap or self.branch.snapshot())
        for experiment in found:
            if experiment.experiment_id == experiment_id:
                return experiment
        problem = unreadable.get(f"{experiment_id}.yaml")
        if problem is not None:
            raise CorruptDataError(problem)
        raise NotFoundError(f"no experiment with id {experiment_id!r}")

    def find_by_name(self, name: str, snap: BranchSnapshot | None = None) -> Experiment | None:
        for experiment in self.all(snap):
            if experiment.name == name:
                return experiment
        return None

    def search(self, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        return [
            e for e in self.all() if LifecycleStage.matches_view_type(view_type, e.lifecycle_stage)
        ]

    # ----------------------------------------------------------------- writes
    def create(
        self,
        name: str,
        tags: dict[str, str] | None = None,
        exist_ok: bool = False,
        artifact_location: str | None = None,
    ) -> str:
        """Create an experiment; with ``exist_ok`` an active one of that name is returned
        instead (atomically, so concurrent ``set_experiment`` calls agree on one).
        ``artifact_location``: as ``validation.check_artifact_location`` returned it."""
        name = _check_name(name)
        checked_tags = validation.check_tags(tags, "experiment tag")
        now = clock.now_ms()
        created: list[str] = []

        def build(snap: BranchSnapshot) -> Changes:
            existing, unreadable = self._read_all(snap)
            for experiment in existing:
                if (
                    experiment.name == name
                    and exist_ok
                    and (experiment.lifecycle_stage == LifecycleStage.ACTIVE)
                ):
                    created[:] = [experiment.experiment_id]
                    return {}
                if experiment.name == name:
                    state = (
                        " (deleted: restore it or pick another name)"
                        if (experiment.lifecycle_stage == LifecycleStage.DELETED)
                        else ""
                    )
                    raise ConflictError(
                        f"experiment {name!r} already exists with id {experiment.experiment_id}{state}"
                    )
            # An unreadable file keeps its id: a new experiment never overwrites it.
            taken = {e.experiment_id for e in existing}
            taken.update(file_name.removesuffix(".yaml") for file_name in unreadable)
            attempt = 0
            while (experiment_id := derive_experiment_id(name, attempt)) in taken:
                attempt += 1
            created[:] = [experiment_id]
            # Later than every experiment already there (the Default one may share this
            # millisecond), so creation_time DESC lists experiments newest first, as MLflow.
            created_at = max([now, *(e.creation_time + 1 for e in existing if e.creation_time)])
            experiment = Experiment(
                experiment_id,
                name,
                artifact_location or "",
                creation_time=created_at,
                last_update_time=created_at,
                tags=checked_tags,
            )
            return {layout.experiment_path(experiment_id): self._blob(experiment)}

        self.branch.commit(build, f"Create experiment {message_field(name)}\n")
        return created[0]

    def _default_location(self, experiment_id: str) -> str:
        return f"{self.artifact_root}/{experiment_id}"

    def external_location(self, experiment: Experiment) -> str | None:
        """The directory outside git where the artifacts of the experiment's runs go (its
        ``artifact_location`` given at creation), or None: in the runs, on the branch."""
        location = experiment.artifact_location
        if not location or location == self._default_location(experiment.experiment_id):
            return None
        return location

    def _blob(self, experiment: Experiment) -> Blob:
        doc = experiment_document(experiment)
        location = self.external_location(experiment)
        if location is not None:
            doc["artifact_location"] = location
        check_outgoing(doc, "experiment", layout.experiment_path(experiment.experiment_id))
        return Blob(dump_yaml(doc))

    def _update(self, experiment_id: str, change, message: str) -> None:
        def build(snap: BranchSnapshot) -> Changes:
            current = self.get(experiment_id, snap)
            updated = change(current, snap)
            updated.last_update_time = clock.now_ms()
            return {layout.experiment_path(experiment_id): self._blob(updated)}

        self.branch.commit(build, message)

    def rename(self, experiment_id: str, new_name: str) -> None:
        new_name = _check_name(new_name)

        def change(current: Experiment, snap: BranchSnapshot) -> Experiment:
            clash = self.find_by_name(new_name, snap)
            if clash is not None and clash.experiment_id != current.experiment_id:
                raise ConflictError(
                    f"experiment {new_name!r} already exists with id {clash.experiment_id}"
                )
            return _copy(current, name=new_name)

        self._update(
            str(experiment_id),
            change,
            f"Rename experiment {experiment_id} to {message_field(new_name)}\n",
        )

    def set_lifecycle(self, experiment_id: str, lifecycle: str) -> None:
        if (
            str(experiment_id) == layout.DEFAULT_EXPERIMENT_ID
            and lifecycle == LifecycleStage.DELETED
        ):
            raise InvalidInputError("the Default experiment (id 0) cannot be deleted")
        verb = "Delete" if lifecycle == LifecycleStage.DELETED else "Restore"
        self._update(
            str(experiment_id),
            lambda current, _snap: _copy(current, lifecycle_stage=lifecycle),
            f"{verb} experiment {experiment_id}\n",
        )

    def set_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        def change(current: Experiment, _snap: BranchSnapshot) -> Experiment:
            tags = dict(current.tags)
            if value is None:
                if key not in tags:
                    raise NotFoundError(f"experiment {experiment_id} has no tag {key!r}")
                del tags[key]
            else:
                tags[key] = value
            return _copy(current, tags=tags)

        self._update(str(experiment_id), change, f"Tag experiment {experiment_id}: {key}\n")


def _copy(experiment: Experiment, **changes) -> Experiment:
    values = {**experiment.__dict__, **changes}
    return Experiment(**values)
