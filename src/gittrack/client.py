"""``Client``: the explicit API, one method per operation, shaped like MLflow's MlflowClient."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gittrack.entities import (
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunOperations,
    RunStatus,
    RunTag,
    ViewType,
)
from gittrack.errors import InvalidInputError, NotFoundError, RunEndedError
from gittrack.store.codecs import dump_yaml
from gittrack.tracking import validation
from gittrack.tracking.repository import TrackingRepository, open_repository
from gittrack.tracking.runs import RecoveredRun, check_new_run
from gittrack.tracking.source import default_entry_point

if TYPE_CHECKING:
    from gittrack.registry.policy import Violation as PolicyViolation
    from gittrack.registry.service import RegistryService
    from gittrack.registry.state import Event as RegistryEvent


def run_operations(synchronous: bool | None) -> RunOperations | None:
    """What a logging call returns for ``synchronous`` (MLflow's rule: ``RunOperations`` when
    asynchronous). The data is stored before the call returns either way."""
    return RunOperations() if synchronous is False else None


class Client:
    """Talks to one tracking repository (the one containing the working directory by default)."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._repository: TrackingRepository | None = None

    @property
    def repository(self) -> TrackingRepository:
        if self._repository is None:
            self._repository = open_repository(self._tracking_uri)
        return self._repository

    @property
    def tracking_uri(self) -> str:
        return str(self.repository.path)

    # ------------------------------------------------------------ experiments
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        """Create an experiment; returns its id.

        ``artifact_location`` is checked before anything is written: a remote store's URI
        is refused. A local path or ``file://`` URI is not honoured yet (the runs' artifacts
        stay in the runs on the tracking branch), which a warning says rather than ignoring
        it silently.
        """
        location = validation.check_artifact_location(artifact_location)
        experiment_id = self.repository.experiments.create(name, tags)
        if location is not None:
            warnings.warn(
                f"artifact_location {location!r} of experiment {name!r} is not honoured: "
                "gittrack stores the artifacts of its runs in the runs, on the tracking branch",
                UserWarning,
                stacklevel=2,
            )
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.repository.experiments.get(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.repository.experiments.find_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> list[Experiment]:
        """Experiments matching ``filter_string``, in ``order_by`` order, one page at a time.

        Args:
            view_type: active, deleted or all experiments.
            max_results: the page size; ``None`` returns every match.
            filter_string: the filter language of ``search_runs`` over ``name``,
                ``experiment_id``, ``creation_time``, ``last_update_time`` and ``tags.<key>``.
            order_by: clauses such as ``"name ASC"``; MLflow's default order otherwise.
            page_token: the ``token`` of the previous page, or ``None`` for the first.

        Returns:
            A ``PagedList`` of ``Experiment``; its ``token`` names the next page.

        Raises:
            InvalidInputError: a bad filter, order, page size or page token.
        """
        from gittrack.query.experiments import search_experiments
        from gittrack.query.paging import page_of

        found = search_experiments(
            self.repository.experiments.search(view_type), filter_string, order_by
        )
        return page_of(found, max_results, page_token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.repository.experiments.rename(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.repository.experiments.set_lifecycle(str(experiment_id), LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self.repository.experiments.set_lifecycle(str(experiment_id), LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        validation.check_key(key, "experiment tag")
        value = validation.check_string_value(value, "experiment tag", key)
        self.repository.experiments.set_tag(str(experiment_id), key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.repository.experiments.set_tag(str(experiment_id), key, None)

    # ------------------------------------------------------------------ runs
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        parent_run_id: str | None = None,
        description: str | None = None,
    ) -> Run:
        tags, run_name, start_time = check_new_run(tags, run_name, start_time, description)
        repository = self.repository
        snap = repository.branch.snapshot()
        if snap.commit is None:
            repository.init()
            snap = repository.branch.snapshot()
        experiment = repository.experiments.get(str(experiment_id), snap)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidInputError(
                f"experiment {experiment.name!r} ({experiment.experiment_id}) is deleted; "
                "restore it before starting runs in it"
            )
        if parent_run_id is not None:
            self.get_run(parent_run_id)
        capture = repository.source_capture()
        source = capture.capture(
            default_entry_point(capture.repo.work_tree if capture.repo else None)
        )
        return repository.runs.create(
            experiment.experiment_id,
            run_name=run_name,
            start_time=start_time,
            tags=tags,
            parent_run_id=parent_run_id,
            source=source,
            description=description,
            same_repo_source=repository.shares_objects_with(capture.repo),
        )

    def resume_run(self, run_id: str) -> Run:
        return self.repository.runs.resume(run_id)

    def get_run(self, run_id: str) -> Run:
        return self.repository.runs.get(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """A new status and/or name for a live or ended run, as MLflow's: the end time is
        kept, and the name is ``info.run_name`` and the ``mlflow.runName`` tag together. A
        status that is not one of MLflow's is refused before anything changes."""
        if status is not None:
            validation.check_run_status(status)
        if status is None and name is None:
            return
        self.repository.runs.update(run_id, status, name)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a live run (it is committed), or set the status and end time (default: now)
        of an ended one, as MLflow does."""
        self.repository.runs.end(run_id, status or RunStatus.FINISHED, end_time)

    def delete_run(self, run_id: str) -> None:
        self.repository.runs.set_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self.repository.runs.set_lifecycle(run_id, LifecycleStage.ACTIVE)

    def recover(self) -> list[RecoveredRun]:
        """Remove the locks a crashed writer left on the tracking branch or a registry tag,
        and commit live runs whose process died (status KILLED).

        Returns one ``RecoveredRun(run_id, note, committed)`` per orphan found: ``note`` is
        a dropped torn line of a committed run, or why a run could not be committed (it is
        then kept in place, and the others are recovered all the same).
        """
        return self.repository.recover()

    # --------------------------------------------------------------- logging
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        **_ignored: Any,
    ) -> RunOperations | None:
        self.repository.runs.log_metric(run_id, key, value, timestamp, step or 0)
        return run_operations(synchronous)

    def log_param(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None, **_ignored: Any
    ) -> Any:
        self.repository.runs.log_params(run_id, {validation.check_key(key, "param"): value})
        return run_operations(synchronous) or value

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None, **_ignored: Any
    ) -> RunOperations | None:
        self.repository.runs.set_tags(run_id, {validation.check_key(key, "tag"): value})
        return run_operations(synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.repository.runs.delete_tag(run_id, validation.check_key(key, "tag"))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
        **_ignored: Any,
    ) -> RunOperations | None:
        """Metrics, params and tags together: all of them or, if one is rejected, none."""
        self.repository.runs.log_batch(
            run_id,
            list(metrics),
            _unique_params(params),
            {validation.check_key(t.key, "tag"): t.value for t in tags},
        )
        return run_operations(synchronous)

    # ------------------------------------------------------------- artifacts
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.repository.runs.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.repository.runs.log_artifacts(run_id, local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        if not isinstance(text, str):
            raise InvalidInputError(
                f"log_text writes a str, not {type(text).__name__}: use log_dict or "
                "log_artifact for other data"
            )
        validation.check_artifact_path(artifact_file)
        text = validation.check_text(text, f"text for {artifact_file!r}") or ""
        self.repository.runs.write_artifact(run_id, artifact_file, text.encode())

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """JSON, or YAML when the file name ends in .yaml/.yml (MLflow's rule)."""
        path = validation.check_artifact_path(artifact_file)
        try:
            if path.endswith((".yaml", ".yml")):
                data = dump_yaml(dictionary)
            else:
                data = (json.dumps(dictionary, indent=2, default=_json_default) + "\n").encode()
        except (TypeError, ValueError, yaml.YAMLError) as exc:  # UnicodeError is a ValueError
            raise InvalidInputError(
                f"log_dict cannot write {type(dictionary).__name__} as {artifact_file!r}: {exc}"
            ) from exc
        self.repository.runs.write_artifact(run_id, artifact_file, data)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict | None = None
    ) -> None:
        """A matplotlib figure (any format it can save), or a plotly figure as .html."""
        if not hasattr(figure, "savefig") and not (
            hasattr(figure, "write_html") and artifact_file.endswith(".html")
        ):
            raise InvalidInputError(
                f"cannot log figure of type {type(figure).__name__} as {artifact_file!r}: "
                "pass a matplotlib figure, or a plotly figure with a .html file name"
            )
        with self._artifact_file(run_id, artifact_file) as target:
            if hasattr(figure, "savefig"):
                figure.savefig(target, **(save_kwargs or {}))
            else:
                figure.write_html(str(target), **(save_kwargs or {}))

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """A numpy array (HxW, HxWx3, HxWx4) or PIL image, saved as PNG (or per the suffix)."""
        with self._artifact_file(run_id, artifact_file) as target:
            self._save_image(image, target)

    @staticmethod
    def _save_image(image: Any, target: Path) -> None:
        if hasattr(image, "save") and not hasattr(image, "shape"):
            image.save(target)
            return
        try:
            from PIL import Image
        except ImportError:
            try:
                import matplotlib.image as mpimg
            except ImportError as exc:
                raise InvalidInputError("log_image needs Pillow or matplotlib installed") from exc
            mpimg.imsave(target, image)
            return
        import numpy as np

        array = np.asarray(image)
        if array.dtype.kind == "f":
            array = (np.clip(array, 0, 1) * 255).round().astype("uint8")
        Image.fromarray(array.astype("uint8")).save(target)

    @contextlib.contextmanager
    def _artifact_file(self, run_id: str, artifact_file: str) -> Iterator[Path]:
        """A path to save an artifact file at: in the live run, or, for an ended run, a
        scratch file committed to the run once written (as ``write_artifact`` does)."""
        parent, _, name = validation.check_artifact_path(artifact_file).rpartition("/")
        if not name:
            raise InvalidInputError(f"artifact file {artifact_file!r} must name a file")
        runs = self.repository.runs
        try:
            target = runs.artifact_target(run_id, parent or None, name)
        except RunEndedError:
            target = None
        if target is not None:
            yield target
            return
        with tempfile.TemporaryDirectory(prefix="gittrack-") as scratch:
            path = Path(scratch) / name
            yield path
            runs.write_artifact(run_id, artifact_file, path.read_bytes())

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return [FileInfo(p, d, s) for p, d, s in self.repository.runs.list_artifacts(run_id, path)]

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="gittrack-"))
        return str(self.repository.runs.download_artifacts(run_id, path, dst))

    # --------------------------------------------------------------- reading
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        from gittrack.query.history import metric_history

        return metric_history(self.repository, run_id, key)

    def get_metric_history_frame(
        self, run_ids: Sequence[str] | str, keys: Sequence[str] | str | None = None
    ) -> Any:
        """Several runs' metric histories as one long DataFrame: run_id, key, step,
        timestamp, value (all keys unless ``keys`` names some)."""
        from gittrack.query.history import metric_history_frame

        return metric_history_frame(self.repository, run_ids, keys)

    def compare_runs(self, run_ids: Sequence[str], diff_only: bool = False) -> Any:
        """Params, metrics and tags of the runs side by side, with a ``differs`` column."""
        from gittrack.query.compare import compare_run_ids

        return compare_run_ids(self.repository, run_ids, diff_only)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> Any:
        from gittrack.query.search import search_run_objects

        return search_run_objects(
            self.repository,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )

    def doctor(self) -> list[Any]:
        """Problems of the tracking branch's files (schema, YAML, metric lines), with paths."""
        from gittrack.tracking.doctor import check_snapshot

        return check_snapshot(self.repository.branch.snapshot())

    def init(self) -> str:
        """Create the tracking branch (config and Default experiment) if it is missing."""
        return self.repository.init()

    def run_exists(self, run_id: str) -> bool:
        try:
            self.get_run(run_id)
        except NotFoundError:
            return False
        return True

    # ============================================================== model registry
    # Thin delegations to gittrack.registry.service.RegistryService (DESIGN §6). ``at``
    # (a revision or date) reads the registry as it was then.
    @property
    def registry(self) -> RegistryService:
        service = self.__dict__.get("_registry_service")
        if service is None:
            from gittrack.registry.service import RegistryService

            service = self.__dict__["_registry_service"] = RegistryService(self.repository)
        return service

    def create_registered_model(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        **_ignored: Any,
    ) -> RegisteredModel:
        return self.registry.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str, *, at: str | None = None) -> RegisteredModel:
        return self.registry.get_registered_model(name, at)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
        *,
        at: str | None = None,
    ) -> list[RegisteredModel]:
        return self.registry.search_registered_models(
            filter_string, max_results, order_by, page_token, at
        )

    def update_registered_model(
        self, name: str, description: str | None = None, **_ignored: Any
    ) -> RegisteredModel:
        return self.registry.update_registered_model(name, description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.registry.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str) -> None:
        self.registry.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.registry.delete_registered_model_tag(name, key)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        **_ignored: Any,
    ) -> ModelVersion:
        return self.registry.create_model_version(name, source, run_id, tags, description)

    def get_model_version(
        self, name: str, version: int | str, *, at: str | None = None
    ) -> ModelVersion:
        return self.registry.get_model_version(name, version, at)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = 10_000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
        *,
        at: str | None = None,
    ) -> list[ModelVersion]:
        return self.registry.search_model_versions(
            filter_string, max_results, order_by, page_token, at
        )

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        return self.registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.registry.delete_model_version(name, version)

    def set_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        number = self._version_or_stage(name, version, stage)
        self.registry.set_model_version_tag(name, number, _required(key, "key"), value)

    def delete_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        number = self._version_or_stage(name, version, stage)
        self.registry.delete_model_version_tag(name, number, _required(key, "key"))

    def _version_or_stage(self, name: str, version: int | str | None, stage: str | None) -> str:
        if (version is None) == (stage is None):
            raise InvalidInputError("give exactly one of version or stage")
        if version is not None:
            return str(version)
        latest = self.get_latest_versions(name, [stage])  # type: ignore[list-item]
        if not latest:
            raise NotFoundError(f"no version of model {name!r} is in stage {stage!r}")
        return latest[0].version

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        return self.registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        return self.registry.get_latest_versions(name, stages)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self.registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.registry.get_model_version_by_alias(name, alias)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return self.registry.get_model_version_download_uri(name, version)

    def get_registry_history(self, name: str) -> list[RegistryEvent]:
        """Every registration, stage change, alias move and deletion of ``name``, oldest first."""
        return self.registry.history(name)

    def verify_registry(self) -> list[PolicyViolation]:
        """Every registry tag that breaks the policy in ``.tracking/config.yaml``."""
        return self.registry.verify()


def _unique_params(params: Sequence[Param]) -> dict[str, Any]:
    """A batch's params by key; one key with two values is refused, as MLflow does."""
    by_key: dict[str, Any] = {}
    for param in params:
        key = validation.check_key(param.key, "param")
        if key in by_key and str(by_key[key]) != str(param.value):
            raise InvalidInputError(
                f"param {key!r} appears twice in the batch, as {by_key[key]!r} and "
                f"{param.value!r}: a batch may hold one value per param key"
            )
        by_key[key] = param.value
    return by_key


def _required(value: str | None, what: str) -> str:
    if value is None:
        raise InvalidInputError(f"{what} is required")
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


MlflowClient = Client
