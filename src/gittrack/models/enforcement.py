"""Fit a prediction input to a model's input signature, with MLflow's rules.

A model saved with a signature only ever sees data of the shape and types it was trained on:

- containers are converted first: a dict of columns or a list of records becomes a
  DataFrame, a list of rows an array;
- named columns are selected and ordered by the signature; a missing required column is an
  error, extra columns are dropped, a missing optional column is filled with NaN. A 2-D array
  of the right width is read as those columns (gittrack's addition: MLflow refuses it);
- a column's type must match or widen without changing a value: ``integer`` to ``long``,
  ``float`` to ``double``, an integer to ``double``/``float`` when every value is exactly
  representable (MLflow takes int8/16/32 always but int64 only for 0/1 values: gittrack takes
  the values that convert exactly), ``object`` holding strings for ``string``. Anything else
  (a string or a float for ``long``, a bool for ``double``) is refused, naming the column;
- a tensor must have the recorded number of dimensions and the fixed sizes (``-1`` is any
  size); its dtype is cast when numpy calls the cast safe (MLflow wants the exact dtype).

Every refusal is an ``InvalidInputError``: an ``MlflowException`` whose ``error_code`` is
``INVALID_PARAMETER_VALUE``, as MLflow raises for the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gittrack.errors import InvalidInputError
from gittrack.models.signature import (
    COLUMN_NUMPY_DTYPES,
    ColumnSpec,
    Schema,
    TensorSpec,
    to_dataframe,
)

_NUMERIC_TYPES = ("integer", "long", "float", "double")
# The largest integer each float width holds exactly (its mantissa bits plus one).
_EXACT_INTEGER_LIMIT = {"float32": 2**24, "float64": 2**53}


def prepare_input(data: Any, schema: Schema | None) -> Any:
    """Fit ``data`` to the input ``schema`` (see the module docstring).

    Args:
        data: a DataFrame, an ndarray, a dict of columns, a list of records or of rows.
        schema: the model's input schema; None passes the converted data through.

    Returns:
        A DataFrame with the signature's columns, or an ndarray for a tensor signature.

    Raises:
        InvalidInputError: a required column is missing, a column's type cannot be converted
            safely, or a tensor's shape or dtype does not fit; the message names the column.
    """
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


# --------------------------------------------------------------------------- columns


def _prepare_named_columns(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    names = [str(name) for name in schema.names()]
    if isinstance(data, np.ndarray):
        data = _array_to_named_frame(data, names)
    if isinstance(data, pd.Series):
        data = data.to_frame()
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
            columns[name] = enforce_column_type(data[by_name[name]], spec)
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


def enforce_column_type(column: Any, spec: ColumnSpec) -> Any:
    """The column converted to the spec's type, or ``InvalidInputError`` naming the column.

    Args:
        column: a pandas Series.
        spec: the column's spec; types with details (array, object, map) pass unchecked.

    Returns:
        The Series, cast where a safe widening applies.

    Raises:
        InvalidInputError: the values cannot be converted without changing them.
    """
    if (
        spec.details
        or spec.type not in COLUMN_NUMPY_DTYPES
        and spec.type
        not in (
            "string",
            "binary",
        )
    ):
        return column
    if column.dtype.kind == "O" and spec.type not in ("string", "binary"):
        column = column.infer_objects()
    if spec.type in ("string", "binary"):
        return _enforce_text(column, spec)
    if spec.type == "boolean":
        return _enforce_boolean(column, spec)
    if spec.type == "datetime":
        return _enforce_datetime(column, spec)
    return _enforce_number(column, spec)


def _enforce_text(column: Any, spec: ColumnSpec) -> Any:
    import pandas as pd

    kind = column.dtype.kind
    if (
        kind in "OU"
        or isinstance(column.dtype, pd.StringDtype)
        or (spec.type == "binary" and kind == "S")
    ):
        return column
    raise _incompatible(column, spec)


def _enforce_boolean(column: Any, spec: ColumnSpec) -> Any:
    if column.dtype.kind == "b" or _is_object(column.dtype):  # None stays None, not False
        return column
    raise _incompatible(column, spec)


def _enforce_datetime(column: Any, spec: ColumnSpec) -> Any:
    import numpy as np

    if column.dtype.kind not in "MO":
        raise _incompatible(column, spec)
    try:
        return column.astype(np.dtype("datetime64[ns]"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"column {spec.name!r}: cannot convert {column.dtype} to datetime "
            f"(timezone-naive datetimes only): {exc}"
        ) from exc


def _enforce_number(column: Any, spec: ColumnSpec) -> Any:
    import numpy as np

    target = np.dtype(COLUMN_NUMPY_DTYPES[spec.type])
    dtype = column.dtype
    if dtype.kind not in "iuf":  # text, bool, object: never a number silently
        raise _incompatible(column, spec)
    if dtype == target:
        return column
    if _widens(dtype, target) or _converts_exactly(column, target):
        return column.astype(target)
    raise _incompatible(column, spec)


def _widens(dtype: Any, target: Any) -> bool:
    kind, size = dtype.kind, dtype.itemsize
    if kind == target.kind:
        return size <= target.itemsize
    if kind == "u" and target.kind == "i":
        return size < target.itemsize
    return kind in "iu" and target == "float64" and size <= 4


def _converts_exactly(column: Any, target: Any) -> bool:
    limit = _EXACT_INTEGER_LIMIT.get(target.name)
    if column.dtype.kind not in "iu" or limit is None:
        return False
    values = column.dropna()
    return values.empty or bool(values.abs().max() <= limit)


def _incompatible(column: Any, spec: ColumnSpec) -> InvalidInputError:
    dtype = column.dtype
    shown = str(dtype)
    if _is_object(dtype):
        kinds = sorted({type(v).__name__ for v in column.dropna().tolist()[:100]})
        shown = f"object ({', '.join(kinds) or 'empty'} values)"
    hint = ""
    if spec.type in ("integer", "long") and dtype.kind == "f" and column.hasnans:
        hint = (
            "; missing values turn an integer column into floats: infer the signature from "
            "data with missing values, or declare the column as double"
        )
    allowed = _ALLOWED.get(spec.type, spec.type)
    return InvalidInputError(
        f"column {spec.name!r}: cannot safely convert {shown} to the signature's type "
        f"{spec.type!r}; allowed: {allowed}{hint}"
    )


def _is_object(dtype: Any) -> bool:
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind == "O"


_ALLOWED = {
    "integer": "int8/16/32 and uint8/16",
    "long": "any signed integer, uint8/16/32",
    "float": "float16/32, integers whose values are at most 2**24",
    "double": "any float, int8/16/32, integers whose values are at most 2**53",
    "boolean": "bool, or object holding booleans",
    "string": "str or object values",
    "binary": "bytes or object values",
    "datetime": "datetime64 of any precision, or object holding datetimes",
}


# --------------------------------------------------------------------------- tensors


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
