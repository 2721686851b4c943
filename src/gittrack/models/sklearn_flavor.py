"""Save and load scikit-learn models in MLflow's ``sklearn`` flavor, on local directories.

A saved directory loads with ``mlflow.sklearn.load_model`` and ``mlflow.pyfunc.load_model``
as well as with gittrack. The estimator is stored as ``model.pkl`` (``cloudpickle`` or
``pickle``) or ``model.skops`` (``skops``). Loading a pickle runs code from the file: load
only models you trust. skops refuses types it does not know to be safe unless they are listed
in ``skops_trusted_types``, which is kept in ``MLmodel`` so both tools can load the file.

scikit-learn, cloudpickle and skops are imported only when a model is saved or loaded.
"""

from __future__ import annotations

import importlib
import os
import pickle
import platform
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gittrack.errors import CorruptDataError, InvalidInputError
from gittrack.models.model_format import (
    MLMODEL_FILE_NAME,
    PYFUNC_FLAVOR,
    ModelConfig,
    ModelInfo,
    default_pip_requirements,
    normalize_input_example,
    read_model_config,
    read_pip_requirements,
    write_environment_files,
    write_input_example,
    write_model_config,
)
from gittrack.models.save_target import prepare_target, remove_partial_save
from gittrack.models.signature import (
    ModelSignature,
    as_model_signature,
    infer_schema,
    infer_signature_from_example,
)

FLAVOR_NAME = "sklearn"
LOADER_MODULE = "mlflow.sklearn"
"""The ``python_function`` loader module MLflow resolves to its own sklearn flavor."""

SERIALIZATION_FORMATS = ("cloudpickle", "pickle", "skops")
DEFAULT_SERIALIZATION_FORMAT = "cloudpickle"
PREDICT_FUNCTIONS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "score",
)
"""Estimator methods the ``python_function`` flavor may call (MLflow's allowed set)."""

_MODEL_FILE_NAMES = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}
_FORMAT_PACKAGES = {"cloudpickle": "cloudpickle", "pickle": None, "skops": "skops"}
_FORMAT_MODULES = {"cloudpickle": "cloudpickle", "pickle": "pickle", "skops": "skops.io"}
# Read models saved without a format as pickle: older MLflow wrote no format key.
_FORMAT_WHEN_UNSTATED = "pickle"


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    *,
    serialization_format: str = DEFAULT_SERIALIZATION_FORMAT,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    pyfunc_predict_fn: str = "predict",
    skops_trusted_types: Iterable[str] | None = None,
) -> ModelInfo:
    """Save a scikit-learn estimator as an MLflow-format model directory at ``path``.

    ``path`` must not exist or be an empty directory. With ``input_example`` and no
    ``signature``, the signature is inferred from the example and the model's prediction on it;
    ``signature=False`` stores none. ``pip_requirements`` (a list or a requirements file)
    replaces the pinned defaults: scikit-learn, numpy, pandas and the serializer's package.
    """
    fmt = _check_serialization_format(serialization_format)
    _check_predict_fn(sk_model, pyfunc_predict_fn)
    trusted = sorted(skops_trusted_types or ())
    if trusted and fmt != "skops":
        raise InvalidInputError(
            f"skops_trusted_types only applies to serialization_format='skops', not {fmt!r}"
        )
    config = ModelConfig.new(run_id=run_id, artifact_path=artifact_path, metadata=metadata)
    model_dir, created = prepare_target(path)
    try:
        _write_model_dir(
            model_dir,
            config,
            sk_model,
            fmt=fmt,
            trusted=trusted,
            predict_fn=pyfunc_predict_fn,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
        )
    except BaseException:
        remove_partial_save(model_dir, created)
        raise
    return ModelInfo.from_config(model_dir, config)


def _write_model_dir(
    model_dir: Path,
    config: ModelConfig,
    sk_model: Any,
    *,
    fmt: str,
    trusted: list[str],
    predict_fn: str,
    signature: Any,
    input_example: Any,
    pip_requirements: Iterable[str] | str | os.PathLike[str] | None,
) -> None:
    model_file = _MODEL_FILE_NAMES[fmt]
    _serialize(sk_model, model_dir / model_file, fmt, trusted)
    example = None
    if input_example is not None:
        example = normalize_input_example(input_example)
        config.saved_input_example_info = write_input_example(model_dir, example)
    config.signature = _resolve_signature(signature, sk_model, example, predict_fn)
    if pip_requirements is None:
        requirements = default_requirements(fmt)
    else:
        requirements = read_pip_requirements(pip_requirements)
    env = write_environment_files(model_dir, requirements)
    if hasattr(sk_model, predict_fn):
        config.add_flavor(
            PYFUNC_FLAVOR,
            loader_module=LOADER_MODULE,
            model_path=model_file,
            predict_fn=predict_fn,
            env=env,
            python_version=platform.python_version(),
        )
    config.add_flavor(FLAVOR_NAME, **_sklearn_flavor_conf(model_file, fmt, trusted))
    write_model_config(model_dir, config)


def _sklearn_flavor_conf(model_file: str, fmt: str, trusted: list[str]) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "pickled_model": model_file,
        "sklearn_version": _sklearn_version(),
        "serialization_format": fmt,
        "code": None,
    }
    if fmt == "skops":
        # MLflow's loader passes this list to skops, so the file loads there too.
        conf["skops_trusted_types"] = trusted or None
    return conf


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load the scikit-learn estimator saved in the model directory ``path``."""
    model_dir = Path(path)
    return load_estimator(model_dir, read_model_config(model_dir))


def load_estimator(model_dir: Path, config: ModelConfig) -> Any:
    """The estimator named by the ``sklearn`` flavor of an already read ``MLmodel``."""
    conf = config.flavor(FLAVOR_NAME, model_dir=model_dir)
    fmt = conf.get("serialization_format") or _FORMAT_WHEN_UNSTATED
    if fmt not in SERIALIZATION_FORMATS:
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: unknown sklearn serialization_format {fmt!r}; "
            f"known formats: {', '.join(SERIALIZATION_FORMATS)}"
        )
    file_name = conf.get("pickled_model")
    if not file_name:
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: the sklearn flavor has no 'pickled_model' field"
        )
    return _deserialize(model_dir / str(file_name), fmt, conf.get("skops_trusted_types"))


def load_pyfunc_estimator(model_dir: Path, config: ModelConfig, model_config: Any = None) -> Any:
    """Loader behind ``loader_module: mlflow.sklearn`` of the ``python_function`` flavor.

    ``model_config`` is accepted and ignored, as MLflow's sklearn loader does.
    """
    if FLAVOR_NAME in config.flavors:
        return load_estimator(model_dir, config)
    # Very old MLflow models carry only python_function: its model_path holds a plain pickle.
    model_path = config.flavor(PYFUNC_FLAVOR, model_dir=model_dir).get("model_path")
    if not model_path:
        raise CorruptDataError(
            f"{model_dir / MLMODEL_FILE_NAME}: neither an sklearn flavor nor a "
            "python_function 'model_path' names the model file"
        )
    return _deserialize(model_dir / str(model_path), _FORMAT_WHEN_UNSTATED, None)


def default_requirements(serialization_format: str) -> list[str]:
    """Pinned pip requirements of a model saved in ``serialization_format``."""
    packages = ["scikit-learn", "numpy", "pandas"]
    if package := _FORMAT_PACKAGES[serialization_format]:
        packages.append(package)
    return default_pip_requirements(packages)


# --------------------------------------------------------------------------- checks


def _check_serialization_format(serialization_format: str) -> str:
    allowed = ", ".join(SERIALIZATION_FORMATS)
    if serialization_format not in SERIALIZATION_FORMATS:
        raise InvalidInputError(
            f"serialization_format {serialization_format!r} is not supported; use one of {allowed}"
        )
    _require_package(serialization_format)
    return serialization_format


def _require_package(serialization_format: str) -> Any:
    """The module that reads and writes ``serialization_format`` (pickle, cloudpickle, skops.io)."""
    package = _FORMAT_PACKAGES[serialization_format]
    try:
        return importlib.import_module(_FORMAT_MODULES[serialization_format])
    except ImportError as exc:
        raise InvalidInputError(
            f"serialization_format {serialization_format!r} needs the {package!r} package, "
            f"which is not installed (pip install {package}); formats: "
            f"{', '.join(SERIALIZATION_FORMATS)}"
        ) from exc


def _check_predict_fn(sk_model: Any, predict_fn: str) -> None:
    if predict_fn not in PREDICT_FUNCTIONS:
        raise InvalidInputError(
            f"pyfunc_predict_fn {predict_fn!r} is not supported; use one of "
            f"{', '.join(PREDICT_FUNCTIONS)}"
        )
    # Without the default method the model is saved without a python_function flavor, as
    # MLflow does for transformers; a method asked for by name must exist.
    if predict_fn != "predict" and not hasattr(sk_model, predict_fn):
        raise InvalidInputError(
            f"pyfunc_predict_fn {predict_fn!r}: {type(sk_model).__name__} has no such method"
        )


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


# --------------------------------------------------------------------------- signature


def _resolve_signature(
    signature: Any, sk_model: Any, example: Any, predict_fn: str
) -> ModelSignature | None:
    if signature is False:
        return None
    if signature is not None and signature is not True:
        return as_model_signature(signature)
    if example is None:
        return None
    return _infer_from_example(sk_model, example, predict_fn)


def _infer_from_example(sk_model: Any, example: Any, predict_fn: str) -> ModelSignature:
    method = getattr(sk_model, predict_fn, None)
    if method is None:
        return ModelSignature(inputs=infer_schema(example))
    try:
        prediction = method(example.copy())
    except Exception as exc:
        # The example may not suit the model (e.g. too few rows); the input schema still holds.
        warnings.warn(
            f"the model's {predict_fn}() failed on input_example, so the signature has no "
            f"outputs: {exc!r}",
            stacklevel=3,
        )
        return ModelSignature(inputs=infer_schema(example))
    return infer_signature_from_example(example, prediction)


# --------------------------------------------------------------------------- files


def _serialize(sk_model: Any, target: Path, fmt: str, trusted: list[str]) -> None:
    if fmt == "skops":
        _dump_skops(sk_model, target, trusted)
        return
    library = _require_package(fmt)
    try:
        with target.open("wb") as out:
            # The default protocol, not the newest, so older interpreters can read the file.
            library.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        hint = " (cloudpickle can store lambdas and local classes)" if fmt == "pickle" else ""
        raise InvalidInputError(
            f"cannot serialize {type(sk_model).__name__} with {fmt}{hint}: {exc}"
        ) from exc


def _dump_skops(sk_model: Any, target: Path, trusted: list[str]) -> None:
    skops_io = _require_package("skops")
    skops_io.dump(sk_model, target)
    untrusted = sorted(set(skops_io.get_untrusted_types(file=target)) - set(trusted))
    if untrusted:
        raise InvalidInputError(
            f"the skops file of {type(sk_model).__name__} holds types skops does not trust by "
            f"default: {', '.join(untrusted)}. If you trust them, pass "
            f"skops_trusted_types={untrusted!r}, or use serialization_format='cloudpickle'"
        )


def _deserialize(source: Path, fmt: str, trusted: Iterable[str] | None) -> Any:
    if not source.is_file():
        raise CorruptDataError(f"the model file {source} named in {MLMODEL_FILE_NAME} is missing")
    library = _require_package(fmt)
    try:
        if fmt == "skops":
            return library.load(source, trusted=list(trusted) if trusted else None)
        with source.open("rb") as handle:
            return library.load(handle)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CorruptDataError(f"{source}: cannot read the {fmt} model file: {exc}") from exc
    except Exception as exc:
        if fmt == "skops" and type(exc).__name__ == "UntrustedTypesFoundException":
            raise CorruptDataError(
                f"{source}: skops refuses types not listed in skops_trusted_types: {exc}"
            ) from exc
        if fmt == "skops" and type(exc).__name__ == "BadZipFile":
            raise CorruptDataError(f"{source}: not a skops archive: {exc}") from exc
        raise
