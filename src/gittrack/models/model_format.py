"""The on-disk layout of a saved model, in MLflow's model format.

A model directory holds:

- ``MLmodel``: YAML describing the model (``ModelConfig``): its flavors, uuid, creation time,
  signature, input example info and, when logged from a run, ``run_id``/``artifact_path`` and
  the ``model_id`` that ``models:/<model_id>`` resolves (``m-`` and the uuid, MLflow 3's form);
- the serialized model file named by the flavors;
- ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``: the environment to run it;
- ``input_example.json`` and ``serving_input_example.json`` when an example was given.

Everything gittrack writes here uses sorted keys so two saves of the same model differ only in
``model_uuid`` and ``utc_time_created``. Keys this module does not know (written by MLflow or
by a newer gittrack) are kept and written back unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import platform
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml

from gittrack.errors import CorruptDataError, InvalidInputError, NotFoundError
from gittrack.models.signature import (
    COLUMN_NUMPY_DTYPES,
    ModelSignature,
    Schema,
    to_dataframe,
)
from gittrack.store.layout import MLMODEL_FILE_NAME
from gittrack.tracking.model_uris import MODEL_ID_PREFIX

REQUIREMENTS_FILE_NAME = "requirements.txt"
PYTHON_ENV_FILE_NAME = "python_env.yaml"
CONDA_ENV_FILE_NAME = "conda.yaml"
INPUT_EXAMPLE_FILE_NAME = "input_example.json"
SERVING_INPUT_FILE_NAME = "serving_input_example.json"

PYFUNC_FLAVOR = "python_function"
"""The generic flavor every MLflow tool loads through; names the module that loads the model."""

_KNOWN_KEYS = (
    "flavors",
    "model_uuid",
    "utc_time_created",
    "run_id",
    "artifact_path",
    "signature",
    "saved_input_example_info",
    "metadata",
    "mlflow_version",
    "gittrack_version",
    "model_id",
)

_BUILD_DEPENDENCIES = ("pip", "setuptools", "wheel")


# --------------------------------------------------------------------------- MLmodel


@dataclass
class ModelConfig:
    """The content of an ``MLmodel`` file.

    ``mlflow_version`` is optional for MLflow's loaders, so gittrack never writes it; it is kept
    when a model saved by MLflow is read. ``gittrack_version`` says which gittrack wrote the
    model (MLflow keeps keys it does not know). ``model_id`` is set for a model logged in a run.
    ``extra`` holds any other top-level key.
    """

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_uuid: str | None = None
    utc_time_created: str | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    mlflow_version: str | None = None
    gittrack_version: str | None = None
    model_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        run_id: str | None = None,
        artifact_path: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelConfig:
        """A config for a model being saved now, with a fresh uuid and creation time.

        A model saved for a run (``run_id`` given) also gets its ``model_id``.
        """
        created = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        if metadata is not None:
            _check_metadata(metadata)
        model_uuid = uuid.uuid4().hex
        return cls(
            model_uuid=model_uuid,
            model_id=f"{MODEL_ID_PREFIX}{model_uuid}" if run_id else None,
            gittrack_version=installed_version("gittrack"),
            utc_time_created=str(created),
            run_id=run_id,
            artifact_path=artifact_path,
            metadata=dict(metadata) if metadata is not None else None,
        )

    def add_flavor(self, name: str, **conf: Any) -> None:
        self.flavors[name] = conf

    def flavor(self, name: str, *, model_dir: str | os.PathLike[str] = "") -> dict[str, Any]:
        """The configuration of one flavor; ``NotFoundError`` names the flavors there are."""
        if name not in self.flavors:
            where = f" at {model_dir}" if model_dir else ""
            present = ", ".join(sorted(self.flavors)) or "none"
            raise NotFoundError(
                f"the model{where} has no {name!r} flavor in {MLMODEL_FILE_NAME} "
                f"(flavors: {present})"
            )
        return self.flavors[name]

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data["flavors"] = self.flavors
        optional = {
            "model_uuid": self.model_uuid,
            "utc_time_created": self.utc_time_created,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "signature": self.signature.to_dict() if self.signature is not None else None,
            "saved_input_example_info": self.saved_input_example_info,
            "metadata": self.metadata,
            "mlflow_version": self.mlflow_version,
            "gittrack_version": self.gittrack_version,
            "model_id": self.model_id,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    def to_yaml(self) -> str:
        """The ``MLmodel`` text of this config, exactly as ``write_model_config`` writes it."""
        return _yaml_text(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, *, source: str = MLMODEL_FILE_NAME) -> ModelConfig:
        """Parse a decoded ``MLmodel``; ``CorruptDataError`` names ``source`` and the field."""
        if not isinstance(data, Mapping):
            raise CorruptDataError(f"{source}: expected a YAML mapping, got {type(data).__name__}")
        flavors = data.get("flavors")
        if not isinstance(flavors, Mapping) or not all(
            isinstance(conf, Mapping) for conf in flavors.values()
        ):
            raise CorruptDataError(f"{source}: field 'flavors' must map flavor names to mappings")
        return cls(
            flavors={str(name): dict(conf) for name, conf in flavors.items()},
            model_uuid=_optional_str(data, "model_uuid"),
            utc_time_created=_optional_str(data, "utc_time_created"),
            run_id=_optional_str(data, "run_id"),
            artifact_path=_optional_str(data, "artifact_path"),
            signature=_parse_signature(data.get("signature"), source),
            saved_input_example_info=_optional_mapping(data, "saved_input_example_info", source),
            metadata=_optional_mapping(data, "metadata", source),
            mlflow_version=_optional_str(data, "mlflow_version"),
            gittrack_version=_optional_str(data, "gittrack_version"),
            model_id=_optional_str(data, "model_id"),
            extra={key: value for key, value in data.items() if key not in _KNOWN_KEYS},
        )


def write_model_config(model_dir: str | os.PathLike[str], config: ModelConfig) -> Path:
    """Write ``MLmodel`` into ``model_dir`` and return its path."""
    path = Path(model_dir) / MLMODEL_FILE_NAME
    _write_yaml(path, config.to_dict())
    return path


def read_model_config(model_dir: str | os.PathLike[str]) -> ModelConfig:
    """Read the ``MLmodel`` of a model directory.

    ``NotFoundError`` when the directory or its ``MLmodel`` is missing; ``CorruptDataError``
    when the file is not a valid model description.
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        raise NotFoundError(f"model directory {directory} does not exist")
    path = directory / MLMODEL_FILE_NAME
    if not path.is_file():
        raise NotFoundError(
            f"{directory} is not a model directory: {MLMODEL_FILE_NAME} is missing ({path})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorruptDataError(f"{path}: not valid YAML: {exc}") from exc
    return ModelConfig.from_dict(data, source=str(path))


def _parse_signature(raw: Any, source: str) -> ModelSignature | None:
    if raw is None:
        return None
    try:
        signature = ModelSignature.from_dict(raw)
    except InvalidInputError as exc:
        raise CorruptDataError(f"{source}: field 'signature' is invalid: {exc.message}") from exc
    if signature.inputs is None and signature.outputs is None:
        return None
    return signature


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a mapping, got {type(metadata).__name__}")
    try:
        yaml.safe_dump(dict(metadata))
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"metadata must hold only strings, numbers, booleans, lists and mappings: {exc}"
        ) from exc


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _optional_mapping(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CorruptDataError(f"{source}: field {key!r} must be a mapping")
    return dict(value)


# --------------------------------------------------------------------------- ModelInfo


@dataclass(frozen=True)
class ModelInfo:
    """What saving or logging a model produced: MLflow 3's ``ModelInfo`` fields.

    ``model_uri`` is the run's URI (``runs:/<run_id>/<artifact_path>``) for a logged model,
    the directory for a local save; ``models:/<model_id>`` names the same logged model.
    ``mlflow_version`` is set only for models MLflow wrote; ``gittrack_version`` for gittrack's.
    ``registered_model_version`` is the version ``registered_model_name`` created, if any.
    """

    path: str
    model_uri: str
    flavors: dict[str, dict[str, Any]]
    model_uuid: str | None
    utc_time_created: str | None
    run_id: str | None = None
    artifact_path: str | None = None
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    model_id: str | None = None
    mlflow_version: str | None = None
    gittrack_version: str | None = None
    registered_model_version: int | None = None

    @property
    def signature_dict(self) -> dict[str, str | None] | None:
        return self.signature.to_dict() if self.signature is not None else None

    @classmethod
    def from_config(cls, model_dir: str | os.PathLike[str], config: ModelConfig) -> ModelInfo:
        """The info of the model saved in ``model_dir`` with ``config`` (its ``MLmodel``)."""
        path = str(Path(model_dir).resolve())
        if config.run_id and config.artifact_path:
            model_uri = f"runs:/{config.run_id}/{config.artifact_path}"
        else:
            model_uri = path
        return cls(
            path=path,
            model_uri=model_uri,
            flavors=config.flavors,
            model_uuid=config.model_uuid,
            utc_time_created=config.utc_time_created,
            run_id=config.run_id,
            artifact_path=config.artifact_path,
            signature=config.signature,
            saved_input_example_info=config.saved_input_example_info,
            metadata=config.metadata,
            model_id=config.model_id,
            mlflow_version=config.mlflow_version,
            gittrack_version=config.gittrack_version,
        )


# --------------------------------------------------------------------------- environment


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib_metadata.version(distribution)
    except importlib_metadata.PackageNotFoundError:
        return None


def pinned_requirement(distribution: str) -> str:
    """``name==version`` for an installed distribution, the bare name otherwise."""
    version = installed_version(distribution)
    return f"{distribution}=={version}" if version else distribution


def default_pip_requirements(distributions: Iterable[str]) -> list[str]:
    """Pinned requirements for ``distributions``, sorted by name; no network is used."""
    return [pinned_requirement(name) for name in sorted(set(distributions), key=str.lower)]


def read_pip_requirements(source: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    """User requirements: a list of requirement strings or the path of a requirements file."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(
                f"pip_requirements: {path} is not a file; pass a requirements file path "
                "or a list of requirement strings"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = list(source)
        if not all(isinstance(line, str) for line in lines):
            raise InvalidInputError("pip_requirements: every requirement must be a string")
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def python_env(python_version: str | None = None) -> dict[str, Any]:
    """The ``python_env.yaml`` document: interpreter, build tools, then ``requirements.txt``."""
    return {
        "python": python_version or platform.python_version(),
        "build_dependencies": [pinned_requirement(name) for name in _BUILD_DEPENDENCIES],
        "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"],
    }


def conda_env(requirements: Iterable[str], python_version: str | None = None) -> dict[str, Any]:
    """The ``conda.yaml`` document: python and pip from conda-forge, the rest from pip."""
    pip_version = installed_version("pip")
    return {
        "name": "gittrack-env",
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={python_version or platform.python_version()}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": list(requirements)},
        ],
    }


def write_environment_files(
    model_dir: str | os.PathLike[str], requirements: Iterable[str]
) -> dict[str, str]:
    """Write ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``.

    Returns the ``env`` entry of the ``python_function`` flavor, which names the files.
    """
    directory = Path(model_dir)
    lines = list(requirements)
    (directory / REQUIREMENTS_FILE_NAME).write_text(
        "".join(f"{line}\n" for line in lines), encoding="utf-8"
    )
    _write_yaml(directory / PYTHON_ENV_FILE_NAME, python_env())
    _write_yaml(directory / CONDA_ENV_FILE_NAME, conda_env(lines))
    return {"conda": CONDA_ENV_FILE_NAME, "virtualenv": PYTHON_ENV_FILE_NAME}


# --------------------------------------------------------------------------- input example


def normalize_input_example(example: Any) -> Any:
    """The example as a DataFrame or an ndarray (dicts and records become a DataFrame)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, (pd.DataFrame, np.ndarray)):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    if isinstance(example, Mapping) or (
        isinstance(example, list) and example and all(isinstance(x, Mapping) for x in example)
    ):
        return to_dataframe(example)
    if isinstance(example, (list, tuple)):
        return np.asarray(example)
    raise InvalidInputError(
        f"input_example must be a pandas DataFrame, a numpy array, a dict of columns or a "
        f"list of rows; got {type(example).__name__}"
    )


def write_input_example(model_dir: str | os.PathLike[str], example: Any) -> dict[str, Any]:
    """Write ``input_example.json`` and ``serving_input_example.json``.

    A DataFrame is stored in pandas' ``split`` orient without the index, an array as nested
    lists. Returns the ``saved_input_example_info`` entry of ``MLmodel``.
    """
    import pandas as pd

    directory = Path(model_dir)
    example = normalize_input_example(example)
    if isinstance(example, pd.DataFrame):
        payload: Any = {
            "columns": [str(column) for column in example.columns],
            "data": [
                [_json_value(value) for value in row]
                for row in example.itertuples(index=False, name=None)
            ],
        }
        serving: Any = {"dataframe_split": payload}
        info = {"type": "dataframe", "pandas_orient": "split"}
    else:
        payload = _json_value(example.tolist())
        serving = {"inputs": payload}
        info = {"type": "ndarray"}
    (directory / INPUT_EXAMPLE_FILE_NAME).write_text(
        json.dumps(payload, sort_keys=True), encoding="utf-8"
    )
    (directory / SERVING_INPUT_FILE_NAME).write_text(
        json.dumps(serving, sort_keys=True, indent=2) + "\n", encoding="utf-8"
    )
    return {
        **info,
        "artifact_path": INPUT_EXAMPLE_FILE_NAME,
        "serving_input_path": SERVING_INPUT_FILE_NAME,
    }


def read_input_example(model_dir: str | os.PathLike[str], config: ModelConfig) -> Any | None:
    """The saved input example as a DataFrame or ndarray, typed by the signature when known."""
    import numpy as np
    import pandas as pd

    info = config.saved_input_example_info
    if not info:
        return None
    path = Path(model_dir) / str(info.get("artifact_path", INPUT_EXAMPLE_FILE_NAME))
    if not path.is_file():
        raise CorruptDataError(f"{MLMODEL_FILE_NAME} names an input example {path} that is missing")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorruptDataError(f"{path}: not valid JSON: {exc}") from exc
    example_type = info.get("type")
    schema = config.get_input_schema()
    if example_type == "dataframe":
        frame = pd.DataFrame(payload["data"], columns=payload["columns"])
        return _typed_frame(frame, schema)
    if example_type == "ndarray":
        array = np.asarray(payload)
        if schema is not None and schema.is_tensor and len(schema.specs) == 1:
            return _cast_quietly(array, schema.specs[0].dtype)
        return array
    raise CorruptDataError(
        f"{path}: input example type {example_type!r} is not supported; "
        "gittrack reads 'dataframe' and 'ndarray' examples"
    )


def _typed_frame(frame: Any, schema: Schema | None) -> Any:
    if schema is None or schema.is_tensor:
        return frame
    for spec in schema.specs:
        dtype = COLUMN_NUMPY_DTYPES.get(spec.type)
        if spec.name in frame.columns and dtype and not frame[spec.name].isna().any():
            frame[spec.name] = _cast_quietly(frame[spec.name], dtype)
    return frame


def _cast_quietly(values: Any, dtype: str) -> Any:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values


def _json_value(value: Any) -> Any:
    """A JSON-ready copy of one example value (numpy scalars, timestamps, bytes, missing)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _json_value(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


# --------------------------------------------------------------------------- helpers


def _write_yaml(path: Path, data: Any) -> None:
    path.write_text(_yaml_text(data), encoding="utf-8")


def _yaml_text(data: Any) -> str:
    # A wide line keeps each signature JSON string on one line, so diffs show whole schemas.
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=10_000)
