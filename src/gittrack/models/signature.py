"""Model signatures: what a model takes and returns, in MLflow's column-spec JSON.

An ``MLmodel`` file stores a signature as ``{inputs: <json>, outputs: <json>, params: <json>}``
where each JSON string is a list of specs. A spec is either a named or unnamed *column*
(``{"name": "age", "type": "long", "required": true}``) or a *tensor*
(``{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}``); one schema
never mixes the two. Inference maps pandas columns and numpy arrays onto those specs.

numpy and pandas are imported inside the functions that need them so that importing this
module stays cheap.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gittrack.errors import InvalidInputError

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
"""The scalar column types MLflow defines (its ``DataType`` names)."""

COLUMN_NUMPY_DTYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "datetime": "datetime64[ns]",
}
"""numpy dtype of each scalar column type that has a fixed-width one."""

TENSOR_TYPE = "tensor"


class DataType(str, enum.Enum):
    """MLflow's column types by name: ``ColumnSpec(DataType.double, "x")`` stores ``double``."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a tabular input or output.

    ``details`` keeps the extra keys of non-scalar MLflow types (``array``, ``object``, ``map``)
    so a signature read from a file is written back unchanged.
    """

    type: str
    name: str | None = None
    required: bool = True
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # MLflow scripts pass a ``DataType`` member (``DataType.double``); its name is the type.
        if type(self.type) is not str:
            object.__setattr__(self, "type", str(getattr(self.type, "name", self.type)))

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored in a signature's JSON (MLflow's column spec keys)."""
        spec: dict[str, Any] = {**self.details, "type": self.type, "required": self.required}
        if self.name is not None:
            spec["name"] = self.name
        return spec


@dataclass(frozen=True)
class TensorSpec:
    """A whole array input or output; ``-1`` in ``shape`` means any size (the batch axis)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        # MLflow scripts pass a numpy dtype (``TensorSpec(np.dtype("float64"), (-1, 4))``).
        if not isinstance(self.dtype, str):
            import numpy as np

            object.__setattr__(self, "dtype", tensor_dtype_name(np.dtype(self.dtype)))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored in a signature's JSON (``type: tensor`` with its dtype/shape)."""
        spec: dict[str, Any] = {
            "type": TENSOR_TYPE,
            "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)},
        }
        if self.name is not None:
            spec["name"] = self.name
        return spec


Spec = ColumnSpec | TensorSpec


@dataclass(frozen=True)
class Schema:
    """An ordered list of specs, all columns or all tensors (MLflow's ``Schema``).

    ``Schema([ColSpec("double", "x")])`` builds one as MLflow scripts do; any iterable of
    specs is kept as a tuple.
    """

    specs: tuple[Spec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(self.specs))
        if not all(isinstance(spec, (ColumnSpec, TensorSpec)) for spec in self.specs):
            raise InvalidInputError(
                "a schema holds ColSpec/ColumnSpec or TensorSpec items only, got "
                f"{[type(spec).__name__ for spec in self.specs]}"
            )
        kinds = {type(spec) for spec in self.specs}
        if len(kinds) > 1:
            raise InvalidInputError(
                "a schema mixes column specs and tensor specs; use one kind per schema"
            )

    @property
    def is_tensor(self) -> bool:
        return bool(self.specs) and isinstance(self.specs[0], TensorSpec)

    @property
    def has_names(self) -> bool:
        return bool(self.specs) and all(spec.name is not None for spec in self.specs)

    @property
    def inputs(self) -> list[Spec]:
        """The specs as a list (MLflow's ``Schema.inputs``)."""
        return list(self.specs)

    def names(self) -> list[str | None]:
        """The name of each spec, None for unnamed ones."""
        return [spec.name for spec in self.specs]

    def input_names(self) -> list[str | int]:
        """Spec names, with the position standing in for an unnamed spec (as MLflow)."""
        return [spec.name if spec.name is not None else i for i, spec in enumerate(self.specs)]

    def input_types(self) -> list[str]:
        """The column type or tensor dtype of each spec."""
        return [spec.dtype if isinstance(spec, TensorSpec) else spec.type for spec in self.specs]

    def to_dict(self) -> list[dict[str, Any]]:
        """The specs as decoded JSON (a list of mappings)."""
        return [spec.to_dict() for spec in self.specs]

    def to_json(self) -> str:
        """The JSON string stored in ``MLmodel``; keys sorted so saves are reproducible."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | list[Any]) -> Schema:
        """Parse a schema from its JSON string (or an already decoded list)."""
        try:
            items = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"schema is not valid JSON: {exc}") from exc
        if not isinstance(items, list):
            raise InvalidInputError(
                f"schema must be a JSON list of specs, got {type(items).__name__}"
            )
        return cls(tuple(_spec_from_dict(item) for item in items))


@dataclass(frozen=True)
class ModelSignature:
    """Input and output schemas of a model, plus MLflow's inference params kept as raw JSON."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The form stored in ``MLmodel``: each schema as a JSON string."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"signature must be a mapping with inputs/outputs, got {type(data).__name__}"
            )
        inputs, outputs, params = data.get("inputs"), data.get("outputs"), data.get("params")
        if params is not None and not isinstance(params, str):
            params = json.dumps(params, sort_keys=True)
        return cls(
            inputs=Schema.from_json(inputs) if inputs else None,
            outputs=Schema.from_json(outputs) if outputs else None,
            params=params or None,
        )


def as_model_signature(signature: Any) -> ModelSignature:
    """Accept a gittrack signature, an MLflow ``ModelSignature`` or its dict form."""
    if isinstance(signature, ModelSignature):
        return signature
    if isinstance(signature, Mapping):
        return ModelSignature.from_dict(signature)
    to_dict = getattr(signature, "to_dict", None)
    if callable(to_dict):
        return ModelSignature.from_dict(to_dict())
    raise InvalidInputError(
        f"signature must be a ModelSignature or a mapping with 'inputs'/'outputs', "
        f"got {type(signature).__name__}"
    )


def infer_signature(
    model_input: Any = None,
    model_output: Any = None,
    params: Mapping[str, Any] | None = None,
) -> ModelSignature:
    """A signature from an example input, the model's output on it and inference params.

    Args:
        model_input: a pandas DataFrame or Series, a numpy array, a list of records, a dict of
            columns or a list of scalars; None leaves the inputs unset.
        model_output: the model's prediction on ``model_input`` (same kinds), or None.
        params: inference parameters and their default values (str, bool, int, float or a
            list of one of them), stored as MLflow's params schema.

    Returns:
        The ``ModelSignature`` to pass to ``log_model(signature=...)``.

    Raises:
        InvalidInputError: a value whose type has no signature type (the message names it).
    """
    inputs = infer_schema(model_input) if model_input is not None else None
    outputs = infer_schema(model_output) if model_output is not None else None
    params_json = infer_params_schema(params) if params else None
    return ModelSignature(inputs=inputs, outputs=outputs, params=params_json)


_PARAM_TYPES = ((bool, "boolean"), (int, "long"), (float, "double"), (str, "string"))


def infer_params_schema(params: Mapping[str, Any]) -> str:
    """MLflow's params schema JSON: name, type, default value and shape (``[-1]`` for lists)."""
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"params must be a mapping, got {type(params).__name__}")
    specs = []
    for name, default in params.items():
        values = default if isinstance(default, list) else [default]
        types = {_param_type(name, value) for value in values}
        if len(types) != 1:
            raise InvalidInputError(
                f"param {name!r}: a list default needs values of one type, got {default!r}"
            )
        shape = [-1] if isinstance(default, list) else None
        spec = {"name": str(name), "type": types.pop(), "default": default, "shape": shape}
        specs.append(spec)
    return json.dumps(specs, sort_keys=True)


def _param_type(name: Any, value: Any) -> str:
    for python_type, param_type in _PARAM_TYPES:
        if isinstance(value, python_type):
            return param_type
    raise InvalidInputError(
        f"param {name!r}: default {value!r} is not a str, bool, int, float or a list of one"
    )


def infer_signature_from_example(example: Any, prediction: Any) -> ModelSignature:
    """Signature a saved model records for its input example and the prediction on it.

    Unlike ``infer_signature``, a 1-D array predicted for a tabular input is one unnamed
    output column (one prediction per row), as MLflow's flavors record it when saving.
    """
    inputs = infer_schema(example)
    return ModelSignature(
        inputs=inputs, outputs=infer_schema(_as_row_predictions(prediction, inputs))
    )


def infer_schema(data: Any) -> Schema:
    """Schema of a pandas DataFrame/Series, a numpy array, a dict of columns or a list.

    A list of records or a dict of columns is a table, a list of scalars one unnamed column,
    any other list an array. ``InvalidInputError`` names a value with no signature type.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return Schema(tuple(_column_spec(data[col], str(col)) for col in data.columns))
    if isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema((_column_spec(data, name),))
    if isinstance(data, np.ndarray):
        return Schema((_tensor_spec(data),))
    if isinstance(data, Mapping) or _is_list_of_mappings(data):
        return infer_schema(to_dataframe(data))
    if isinstance(data, list) and data and all(_is_scalar(x) for x in data):
        return infer_schema(pd.Series(data))  # one unnamed column, as MLflow infers it
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return infer_schema(np.asarray(data))
    raise InvalidInputError(
        f"cannot infer a schema from {type(data).__name__}; "
        "use a pandas DataFrame, a numpy array, a dict of columns or a list of rows"
    )


def to_dataframe(data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
    """A DataFrame from a dict of columns, a dict of scalars (one row) or a list of records."""
    import pandas as pd

    if isinstance(data, Mapping):
        if all(_is_scalar(value) for value in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame(dict(data))
    return pd.DataFrame(list(data))


def column_type_of(series: Any, name: str | None = None) -> str:
    """The MLflow column type of a pandas Series (``long``, ``double``, ``string``...)."""
    import pandas as pd

    if series.dtype.kind == "O" and not pd.api.types.is_string_dtype(series.dtype):
        series = series.infer_objects()
    dtype = series.dtype
    if dtype.kind == "O" or isinstance(dtype, pd.StringDtype):
        values = [v for v in series.tolist() if not _is_missing(v)]
        if all(isinstance(v, str) for v in values):
            return "string"
        if values and all(isinstance(v, bytes) for v in values):
            return "binary"
        if values and all(isinstance(v, bool) for v in values):
            return "boolean"
        raise _unsupported_column(name, dtype)
    column_type = _scalar_type_of_dtype(dtype)
    if column_type is None:
        raise _unsupported_column(name, dtype)
    return column_type


def _column_spec(series: Any, name: str | None) -> ColumnSpec:
    required = not bool(series.isna().any())
    return ColumnSpec(type=column_type_of(series, name), name=name, required=required)


def _tensor_spec(array: Any) -> TensorSpec:
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return TensorSpec(dtype=tensor_dtype_name(array.dtype), shape=tuple(int(d) for d in shape))


def tensor_dtype_name(dtype: Any) -> str:
    """numpy dtype name without a size for strings/bytes (``<U5`` is stored as ``str``)."""
    if dtype.kind == "U":
        return "str"
    if dtype.kind == "S":
        return "bytes"
    return str(dtype.name)


def _scalar_type_of_dtype(dtype: Any) -> str | None:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind == "i":
        return "integer" if size <= 4 else "long"
    if kind == "u":
        # An unsigned value fits the next signed width; uint64 fits none of them.
        return "integer" if size < 4 else "long" if size < 8 else None
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    return None


def _as_row_predictions(output: Any, inputs: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if not inputs.is_tensor and isinstance(output, np.ndarray) and output.ndim == 1:
        return pd.Series(output)
    return output


def _spec_from_dict(item: Any) -> Spec:
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        raise InvalidInputError(
            f"a schema spec must be a mapping with a 'type' string, got {item!r}"
        )
    name = item.get("name")
    if item["type"] == TENSOR_TYPE:
        tensor = item.get("tensor-spec")
        if not isinstance(tensor, Mapping) or "dtype" not in tensor or "shape" not in tensor:
            raise InvalidInputError(
                f"a tensor spec needs 'tensor-spec' with 'dtype' and 'shape', got {item!r}"
            )
        return TensorSpec(dtype=str(tensor["dtype"]), shape=tuple(tensor["shape"]), name=name)
    details = {k: v for k, v in item.items() if k not in ("type", "name", "required")}
    required = item.get("required")
    return ColumnSpec(
        type=item["type"],
        name=name,
        required=True if required is None else bool(required),
        details=details,
    )


def _is_list_of_mappings(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(x, Mapping) for x in data)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bytes, int, float, bool)) or value is None


def _is_missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _unsupported_column(name: str | None, dtype: Any) -> InvalidInputError:
    label = f"column {name!r}" if name is not None else "the data"
    return InvalidInputError(
        f"cannot infer a signature type for {label} of dtype {dtype}; "
        f"supported column types are {', '.join(COLUMN_TYPES)}"
    )
