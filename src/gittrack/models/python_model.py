"""Custom Python models: a ``PythonModel`` subclass saved in MLflow's ``python_function`` format.

A user writes the inference code (``load_context`` once, ``predict`` per call) and names the
files it needs as ``artifacts``. Saving writes the layout MLflow writes, so either tool loads
the other's models:

- ``python_model.pkl``: the model instance, serialized with cloudpickle;
- ``artifacts/<file name>``: a copy of each artifact (one copy when several names share a
  source; sources with the same file name go under ``artifacts/0/``, ``artifacts/1/`` ...);
- ``code/``: copies of ``code_paths``, put on ``sys.path`` before the model is unpickled;
- ``MLmodel``: the ``python_function`` flavor with ``loader_module: mlflow.pyfunc.model``,
  ``python_model``, ``cloudpickle_version``, ``artifacts`` (``{name: {path, uri}}``), ``code``
  and ``config`` (the ``model_config``), plus the environment files every model has.

Loading unpickles the instance, gives ``load_context`` a ``PythonModelContext`` whose
``artifacts`` map each name to an absolute local path, and wraps it in a
``PythonModelPredictor``. ``predict`` may be written ``predict(self, context, model_input,
params=None)`` or, as MLflow 3 allows, ``predict(self, model_input, params=None)``: the
predictor passes the context when the method takes ``context`` or two arguments besides
``params``, and passes ``params`` only to a method that takes them.

cloudpickle stores a class defined in ``__main__`` by value but its base class by reference:
a model built on gittrack's ``PythonModel`` needs gittrack importable wherever it is loaded
(in MLflow too), and one built on MLflow's needs mlflow. Unpickling runs code from the file;
``gittrack.pyfunc`` warns before loading a pickle someone else committed.
"""

from __future__ import annotations

import bz2
import gzip
import inspect
import lzma
import os
import pickle
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

import yaml

from gittrack.errors import CorruptDataError, InvalidInputError, InvalidStateError
from gittrack.models.model_format import (
    MLMODEL_FILE_NAME,
    PYFUNC_FLAVOR,
    ModelConfig,
    ModelInfo,
    default_pip_requirements,
    installed_version,
    normalize_input_example,
    read_pip_requirements,
    write_environment_files,
    write_input_example,
    write_model_config,
)
from gittrack.models.save_target import prepare_target, remove_partial_save
from gittrack.models.signature import (
    ModelSignature,
    as_model_signature,
    infer_signature_from_example,
)
from gittrack.tracking import model_uris

LOADER_MODULE = "mlflow.pyfunc.model"
"""The ``python_function`` loader module MLflow uses for custom Python models."""

PYTHON_MODEL_FILE_NAME = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
CODE_DIR = "code"

_MLFLOW_PYTHON_MODEL = "mlflow.pyfunc.model.PythonModel"
_OPENERS: Mapping[str, Callable[..., Any]] = {
    "gzip": gzip.open,
    "bzip2": bz2.open,
    "lzma": lzma.open,
}
"""How MLflow's ``compression`` values of ``python_model.pkl`` are opened."""

ModelConfigSource = Mapping[str, Any] | str | os.PathLike[str]
"""A ``model_config``: a mapping, or the path of a YAML or JSON file holding one."""

ArtifactFetcher = Callable[[str, Path], Path]
"""Copies the artifact a ``runs:/`` or ``models:/`` URI names into a directory; returns its path."""


class PythonModelContext:
    """What ``load_context`` and ``predict`` receive: the artifacts and the model configuration.

    ``artifacts`` maps each artifact name given at save time to the absolute path of its local
    copy; ``model_config`` is the ``model_config`` saved with the model (None when there is none),
    with the keys ``load_model(model_config=...)`` overrides.
    """

    def __init__(self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None):
        self._artifacts = dict(artifacts)
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name -> absolute local path."""
        return self._artifacts

    @property
    def model_config(self) -> Mapping[str, Any] | None:
        """The model's configuration (``model_config``), or None."""
        return self._model_config


class PredictTypeHints(NamedTuple):
    """Type hints of ``predict`` that MLflow's loader reads; gittrack uses the signature only."""

    input: Any = None
    output: Any = None


class PythonModel:
    """Base class of custom models: override ``predict``, and ``load_context`` to read artifacts.

    ``predict(self, context, model_input, params=None)`` and ``predict(self, model_input,
    params=None)`` are both accepted (see the module docstring).
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Prepare the model once after loading, e.g. read files from ``context.artifacts``.

        Args:
            context: the model's ``PythonModelContext``.
        """

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Predict on ``model_input``; subclasses must override this.

        Args:
            context: the model's ``PythonModelContext`` (may be left out of an override).
            model_input: the input, fitted to the model's input signature when it has one.
            params: inference parameters given to ``PyFuncModel.predict``.

        Returns:
            The prediction.

        Raises:
            NotImplementedError: when the subclass does not override it.
        """
        raise NotImplementedError(f"{type(self).__name__} must override predict()")

    @property
    def predict_type_hints(self) -> PredictTypeHints:
        """No type hints: MLflow's loader asks for them, gittrack validates by the signature."""
        return PredictTypeHints()


class FunctionPythonModel(PythonModel):
    """A plain function of one argument used as a model: ``predict`` calls it on the input."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """The function's result on ``model_input`` (``params`` are not passed to it)."""
        return self.func(model_input)


class PythonModelPredictor:
    """A loaded ``PythonModel`` with its context, predicting as ``mlflow.pyfunc`` does."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context

    def predict(self, model_input: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Call the model's ``predict``, with the context and ``params`` when it takes them.

        Args:
            model_input: the already prepared input.
            params: inference parameters; a warning says they are dropped when ``predict``
                takes none.

        Returns:
            What the model's ``predict`` returns.
        """
        method = self.python_model.predict
        parameters = inspect.signature(method).parameters
        kwargs: dict[str, Any] = {}
        if "params" in parameters:
            kwargs["params"] = dict(params) if params is not None else None
        elif params:
            warnings.warn(
                f"params {sorted(params)} are ignored: {type(self.python_model).__name__}"
                ".predict() takes no 'params' argument",
                stacklevel=3,
            )
        if takes_context(parameters):
            return method(self.context, model_input, **kwargs)
        return method(model_input, **kwargs)


def takes_context(parameters: Mapping[str, inspect.Parameter]) -> bool:
    """Whether a ``predict`` with these parameters expects the context first: it has a
    parameter named ``context``, or two parameters besides ``self`` and ``params``."""
    names = [name for name in parameters if name not in ("self", "params")]
    return "context" in parameters or len(names) == 2


# --------------------------------------------------------------------------- save


@dataclass
class _Artifact:
    """One artifact source, the names that refer to it and where it goes in the model."""

    uri: str
    names: list[str]
    source: Path
    target: str = ""


@dataclass
class _SavePlan:
    """Everything ``save_model`` needs besides the target, checked before anything is written."""

    python_model: Any
    artifacts: dict[str, str] = field(default_factory=dict)
    code_paths: list[Path] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    model_config: dict[str, Any] | None = None


def save_model(
    path: str | os.PathLike[str],
    python_model: Any,
    *,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    fetch_artifact: ArtifactFetcher | None = None,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    extra_pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    model_config: ModelConfigSource | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> ModelInfo:
    """Save a custom Python model as an MLflow-format model directory at ``path``.

    Args:
        path: a local directory that does not exist or is empty.
        python_model: a ``PythonModel`` instance (gittrack's or MLflow's) or a function of one
            argument.
        artifacts: name -> local path, ``file://`` URI, ``runs:/`` or ``models:/`` URI; each is
            copied into the model and reaches ``load_context`` as a local path.
        fetch_artifact: copies a ``runs:/``/``models:/`` artifact locally (needed for those).
        signature: the model signature; with ``input_example`` and no signature it is
            inferred from the model's prediction on the example; ``False`` stores none.
        input_example: stored as ``input_example.json``.
        pip_requirements: replaces the default requirements (cloudpickle and the package of
            the model's base class); a list or a requirements file.
        extra_pip_requirements: added to the default requirements.
        code_paths: local files or directories copied to ``code/`` and importable at load.
        model_config: a mapping, or the path of a YAML/JSON file holding one.
        metadata: free-form mapping stored in ``MLmodel``.
        run_id: the run the model is logged in, recorded in ``MLmodel``.
        artifact_path: the model's path in that run's artifacts.

    Returns:
        The saved model's ``ModelInfo``.

    Raises:
        InvalidInputError: a bad argument (named), a missing artifact or code path, or a model
            cloudpickle cannot serialize; nothing is written.
        ConflictError: ``path`` exists and is not an empty directory.
    """
    plan = _SavePlan(
        python_model=check_python_model(python_model),
        artifacts=_check_artifacts(artifacts),
        code_paths=_check_code_paths(code_paths),
        requirements=_requirements(python_model, pip_requirements, extra_pip_requirements),
        model_config=_check_model_config(model_config),
    )
    config = ModelConfig.new(run_id=run_id, artifact_path=artifact_path, metadata=metadata)
    example = normalize_input_example(input_example) if input_example is not None else None
    with tempfile.TemporaryDirectory(prefix="gittrack-artifacts-") as scratch:
        collected = _collect_artifacts(plan.artifacts, fetch_artifact, Path(scratch))
        model_dir, created = prepare_target(path)
        try:
            _write_model_dir(model_dir, config, plan, collected, signature, example)
        except BaseException:
            remove_partial_save(model_dir, created)
            raise
    return ModelInfo.from_config(model_dir, config)


def check_python_model(python_model: Any) -> Any:
    """The object to pickle: a ``PythonModel`` as it is, a one-argument function wrapped.

    Raises:
        InvalidInputError: ``python_model`` is neither, naming its type.
    """
    if _is_python_model(python_model):
        if type(python_model).predict is PythonModel.predict:
            raise InvalidInputError(
                f"python_model {type(python_model).__name__} does not override predict(); "
                "define predict(self, context, model_input, params=None)"
            )
        return python_model
    if isinstance(python_model, (str, os.PathLike)):
        raise InvalidInputError(
            f"python_model {os.fspath(python_model)!r}: models from code (a script path) are not "
            "supported; pass a PythonModel instance or a function of one argument"
        )
    if callable(python_model):
        count = _parameter_count(python_model)
        if count not in (1, None):
            raise InvalidInputError(
                f"python_model {getattr(python_model, '__name__', python_model)!r} is a callable "
                f"taking {count} arguments; a function used as a model takes exactly one"
            )
        return FunctionPythonModel(python_model)
    raise InvalidInputError(
        f"python_model must be a gittrack.pyfunc.PythonModel instance or a function of one "
        f"argument, not {type(python_model).__name__}"
    )


def _parameter_count(func: Callable[..., Any]) -> int | None:
    try:
        return len(inspect.signature(func).parameters)
    except (TypeError, ValueError):  # some builtins have no signature to read
        return None


def _is_python_model(obj: Any) -> bool:
    if isinstance(obj, PythonModel):
        return True
    return any(
        f"{cls.__module__}.{cls.__qualname__}" == _MLFLOW_PYTHON_MODEL for cls in type(obj).__mro__
    )


def _check_artifacts(artifacts: Mapping[str, Any] | None) -> dict[str, str]:
    if artifacts is None:
        return {}
    if not isinstance(artifacts, Mapping):
        raise InvalidInputError(
            f"artifacts must map names to paths or URIs, not {type(artifacts).__name__}"
        )
    checked = {}
    for name, uri in artifacts.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"artifact name {name!r} must be a non-empty string")
        if not isinstance(uri, (str, os.PathLike)) or not os.fspath(uri):
            raise InvalidInputError(
                f"artifact {name!r}: {uri!r} is not a path or URI; use a local path, file://, "
                "runs:/ or models:/"
            )
        checked[name] = os.fspath(uri)
    return checked


def _check_code_paths(code_paths: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if code_paths is None:
        return []
    if isinstance(code_paths, (str, os.PathLike)):
        raise InvalidInputError(
            f"code_paths must be a list of paths, not the string {code_paths!r}"
        )
    paths = [Path(item) for item in code_paths]
    for item in paths:
        if not item.exists():
            raise InvalidInputError(f"code_paths: {item} does not exist")
    return paths


def _requirements(
    python_model: Any,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None,
    extra_pip_requirements: Iterable[str] | str | os.PathLike[str] | None,
) -> list[str]:
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidInputError(
            "give only one of pip_requirements (replaces the defaults) and "
            "extra_pip_requirements (adds to them)"
        )
    if pip_requirements is not None:
        return read_pip_requirements(pip_requirements)
    base = "mlflow" if _is_mlflow_model(python_model) else "gittrack"
    defaults = default_pip_requirements(["cloudpickle", base])
    extra = read_pip_requirements(extra_pip_requirements) if extra_pip_requirements else []
    return defaults + [line for line in extra if line not in defaults]


def _is_mlflow_model(python_model: Any) -> bool:
    return _is_python_model(python_model) and not isinstance(python_model, PythonModel)


def _check_model_config(model_config: ModelConfigSource | None) -> dict[str, Any] | None:
    if model_config is None:
        return None
    if isinstance(model_config, (str, os.PathLike)):
        model_config = _read_config_file(Path(model_config))
    if not isinstance(model_config, Mapping):
        raise InvalidInputError(
            f"model_config must be a mapping or a YAML/JSON file path, not "
            f"{type(model_config).__name__}"
        )
    try:
        yaml.safe_dump(dict(model_config))
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"model_config must hold only strings, numbers, booleans, lists and mappings: {exc}"
        ) from exc
    return dict(model_config)


def _read_config_file(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"model_config: {path} is not a file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"model_config: {path} is not valid YAML or JSON: {exc}") from exc


def _collect_artifacts(
    artifacts: Mapping[str, str], fetch: ArtifactFetcher | None, scratch: Path
) -> list[_Artifact]:
    """Each distinct source once, local; run and registry URIs are copied into ``scratch``."""
    by_uri: dict[str, _Artifact] = {}
    for name, uri in artifacts.items():
        if uri in by_uri:
            by_uri[uri].names.append(name)
            continue
        source = _artifact_source(name, uri, fetch, scratch / str(len(by_uri)))
        by_uri[uri] = _Artifact(uri, [name], source)
    collected = list(by_uri.values())
    _place(collected)
    return collected


def _artifact_source(name: str, uri: str, fetch: ArtifactFetcher | None, scratch: Path) -> Path:
    if model_uris.is_runs_uri(uri) or model_uris.is_models_uri(uri):
        if fetch is None:
            raise InvalidInputError(
                f"artifact {name!r}: {uri!r} needs a tracking repository to be resolved"
            )
        return fetch(uri, scratch)
    if uri.startswith("file:"):
        source = Path(unquote(urlparse(uri).path))
    elif "://" in uri:
        raise InvalidInputError(
            f"artifact {name!r}: {uri!r} is not supported; use a local path, file://, runs:/ "
            "or models:/"
        )
    else:
        source = Path(uri)
    if not source.exists():
        raise InvalidInputError(f"artifact {name!r}: {source} does not exist")
    return source


def _place(collected: list[_Artifact]) -> None:
    """Each source keeps its file name under ``artifacts/``; sources sharing a file name go
    into numbered directories (the lowest numbers no other artifact uses), as MLflow does."""
    counts: dict[str, int] = {}
    for artifact in collected:
        counts[artifact.source.name] = counts.get(artifact.source.name, 0) + 1
    taken = {artifact.source.name for artifact in collected if counts[artifact.source.name] == 1}
    number = 0
    for artifact in collected:
        name = artifact.source.name
        if counts[name] == 1:
            artifact.target = f"{ARTIFACTS_DIR}/{name}"
            continue
        while str(number) in taken:
            number += 1
        taken.add(str(number))
        artifact.target = f"{ARTIFACTS_DIR}/{number}/{name}"


def _write_model_dir(
    model_dir: Path,
    config: ModelConfig,
    plan: _SavePlan,
    collected: list[_Artifact],
    signature: Any,
    example: Any,
) -> None:
    _pickle_model(plan.python_model, model_dir / PYTHON_MODEL_FILE_NAME)
    for artifact in collected:
        _copy(artifact.source, model_dir / artifact.target)
    for code_path in plan.code_paths:
        _copy(code_path, model_dir / CODE_DIR / code_path.name)
    if example is not None:
        config.saved_input_example_info = write_input_example(model_dir, example)
    context = PythonModelContext(_local_artifacts(model_dir, collected), plan.model_config)
    config.signature = _resolve_signature(signature, plan.python_model, context, example)
    env = write_environment_files(model_dir, plan.requirements)
    config.add_flavor(PYFUNC_FLAVOR, **_flavor_conf(plan, collected, env))
    write_model_config(model_dir, config)


def _flavor_conf(
    plan: _SavePlan, collected: list[_Artifact], env: dict[str, str]
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "loader_module": LOADER_MODULE,
        "python_model": PYTHON_MODEL_FILE_NAME,
        "cloudpickle_version": installed_version("cloudpickle"),
        "env": env,
        "python_version": platform.python_version(),
        "code": CODE_DIR if plan.code_paths else None,
    }
    if collected:
        conf["artifacts"] = {
            name: {"path": artifact.target, "uri": artifact.uri}
            for artifact in collected
            for name in artifact.names
        }
    if plan.model_config is not None:
        conf["config"] = plan.model_config
    return conf


def _local_artifacts(model_dir: Path, collected: list[_Artifact]) -> dict[str, str]:
    root = model_dir.resolve()
    return {name: str(root / artifact.target) for artifact in collected for name in artifact.names}


def _pickle_model(python_model: Any, target: Path) -> None:
    import cloudpickle

    try:
        with target.open("wb") as out:
            cloudpickle.dump(python_model, out, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInputError(
            f"cannot serialize python_model {type(python_model).__name__} with cloudpickle: {exc}"
        ) from exc


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def _resolve_signature(
    signature: Any, python_model: Any, context: PythonModelContext, example: Any
) -> ModelSignature | None:
    """The given signature, or one inferred from the model's prediction on the example.

    As MLflow, inference calls ``load_context`` then ``predict``; when either fails a warning
    says why and the model is saved without a signature."""
    if signature is False:
        return None
    if signature is not None and signature is not True:
        return as_model_signature(signature)
    if example is None:
        return None
    try:
        python_model.load_context(context)
        prediction = PythonModelPredictor(python_model, context).predict(example.copy())
        return infer_signature_from_example(example, prediction)
    except Exception as exc:
        warnings.warn(
            f"no signature was inferred: the model failed on input_example: {exc!r}",
            stacklevel=4,
        )
        return None


# --------------------------------------------------------------------------- load


def load_pyfunc(
    model_dir: Path, config: ModelConfig, model_config: ModelConfigSource | None = None
) -> PythonModelPredictor:
    """Loader behind ``loader_module: mlflow.pyfunc.model``: unpickle, then ``load_context``.

    Args:
        model_dir: the local model directory.
        config: its parsed ``MLmodel``.
        model_config: overrides of the saved ``model_config``, a mapping or a YAML/JSON file
            (only keys it has; others are ignored with a warning, as MLflow does).

    Returns:
        The model with its context, ready to predict.

    Raises:
        CorruptDataError: the flavor or the pickle is unreadable (the file is named).
        InvalidStateError: the pickle needs a module that is not installed (e.g. mlflow).
    """
    conf = config.flavor(PYFUNC_FLAVOR, model_dir=model_dir)
    _add_code_to_path(model_dir, conf)
    python_model = _unpickle(model_dir, conf)
    context = PythonModelContext(
        _saved_artifacts(model_dir, conf),
        _overridden_config(conf.get("config"), _check_model_config(model_config)),
    )
    python_model.load_context(context=context)
    return PythonModelPredictor(python_model, context)


def _add_code_to_path(model_dir: Path, conf: Mapping[str, Any]) -> None:
    code = conf.get("code")
    if code:
        location = str((model_dir / str(code)).resolve())
        if location not in sys.path:
            sys.path.insert(0, location)


def _unpickle(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    import cloudpickle

    name = conf.get("python_model")
    if not name:
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: the python_function flavor names no python_model file"
        )
    source = model_dir / str(name)
    if not source.is_file():
        raise CorruptDataError(f"the model file {source} named in {MLMODEL_FILE_NAME} is missing")
    _warn_on_cloudpickle_mismatch(conf.get("cloudpickle_version"), cloudpickle.__version__)
    compression = conf.get("compression")
    opener = _OPENERS.get(str(compression)) if compression else open
    if opener is None:
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: unknown compression {compression!r} of {name}; "
            f"known: {', '.join(_OPENERS)}"
        )
    try:
        with opener(source, "rb") as handle:
            return cloudpickle.load(handle)
    except ModuleNotFoundError as exc:
        hint = " (it was saved with MLflow: pip install mlflow)" if _is_mlflow(exc.name) else ""
        raise InvalidStateError(
            f"{source}: the pickled model needs the module {exc.name!r}, which is not "
            f"installed{hint}"
        ) from exc
    except (pickle.UnpicklingError, EOFError, OSError, lzma.LZMAError) as exc:
        raise CorruptDataError(f"{source}: cannot read the cloudpickle model file: {exc}") from exc


def _is_mlflow(module: str | None) -> bool:
    return (module or "").split(".")[0] == "mlflow"


def _warn_on_cloudpickle_mismatch(saved: Any, running: str) -> None:
    if saved is not None and str(saved) != running:
        warnings.warn(
            f"the model was saved with cloudpickle {saved} and is loaded with {running}; "
            "pickles are not guaranteed to load across cloudpickle versions",
            stacklevel=5,
        )


def _saved_artifacts(model_dir: Path, conf: Mapping[str, Any]) -> dict[str, str]:
    saved = conf.get("artifacts") or {}
    if not isinstance(saved, Mapping):
        raise CorruptDataError(f"{model_dir / MLMODEL_FILE_NAME}: 'artifacts' must be a mapping")
    root = model_dir.resolve()
    paths = {}
    for name, info in saved.items():
        if not isinstance(info, Mapping) or not info.get("path"):
            raise CorruptDataError(
                f"{model_dir / MLMODEL_FILE_NAME}: artifact {name!r} has no 'path'"
            )
        paths[str(name)] = str(root / str(info["path"]))
    return paths


def _overridden_config(
    saved: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    if not overrides:
        return saved
    if not saved:
        warnings.warn(
            f"model_config keys {sorted(overrides)} are ignored: the model was saved without "
            "a model_config",
            stacklevel=5,
        )
        return None
    ignored = sorted(set(overrides) - set(saved))
    if ignored:
        warnings.warn(
            f"model_config keys {ignored} are ignored: only keys saved with the model "
            f"({sorted(saved)}) can be overridden",
            stacklevel=5,
        )
    return {**saved, **{key: value for key, value in overrides.items() if key in saved}}
