"""Load any saved model through its ``python_function`` flavor and predict with it.

The flavor's ``loader_module`` says which flavor can rebuild the model; gittrack maps
MLflow's module names to its own loaders. Before predicting, the input is fitted to the
model's signature by :mod:`gittrack.models.enforcement`, with MLflow's rules.
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
from gittrack.models.enforcement import prepare_input
from gittrack.models.inference_params import apply_params_schema
from gittrack.models.model_format import (
    MLMODEL_FILE_NAME,
    PYFUNC_FLAVOR,
    ModelConfig,
    read_model_config,
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
