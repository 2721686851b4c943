"""Tables logged as run artifacts (``log_table``/``load_table``), in MLflow's format.

A table is a JSON file in pandas' ``split`` orientation without the index,
``{"columns": [...], "data": [[...], ...]}``, so MLflow's ``load_table`` reads what gittrack
writes and the other way round. Logging to a file that is already there appends the rows (the
stored values are read back as they are, so "02108" stays a string), and the run's
``mlflow.loggedArtifacts`` tag lists the file as ``{"path": ..., "type": "table"}``. Parquet
files (MLflow's other table format) are read and written when pyarrow is installed.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from gittrack.errors import InvalidInputError

TABLE_SUFFIXES = (".json", ".parquet")
# Characters MLflow refuses in a table's file name: the name is matched inside the JSON of
# the ``mlflow.loggedArtifacts`` tag.
_FORBIDDEN = ('"', "'", ",", ":", "[", "]", "{", "}")


def check_table_file(artifact_file: object) -> str:
    """The artifact file of a table: a string ending in ``.json`` or ``.parquet``, without
    the characters MLflow refuses there.

    :raises InvalidInputError: any other name.
    """
    if not isinstance(artifact_file, str) or not artifact_file.endswith(TABLE_SUFFIXES):
        raise InvalidInputError(
            f"table artifact file {artifact_file!r} must end in .json or .parquet"
        )
    bad = [c for c in _FORBIDDEN if c in artifact_file]
    if bad:
        raise InvalidInputError(
            f"table artifact file {artifact_file!r} contains {bad[0]!r}; the characters "
            f"{' '.join(_FORBIDDEN)} are not allowed in a table's file name"
        )
    return artifact_file


def as_frame(data: object) -> pd.DataFrame:
    """A table's rows as a DataFrame: a DataFrame as it is, a dict of columns (or of single
    values: one row).

    :raises InvalidInputError: data of another type.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"log_table takes a pandas DataFrame or a dict of columns, not {type(data).__name__}"
        )
    try:
        return pd.DataFrame(data)
    except ValueError:  # all scalar values: one row
        return pd.DataFrame([data])


def encode_table(frame: pd.DataFrame, artifact_file: str) -> bytes:
    """The file's bytes for ``frame``.

    :raises InvalidInputError: values JSON (or Parquet) cannot hold.
    """
    try:
        if artifact_file.endswith(".parquet"):
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            return buffer.getvalue()
        return frame.to_json(orient="split", index=False, date_format="iso").encode()
    except (TypeError, ValueError, OverflowError, ImportError) as exc:
        raise InvalidInputError(
            f"table for {artifact_file!r} cannot be written: {type(exc).__name__}: {exc}"
        ) from exc


def decode_table(data: bytes, artifact_file: str, infer_dtypes: bool = True) -> pd.DataFrame:
    """A stored table; ``infer_dtypes=False`` keeps the stored JSON values as they are.

    :raises InvalidInputError: the file is not a table (names it).
    """
    try:
        if artifact_file.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        if infer_dtypes:
            return pd.read_json(io.StringIO(data.decode()), orient="split")
        table = json.loads(data)  # the values exactly as stored: "02108" stays a string
        return pd.DataFrame(table["data"], columns=table["columns"])
    except (ValueError, UnicodeDecodeError, ImportError, TypeError, KeyError) as exc:
        raise InvalidInputError(f"{artifact_file!r} is not a table: {exc}") from exc


def logged_artifacts_tag(current: str | None, artifact_file: str) -> str | None:
    """The new ``mlflow.loggedArtifacts`` value listing ``artifact_file`` as a table, or None
    when it already does."""
    try:
        entries: list[Any] = json.loads(current) if current else []
    except ValueError:
        entries = []
    if not isinstance(entries, list):
        entries = []
    entry = {"path": artifact_file, "type": "table"}
    if entry in entries:
        return None
    return json.dumps([*entries, entry])


def lists_table(tag_value: object, artifact_file: str) -> bool:
    """Whether an ``mlflow.loggedArtifacts`` value lists ``artifact_file`` as a table."""
    if not isinstance(tag_value, str):
        return False
    try:
        entries = json.loads(tag_value)
    except ValueError:
        return False
    return isinstance(entries, list) and {"path": artifact_file, "type": "table"} in entries
