"""``Client``: the explicit API, one method per operation, shaped like MLflow's MlflowClient."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gittrack.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    RegisteredModelSummary,
    Run,
    RunOperations,
    RunStatus,
    RunTag,
    ViewType,
)
from gittrack.errors import (
    CorruptDataError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    RepositoryError,
    RunEndedError,
)
from gittrack.store.codecs import dump_yaml
from gittrack.store.validation import check_text
from gittrack.tracking import artifact_roots, validation
from gittrack.tracking.live_runs import check_new_run
from gittrack.tracking.recovery import RecoveredRun
from gittrack.tracking.repository import TrackingRepository, open_repository
from gittrack.tracking.source import default_entry_point
from gittrack.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

if TYPE_CHECKING:
    # The types of Client's results, named here so that the layers above (the command line)
    # annotate with them without importing a domain: ``from gittrack.client import X`` under
    # TYPE_CHECKING.
    from gittrack.gitflow.bisect import BisectResult as BisectResult
    from gittrack.gitflow.checkout import Checkout as Checkout
    from gittrack.gitflow.checkout import RunCode as RunCode
    from gittrack.gitflow.commit_diff import CommitDiff as CommitDiff
    from gittrack.gitflow.commit_diff import ExperimentDiff as ExperimentDiff
    from gittrack.gitflow.commit_diff import MetricChange as MetricChange
    from gittrack.gitflow.commit_diff import ParamChange as ParamChange
    from gittrack.gitflow.commit_diff import Side as Side
    from gittrack.gitflow.commit_runs import CommitRuns as CommitRuns
    from gittrack.gitflow.hooks import HookState as HookState
    from gittrack.gitflow.notes import RunSummary as RunSummary
    from gittrack.gitflow.reproduce import Reproduction as Reproduction
    from gittrack.gitflow.sync import SyncReport as SyncReport
    from gittrack.query.budgets import Budget as Budget
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
        """A client of one tracking repository.

        Args:
            tracking_uri: a path or ``git+file://`` URI of the repository (default:
                ``GITTRACK_TRACKING_URI``, ``MLFLOW_TRACKING_URI`` when it is a path, else the
                repository containing the current directory). It is opened at the first call.
            registry_uri: accepted for MLflow compatibility: the registry is always the tracking
                repository's tags.
        """
        self._tracking_uri = tracking_uri
        self._repository: TrackingRepository | None = None

    @property
    def repository(self) -> TrackingRepository:
        """The open tracking repository (opened on first use).

        Returns:
            The process's shared handle of the repository.

        Raises:
            RepositoryError: the path is not inside a git repository.
        """
        if self._repository is None:
            self._repository = open_repository(self._tracking_uri)
        return self._repository

    @property
    def tracking_uri(self) -> str:
        """The path of the tracking repository.

        Returns:
            The repository's work-tree path, as a string.
        """
        return str(self.repository.path)

    # ------------------------------------------------------------ experiments
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
        *,
        exist_ok: bool = False,
    ) -> str:
        """Create an experiment.

        Args:
            name: the experiment's name, unique among active and deleted experiments.
            artifact_location: a local directory (path or ``file://`` URI) for the artifacts
                of the experiment's runs, each under ``<location>/<run_id>/artifacts`` as in
                MLflow. They are kept there, not in git, so ``git push`` does not share them.
                By default artifacts are committed with their runs.
            tags: tags of the experiment.
            exist_ok: return the id of the active experiment of that name when there is one,
                atomically (concurrent callers agree on one experiment).

        Returns:
            The new (or, with ``exist_ok``, the existing) experiment's id.

        Raises:
            InvalidInputError: a remote store's URI (``s3://``, ``http(s)://``, ...), a
                directory that cannot be written, or a bad name or tag; nothing is written.
            ConflictError: an experiment of that name exists (an active one: unless
                ``exist_ok``).
            RepositoryError: the experiment was created but its location could not be
                recorded as trusted by this clone (``tracking/artifact_roots.py``); the
                message gives the ``git config`` command that trusts it.
        """
        location = validation.check_artifact_location(artifact_location)
        roots = self.repository.runs.artifact_roots
        if location is not None:
            roots.check_outside_repository(location)
        experiment_id = self.repository.experiments.create(
            name, tags, exist_ok=exist_ok, artifact_location=location
        )
        if location is not None:
            try:
                roots.trust(location)  # this clone chose it: its runs may write there
            except RepositoryError as exc:
                raise RepositoryError(
                    f"{exc.message}; experiment {name!r} ({experiment_id}) was created: to "
                    f"let its runs write artifacts, run git config --add "
                    f"{artifact_roots.CONFIG_KEY} '{location}'"
                ) from exc
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with id ``experiment_id``.

        Args:
            experiment_id: the experiment's id.

        Returns:
            The experiment.

        Raises:
            NotFoundError: no experiment has that id.
        """
        return self.repository.experiments.get(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment named ``name``, or None.

        Args:
            name: the experiment's name.

        Returns:
            The experiment, or None when there is none.
        """
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
        """Rename an experiment; its id stays.

        Args:
            experiment_id: the experiment's id.
            new_name: its new name.

        Raises:
            NotFoundError: no experiment has that id.
            ConflictError: another experiment has that name.
            InvalidInputError: a bad name.
        """
        self.repository.experiments.rename(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment deleted; its runs stay, and ``restore_experiment`` undoes it.

        Args:
            experiment_id: the experiment's id.

        Raises:
            NotFoundError: no experiment has that id.
            InvalidInputError: the ``Default`` experiment cannot be deleted.
        """
        self.repository.experiments.set_lifecycle(str(experiment_id), LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment.

        Args:
            experiment_id: the experiment's id.

        Raises:
            NotFoundError: no experiment has that id.
        """
        self.repository.experiments.set_lifecycle(str(experiment_id), LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment.

        Args:
            experiment_id: the experiment's id.
            key: the tag's name.
            value: its value, stored as a string.

        Raises:
            NotFoundError: no experiment has that id.
            InvalidInputError: a bad key or value.
        """
        [(key, value)] = validation.check_tags({key: value}, "experiment tag").items()
        self.repository.experiments.set_tag(str(experiment_id), key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete a tag of an experiment.

        Args:
            experiment_id: the experiment's id.
            key: the tag's name.

        Raises:
            NotFoundError: no experiment has that id.
        """
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
        """Start a live run in an experiment, recording the code it runs on.

        Args:
            experiment_id: the experiment's id.
            start_time: milliseconds since the epoch (default: now).
            tags: tags of the run (``mlflow.runName`` names it).
            run_name: the run's name (default: a generated one).
            parent_run_id: the run this one is nested under.
            description: the run's description (the ``mlflow.note.content`` tag).

        Returns:
            The new run, RUNNING.

        Raises:
            InvalidInputError: a bad tag, name, time or description, or a deleted experiment.
            NotFoundError: the experiment or the parent run does not exist.
        """
        tags, run_name, start_time = check_new_run(tags, run_name, start_time, description)
        repository = self.repository
        repository.prepare_write()
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
            artifact_location=repository.experiments.external_location(experiment),
            run_name=run_name,
            start_time=start_time,
            tags=tags,
            parent_run_id=parent_run_id,
            source=source,
            description=description,
            same_repo_source=repository.shares_objects_with(capture.repo),
        )

    def resume_run(self, run_id: str) -> Run:
        """Reopen a run for logging (a dead process's live run is committed first).

        Args:
            run_id: the run's id.

        Returns:
            The run, RUNNING again.

        Raises:
            NotFoundError: no run has ``run_id``.
        """
        repository = self.repository
        repository.prepare_write()  # a dead process's run is committed before it is resumed
        return repository.runs.resume(run_id)

    def get_run(self, run_id: str) -> Run:
        """The run ``run_id``, live or committed.

        Args:
            run_id: the run's id (32 hexadecimal digits).

        Returns:
            The run with its info, params, metrics (latest values) and tags.

        Raises:
            NotFoundError: no run has that id.
            InvalidInputError: ``run_id`` is not a run id.
        """
        return self.repository.runs.get(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """A new status and/or name for a live or ended run, as MLflow's.

        The end time is kept, and the name is ``info.run_name`` and the ``mlflow.runName`` tag
        together. A status that is not one of MLflow's is refused before anything changes.

        Args:
            run_id: the run's id.
            status: RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
            name: the run's new name.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad status or name.
        """
        if status is not None:
            validation.check_run_status(status)
        if status is None and name is None:
            return
        self.repository.runs.update(run_id, status, name)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a live run (it is committed), or set the status and end time of an ended one.

        Args:
            run_id: the run's id.
            status: the final status (default FINISHED).
            end_time: milliseconds since the epoch (default: now).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad status or time.
            RepositoryError: the commit could not be written; the run stays live.
        """
        self.repository.runs.end(run_id, status or RunStatus.FINISHED, end_time)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted; ``restore_run`` undoes it.

        Args:
            run_id: the run's id.

        Raises:
            NotFoundError: no run has ``run_id``.
        """
        self.repository.runs.set_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run.

        Args:
            run_id: the run's id.

        Raises:
            NotFoundError: no run has ``run_id``.
        """
        self.repository.runs.set_lifecycle(run_id, LifecycleStage.ACTIVE)

    def recover(self) -> list[RecoveredRun]:
        """Remove the locks a crashed writer left on the tracking branch or a registry tag, and
        commit live runs whose process died (status KILLED).

        Returns:
            One ``RecoveredRun(run_id, note, committed)`` per orphan found: ``note`` is a dropped
            torn line of a committed run, or why a run could not be committed (it is then kept in
            place, and the others are recovered all the same).
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
        """Log one point of a metric; the point survives ``kill -9`` once the call returns.

        Args:
            run_id: the run's id (a live or an ended run).
            key: the metric's name.
            value: a number (NaN and the infinities are kept as such).
            timestamp: milliseconds since the epoch (default: now).
            step: the step (default 0).
            synchronous: False returns a ``RunOperations``.

        Returns:
            None, or a ``RunOperations`` when ``synchronous`` is False.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key, value, step or timestamp.
        """
        self.repository.runs.log_metric(run_id, key, value, timestamp, step or 0)
        return run_operations(synchronous)

    def log_param(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None, **_ignored: Any
    ) -> Any:
        """Log a parameter of a run.

        Args:
            run_id: the run's id.
            key: the parameter's name.
            value: its value, stored as a string.
            synchronous: False returns a ``RunOperations``.

        Returns:
            ``value``, or a ``RunOperations`` when ``synchronous`` is False.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key or value.
            ConflictError: the parameter was logged before with another value.
        """
        self.repository.runs.log_params(run_id, {validation.check_key(key, "param"): value})
        return run_operations(synchronous) or value

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None, **_ignored: Any
    ) -> RunOperations | None:
        """Set a tag on a run.

        Args:
            run_id: the run's id.
            key: the tag's name.
            value: its value, stored as a string.
            synchronous: False returns a ``RunOperations``.

        Returns:
            None, or a ``RunOperations`` when ``synchronous`` is False.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key or value.
        """
        self.repository.runs.set_tags(run_id, {validation.check_key(key, "tag"): value})
        return run_operations(synchronous)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log several parameters of a run: all of them or, if one is rejected, none.

        Args:
            run_id: the run's id.
            params: names and values (each stored as a string).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key or value.
            ConflictError: a parameter was logged before with another value.
        """
        self.repository.runs.log_params(run_id, params)

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Log one point of each of several metrics, with the same step and timestamp.

        Args:
            run_id: the run's id (a live or an ended run).
            metrics: names and values (NaN and the infinities are kept as such).
            step: the step (default 0).
            timestamp: milliseconds since the epoch (default: now).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key, value, step or timestamp (nothing is logged).
        """
        self.repository.runs.log_metrics(run_id, metrics, step or 0, timestamp)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """Set several tags on a run: all of them or, if one is rejected, none.

        Args:
            run_id: the run's id.
            tags: names and values (each stored as a string).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key or value.
        """
        self.repository.runs.set_tags(run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a tag of a run.

        Args:
            run_id: the run's id.
            key: the tag's name.

        Raises:
            NotFoundError: no such run, or the run has no such tag.
        """
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
        """Metrics, params and tags together: all of them or, if one is rejected, none.

        Args:
            run_id: the run's id.
            metrics: metric points.
            params: parameters (one value per key).
            tags: tags.
            synchronous: False returns a ``RunOperations``.

        Returns:
            None, or a ``RunOperations`` when ``synchronous`` is False.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: a bad key or value, or one param key with two values.
            ConflictError: a parameter was logged before with another value.
        """
        self.repository.runs.log_batch(
            run_id,
            list(metrics),
            _unique_params(params),
            {validation.check_key(t.key, "tag"): t.value for t in tags},
        )
        return run_operations(synchronous)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[Any] | None = None,
    ) -> None:
        """Record the datasets a run took as input (``MlflowClient.log_inputs``).

        Args:
            run_id: a live or ended run (an ended run takes one commit; its status stays).
            datasets: ``DatasetInput`` entities; a dataset (name, digest) the run already has
                is not recorded again, as in MLflow.
            models: MLflow 3 logged-model inputs; gittrack keeps models as run artifacts, so
                none can be given.

        Raises:
            InvalidInputError: a model input, or an input over MLflow's limits (nothing is
                written then).
            NotFoundError: no run has ``run_id``.
            InvalidStateError: the run is deleted.
        """
        if models:
            raise InvalidInputError(
                "log_inputs(models=...) is not supported: gittrack keeps models as run "
                "artifacts (log them with gittrack.sklearn.log_model), not as logged-model inputs"
            )
        self.repository.runs.log_inputs(run_id, list(datasets or []))

    # ------------------------------------------------------------- artifacts
    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Log a table as a JSON (or Parquet) artifact in MLflow's format.

        Rows logged to a file that is already there are appended to it, and the run's
        ``mlflow.loggedArtifacts`` tag lists the file as a table.

        Args:
            run_id: the run's id.
            data: a pandas DataFrame, or a dict of columns (of single values: one row).
            artifact_file: the table's path in the run, ending in ``.json`` or ``.parquet``.

        Raises:
            InvalidInputError: another file name, data of another type, or values the format
                cannot hold (nothing is written then).
            NotFoundError: no run has ``run_id``.
        """
        import pandas as pd

        from gittrack.tracking import tables

        tables.check_table_file(validation.check_artifact_path(artifact_file))
        frame = tables.as_frame(data)
        existing = self._read_artifact(run_id, artifact_file)
        if existing is not None:
            stored = tables.decode_table(existing, artifact_file, infer_dtypes=False)
            frame = pd.concat([stored, frame], ignore_index=True)
        self.repository.runs.write_artifact(
            run_id, artifact_file, tables.encode_table(frame, artifact_file)
        )
        tag = tables.logged_artifacts_tag(
            self.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS), artifact_file
        )
        if tag is not None:
            self.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, tag)

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: list[str] | None = None,
        extra_columns: list[str] | None = None,
    ) -> Any:
        """Load a table logged with ``log_table`` from the runs of an experiment.

        Args:
            experiment_id: the experiment whose runs are read.
            artifact_file: the table's path in the runs.
            run_ids: only these runs (a run without the table is skipped with a warning).
            extra_columns: columns of ``search_runs`` (``run_id``, ``tags.x``...) added to
                each run's rows (a name the table has already gets a trailing ``_``).

        Returns:
            A pandas DataFrame: the rows of every run that logged the table, in search order.

        Raises:
            NotFoundError: no run has the table.
            InvalidInputError: ``artifact_file`` is not a table's name.
        """
        import pandas as pd

        from gittrack.query.search import search_runs
        from gittrack.tracking import tables

        tables.check_table_file(validation.check_artifact_path(artifact_file))
        flt = ""
        if run_ids:
            flt = "attributes.run_id IN (" + ", ".join(repr(str(r)) for r in run_ids) + ")"
        runs = search_runs(self.repository, experiment_ids=[str(experiment_id)], filter_string=flt)
        tag_column = f"tags.{MLFLOW_LOGGED_ARTIFACTS}"
        if tag_column not in runs:
            runs = runs.iloc[0:0]
        else:
            keep = [tables.lists_table(v, artifact_file) for v in runs[tag_column]]
            runs = runs[keep]
        if runs.empty:
            raise NotFoundError(
                f"no run of experiment {experiment_id} has the table {artifact_file!r}"
            )
        if run_ids and len(runs) != len(set(run_ids)):
            warnings.warn(
                "not every run given has the table artifact; the others are skipped", stacklevel=2
            )
        parts = []
        for _, run in runs.iterrows():
            data = self._read_artifact(run["run_id"], artifact_file)
            if data is None:
                raise NotFoundError(f"artifact {artifact_file} not found for run {run['run_id']}")
            part = tables.decode_table(data, artifact_file)
            for column in extra_columns or []:
                part[f"{column}_" if column in part else column] = run[column]
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def _read_artifact(self, run_id: str, artifact_file: str) -> bytes | None:
        """The bytes of one artifact file of a run, or None when it has no such file."""
        parent = artifact_file.rpartition("/")[0] or None
        listed = {f.path for f in self.list_artifacts(run_id, parent) if not f.is_dir}
        if artifact_file not in listed:
            return None
        with tempfile.TemporaryDirectory(prefix="gittrack-") as scratch:
            path = self.download_artifacts(run_id, artifact_file, scratch)
            return Path(path).read_bytes()

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local file into a run's artifacts.

        Args:
            run_id: the run's id.
            local_path: the file to copy.
            artifact_path: the directory inside the artifacts (default: their root).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: the file is missing, or ``artifact_path`` would leave the run.
        """
        self.repository.runs.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local directory's files into a run's artifacts.

        Args:
            run_id: the run's id.
            local_dir: the directory to copy.
            artifact_path: the directory inside the artifacts (default: their root).

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: the directory is missing, or a path would leave the run.
        """
        self.repository.runs.log_artifacts(run_id, local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Write a string as a text artifact of a run.

        Args:
            run_id: the run's id.
            text: the text.
            artifact_file: the artifact's path inside the run.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: ``text`` is not a str, or the path would leave the run.
        """
        if not isinstance(text, str):
            raise InvalidInputError(
                f"log_text writes a str, not {type(text).__name__}: use log_dict or "
                "log_artifact for other data"
            )
        validation.check_artifact_path(artifact_file)
        text = check_text(text, f"text for {artifact_file!r}") or ""
        self.repository.runs.write_artifact(run_id, artifact_file, text.encode())

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Write a dictionary as a JSON artifact, or YAML when the name ends in .yaml/.yml (MLflow's rule).

        Args:
            run_id: the run's id.
            dictionary: the data.
            artifact_file: the artifact's path inside the run.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: the data cannot be serialised, or the path would leave the run.
        """
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
        """Save a matplotlib figure (any format it can save), or a plotly figure as .html.

        Args:
            run_id: the run's id.
            figure: the figure.
            artifact_file: the artifact's path inside the run; its suffix picks the format.
            save_kwargs: keyword arguments for ``savefig``/``write_html``.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: not a figure gittrack can save under that name.
        """
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
        """Save a numpy array (HxW, HxWx3, HxWx4) or PIL image, as PNG (or per the suffix).

        Args:
            run_id: the run's id.
            image: the image.
            artifact_file: the artifact's path inside the run.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: an image that cannot be saved, or a path that would leave the run.
        """
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
        """The files and directories directly under ``path`` in a run's artifacts.

        Args:
            run_id: the run's id.
            path: a directory inside the artifacts (default: their root).

        Returns:
            ``FileInfo(path, is_dir, file_size)`` entries.

        Raises:
            NotFoundError: no run has ``run_id``.
            InvalidInputError: ``path`` would leave the run.
        """
        return [FileInfo(p, d, s) for p, d, s in self.repository.runs.list_artifacts(run_id, path)]

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy a run's artifact file or directory to a local directory.

        Args:
            run_id: the run's id.
            path: the artifact path (default: all artifacts).
            dst_path: the local directory (default: a new temporary one).

        Returns:
            The local path of the copy.

        Raises:
            NotFoundError: no such run or artifact.
            InvalidInputError: ``path`` would leave the run.
        """
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="gittrack-"))
        return str(self.repository.runs.download_artifacts(run_id, path, dst))

    # --------------------------------------------------------------- reading
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric of a run, in the order logged.

        Args:
            run_id: the run's id.
            key: the metric's name.

        Returns:
            The points as ``Metric`` entities (empty when the metric was never logged).

        Raises:
            NotFoundError: no run has ``run_id``.
        """
        from gittrack.query.history import metric_history

        return metric_history(self.repository, run_id, key)

    def get_metric_history_frame(
        self, run_ids: Sequence[str] | str, keys: Sequence[str] | str | None = None
    ) -> Any:
        """Several runs' metric histories as one long DataFrame.

        Args:
            run_ids: one run id or several.
            keys: the metrics to read (default: all).

        Returns:
            A DataFrame with columns run_id, key, step, timestamp, value.

        Raises:
            NotFoundError: a run does not exist.
        """
        from gittrack.query.history import metric_history_frame

        return metric_history_frame(self.repository, run_ids, keys)

    def compare_runs(self, run_ids: Sequence[str], diff_only: bool = False) -> Any:
        """Params, metrics and tags of the runs side by side, with a ``differs`` column.

        Args:
            run_ids: the runs to compare.
            diff_only: keep only the rows that differ.

        Returns:
            A DataFrame, one row per param/metric/tag and one column per run.

        Raises:
            NotFoundError: a run does not exist.
        """
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
        """One page of runs matching a filter, as ``Run`` entities (MLflow's client method).

        Args:
            experiment_ids: the experiments to search (one id or several).
            filter_string: a filter in MLflow's grammar, with OR, parentheses and IN.
            run_view_type: active, deleted or all runs.
            max_results: the page size.
            order_by: sort keys, each ``<column> [ASC|DESC]``.
            page_token: the token of the previous page's ``token``.

        Returns:
            A paged list of runs; its ``token`` names the next page (None on the last).

        Raises:
            InvalidInputError: a malformed filter, order or page token, or a bad ``max_results``.
        """
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

    def search_runs_frame(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = 100_000,
        order_by: list[str] | None = None,
        output_format: str = "pandas",
        *,
        commit: str | None = None,
    ) -> Any:
        """Every matching run up to ``max_results``, as MLflow's fluent ``search_runs`` answers
        (a DataFrame with its columns, or a list of ``Run``), without paging.

        Args:
            experiment_ids: the experiments to search (None: every experiment).
            filter_string: a filter in MLflow's grammar, with OR, parentheses and IN.
            run_view_type: active, deleted or all runs.
            max_results: at most this many; None for every match, none for 0 or less.
            order_by: sort keys, each ``<column> [ASC|DESC]``.
            output_format: ``pandas`` or ``list``.
            commit: only the runs whose source commit is the one this revision names.

        Returns:
            A DataFrame (one row a run), or a list of ``Run``.

        Raises:
            InvalidInputError: a malformed filter, order or revision, or a bad ``max_results``
                or ``output_format``.
            NotFoundError: ``commit`` names no commit.
        """
        from gittrack.query.search import search_runs

        if commit is not None:
            from gittrack.gitflow.commit_runs import commit_filter

            filter_string = commit_filter(self.repository, commit, filter_string)
        return search_runs(
            self.repository,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            max_results=max_results,
            order_by=order_by,
            output_format=output_format,
        )

    def export_runs(
        self,
        directory: str | os.PathLike[str],
        fmt: str = "parquet",
        *,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ALL,
        with_history: bool = True,
    ) -> dict[str, Path]:
        """Write the matching runs as ``runs.<fmt>`` and their metric histories as
        ``metric_history.<fmt>`` into ``directory`` (``query/export.py``).

        Args:
            directory: where to write (created when missing).
            fmt: ``parquet`` or ``csv``.
            experiment_ids: the experiments to export (None: every experiment).
            filter_string: only runs matching this filter.
            run_view_type: active, deleted or all runs (default all).
            with_history: also write the metric histories.

        Returns:
            The written paths, by table name (``runs``, ``metric_history``).

        Raises:
            InvalidInputError: an unknown format or a malformed filter.
        """
        from gittrack.query.export import export_runs

        return export_runs(
            self.repository,
            directory,
            fmt,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            with_history=with_history,
        )

    # ------------------------------------------------------- commits, budgets
    def diff_commits(
        self,
        base: str | None = None,
        head: str = "HEAD",
        *,
        experiments: Sequence[str] = (),
        select: str = "latest",
        goal: str | None = None,
        metrics: Sequence[str] = (),
        show_all: bool = False,
        nearest: bool = False,
        include_nested: bool = False,
        budgets_file: str | None = None,
    ) -> CommitDiff:
        """Compare the runs of two code commits per experiment (``gittrack diff``,
        ``gitflow/commit_diff.py``).

        Args:
            base: a revision; None for the merge-base of origin/HEAD (else main) and HEAD.
            head: a revision (default HEAD).
            experiments: names or ids to compare (empty: every experiment with runs).
            select: which run stands for a commit: ``latest`` or ``best:metrics.X``.
            goal: ``maximize`` or ``minimize``, X's direction for ``best:`` (default: the
                goal of X's budget).
            metrics: glob patterns of the metrics to show (empty: all).
            show_all: keep metrics and params that did not change.
            nearest: a side without runs takes its closest first-parent ancestor with runs.
            include_nested: child runs may stand for a commit too.
            budgets_file: a YAML file whose ``budgets:`` replace config.yaml's.

        Returns:
            A ``CommitDiff``: both sides, one comparison per experiment, and in ``broken``
            the budget rules HEAD's runs break.

        Raises:
            InvalidInputError: a bad option or budgets file.
            NotFoundError: an unknown revision or experiment, or a side without runs.
            CorruptDataError: the budgets are invalid (file and field named).
        """
        from gittrack.gitflow.commit_diff import DiffOptions, diff_commits
        from gittrack.query.budgets import budgets_from_file, configured_budgets

        options = DiffOptions(
            tuple(experiments), select, goal, tuple(metrics), show_all, nearest, include_nested
        )
        budgets = (
            budgets_from_file(budgets_file)
            if budgets_file is not None
            else configured_budgets(self.repository)
        )
        return diff_commits(self.repository, base, head, options, budgets)

    def get_budgets(self) -> dict[str, Budget]:
        """The metric budgets in ``.tracking/config.yaml``.

        Returns:
            metric -> ``Budget`` (its goal and limits).

        Raises:
            CorruptDataError: the section is invalid (field named).
        """
        from gittrack.query.budgets import configured_budgets

        return configured_budgets(self.repository)

    def set_budget(
        self, metric: str, goal: str | None = None, limits: dict[str, float] | None = None
    ) -> Budget:
        """Add or change a metric's budget in config.yaml (one tracking commit); the given
        rules replace the budget's own, the others stay.

        Args:
            metric: the metric's key.
            goal: ``maximize`` or ``minimize`` (None: unchanged).
            limits: rule -> number, rules among min, max, max_decrease, max_increase,
                max_decrease_pct, max_increase_pct.

        Returns:
            The budget as stored.

        Raises:
            InvalidInputError: a bad key, goal or limit; nothing is written.
        """
        from gittrack.query.budgets import set_budget

        return set_budget(self.repository, metric, goal, limits)

    def delete_budget(self, metric: str) -> None:
        """Remove a metric's budget from config.yaml.

        Args:
            metric: the metric's key.

        Raises:
            NotFoundError: the metric has no budget.
        """
        from gittrack.query.budgets import remove_budget

        if not remove_budget(self.repository, metric):
            raise NotFoundError(f"metric {metric!r} has no budget in .tracking/config.yaml")

    def search_runs_page(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        order_by: list[str] | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Any:
        """One page of a search for a table that pages by position.

        Args:
            experiment_ids: the experiments to search.
            filter_string: a filter in MLflow's grammar.
            run_view_type: active, deleted or all runs.
            order_by: sort keys, each ``<column> [ASC|DESC]``.
            offset: the position of the page's first run.
            limit: the page size (at most 50,000).

        Returns:
            A ``RunPage`` with ``runs``, ``total`` (every matching run) and the ``metric_keys``,
            ``param_keys`` and ``tag_keys`` the matching runs have.

        Raises:
            InvalidInputError: a malformed filter or order, or a bad offset or limit.
        """
        from gittrack.query.search import search_run_page

        return search_run_page(
            self.repository,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            order_by=order_by,
            offset=offset,
            limit=limit,
        )

    def search_runs_csv(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        order_by: list[str] | None = None,
    ) -> str:
        """Every matching run as CSV: the text of the ``runs.csv`` that ``export_runs``
        writes (MLflow's ``search_runs`` columns plus ``run_name``, ``user_id``,
        ``lifecycle_stage`` and ``parent_run_id``; times as ISO-8601 with milliseconds).

        Args:
            experiment_ids: the experiments to search.
            filter_string: a filter in MLflow's grammar.
            run_view_type: active, deleted or all runs.
            order_by: sort keys, each ``<column> [ASC|DESC]``.

        Returns:
            The CSV text, a header line first.

        Raises:
            InvalidInputError: a malformed filter or order.
        """
        from gittrack.query.export import runs_csv

        return runs_csv(
            self.repository,
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            order_by=order_by,
        )

    def read_artifact(self, run_id: str, path: str, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """The first ``max_bytes`` of one artifact file of a run, and the file's full size.

        Args:
            run_id: the run's id.
            path: the file's path relative to the run's artifact root; ``..``, absolute paths
                and unsafe names are refused as on every artifact read.
            max_bytes: read at most this much.

        Returns:
            ``(data, size)``; ``len(data) < size`` when the file was cut.

        Raises:
            InvalidInputError: a bad run id or path.
            NotFoundError: the run or the file is missing, or the path names a directory.
        """
        validation.check_run_id(run_id)
        rel = validation.check_artifact_path(path)
        if not rel:
            raise InvalidInputError("artifact path '' names the artifact root, not a file")
        parent = rel.rpartition("/")[0]
        entry = next(
            (f for f in self.list_artifacts(run_id, parent or None) if f.path == rel), None
        )
        if entry is None or entry.is_dir:
            raise NotFoundError(f"run {run_id} has no artifact file {rel!r}")
        with tempfile.TemporaryDirectory(prefix="gittrack-") as scratch:
            copied = Path(self.download_artifacts(run_id, rel, scratch))
            with copied.open("rb") as handle:
                return handle.read(max_bytes), copied.stat().st_size

    def get_source_diff(self, run_id: str) -> str | None:
        """The uncommitted change a run was made with: ``git diff <commit> <snapshot>``.

        Args:
            run_id: the run's id.

        Returns:
            The diff text, or None when the run was made on a clean tree (or its snapshot was
            not kept).

        Raises:
            InvalidInputError: a bad run id.
            NotFoundError: no such run.
        """
        from gittrack.gitflow.checkout import code_diff, run_code

        run = self.get_run(validation.check_run_id(run_id))
        if not (run.source.dirty and run.source.snapshot):
            return None
        try:  # the same checks as checkout: only full commit ids of commits reach git
            code = run_code(self.repository, run)
        except (CorruptDataError, NotFoundError, InvalidStateError):
            return None
        return code_diff(self.repository, code.base, code.commit).decode("utf-8", "replace")

    def commit_history(
        self,
        rev: str = "HEAD",
        limit: int = 50,
        *,
        metrics: Sequence[str] | None = None,
        refresh_notes: bool = False,
    ) -> list[CommitRuns]:
        """The first-parent history of the code from ``rev`` with each commit's runs.

        By default this writes nothing, so read-only readers such as the web UI can call it;
        ``gittrack log`` also refreshes the commits' notes (``refs/notes/gittrack``).

        Args:
            rev: the revision to start from.
            limit: at most this many commits.
            metrics: keep only these metrics of each run, in this order (None: all of them).
            refresh_notes: write the notes of the listed commits that are out of date (a
                busy notes ref is left alone).

        Returns:
            ``CommitRuns`` (commit, subject, runs with their latest metrics), newest first.

        Raises:
            InvalidInputError: a bad limit or metric key (checked before anything is read).
            NotFoundError: an unknown revision.
        """
        for key in metrics or ():
            validation.check_key(key, "metric")
        from gittrack.gitflow.commit_runs import first_parent_log

        entries = first_parent_log(self.repository, rev, limit, refresh=refresh_notes)
        if not metrics:
            return entries
        return [
            dataclasses.replace(
                entry,
                runs=[
                    dataclasses.replace(
                        run, metrics={k: run.metrics[k] for k in metrics if k in run.metrics}
                    )
                    for run in entry.runs
                ],
            )
            for entry in entries
        ]

    def data_version(self) -> str:
        """A token that changes whenever the tracking branch moves or a live run logs, starts or
        ends (for readers that refresh, such as the web UI).

        Returns:
            The token, an opaque string.
        """
        from gittrack.query.live_runs import live_stamp

        repository = self.repository
        return f"{repository.branch.tip() or '-'}:{live_stamp(repository.staging)}"

    def doctor(self) -> list[Any]:
        """Problems of the tracking branch's files (schema, YAML, metric lines), with paths.

        Returns:
            One problem per bad file (empty when every file is valid).
        """
        from gittrack.tracking.doctor import check_snapshot

        return check_snapshot(self.repository.branch.snapshot())

    def init(self) -> str:
        """Create the tracking branch (config and Default experiment) if it is missing.

        Returns:
            The branch's tip commit.

        Raises:
            RepositoryError: the repository cannot be written.
        """
        return self.repository.init()

    # ------------------------------------------------------- code of runs (DESIGN §13)
    def get_run_code(self, run_id: str) -> RunCode:
        """Where a run's code is: the commit it started on and the commit holding its exact code
        (its snapshot when the tree was dirty).

        Args:
            run_id: the run's id.

        Returns:
            A ``RunCode`` with the base commit, the code commit and what was left out.

        Raises:
            NotFoundError: no such run, or its code is not in this repository.
            InvalidStateError: the run recorded no source commit.
            CorruptDataError: the recorded commit or snapshot is not a commit id, or names
                another kind of object.
        """
        from gittrack.gitflow.checkout import run_code

        return run_code(self.repository, self.get_run(run_id))

    def get_code_diff(self, run_id: str, other_run_id: str | None = None) -> bytes:
        """A patch: ``run_id``'s uncommitted change against the commit it started on, or, with
        ``other_run_id``, from ``run_id``'s code to the other run's. Empty when equal.

        Args:
            run_id: the run's id.
            other_run_id: a second run to compare the code with.

        Returns:
            The patch, as bytes.

        Raises:
            NotFoundError: no such run, or its code is not in this repository.
            InvalidStateError: a run recorded no source commit.
        """
        from gittrack.gitflow.checkout import code_diff

        code = self.get_run_code(run_id)
        if other_run_id is None:
            return code_diff(self.repository, code.base, code.commit)
        return code_diff(self.repository, code.commit, self.get_run_code(other_run_id).commit)

    def checkout_run(self, run_id: str, path: str | os.PathLike[str] | None = None) -> Checkout:
        """Add a linked worktree holding the run's exact code, with its params in
        ``.gittrack-run.yaml``; the user's work tree, index, HEAD and branch are untouched.

        Args:
            run_id: the run's id.
            path: where (default: ``<repository>-run-<id>`` beside the repository).

        Returns:
            A ``Checkout`` naming the worktree and the commit it holds.

        Raises:
            ConflictError: ``path`` exists. Nothing is written on any error.
            NotFoundError: no such run, or its code is not in this repository.
            InvalidStateError: the run recorded no source commit.
        """
        from gittrack.gitflow.checkout import checkout_run

        return checkout_run(self.repository, run_id, Path(path) if path is not None else None)

    def reproduce_run(
        self,
        run_id: str,
        command: Sequence[str],
        path: str | os.PathLike[str] | None = None,
    ) -> Reproduction:
        """Run ``command`` on a run's exact code as a new run tagged ``gittrack.reproduces=<run_id>``,
        with the run's params in the environment (``gitflow/reproduce.py``).

        Args:
            run_id: the run to reproduce.
            command: the program and its arguments.
            path: keep the worktree there (default: a temporary one, removed after).

        Returns:
            A ``Reproduction`` with the new run, the command's exit code and the metric diff.

        Raises:
            InvalidInputError: the command is empty or not found.
            ConflictError: ``path`` exists.
            NotFoundError: no such run, or its code is not in this repository.
            InvalidStateError: the run recorded no source commit.
        """
        from gittrack.gitflow.reproduce import reproduce_run

        target = Path(path) if path is not None else None
        return reproduce_run(self.repository, run_id, command, target)

    def bisect_metric(
        self,
        metric: str,
        good: str,
        bad: str,
        *,
        threshold: float | None = None,
        direction: str | None = None,
        select: str = "latest",
        experiment_ids: Sequence[str] | None = None,
        command: Sequence[str] | None = None,
    ) -> BisectResult:
        """The first first-parent commit after ``good`` up to ``bad`` whose metric crossed the
        threshold, from the runs logged on those commits (``gitflow/bisect.py``).

        Args:
            metric: the metric's name.
            good: a revision where the metric is good.
            bad: a later revision where it is bad.
            threshold: the value that separates good from bad (default: midway).
            direction: ``up`` or ``down``, the way a bad value moved (default: as observed).
            select: which value stands for a commit with several runs (latest, min, max, mean).
            experiment_ids: count only runs of these experiments.
            command: run it in a temporary worktree on each probed commit that lacks runs, to
                log them; None uses only the runs already logged.

        Returns:
            A ``BisectResult``: the first bad commit or the commits lacking runs, and the steps.

        Raises:
            InvalidInputError: bad options, or ``good`` is not on ``bad``'s first-parent history.
            NotFoundError: a revision names no commit.
        """
        from gittrack.gitflow.bisect import bisect_metric, run_in_worktree
        from gittrack.gitflow.reproduce import check_command

        fill = None
        if command is not None:
            checked = check_command(command)

            def fill(commit: str) -> None:
                run_in_worktree(self.repository, commit, checked)

        return bisect_metric(
            self.repository,
            metric,
            good,
            bad,
            threshold=threshold,
            direction=direction,
            select=select,
            experiment_ids=experiment_ids,
            fill=fill,
        )

    # ------------------------------------------------- sharing and git hooks (DESIGN §10)
    @property
    def tracking_ref(self) -> str:
        """The full ref name of the tracking branch, e.g. ``refs/heads/gittrack``.

        Returns:
            The ref name.

        Raises:
            RepositoryError: the path is not inside a git repository.
        """
        return self.repository.branch.ref

    def push(self, remote: str | None = None) -> SyncReport:
        """Push the tracking branch, registry tags and notes to a remote, merging the remote's
        runs first when both sides logged (``gitflow/sync.py``).

        Args:
            remote: the git remote (default: origin, or the only one).

        Returns:
            A ``SyncReport`` saying what was merged, renumbered and pushed.

        Raises:
            InvalidInputError: no such remote, or none to choose.
            RepositoryError: the remote cannot be reached or refuses the push.
        """
        from gittrack.gitflow.sync import push

        return push(self.repository, remote)

    def pull(self, remote: str | None = None) -> SyncReport:
        """Fetch a remote's tracking branch, registry tags and notes and merge them into the
        local ones (``gitflow/sync.py``).

        Args:
            remote: the git remote (default: origin, or the only one).

        Returns:
            A ``SyncReport`` saying what was merged and renumbered.

        Raises:
            InvalidInputError: no such remote, or none to choose.
            RepositoryError: the remote cannot be reached.
        """
        from gittrack.gitflow.sync import pull

        return pull(self.repository, remote)

    def sync(self, remote: str | None = None) -> SyncReport:
        """Pull, then push: the local and the remote tracking branch end identical.

        Args:
            remote: the git remote (default: origin, or the only one).

        Returns:
            A ``SyncReport`` of both steps.

        Raises:
            InvalidInputError: no such remote, or none to choose.
            RepositoryError: the remote cannot be reached or refuses the push.
        """
        from gittrack.gitflow.sync import sync

        return sync(self.repository, remote)

    @staticmethod
    def hook_names() -> tuple[str, ...]:
        """The git hooks gittrack provides (``gitflow/hooks.py``).

        Returns:
            Their names, e.g. ``post-commit``.
        """
        from gittrack.gitflow.hooks import HOOK_NAMES

        return HOOK_NAMES

    @staticmethod
    def _hook_names(names: str | Sequence[str] | None) -> tuple[str, ...]:
        from gittrack.gitflow.hooks import parse_hook_names

        if names is None or isinstance(names, str):
            return parse_hook_names(names)
        return parse_hook_names(",".join(names))

    def install_hooks(
        self, names: str | Sequence[str] | None = None
    ) -> list[tuple[HookState, str]]:
        """Install gittrack's git hooks where git runs them (``core.hooksPath`` when set); a
        hook already there is chained, never overwritten. Installing twice changes nothing.

        Args:
            names: the hooks, as names or one comma-separated string (None: all of them).

        Returns:
            Each hook's ``HookState`` and what was done to it.

        Raises:
            InvalidInputError: a name is not one gittrack provides (before anything is written).
            RepositoryError: the path is not inside a git repository.
        """
        from gittrack.gitflow.hooks import install

        wanted = self._hook_names(names)
        return install(self.repository.repo, wanted)

    def uninstall_hooks(
        self, names: str | Sequence[str] | None = None
    ) -> list[tuple[HookState, str]]:
        """Remove gittrack's git hooks, putting back the hooks they chained.

        Args:
            names: the hooks, as names or one comma-separated string (None: all of them).

        Returns:
            Each hook's ``HookState`` and what was done to it.

        Raises:
            InvalidInputError: a name is not one gittrack provides (before anything is written).
            RepositoryError: the path is not inside a git repository.
        """
        from gittrack.gitflow.hooks import uninstall

        wanted = self._hook_names(names)
        return uninstall(self.repository.repo, wanted)

    def hook_status(self, names: str | Sequence[str] | None = None) -> list[HookState]:
        """Which of gittrack's git hooks are installed.

        Args:
            names: the hooks, as names or one comma-separated string (None: all of them).

        Returns:
            One ``HookState`` per hook: installed, not installed or foreign.

        Raises:
            InvalidInputError: a name is not one gittrack provides.
            RepositoryError: the path is not inside a git repository.
        """
        from gittrack.gitflow.hooks import status

        wanted = self._hook_names(names)
        return status(self.repository.repo, wanted)

    def run_hook(self, name: str, args: Sequence[str]) -> int:
        """Run the gittrack part of one git hook (what the installed hook scripts call).

        Args:
            name: the hook's name, one of ``hook_names()``.
            args: the arguments git gave the hook.

        Returns:
            The hook's exit status (0 unless a strict pre-push hook failed).

        Raises:
            InvalidInputError: ``name`` is not one gittrack provides (checked first).
        """
        from gittrack.gitflow.hooks import HOOK_NAMES, run_hook

        if name not in HOOK_NAMES:
            self._hook_names(name)  # raises, naming the hooks there are
        return run_hook(self.repository, name, args)

    def run_exists(self, run_id: str) -> bool:
        """Whether a run with this id exists (live or committed).

        Args:
            run_id: the run's id.

        Returns:
            True when it exists.
        """
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
        """The model registry of this repository (git tags, DESIGN §6).

        Returns:
            The registry service the registry methods delegate to.
        """
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
        """Register a model name.

        Args:
            name: the model's name (GTO's naming rules).
            tags: tags of the model.
            description: its description.

        Returns:
            The registered model.

        Raises:
            InvalidInputError: a bad name, tag or description.
            ConflictError: a model of that name exists.
        """
        return self.registry.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str, *, at: str | None = None) -> RegisteredModel:
        """A registered model with its latest versions and aliases.

        Args:
            name: the model's name.
            at: a revision or date: the registry as it was then.

        Returns:
            The registered model.

        Raises:
            NotFoundError: no model has that name.
        """
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
        """One page of registered models matching a filter.

        Args:
            filter_string: a filter such as ``name LIKE 'wine%'`` or ``tags.team = 'x'``.
            max_results: the page size (0 or less: an empty page, as MLflow's client).
            order_by: sort keys, each ``<field> [ASC|DESC]``.
            page_token: the token of the previous page.
            at: a revision or date: the registry as it was then.

        Returns:
            A paged list; its ``token`` names the next page.

        Raises:
            InvalidInputError: a malformed filter, order or page token.
        """
        if validation.asks_for_no_results(max_results):
            from gittrack.query.paging import PagedList

            return PagedList([])  # MLflow's client answers 0 or less with no models
        return self.registry.search_registered_models(
            filter_string, max_results, order_by, page_token, at
        )

    def registered_model_listing(
        self, filter_string: str | None = None, *, at: str | None = None
    ) -> list[RegisteredModelSummary]:
        """Every registered model matching a filter, as a summary with its active versions.

        What ``gittrack models list`` shows, read once: cheaper than
        ``search_registered_models`` plus ``search_model_versions`` in a large registry, as no
        entity is built (a summary names the latest version of each stage by its number), and
        the whole registry's listing is made again only when a tag or the tracking branch
        changed.

        Args:
            filter_string: a filter such as ``name LIKE 'wine%'`` or ``tags.team = 'x'``.
            at: a revision or date: the registry as it was then.

        Returns:
            One read-only summary per model, ordered by name.

        Raises:
            InvalidInputError: a malformed filter.
        """
        return self.registry.model_listing(filter_string, at)

    def update_registered_model(
        self, name: str, description: str | None = None, **_ignored: Any
    ) -> RegisteredModel:
        """Set a registered model's description.

        Args:
            name: the model's name.
            description: the new description.

        Returns:
            The updated model.

        Raises:
            NotFoundError: no model has that name.
        """
        return self.registry.update_registered_model(name, description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model; its versions, stages and aliases follow.

        Args:
            name: the model's name.
            new_name: its new name.

        Returns:
            The renamed model.

        Raises:
            NotFoundError: no model has that name.
            ConflictError: a model has the new name.
            InvalidInputError: a bad name.
        """
        return self.registry.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions (their tags are removed).

        Args:
            name: the model's name.

        Raises:
            NotFoundError: no model has that name.
            PolicyError: the registry policy forbids it.
        """
        self.registry.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model.

        Args:
            name: the model's name.
            key: the tag's name.
            value: its value, stored as a string.

        Raises:
            NotFoundError: no model has that name.
            InvalidInputError: a bad key or value.
        """
        self.registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Delete a tag of a registered model.

        Args:
            name: the model's name.
            key: the tag's name.

        Raises:
            NotFoundError: no such model or tag.
        """
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
        """Register a new version of a model from a logged model.

        Args:
            name: the registered model's name.
            source: the model's URI (``runs:/<run_id>/<path>``, ``models:/...`` or a path).
            run_id: the run that logged it (read from ``source`` when it is a ``runs:/`` URI).
            tags: tags of the version.
            run_link: accepted for MLflow compatibility.
            description: the version's description.

        Returns:
            The new version (number one more than the highest so far).

        Raises:
            NotFoundError: no such registered model, or the source does not exist.
            InvalidInputError: a bad source, tag or description.
        """
        return self.registry.create_model_version(name, source, run_id, tags, description)

    def get_model_version(
        self, name: str, version: int | str, *, at: str | None = None
    ) -> ModelVersion:
        """One version of a registered model.

        Args:
            name: the model's name.
            version: the version number.
            at: a revision or date: the registry as it was then.

        Returns:
            The model version.

        Raises:
            NotFoundError: no such model or version.
        """
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
        """One page of model versions matching a filter.

        Args:
            filter_string: a filter such as ``name = 'wine'`` or ``run_id = '...'``.
            max_results: the page size.
            order_by: sort keys, each ``<field> [ASC|DESC]``.
            page_token: the token of the previous page.
            at: a revision or date: the registry as it was then.

        Returns:
            A paged list; its ``token`` names the next page.

        Raises:
            InvalidInputError: a malformed filter, order or page token.
        """
        return self.registry.search_model_versions(
            filter_string, max_results, order_by, page_token, at
        )

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        """Set a model version's description.

        Args:
            name: the model's name.
            version: the version number.
            description: the new description.

        Returns:
            The updated version.

        Raises:
            NotFoundError: no such model or version.
        """
        return self.registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a model version (its tags are removed).

        Args:
            name: the model's name.
            version: the version number.

        Raises:
            NotFoundError: no such model or version.
            PolicyError: the registry policy forbids it.
        """
        self.registry.delete_model_version(name, version)

    def set_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a model version, named by number or by stage.

        Args:
            name: the model's name.
            version: the version number (exactly one of ``version`` and ``stage``).
            key: the tag's name.
            value: its value, stored as a string.
            stage: the stage whose latest version is meant.

        Raises:
            NotFoundError: no such model or version, or no version in ``stage``.
            InvalidInputError: both or neither of version and stage, or a bad key or value.
        """
        number = self._version_or_stage(name, version, stage)
        self.registry.set_model_version_tag(name, number, _required(key, "key"), value)

    def delete_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        """Delete a tag of a model version, named by number or by stage.

        Args:
            name: the model's name.
            version: the version number (exactly one of ``version`` and ``stage``).
            key: the tag's name.
            stage: the stage whose latest version is meant.

        Raises:
            NotFoundError: no such model, version or tag.
            InvalidInputError: both or neither of version and stage.
        """
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
        """Move a model version to a stage (a GTO stage tag).

        Args:
            name: the model's name.
            version: the version number.
            stage: one of the configured stages (``None``, ``Staging``, ``Production``,
                ``Archived`` by default).
            archive_existing_versions: move the versions already in ``stage`` to ``Archived``.

        Returns:
            The version in its new stage.

        Raises:
            NotFoundError: no such model or version.
            InvalidInputError: an unknown stage.
            PolicyError: the registry policy forbids the transition.
        """
        return self.registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The latest version in each stage.

        Args:
            name: the model's name.
            stages: the stages to look at (default: all).

        Returns:
            At most one version per stage.

        Raises:
            NotFoundError: no model has that name.
        """
        return self.registry.get_latest_versions(name, stages)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point an alias (``champion``, say) at a model version; it moves from any other version.

        Args:
            name: the model's name.
            alias: the alias.
            version: the version number.

        Raises:
            NotFoundError: no such model or version.
            InvalidInputError: a bad or reserved alias (``latest``, ``v1``).
            PolicyError: the registry policy forbids it.
        """
        self.registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias of a registered model.

        Args:
            name: the model's name.
            alias: the alias.

        Raises:
            NotFoundError: no such model or alias.
        """
        self.registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at.

        Args:
            name: the model's name.
            alias: the alias.

        Returns:
            The model version.

        Raises:
            NotFoundError: no such model or alias.
        """
        return self.registry.get_model_version_by_alias(name, alias)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where a model version's files are: its source URI.

        Args:
            name: the model's name.
            version: the version number.

        Returns:
            The source URI (``runs:/...`` for a model logged in a run).

        Raises:
            NotFoundError: no such model or version.
        """
        return self.registry.get_model_version_download_uri(name, version)

    def get_registry_history(self, name: str) -> list[RegistryEvent]:
        """Every registration, stage change, alias move and deletion of ``name``, oldest first.

        Args:
            name: the model's name.

        Returns:
            The events, read from the registry's tags.
        """
        return self.registry.history(name)

    def verify_registry(self) -> list[PolicyViolation]:
        """Every registry tag that breaks the policy in ``.tracking/config.yaml``.

        Returns:
            The violations (empty when the registry follows its policy).
        """
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
