"""Datasets a run reads (``mlflow.data``): ``from_pandas`` and ``from_numpy``.

A dataset is described the way MLflow describes it, so a run logged here and one logged to
MLflow from the same data carry the same record: a name (``"dataset"`` by default), a digest
(the first 8 hex digits of an MD5 over pandas' row hashes of at most 10,000 rows, the row
count and the column names; for arrays over the flattened values and the shape), a source
(where the data came from: a local path, an ``http(s)`` URL, an ``s3://`` URI, or, when none is
given, the code that built it), a schema (MLflow's ``mlflow_colspec``/``mlflow_tensorspec``
JSON) and a profile (row and element counts, or array shapes and sizes).

``gittrack.log_input(dataset, context="training")`` records it with the active run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import numpy as np
import pandas as pd

from gittrack.entities import Dataset as DatasetEntity
from gittrack.errors import InvalidInputError
from gittrack.models.signature import Schema, TensorSpec, infer_schema, tensor_dtype_name
from gittrack.tracking.live_runs import current_user

__all__ = [
    "Dataset",
    "DatasetSource",
    "NumpyDataset",
    "PandasDataset",
    "from_numpy",
    "from_pandas",
]

MAX_ROWS = 10000  # rows (or array values) a digest reads, as MLflow


class DatasetSource:
    """Where a dataset came from: a type (``local``, ``http``, ``s3``, ``code``) and a JSON
    document (``{"uri": ...}``, ``{"url": ...}``, ``{"tags": {...}}``)."""

    def __init__(self, source_type: str, document: dict[str, Any]) -> None:
        self._source_type = source_type
        self._document = document

    @property
    def source_type(self) -> str:
        """The source type MLflow records (``local``, ``http``, ``s3``, ``code``)."""
        return self._source_type

    def _get_source_type(self) -> str:
        return self._source_type

    def to_dict(self) -> dict[str, Any]:
        """The source as a mapping (``{"uri": "data/wine.csv"}``)."""
        return dict(self._document)

    def to_json(self) -> str:
        """The source as the JSON text MLflow stores."""
        return json.dumps(self._document)

    def __repr__(self) -> str:
        return f"DatasetSource({self._source_type!r}, {self._document!r})"


def resolve_source(source: str | DatasetSource | Any | None) -> DatasetSource:
    """The ``DatasetSource`` of a raw source, as MLflow resolves it.

    Args:
        source: None (the code running now), a ``DatasetSource``, a local path or
            ``file://`` URI, an ``http(s)://`` URL or an ``s3://`` URI.

    Returns:
        The source: type ``code``, ``local``, ``http`` or ``s3``.

    Raises:
        InvalidInputError: any other kind of source, named.
    """
    if source is None:
        return _code_source()
    if isinstance(source, DatasetSource):
        return source
    text = str(source) if hasattr(source, "__fspath__") else source
    if not isinstance(text, str) or not text:
        raise InvalidInputError(
            f"dataset source {source!r} is not supported; use a local path, an http(s) URL, "
            "an s3:// URI or a DatasetSource"
        )
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return DatasetSource("http", {"url": text})
    if scheme in ("s3", "s3a", "s3n"):
        return DatasetSource("s3", {"uri": text})
    if scheme in ("", "file"):
        return DatasetSource("local", {"uri": text})
    raise InvalidInputError(
        f"dataset source {text!r} has scheme {scheme!r}; supported are local paths, file://, "
        "http://, https:// and s3:// URIs"
    )


def _code_source() -> DatasetSource:
    """The code building the dataset: MLflow records the user and the script (run tags)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"
    tags = {
        "mlflow.user": current_user(),
        "mlflow.source.name": argv0,
        "mlflow.source.type": "LOCAL",
    }
    return DatasetSource("code", {"tags": tags})


class Dataset:
    """What every dataset has: ``name``, ``digest``, ``source``, ``schema``, ``profile``."""

    def __init__(self, source: DatasetSource, name: str | None, digest: str | None) -> None:
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(f"dataset name {name!r} must be a string")
        if digest is not None and not isinstance(digest, str):
            raise InvalidInputError(f"dataset digest {digest!r} must be a string")
        self._source = source
        self._name = name
        self._digest = digest or self._compute_digest()

    def _compute_digest(self) -> str:
        """The digest of the data, when none was given (each kind defines its own)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The dataset's name (``"dataset"`` when none was given, as MLflow)."""
        return self._name if self._name is not None else "dataset"

    @property
    def digest(self) -> str:
        """An 8-character fingerprint of the data, equal to MLflow's for the same data."""
        return self._digest

    @property
    def source(self) -> DatasetSource:
        """Where the data came from."""
        return self._source

    @property
    def source_type(self) -> str:
        """The source's type (``local``, ``http``, ``s3``, ``code``)."""
        return self._source.source_type

    @property
    def profile(self) -> dict[str, Any] | None:
        """Summary counts of the data (each kind of dataset defines its own)."""
        raise NotImplementedError

    def _schema_json(self) -> str | None:
        """The schema as the JSON text MLflow records (each kind defines its own)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, str | None]:
        """The dataset as MLflow records it: ``name``, ``digest``, ``source`` (JSON),
        ``source_type``, ``schema`` (JSON or None) and ``profile`` (JSON)."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self._source.to_json(),
            "source_type": self.source_type,
            "schema": self._schema_json(),
            "profile": json.dumps(self.profile),
        }

    def to_json(self) -> str:
        """``to_dict`` as JSON text."""
        return json.dumps(self.to_dict())

    def to_entity(self) -> DatasetEntity:
        """The ``Dataset`` entity ``log_inputs`` takes."""
        return DatasetEntity(**self.to_dict())  # type: ignore[arg-type]

    _to_mlflow_entity = to_entity  # MLflow's name, for code written against it

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, digest={self.digest!r})"


class PandasDataset(Dataset):
    """A DataFrame, with the names of its target and prediction columns if any."""

    def __init__(
        self,
        df: pd.DataFrame,
        source: DatasetSource,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        if not isinstance(df, pd.DataFrame):
            raise InvalidInputError(
                f"from_pandas needs a pandas DataFrame, not {type(df).__name__}"
            )
        for what, column in (("targets", targets), ("predictions", predictions)):
            if column is not None and column not in df.columns:
                raise InvalidInputError(
                    f"{what} column {column!r} is not a column of the DataFrame "
                    f"(columns: {', '.join(map(str, df.columns))})"
                )
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return pandas_digest(self._df)

    @property
    def df(self) -> pd.DataFrame:
        """The DataFrame."""
        return self._df

    @property
    def targets(self) -> str | None:
        """The name of the target column, or None."""
        return self._targets

    @property
    def predictions(self) -> str | None:
        """The name of the predictions column, or None."""
        return self._predictions

    @property
    def profile(self) -> dict[str, Any]:
        """``{"num_rows": ..., "num_elements": ...}``."""
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    @property
    def schema(self) -> Schema | None:
        """The columns' names and MLflow types (None when a column has no MLflow type)."""
        try:
            return infer_schema(self._df)
        except InvalidInputError:
            return None

    def _schema_json(self) -> str | None:
        schema = self.schema
        if schema is None:
            return None
        return json.dumps({"mlflow_colspec": [_mlflow_order(s.to_dict()) for s in schema.specs]})


class NumpyDataset(Dataset):
    """An array of features (or a dict of arrays), with optional targets."""

    def __init__(
        self,
        features: np.ndarray | dict[str, np.ndarray],
        source: DatasetSource,
        targets: np.ndarray | dict[str, np.ndarray] | None = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._features = _as_arrays(features, "features")
        self._targets = None if targets is None else _as_arrays(targets, "targets")
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return numpy_digest(self._features, self._targets)

    @property
    def features(self) -> np.ndarray | dict[str, np.ndarray]:
        """The features."""
        return self._features

    @property
    def targets(self) -> np.ndarray | dict[str, np.ndarray] | None:
        """The targets, or None."""
        return self._targets

    @property
    def profile(self) -> dict[str, Any]:
        """Shapes, sizes and byte counts of the features (and targets)."""
        profile = _array_profile("features", self._features)
        if self._targets is not None:
            profile.update(_array_profile("targets", self._targets))
        return profile

    @property
    def schema(self) -> dict[str, Schema | None]:
        """``{"features": Schema, "targets": Schema or None}`` of tensor specs."""
        return {
            "features": _tensor_schema(self._features),
            "targets": None if self._targets is None else _tensor_schema(self._targets),
        }

    def _schema_json(self) -> str | None:
        def specs(schema: Schema | None) -> str | None:
            if schema is None:
                return None
            return json.dumps([_mlflow_order(s.to_dict()) for s in schema.specs])

        schema = self.schema
        return json.dumps(
            {
                "mlflow_tensorspec": {
                    "features": specs(schema["features"]),
                    "targets": specs(schema["targets"]),
                }
            }
        )


def _tensor_schema(value: np.ndarray | dict[str, np.ndarray]) -> Schema | None:
    """Tensor specs of an array, or one named spec per array of a dict (None: an array of
    a type MLflow has no tensor type for)."""
    try:
        if isinstance(value, dict):
            return Schema(
                tuple(
                    TensorSpec(tensor_dtype_name(a.dtype), (-1, *a.shape[1:]), name=k)
                    for k, a in value.items()
                )
            )
        return infer_schema(value)
    except (InvalidInputError, TypeError, ValueError):
        return None


def _mlflow_order(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec with its keys in MLflow's order (``type`` first), so the JSON text matches."""
    order = ("type", "tensor-spec", "name", "required")
    return {
        **{k: spec[k] for k in order if k in spec},
        **{k: v for k, v in spec.items() if k not in order},
    }


def _as_arrays(value: Any, what: str) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(value, dict):
        return {str(k): np.asarray(v) for k, v in value.items()}
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.to_numpy()
    if isinstance(value, (np.ndarray, list, tuple)):
        return np.asarray(value)
    raise InvalidInputError(
        f"from_numpy {what} must be a numpy array or a dict of arrays, not {type(value).__name__}"
    )


def _array_profile(prefix: str, value: np.ndarray | dict[str, np.ndarray]) -> dict[str, Any]:
    def attribute(name: str) -> Any:
        if isinstance(value, dict):
            return {key: _plain(getattr(array, name)) for key, array in value.items()}
        return _plain(getattr(value, name))

    return {f"{prefix}_{name}": attribute(name) for name in ("shape", "size", "nbytes")}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else int(value)


def pandas_digest(df: pd.DataFrame) -> str:
    """MLflow's digest of a DataFrame: string and numeric columns of the first 10,000 rows
    hashed row by row with pandas, then the row count and the column names.

    Args:
        df: the data.

    Returns:
        8 hex digits.
    """
    head = df.head(MAX_ROWS)
    strings = head.columns[
        [
            all(type(x) is str for x in column.iloc[:1])
            and all(type(x) is str for x in column.to_numpy(dtype=object))
            for _, column in df.items()
        ]
    ]
    numbers = head.select_dtypes(include=[np.number]).columns
    head = head[strings.union(numbers)]
    return _md5_digest(
        [pd.util.hash_pandas_object(head).values, np.int64(len(df))]
        + [str(x).encode() for x in df.columns]
    )


def numpy_digest(
    features: np.ndarray | dict[str, np.ndarray],
    targets: np.ndarray | dict[str, np.ndarray] | None = None,
) -> str:
    """MLflow's digest of arrays: the first 10,000 flattened values of each (or its size when
    the values cannot be hashed) and its shape.

    Args:
        features: an array or a dict of arrays (hashed in key order).
        targets: the same, or None.

    Returns:
        8 hex digits.
    """
    parts: list[Any] = []
    for item in (features, targets):
        if item is None:
            continue
        arrays = [item[key] for key in sorted(item)] if isinstance(item, dict) else [item]
        for array in arrays:
            flat = array.flatten()[:MAX_ROWS]
            try:
                parts.append(pd.util.hash_array(flat))
            except TypeError:
                parts.append(np.int64(flat.size))
            parts.extend(np.int64(x) for x in array.shape)
    return _md5_digest(parts)


def _md5_digest(parts: list[Any]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for part in parts:
        md5.update(part)
    return md5.hexdigest()[:8]


def from_pandas(
    df: pd.DataFrame,
    source: str | DatasetSource | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A dataset of a DataFrame (``mlflow.data.from_pandas``).

    Args:
        df: the data.
        source: where it came from (see ``resolve_source``); None: the running code.
        targets: the name of the target column.
        name: the dataset's name (default ``"dataset"``).
        digest: a fingerprint to record instead of the computed one.
        predictions: the name of the predictions column.

    Returns:
        A ``PandasDataset``.

    Raises:
        InvalidInputError: ``df`` is no DataFrame, a named column is missing, or the source
            is of an unsupported kind.
    """
    return PandasDataset(df, resolve_source(source), targets, name, digest, predictions)


def from_numpy(
    features: np.ndarray | dict[str, np.ndarray],
    source: str | DatasetSource | None = None,
    targets: np.ndarray | dict[str, np.ndarray] | None = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A dataset of arrays (``mlflow.data.from_numpy``).

    Args:
        features: an array or a dict of arrays.
        source: where it came from (see ``resolve_source``); None: the running code.
        targets: an array or a dict of arrays, or None.
        name: the dataset's name (default ``"dataset"``).
        digest: a fingerprint to record instead of the computed one.

    Returns:
        A ``NumpyDataset``.

    Raises:
        InvalidInputError: features that are no array, or an unsupported source.
    """
    return NumpyDataset(features, resolve_source(source), targets, name, digest)
