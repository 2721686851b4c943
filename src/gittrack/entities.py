"""Plain data classes shared by every layer, shaped like MLflow's entities.

They carry data only; behaviour lives in the services that take them. Times are integer
milliseconds since the epoch, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ViewType(IntEnum):
    """Which lifecycle stages a search returns (MLflow's values)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def from_string(cls, value: str) -> ViewType:
        return cls[value.upper()]

    @classmethod
    def to_string(cls, value: ViewType) -> str:
        return cls(value).name


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"

    @staticmethod
    def matches_view_type(view_type: ViewType, lifecycle: str) -> bool:
        if view_type == ViewType.ALL:
            return True
        if view_type == ViewType.DELETED_ONLY:
            return lifecycle == LifecycleStage.DELETED
        return lifecycle == LifecycleStage.ACTIVE


class RunStatus:
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINATED = (FINISHED, FAILED, KILLED)

    @staticmethod
    def is_terminated(status: str) -> bool:
        return status in RunStatus.TERMINATED


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class MetricSummary:
    """Latest point of one metric key plus its range, as kept in ``meta.yaml``."""

    key: str
    value: float
    step: int
    timestamp: int
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class SourceInfo:
    """The code a run ran on (DESIGN §5)."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    snapshot: str | None = None
    untracked_skipped: tuple[str, ...] = ()
    entry_point: str | None = None


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InputTag:
    """A tag on one input of a run (``mlflow.data.context``: ``train``, ``eval``...)."""

    key: str
    value: str


@dataclass(frozen=True)
class Dataset:
    """A dataset a run read, described as MLflow records it (name, digest, source, schema)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "schema": self.schema,
            "profile": self.profile,
        }


@dataclass
class DatasetInput:
    """One dataset a run took as input, with the tags of that use."""

    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dictionary(),
            "tags": {tag.key: tag.value for tag in self.tags},
        }


@dataclass
class RunInputs:
    """What a run took as input (``run.inputs``); empty until gittrack records inputs."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[Any] = field(default_factory=list)

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "model_inputs": list(self.model_inputs),
            "dataset_inputs": [d.to_dictionary() for d in self.dataset_inputs],
        }


@dataclass
class RunOutputs:
    """What a run produced as MLflow 3 logged models (``run.outputs``); gittrack keeps models
    in the run's artifacts, so this is empty."""

    model_outputs: list[Any] = field(default_factory=list)

    def to_dictionary(self) -> dict[str, Any]:
        return {"model_outputs": list(self.model_outputs)}


@dataclass
class Run:
    """A run as MLflow scripts see it: ``run.info.run_id``, ``run.data.metrics``..."""

    info: RunInfo
    data: RunData
    parent_run_id: str | None = None
    source: SourceInfo = field(default_factory=SourceInfo)
    metric_summaries: dict[str, MetricSummary] = field(default_factory=dict)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)

    def to_dictionary(self) -> dict[str, Any]:
        """The run as plain dicts, in MLflow's shape (``info``, ``data``, ``inputs``,
        ``outputs``), e.g. to dump it as JSON."""
        info = self.info
        return {
            "info": {
                "artifact_uri": info.artifact_uri,
                "end_time": info.end_time,
                "experiment_id": info.experiment_id,
                "lifecycle_stage": info.lifecycle_stage,
                "run_id": info.run_id,
                "run_name": info.run_name,
                "start_time": info.start_time,
                "status": info.status,
                "user_id": info.user_id,
            },
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
            "inputs": self.inputs.to_dictionary(),
            "outputs": self.outputs.to_dictionary(),
        }


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass
class RegisteredModel:
    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    latest_versions: list[ModelVersion] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegisteredModelSummary:
    """A registered model as ``gittrack models list`` shows it, cheap to read for many models.

    ``RegisteredModel``'s fields, but the latest version in each stage (``"None"`` included,
    in stage order) as ``(stage, version number)`` pairs rather than ``ModelVersion`` entities,
    aliases with their version numbers, and the numbers of the active versions, oldest first.
    Read-only (``tags`` and ``aliases`` are read-only mappings), so one summary may be handed
    to many callers.
    """

    name: str
    creation_timestamp: int | None
    last_updated_timestamp: int | None
    description: str | None
    tags: Mapping[str, str]
    latest_stages: tuple[tuple[str, int], ...]
    aliases: Mapping[str, int]
    versions: tuple[int, ...]


@dataclass
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    current_stage: str = "None"
    source: str | None = None
    run_id: str | None = None
    status: str = "READY"
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    model_id: str | None = None
    run_link: str | None = None
    """A link to the run on a tracking server; None, as MLflow leaves it for local stores."""


@dataclass(frozen=True)
class LoggedModel:
    """A model logged into a run: the part of MLflow 3's ``LoggedModel`` gittrack keeps.

    The model lives in its run's artifacts (``artifact_location``, a ``runs:/`` URI);
    ``model_uri`` (``models:/<model_id>``) names the same directory. MLflow's status, model
    params, metrics and tags of the model itself are not kept.
    """

    model_id: str
    name: str
    source_run_id: str
    experiment_id: str | None = None
    artifact_location: str | None = None
    creation_timestamp: int | None = None

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``, which every gittrack loader takes."""
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class FileInfo:
    """One entry of ``list_artifacts``: a path relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None = None


class RunOperations:
    """What a logging call with ``synchronous=False`` returns (MLflow's ``RunOperations``).

    gittrack writes every logging call before it returns (to the live run's files, or a
    commit for an ended run), so there is never anything to wait for: ``wait`` returns at
    once, and an error was already raised by the call itself.
    """

    def wait(self) -> None:
        """Return once the logged data is stored: it already is."""
