"""Load any saved model through its ``python_function`` flavor and predict with it.

The flavor's ``loader_module`` says which flavor can rebuild the model; gittrack maps
MLflow's module names to its own loaders. Before predicting, the input is fitted to the
model's signature: columns are selected and ordered by name, integers are widened where the
signature asks for floats, and tensors are checked against the recorded shape and dtype.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlparse

from gittrack.errors import CorruptDataError, InvalidInputError
from gittrack.models import python_model, sklearn_flavor
from gittrack.models.inference_params import apply_params_schema
from gittrack.models.model_format import (
    MLMODEL_FILE_NAME,
    PYFUNC_FLAVOR,
    ModelConfig,
    read_model_config,
)
from gittrack.models.signature import (
    COLUMN_NUMPY_DTYPES,
    ColumnSpec,
    Schema,
    TensorSpec,
    to_dataframe,
)

Loader = Callable[[Path, ModelConfig, python_model.ModelConfigSource | None], Any]
"""(model directory, its ``MLmodel``, ``model_config`` overrides) -> the loaded model."""

LOADERS: Mapping[str, Loader] = MappingProxyType(
    {
        sklearn_flavor.LOADER_MODULE: sklearn_flavor.load_pyfunc_estimator,
        python_model.LOADER_MODULE: python_model.load_pyfunc,
    }
)
"""``python_function`` loader modules gittrack can load, and the function that loads each."""

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


class PyFuncModel:
    """A loaded model with one ``predict`` for every flavor, as MLflow's pyfunc offers."""

    def __init__(
        self,
        raw_model: Any,
        metadata: ModelConfig,
        *,
        predict_fn: str = "predict",
        model_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._raw_model = raw_model
        self._metadata = metadata
        self._predict_fn = predict_fn
        self._model_dir = Path(model_dir) if model_dir is not None else None

    @property
    def metadata(self) -> ModelConfig:
        """The parsed ``MLmodel`` file."""
        return self._metadata

    @property
    def loader_module(self) -> str | None:
        return self._metadata.flavors.get(PYFUNC_FLAVOR, {}).get("loader_module")

    @property
    def model_dir(self) -> Path | None:
        return self._model_dir

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Predict on a DataFrame, an ndarray, a dict of columns or a list of rows/records.

        ``params`` reach a custom ``PythonModel`` whose ``predict`` takes them, as its
        signature's params schema allows (see ``inference_params``); other models take none,
        and a warning says they were ignored.
        """
        if isinstance(self._raw_model, python_model.PythonModelPredictor):
            return self._predict_python_model(data, params)
        model_input = prepare_input(data, self._metadata.get_input_schema())
        if params:
            warnings.warn(
                f"params {sorted(params)} are ignored: {self.loader_module} models take none",
                stacklevel=2,
            )
        return getattr(self._raw_model, self._predict_fn)(model_input)

    def _predict_python_model(self, data: Any, params: Mapping[str, Any] | None) -> Any:
        # As MLflow: without an input schema a custom model gets the input untouched.
        schema = self._metadata.get_input_schema()
        model_input = data if schema is None else prepare_input(data, schema)
        signature = self._metadata.signature
        params_schema = signature.params if signature is not None else None
        return self._raw_model.predict(model_input, apply_params_schema(params, params_schema))

    def unwrap_python_model(self) -> Any:
        """The underlying model object (sklearn: the estimator; a custom model: its instance)."""
        if isinstance(self._raw_model, python_model.PythonModelPredictor):
            return self._raw_model.python_model
        return self._raw_model

    def get_raw_model(self) -> Any:
        """The underlying model object (sklearn: the estimator; a custom model: its instance)."""
        return self.unwrap_python_model()

    def __repr__(self) -> str:
        where = f" from {self._model_dir}" if self._model_dir else ""
        name = type(self.unwrap_python_model()).__name__
        return f"<PyFuncModel {name} ({self.loader_module}){where}>"


def load_model(
    model_uri: str | os.PathLike[str],
    model_config: python_model.ModelConfigSource | None = None,
) -> PyFuncModel:
    """Load the model in a local directory (a path or a ``file://`` URI) as a ``PyFuncModel``.

    ``model_config`` overrides keys of a custom model's saved configuration.
    """
    model_dir = _local_directory(model_uri)
    config = read_model_config(model_dir)
    conf = config.flavor(PYFUNC_FLAVOR, model_dir=model_dir)
    loader_module = conf.get("loader_module")
    loader = LOADERS.get(str(loader_module))
    if loader is None:
        raise InvalidInputError(
            f"the model at {model_dir} uses python_function loader_module {loader_module!r}, "
            f"which gittrack cannot load; supported: {', '.join(sorted(LOADERS))}"
        )
    predict_fn = str(conf.get("predict_fn") or "predict")
    raw_model = loader(model_dir, config, model_config)
    if not callable(getattr(raw_model, predict_fn, None)):
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: predict_fn {predict_fn!r} is not a method of "
            f"the loaded {type(raw_model).__name__}"
        )
    return PyFuncModel(raw_model, config, predict_fn=predict_fn, model_dir=model_dir)


def _local_directory(model_uri: str | os.PathLike[str]) -> Path:
    text = os.fspath(model_uri)
    if text.startswith("file:"):
        return Path(unquote(urlparse(text).path))
    if _URI_SCHEME.match(text):
        raise InvalidInputError(
            f"{text!r} is not a local model directory; resolve runs:/ and models:/ URIs "
            "to a directory first"
        )
    return Path(text)


# --------------------------------------------------------------------------- input


def prepare_input(data: Any, schema: Schema | None) -> Any:
    """Fit ``data`` to the input ``schema``: containers converted, columns named and ordered."""
    data = _as_table_or_array(data)
    if schema is None or not schema.specs:
        return data
    if schema.is_tensor:
        return _prepare_tensor(data, schema)
    if schema.has_names:
        return _prepare_named_columns(data, schema)
    return data


def _as_table_or_array(data: Any) -> Any:
    import numpy as np

    if isinstance(data, Mapping) or (
        isinstance(data, list) and data and all(isinstance(row, Mapping) for row in data)
    ):
        return to_dataframe(data)
    if isinstance(data, (list, tuple)):
        return np.asarray(data)
    return data


def _prepare_named_columns(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    names = [str(name) for name in schema.names()]
    if isinstance(data, np.ndarray):
        data = _array_to_named_frame(data, names)
    if not isinstance(data, pd.DataFrame):
        raise InvalidInputError(
            f"the model's signature expects columns {names}; pass a pandas DataFrame, a 2-D "
            f"array, a dict of columns or a list of records, not {type(data).__name__}"
        )
    by_name = {str(column): column for column in data.columns}
    specs = [spec for spec in schema.specs if isinstance(spec, ColumnSpec)]
    missing = [spec.name for spec in specs if spec.required and spec.name not in by_name]
    if missing:
        raise InvalidInputError(
            f"input is missing column(s) {missing} that the model's signature requires; "
            f"expected columns {names}, got {list(by_name)}"
        )
    columns = {}
    for spec in specs:
        name = str(spec.name)
        if name in by_name:
            columns[name] = _widen(data[by_name[name]], spec)
        else:
            columns[name] = pd.Series(np.nan, index=data.index)
    return pd.DataFrame(columns, index=data.index)


def _array_to_named_frame(array: Any, names: list[str]) -> Any:
    import pandas as pd

    if array.ndim != 2 or array.shape[1] != len(names):
        raise InvalidInputError(
            f"the model's signature expects {len(names)} columns {names}; an array input "
            f"must have shape (n, {len(names)}), got {array.shape}"
        )
    return pd.DataFrame(array, columns=names)


def _widen(column: Any, spec: ColumnSpec) -> Any:
    """Cast a column to the signature's numeric type when no value can change (int to double)."""
    import numpy as np

    target = COLUMN_NUMPY_DTYPES.get(spec.type)
    dtype = column.dtype
    if target is None or not isinstance(dtype, np.dtype) or dtype == np.dtype(target):
        return column
    if dtype.kind in "iuf" and np.can_cast(dtype, target, casting="safe"):
        return column.astype(target)
    return column


def _prepare_tensor(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if len(schema.specs) != 1:
        return data
    spec = schema.specs[0]
    assert isinstance(spec, TensorSpec)
    array = data.to_numpy() if isinstance(data, (pd.DataFrame, pd.Series)) else np.asarray(data)
    _check_shape(array.shape, spec.shape)
    return _cast_tensor(array, spec.dtype)


def _check_shape(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    matches = len(shape) == len(expected) and all(
        want == -1 or got == want for got, want in zip(shape, expected, strict=True)
    )
    if not matches:
        raise InvalidInputError(
            f"input of shape {shape} does not fit the model's signature shape {expected} "
            "(-1 means any size)"
        )


def _cast_tensor(array: Any, dtype_name: str) -> Any:
    import numpy as np

    if dtype_name in ("str", "bytes", "object"):
        return array
    target = np.dtype(dtype_name)
    if array.dtype == target:
        return array
    if np.can_cast(array.dtype, target, casting="safe"):
        return array.astype(target)
    raise InvalidInputError(
        f"input of dtype {array.dtype} cannot be safely cast to the model's signature dtype "
        f"{dtype_name}"
    )
