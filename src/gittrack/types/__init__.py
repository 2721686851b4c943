"""``gittrack.types``: MLflow's ``mlflow.types`` schema names, for scripts that build a
signature by hand (``Schema([ColSpec("double", "x")])``)."""

from __future__ import annotations

from gittrack.types.schema import ColSpec, DataType, Schema, TensorSpec

__all__ = ["ColSpec", "DataType", "Schema", "TensorSpec"]
