"""``gittrack.models``: MLflow's ``mlflow.models`` names for saved models.

``infer_signature`` and ``ModelSignature`` describe what a model takes and returns,
``Model`` reads a saved model's ``MLmodel``, ``ModelInfo`` is what ``log_model`` returns.
The flavors that save and load models are ``gittrack.sklearn`` and ``gittrack.pyfunc``.
"""

from __future__ import annotations

from gittrack.models.model import Model
from gittrack.models.model_format import ModelInfo
from gittrack.models.signature import ModelSignature, infer_signature

__all__ = ["Model", "ModelInfo", "ModelSignature", "infer_signature"]
