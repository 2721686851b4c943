"""The module-level API (``import gittrack as mlflow``): an active-run stack over ``Client``.

The stack of active runs is the only global mutable state of gittrack and lives here, with the
chosen tracking URI and experiment. As in MLflow, the stack (and the last run ended) belongs to
a thread: a worker thread starts with no active run, so its ``start_run()`` makes a top-level
run and its runs never become another thread's parent. The tracking URI and the experiment
are shared by every thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gittrack.client import Client, run_operations
from gittrack.entities import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    Run,
    RunOperations,
    RunStatus,
    ViewType,
)
from gittrack.errors import ConflictError, GittrackError, InvalidInputError, InvalidStateError
from gittrack.store import layout
from gittrack.tracking import validation
from gittrack.utils import clock

_logger = logging.getLogger(__name__)


class ActiveRun(Run):
    """The run ``start_run`` returns; as a context manager it ends the run, FAILED on error."""

    def __init__(self, run: Run) -> None:
        super().__init__(
            run.info,
            run.data,
            run.parent_run_id,
            run.source,
            run.metric_summaries,
            run.inputs,
            run.outputs,
        )

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
        if any(r.info.run_id == self.info.run_id for r in _state.runs.stack):
            end_run(status)
        return False


class _ThreadRuns(threading.local):
    """One thread's active-run stack and last ended run (``__init__`` runs once per thread)."""

    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_run_id: str | None = None
        self.last_model: LoggedModel | None = None


class _FluentState:
    def __init__(self) -> None:
        self.runs = _ThreadRuns()
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.client: Client | None = None


_state = _FluentState()


def _client() -> Client:
    if _state.client is None:
        _state.client = Client(_state.tracking_uri)
    return _state.client


# ------------------------------------------------------------------ tracking URI
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Track into the git repository at ``uri`` (a path or ``git+file://`` URI).

    The choice is also exported as ``GITTRACK_TRACKING_URI`` so every ``Client`` and child
    process uses it, and the active experiment is forgotten, as in MLflow.

    Args:
        uri: a path inside a git repository, or ``git+file://`` / ``file://`` followed by one.

    Raises:
        InvalidInputError: ``uri`` names a server (``http://``, ``databricks``, ...).
    """
    from gittrack.tracking.repository import tracking_path_from_uri

    path = tracking_path_from_uri(os.fspath(uri))
    _state.tracking_uri = str(path)
    # As MLflow does, the choice is also visible to every Client and to child processes.
    os.environ["GITTRACK_TRACKING_URI"] = str(path)
    _state.client = None
    _state.experiment_id = None


def get_tracking_uri() -> str:
    """The path of the tracking repository calls go to.

    Returns:
        The repository's work-tree path, as a string.

    Raises:
        RepositoryError: the current directory (or the URI set) is not inside a git repository.
    """
    return _client().tracking_uri


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI was chosen (``set_tracking_uri`` or ``GITTRACK_TRACKING_URI``).

    Returns:
        True when one was set, False when the current directory's repository is used.
    """
    return _state.tracking_uri is not None or bool(os.environ.get("GITTRACK_TRACKING_URI"))


def set_registry_uri(uri: str | os.PathLike[str]) -> None:
    """Accept a registry URI that names the tracking repository; refuse any other.

    The registry is git tags in the tracking repository (DESIGN §6), so there is no separate
    registry to point at: a URI naming another place is refused rather than ignored.

    Args:
        uri: a path or ``git+file://`` URI of the tracking repository.

    Raises:
        InvalidInputError: ``uri`` names another place than the tracking repository.
    """
    from gittrack.tracking.repository import open_repository, tracking_path_from_uri

    text = os.fspath(uri)
    tracking = Path(_client().tracking_uri)
    try:
        registry = open_repository(str(tracking_path_from_uri(text))).path
    except GittrackError:
        registry = None
    if registry is None or Path(registry).resolve() != Path(tracking).resolve():
        raise InvalidInputError(
            f"registry URI {text!r} is not the tracking repository {str(tracking)!r}: "
            "gittrack keeps the model registry as git tags in the tracking repository, so the "
            "registry URI may only name that repository (or be left unset)"
        )


def get_registry_uri() -> str:
    """The registry's URI: always the tracking repository's (see ``set_registry_uri``).

    Returns:
        The tracking repository's path, as a string.
    """
    return get_tracking_uri()


# ------------------------------------------------------------------- experiments
def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment.

    Args:
        name: the experiment's name, unique among active and deleted experiments.
        artifact_location: where its runs' artifacts go (see ``Client.create_experiment``).
        tags: tags of the experiment.

    Returns:
        The new experiment's id.

    Raises:
        InvalidInputError: a bad name, tag or artifact location.
        ConflictError: an experiment of that name exists.
    """
    return _client().create_experiment(name, artifact_location, tags)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active for later runs, creating it by name when it is missing.

    Args:
        experiment_name: the experiment's name (exactly one of the two arguments).
        experiment_id: the experiment's id.

    Returns:
        The experiment now active.

    Raises:
        InvalidInputError: both or neither argument, or a bad name.
        NotFoundError: no experiment has ``experiment_id``.
        InvalidStateError: the experiment is deleted.
    """
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInputError(
            "set_experiment takes exactly one of experiment_name or experiment_id"
        )
    client = _client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        if experiment is None:
            experiment_id = client.create_experiment(experiment_name, exist_ok=True)  # type: ignore[arg-type]
            experiment = client.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidStateError(
            f"experiment {experiment.name!r} ({experiment.experiment_id}) is deleted: restore it "
            "with `Client().restore_experiment(...)` or choose another name"
        )
    _state.experiment_id = experiment.experiment_id
    return experiment


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with id ``experiment_id``.

    Args:
        experiment_id: the experiment's id.

    Returns:
        The experiment.

    Raises:
        NotFoundError: no experiment has that id.
    """
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment named ``name``, or None when there is none.

    Args:
        name: the experiment's name.

    Returns:
        The experiment, or None.
    """
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Experiments matching a filter, in MLflow's default order unless ``order_by`` says otherwise.

    Args:
        view_type: active, deleted or all experiments.
        max_results: at most this many (None: all; 0 or less: none, as MLflow's fluent
            search).
        filter_string: a filter in the query grammar (``name LIKE 'a%'``, ``tags.team = 'x'``).
        order_by: sort keys, each ``<field> [ASC|DESC]``.

    Returns:
        The experiments found.

    Raises:
        InvalidInputError: a malformed filter or order, or a bad ``max_results``.
    """
    if validation.asks_for_no_results(max_results):
        return []  # as MLflow's fluent search, where Client.search_experiments refuses it
    return _client().search_experiments(view_type, max_results, filter_string, order_by)


def delete_experiment(experiment_id: str) -> None:
    """Mark an experiment deleted (its runs stay, and ``Client.restore_experiment`` undoes it).

    Args:
        experiment_id: the experiment's id.

    Raises:
        NotFoundError: no experiment has that id.
        InvalidInputError: the ``Default`` experiment cannot be deleted.
    """
    _client().delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the active experiment (the ``Default`` one when none was chosen).

    Args:
        key: the tag's name.
        value: its value, stored as a string.

    Raises:
        InvalidInputError: a bad key or value.
    """
    _client().set_experiment_tag(_current_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active experiment, as ``set_experiment_tag`` per key.

    Args:
        tags: tag names and values.

    Raises:
        InvalidInputError: a bad key or value (the tags before it are set).
    """
    for key, value in tags.items():
        set_experiment_tag(key, value)


def _current_experiment_id() -> str:
    if _state.experiment_id is not None:
        return _state.experiment_id
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("GITTRACK_EXPERIMENT_ID")
    if env_id:
        return env_id
    env_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get(
        "GITTRACK_EXPERIMENT_NAME"
    )
    if env_name:
        return set_experiment(env_name).experiment_id
    return layout.DEFAULT_EXPERIMENT_ID


# ------------------------------------------------------------------------- runs
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it the active one of this thread.

    As in MLflow, ``run_name`` names the run and its ``mlflow.runName`` tag together: it wins
    over that tag in ``tags`` for a new run, and renames a resumed run. Without ``run_id``,
    the ``MLFLOW_RUN_ID`` (or ``GITTRACK_RUN_ID``) environment variable names the run to
    resume and is then removed from the environment, as MLflow does for the run a launcher
    (``mlflow run``, ``gittrack reproduce``) created.

    Args:
        run_id: resume this run instead of starting one.
        experiment_id: the experiment of a new run (default: the active experiment).
        run_name: the run's name (default: a generated one).
        nested: start the run under the active run, which must exist.
        parent_run_id: the parent of a new run, given explicitly.
        tags: tags of the run.
        description: the run's description (the ``mlflow.note.content`` tag).
        log_system_metrics: accepted for MLflow compatibility; no system metrics are logged.

    Returns:
        The active run, also a context manager that ends it (FAILED on an exception).

    Raises:
        InvalidStateError: a run is already active and ``nested`` is False, or a resumed run
            belongs to another experiment than the one ``set_experiment`` chose.
        InvalidInputError: a bad name, tag, description or experiment.
        NotFoundError: ``run_id``, ``experiment_id`` or ``parent_run_id`` does not exist.
    """
    client = _client()
    if run_id is None:
        run_id = _run_id_from_environment()
    if _state.runs.stack and not nested:
        active = _state.runs.stack[-1].info.run_id
        raise InvalidStateError(
            f"run {active} is already active: end it first, or call start_run(nested=True)"
        )
    if parent_run_id is None and nested and _state.runs.stack:
        parent_run_id = _state.runs.stack[-1].info.run_id
    if run_name is not None:
        run_name = validation.check_run_name(run_name)
        if run_id is None:
            tags = {**(tags or {}), validation.RUN_NAME_TAG: run_name}
    if run_id is not None:
        tags = validation.check_tags(tags)  # before the run is reopened
        _check_resumed_experiment(client, run_id)
        run = client.resume_run(run_id)
        if run_name:  # MLflow renames first, then sets the tags given
            tags = {validation.RUN_NAME_TAG: run_name, **tags}
        if tags:
            client.set_tags(run_id, tags)
            run = client.get_run(run_id)
    else:
        run = client.create_run(
            experiment_id=str(experiment_id)
            if experiment_id is not None
            else _current_experiment_id(),
            tags=tags,
            run_name=run_name,
            parent_run_id=parent_run_id,
            description=description,
        )
    active = ActiveRun(run)
    _state.runs.stack.append(active)
    return active


RUN_ID_ENV_VARS = ("MLFLOW_RUN_ID", "GITTRACK_RUN_ID")


def _run_id_from_environment() -> str | None:
    """The run a launcher asked this process to resume, taken out of the environment so
    that a later ``start_run`` starts a new run (MLflow's rule for ``MLFLOW_RUN_ID``)."""
    found = None
    for name in RUN_ID_ENV_VARS:
        value = os.environ.pop(name, None)
        found = found or value or None
    return found


def _check_resumed_experiment(client: Client, run_id: str) -> None:
    chosen = _state.experiment_id
    if chosen is None:
        return
    run = client.get_run(run_id)
    if chosen != run.info.experiment_id:
        raise InvalidStateError(
            f"cannot resume run {run.info.run_id}: it belongs to experiment "
            f"{run.info.experiment_id}, but set_experiment chose experiment {chosen}; "
            "set the same experiment (or none) before resuming it"
        )


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run (the innermost one when runs are nested): it is committed.

    Does nothing when no run is active. When the commit fails (a full disk, say), the run stays
    the active one and ``end_run`` can be called again.

    Args:
        status: FINISHED, FAILED or KILLED.

    Raises:
        InvalidInputError: ``status`` is not one of MLflow's.
        RepositoryError: the commit could not be written; nothing was lost.
    """
    if not _state.runs.stack:
        return
    run = _state.runs.stack[-1]
    # Popped once committed: when the commit fails (a full disk, say), the run is still
    # the active one and ``end_run`` can be called again.
    _client().set_terminated(run.info.run_id, status)
    _state.runs.stack.pop()
    _state.runs.last_run_id = run.info.run_id


def active_run() -> ActiveRun | None:
    """The active run of this thread, or None.

    Returns:
        The innermost active run, or None.
    """
    return _state.runs.stack[-1] if _state.runs.stack else None


def last_active_run() -> Run | None:
    """The active run, or else the run this thread ended last, read afresh.

    Returns:
        The run, or None when this thread has started none.
    """
    if _state.runs.stack:
        return get_run(_state.runs.stack[-1].info.run_id)
    if _state.runs.last_run_id is None:
        return None
    return get_run(_state.runs.last_run_id)


def last_logged_model() -> LoggedModel | None:
    """The model this thread logged last (``log_model``), or None if it logged none.

    Returns:
        A ``LoggedModel`` with MLflow 3's ``model_id``, ``name``, ``source_run_id``,
        ``model_uri`` (``models:/<model_id>``), ``artifact_location`` and ``experiment_id``
        (a subset of MLflow's ``LoggedModel``: no status, metrics or params of its own).
    """
    return _state.runs.last_model


def record_logged_model(model_id: str | None, name: str, run_id: str) -> None:
    """Remember a model just logged into ``run_id`` for ``last_logged_model`` (flavors call it).

    Args:
        model_id: the id ``log_model`` wrote into ``MLmodel``; None records nothing.
        name: the model's artifact path in the run.
        run_id: the run the model was logged into.
    """
    if model_id is None:
        return
    run = _client().get_run(run_id)
    _state.runs.last_model = LoggedModel(
        model_id=model_id,
        name=name,
        source_run_id=run_id,
        experiment_id=run.info.experiment_id,
        artifact_location=f"runs:/{run_id}/{name}",
        creation_timestamp=clock.now_ms(),
    )


def get_run(run_id: str) -> Run:
    """The run ``run_id``, live or committed.

    Args:
        run_id: the run's id (32 hexadecimal digits).

    Returns:
        The run with its info, params, metrics (latest values) and tags.

    Raises:
        NotFoundError: no run has that id.
        InvalidInputError: ``run_id`` is not a run id.
    """
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Mark a run deleted (``Client.restore_run`` undoes it).

    Args:
        run_id: the run's id.

    Raises:
        NotFoundError: no run has that id.
    """
    _client().delete_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    """The run ``run_id`` is nested under, or None for a top-level run.

    Args:
        run_id: the child run's id.

    Returns:
        The parent run, or None.

    Raises:
        NotFoundError: no run has that id.
    """
    parent_run_id = get_run(run_id).parent_run_id
    return None if parent_run_id is None else get_run(parent_run_id)


def flush_async_logging() -> None:
    """Wait for asynchronous logging to finish: gittrack logs synchronously, so it has."""


def _run_id(run_id: str | None = None) -> str:
    """The run a logging call goes to; like MLflow, a run is started when none is active."""
    if run_id is not None:
        return run_id
    if _state.runs.stack:
        return _state.runs.stack[-1].info.run_id
    return start_run().info.run_id


# ---------------------------------------------------------------------- logging
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a parameter of the active run (started when none is).

    Args:
        key: the parameter's name.
        value: its value, stored as a string.
        synchronous: False returns a ``RunOperations`` (the value is stored already).

    Returns:
        ``value``, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key or value.
        ConflictError: the parameter was logged before with another value.
    """
    logged = _client().log_param(_run_id(), key, value)
    return run_operations(synchronous) or logged


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    """Log several parameters at once: all of them, or none when one is refused.

    Args:
        params: names and values.
        synchronous: False returns a ``RunOperations``.
        run_id: the run to log to (default: the active run, started when none is).

    Returns:
        None, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key or value.
        ConflictError: a parameter was logged before with another value.
    """
    _client().log_params(_run_id(run_id), params)
    return run_operations(synchronous)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    **_ignored: Any,
) -> RunOperations | None:
    """Log one point of a metric; the point survives ``kill -9`` once the call returns.

    Args:
        key: the metric's name.
        value: a number (NaN and the infinities are kept as such).
        step: the step (default 0).
        synchronous: False returns a ``RunOperations``.
        timestamp: milliseconds since the epoch (default: now).
        run_id: the run to log to (default: the active run, started when none is).

    Returns:
        None, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key, value, step or timestamp.
        NotFoundError: ``run_id`` does not exist.
    """
    stack = _state.runs.stack
    target = run_id or (stack[-1].info.run_id if stack else _run_id())
    client = _state.client or _client()
    # The hot path goes to the run store itself: through Client.log_metric it costs
    # 0.2-0.6 us more per point (7-20%), measured with fluent.log_metric in a loop.
    client.repository.runs.log_metric(target, key, value, timestamp, step or 0)
    return run_operations(synchronous)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    **_ignored: Any,
) -> RunOperations | None:
    """Log one point of each of several metrics, with the same step and timestamp.

    Args:
        metrics: names and values.
        step: the step (default 0).
        synchronous: False returns a ``RunOperations``.
        run_id: the run to log to (default: the active run, started when none is).
        timestamp: milliseconds since the epoch (default: now).

    Returns:
        None, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key, value, step or timestamp (nothing is logged).
    """
    _client().log_metrics(_run_id(run_id), metrics, step, timestamp)
    return run_operations(synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    """Set a tag on the active run (started when none is).

    Args:
        key: the tag's name.
        value: its value, stored as a string.
        synchronous: False returns a ``RunOperations``.

    Returns:
        None, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key or value.
    """
    _client().set_tag(_run_id(), key, value)
    return run_operations(synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    """Set several tags on the active run (started when none is): all of them or none.

    Args:
        tags: names and values.
        synchronous: False returns a ``RunOperations``.

    Returns:
        None, or a ``RunOperations`` when ``synchronous`` is False.

    Raises:
        InvalidInputError: a bad key or value.
    """
    _client().set_tags(_run_id(), tags)
    return run_operations(synchronous)


def delete_tag(key: str) -> None:
    """Delete a tag of the active run.

    Args:
        key: the tag's name.

    Raises:
        NotFoundError: the run has no such tag.
        InvalidInputError: a bad key.
    """
    _client().delete_tag(_run_id(), key)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Copy a local file into the run's artifacts.

    Args:
        local_path: the file to copy.
        artifact_path: the directory inside the artifacts (default: their root).
        run_id: the run (default: the active run, started when none is).

    Raises:
        InvalidInputError: the file is missing, or ``artifact_path`` would leave the run.
    """
    _client().log_artifact(_run_id(run_id), local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Copy a local directory's files into the run's artifacts.

    Args:
        local_dir: the directory to copy.
        artifact_path: the directory inside the artifacts (default: their root).
        run_id: the run (default: the active run, started when none is).

    Raises:
        InvalidInputError: the directory is missing, or a path would leave the run.
    """
    _client().log_artifacts(_run_id(run_id), local_dir, artifact_path)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Write a dictionary as a JSON artifact, or YAML when the name ends in ``.yaml``/``.yml``.

    Args:
        dictionary: the data.
        artifact_file: the artifact's path inside the run.
        run_id: the run (default: the active run, started when none is).

    Raises:
        InvalidInputError: the data cannot be serialised, or the path would leave the run.
    """
    _client().log_dict(_run_id(run_id), dictionary, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Write a string as a text artifact.

    Args:
        text: the text.
        artifact_file: the artifact's path inside the run.
        run_id: the run (default: the active run, started when none is).

    Raises:
        InvalidInputError: ``text`` is not a str, or the path would leave the run.
    """
    _client().log_text(_run_id(run_id), text, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict | None = None) -> None:
    """Save a matplotlib figure (any format it can save), or a plotly figure as ``.html``.

    Args:
        figure: the figure.
        artifact_file: the artifact's path inside the run; its suffix picks the format.
        save_kwargs: keyword arguments for ``savefig``/``write_html``.

    Raises:
        InvalidInputError: not a figure gittrack can save under that name.
    """
    _client().log_figure(_run_id(), figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    **_ignored: Any,
) -> None:
    """Save an image (a numpy array or a PIL image) as an artifact.

    Args:
        image: an HxW, HxWx3 or HxWx4 array, or a PIL image.
        artifact_file: the artifact's path (default: ``images/<key>_step_<step>.png``).
        key: names the image when ``artifact_file`` is not given.
        step: the step in that name.

    Raises:
        InvalidInputError: neither ``artifact_file`` nor ``key``, or an image that cannot be saved.
    """
    if artifact_file is None:
        if key is None:
            raise InvalidInputError("log_image needs artifact_file (or key)")
        artifact_file = f"images/{key}_step_{step or 0}.png"
    _client().log_image(_run_id(), image, artifact_file)


def log_input(
    dataset: Any = None,
    context: str | None = None,
    tags: dict[str, str] | None = None,
    model: Any = None,
) -> None:
    """Record a dataset the active run read (``mlflow.log_input``); starts a run if none is.

    Args:
        dataset: a ``gittrack.data`` dataset (``from_pandas``, ``from_numpy``).
        context: how it was used (``"training"``): the ``mlflow.data.context`` input tag.
        tags: more input tags.
        model: an MLflow 3 logged-model input: not supported (models are run artifacts).

    Raises:
        InvalidInputError: context or tags without a dataset, a model, or a bad dataset.
    """
    if dataset is None and (context or tags):
        raise InvalidInputError("log_input: a context or tags need a dataset")
    log_inputs(
        [dataset] if dataset is not None else None,
        [context] if dataset is not None else None,
        [tags] if dataset is not None else None,
        [model] if model is not None else None,
    )


def log_inputs(
    datasets: list[Any] | None = None,
    contexts: list[str | None] | None = None,
    tags_list: list[dict[str, str] | None] | None = None,
    models: list[Any] | None = None,
) -> None:
    """Record several datasets of the active run (``mlflow.log_inputs``).

    Args:
        datasets: ``gittrack.data`` datasets (an entry may be None).
        contexts: the context of each dataset, or None.
        tags_list: the input tags of each dataset, or None.
        models: MLflow 3 logged-model inputs: not supported (models are run artifacts).

    Raises:
        InvalidInputError: lists of different lengths, a context or tags without a dataset,
            a model, or a bad dataset.
    """
    from gittrack.entities import DatasetInput, InputTag
    from gittrack.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    datasets = list(datasets or [])
    contexts = list(contexts) if contexts is not None else [None] * len(datasets)
    tags_list = list(tags_list) if tags_list is not None else [None] * len(datasets)
    if not (len(datasets) == len(contexts) == len(tags_list)) and datasets:
        raise InvalidInputError(
            f"log_inputs: datasets ({len(datasets)}), contexts ({len(contexts)}) and "
            f"tags_list ({len(tags_list)}) must have the same length"
        )
    inputs = []
    for dataset, context, tags in zip(datasets, contexts, tags_list):
        if dataset is None:
            if context or tags:
                raise InvalidInputError("log_inputs: a context or tags need a dataset")
            continue
        if not hasattr(dataset, "to_entity"):
            raise InvalidInputError(
                f"log_input takes a gittrack.data dataset (from_pandas, from_numpy), "
                f"not {type(dataset).__name__}"
            )
        input_tags = [InputTag(str(k), v) for k, v in (tags or {}).items()]
        if context:
            input_tags.append(InputTag(MLFLOW_DATASET_CONTEXT, context))
        inputs.append(DatasetInput(dataset.to_entity(), input_tags))
    if inputs or models:
        _client().log_inputs(_run_id(), inputs, models)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a table to a run (``mlflow.log_table``); see ``Client.log_table``.

    Args:
        data: a pandas DataFrame, or a dict of columns.
        artifact_file: the table's path in the run, ending in ``.json`` or ``.parquet``.
        run_id: the run (default: the active run, started if there is none).

    Raises:
        InvalidInputError: a bad file name or data (nothing is written then).
    """
    _client().log_table(_run_id(run_id), data, artifact_file)


def load_table(
    artifact_file: str,
    run_ids: list[str] | None = None,
    extra_columns: list[str] | None = None,
) -> Any:
    """Load a table from the runs of the current experiment (``mlflow.load_table``).

    Args:
        artifact_file: the table's path in the runs.
        run_ids: only these runs.
        extra_columns: ``search_runs`` columns (``run_id``...) to add to each run's rows.

    Returns:
        A pandas DataFrame of the rows of every run that logged the table.

    Raises:
        NotFoundError: no run has the table.
    """
    return _client().load_table(_current_experiment_id(), artifact_file, run_ids, extra_columns)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifacts, or of one artifact path in them.

    Args:
        artifact_path: a path inside the artifacts.

    Returns:
        ``runs:/<run_id>[/<artifact_path>]``, or the run's directory outside git when its
        experiment has an ``artifact_location``.
    """
    run_id = _run_id()
    uri = _client().get_run(run_id).info.artifact_uri
    if uri.startswith("runs:/"):
        uri = f"runs:/{run_id}"
    return f"{uri}/{artifact_path}" if artifact_path else uri


# --------------------------------------------------------------------- registry
def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[RegisteredModel]:
    """Every registered model matching the filter (all pages, unlike ``Client``'s).

    Args:
        max_results: at most this many (None: all; 0 or less: none, as in MLflow).
        filter_string: a filter such as ``name LIKE 'wine%'`` or ``tags.team = 'x'``.
        order_by: sort keys, each ``<field> [ASC|DESC]``.

    Returns:
        The registered models.

    Raises:
        InvalidInputError: a malformed filter or order.
    """
    if validation.asks_for_no_results(max_results):
        return []
    return list(_client().registry.search_registered_models(filter_string, max_results, order_by))


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int | None = None,
    *,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register the model at ``model_uri`` as a new version of ``name``, creating the
    registered model if it does not exist (MLflow's ``mlflow.register_model``).

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/...`` or a path.
        name: the registered model's name.
        await_registration_for: accepted for MLflow compatibility: registration is immediate.
        tags: tags of the new version.

    Returns:
        The new ``ModelVersion``.

    Raises:
        InvalidInputError: a bad name, URI or tag.
        NotFoundError: ``model_uri`` names no model.
    """
    client = Client(get_tracking_uri())
    # It may exist already, or another process may create it a moment before we do.
    with contextlib.suppress(ConflictError):
        client.create_registered_model(name)
    return client.create_model_version(name, model_uri, tags=tags)


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[ModelVersion]:
    """Every model version matching the filter (all pages, unlike ``Client``'s).

    Args:
        max_results: at most this many (None: all; 0 or less: none, as in MLflow).
        filter_string: a filter such as ``name = 'wine'`` or ``run_id = '...'``.
        order_by: sort keys, each ``<field> [ASC|DESC]``.

    Returns:
        The model versions.

    Raises:
        InvalidInputError: a malformed filter or order.
    """
    if validation.asks_for_no_results(max_results):
        return []
    return list(_client().registry.search_model_versions(filter_string, max_results, order_by))


# ----------------------------------------------------------------------- search
def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int | None = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs as a pandas DataFrame with MLflow's columns (or a list of ``Run``).

    As in MLflow: without ids or names, the active experiment is searched, or every active
    experiment with ``search_all_experiments``; names that match no experiment are skipped
    with a warning; giving both ids and names is an error.

    Args:
        experiment_ids: the experiments to search.
        filter_string: a filter in MLflow's grammar (``metrics.acc > 0.9 AND params.lr = '0.1'``,
            with OR, parentheses and IN).
        run_view_type: active, deleted or all runs.
        max_results: at most this many.
        order_by: sort keys, each ``<column> [ASC|DESC]``.
        output_format: ``pandas`` or ``list``.
        search_all_experiments: search every active experiment when none is named.
        experiment_names: the experiments to search, by name.

    Returns:
        A DataFrame (one row a run), or a list of ``Run``.

    Raises:
        InvalidInputError: a malformed filter or order, both ids and names, or a bad
            ``max_results`` or ``output_format``.
    """
    client = _client()
    if experiment_ids is not None and experiment_names is not None:
        raise InvalidInputError("search_runs takes experiment_ids or experiment_names, not both")
    if experiment_names is not None:
        experiment_ids = []
        for name in experiment_names:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                _logger.warning("no experiment named %r: its runs are not searched", name)
            else:
                experiment_ids.append(experiment.experiment_id)
    elif experiment_ids is None:
        if search_all_experiments:
            experiment_ids = [e.experiment_id for e in client.search_experiments()]
        else:
            experiment_ids = [_current_experiment_id()]
    return client.search_runs_frame(
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        run_view_type=run_view_type,
        max_results=max_results,
        order_by=order_by,
        output_format=output_format,
    )


@atexit.register
def _end_runs_at_exit() -> None:
    while _state.runs.stack:
        try:
            end_run()
        except Exception as exc:  # pragma: no cover - nothing more can be done at exit
            run = _state.runs.stack.pop()
            _logger.warning(
                "run %s could not be committed at exit (%s); it stays live, and "
                "`gittrack recover` commits it later",
                run.info.run_id,
                exc,
            )


def _reset_state() -> None:
    """Forget the active runs and settings without ending them (used between tests)."""
    global _state
    _state = _FluentState()
