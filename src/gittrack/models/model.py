"""``Model``: a saved model's ``MLmodel`` read back, as MLflow's ``mlflow.models.Model``.

It is the parsed ``MLmodel`` (``ModelConfig``) plus what MLflow scripts call on it: ``load``
from a directory, an ``MLmodel`` file or a model URI, the input example, the YAML text and
the ``ModelInfo``. Writing goes through the flavors' ``save_model``/``log_model``:
``Model.log`` is not offered (see README, "Models").
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from gittrack.errors import InvalidInputError
from gittrack.models.model_format import (
    MLMODEL_FILE_NAME,
    ModelConfig,
    ModelInfo,
    read_input_example,
    read_model_config,
)
from gittrack.tracking import model_uris


@dataclasses.dataclass
class Model(ModelConfig):
    """A model's description: flavors, signature, input example info, run and ids.

    ``model_dir`` is the directory it was loaded from (None for one built in memory).
    """

    model_dir: Path | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read the ``MLmodel`` of a model.

        Args:
            path: a model directory, its ``MLmodel`` file, a ``file://`` URI, or a
                ``runs:/``/``models:/`` URI resolved in the tracking repository
                (``set_tracking_uri``, else the repository around the working directory).

        Returns:
            The ``Model``.

        Raises:
            NotFoundError: no model there. CorruptDataError: ``MLmodel`` is not valid.
            InvalidInputError: a URI scheme gittrack does not read.
        """
        model_dir = _model_dir(os.fspath(path))
        config = read_model_config(model_dir)
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(ModelConfig)}
        return cls(**values, model_dir=model_dir)

    def load_input_example(self, path: str | os.PathLike[str] | None = None) -> Any | None:
        """The saved input example (a DataFrame or an ndarray), None when none was saved.

        Args:
            path: the model directory; defaults to the one the model was loaded from.

        Raises:
            InvalidInputError: no ``path`` for a model not loaded from a directory.
            CorruptDataError: the example file is missing or unreadable.
        """
        directory = Path(path) if path is not None else self.model_dir
        if directory is None:
            raise InvalidInputError(
                "load_input_example needs the model directory: this Model was not loaded from one"
            )
        return read_input_example(directory, self)

    def get_model_info(self) -> ModelInfo:
        """The ``ModelInfo`` of this model (its ``path`` is the directory it was loaded from)."""
        return ModelInfo.from_config(self.model_dir or ".", self)

    def get_params_schema(self) -> str | None:
        """The inference params schema JSON of the signature, None without one."""
        return self.signature.params if self.signature is not None else None


def _model_dir(text: str) -> Path:
    from gittrack.models.resolve import local_path

    if model_uris.is_runs_uri(text) or model_uris.is_models_uri(text):
        from gittrack.models.resolve import resolve_model_uri
        from gittrack.tracking.repository import open_repository

        return resolve_model_uri(text, open_repository()).path
    path = local_path(text)
    return path.parent if path.name == MLMODEL_FILE_NAME and path.is_file() else path
