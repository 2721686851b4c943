"""MLflow's ``mlflow.types.schema`` names, over gittrack's own signature types."""

from __future__ import annotations

from gittrack.models.signature import ColumnSpec, DataType, Schema, TensorSpec

ColSpec = ColumnSpec
"""MLflow's name for a column spec: ``ColSpec(type, name=None, required=True)``."""

__all__ = ["ColSpec", "DataType", "Schema", "TensorSpec"]
