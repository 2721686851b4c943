"""Inference ``params`` checked against a signature's params schema, as MLflow does.

A signature may list the parameters ``predict`` accepts (``[{name, type, default, shape}]``,
stored as JSON in ``MLmodel``). Without that list, params given at inference are dropped with
a warning. With it, names it does not list are dropped with a warning, missing ones take their
default, and each value (a default too) is converted to the declared type when no information is lost: an
integer to ``long``, ``float`` or ``double``, a ``float`` to ``double``, any value numpy
reads as a date to ``datetime``; every other mismatch is an error naming the parameter.
``shape: [-1]`` declares a list of such values; ``object`` parameters are passed as given.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

from gittrack.errors import InvalidInputError

_PYTHON_TYPES: Mapping[str, type] = {
    "boolean": bool,
    "integer": int,
    "long": int,
    "float": float,
    "double": float,
    "string": str,
    "binary": bytes,
}
_WIDENED_FROM: Mapping[str, tuple[str, ...]] = {
    "long": ("integer",),
    "float": ("integer", "long"),
    "double": ("integer", "long", "float"),
}


def apply_params_schema(
    params: Mapping[str, Any] | None, params_schema: str | None
) -> dict[str, Any] | None:
    """The inference ``params`` a model receives, given its signature's params schema (JSON).

    Args:
        params: the params given to ``predict``.
        params_schema: the signature's ``params`` JSON, or None when it has none.

    Returns:
        The params to pass on (see the module docstring); None when none were given and the
        signature has no params schema.

    Raises:
        InvalidInputError: ``params`` is not a mapping, a value does not fit its declared type
            (every such parameter is named), or the schema is not a list of specs.
    """
    if params is not None and not isinstance(params, Mapping):
        raise InvalidInputError(f"params must be a dict, not {type(params).__name__}")
    if params_schema is None:
        if params:
            warnings.warn(
                f"params {sorted(map(str, params))} are ignored: the model's signature defines "
                "no params schema",
                stacklevel=4,
            )
            return {}
        return None if params is None else {}
    specs = _param_specs(params_schema)
    given = {str(key): value for key, value in (params or {}).items()}
    if unknown := sorted(set(given) - set(specs)):
        warnings.warn(
            f"params {unknown} are ignored: the model's signature lists {sorted(specs)}",
            stacklevel=4,
        )
    applied, problems = {}, []
    for name, spec in specs.items():
        value = given[name] if name in given else spec.get("default")
        try:
            applied[name] = _convert(value, spec)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name!r}: {exc}")
    if problems:
        raise InvalidInputError(f"invalid params: {'; '.join(problems)}")
    return applied


def _param_specs(params_schema: str) -> dict[str, Mapping[str, Any]]:
    try:
        specs = json.loads(params_schema)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"the signature's params schema is not JSON: {exc}") from exc
    if not isinstance(specs, list) or not all(
        isinstance(spec, Mapping) and "name" in spec for spec in specs
    ):
        raise InvalidInputError(
            f"the signature's params schema must be a list of {{name, type, default}}, not "
            f"{params_schema[:80]!r}"
        )
    return {str(spec["name"]): spec for spec in specs}


def _convert(value: Any, spec: Mapping[str, Any]) -> Any:
    """``value`` as the spec's type; ``ValueError`` says why it does not fit."""
    import numpy as np

    dtype = spec.get("type")
    if not isinstance(dtype, str) or dtype == "object":
        return value
    shape = spec.get("shape")
    if shape is None:
        return _convert_scalar(value, dtype)
    if list(shape) != [-1]:
        raise ValueError(f"shape {shape} is not supported: use null (a scalar) or [-1] (a list)")
    if not isinstance(value, (list, np.ndarray)) or np.asarray(value).ndim != 1:
        raise ValueError(f"expected a list of {dtype} (shape [-1]), got {value!r}")
    return [_convert_scalar(item, dtype) for item in value]


def _convert_scalar(value: Any, dtype: str) -> Any:
    import numpy as np

    if value is None:
        return None
    if dtype == "datetime":
        converted = np.datetime64(value).item()
        if isinstance(converted, int):
            raise ValueError(f"{value!r} is not a date or time")
        return converted
    if dtype not in _PYTHON_TYPES:
        raise ValueError(f"unknown type {dtype!r}")
    if not np.isscalar(value):
        raise ValueError(f"expected a single {dtype}, got {value!r}")
    accepted = _exact_types(dtype)
    for narrower in _WIDENED_FROM.get(dtype, ()):
        accepted += _exact_types(narrower)
    if type(value) in accepted:
        return _PYTHON_TYPES[dtype](value)
    raise ValueError(f"{type(value).__name__} {value!r} cannot be safely converted to {dtype}")


def _exact_types(dtype: str) -> tuple[type, ...]:
    """The Python and numpy types MLflow takes as ``dtype`` without conversion."""
    import numpy as np

    exact: dict[str, tuple[type, ...]] = {
        "boolean": (bool, np.bool_),
        "integer": (int, np.int32),
        "long": (int, np.int64),
        "float": (float, np.float32),
        "double": (float, np.float64),
        "string": (str, np.str_),
        "binary": (bytes, bytearray, np.bytes_),
    }
    return exact[dtype]
