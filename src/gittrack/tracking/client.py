"""``gittrack.tracking.client.MlflowClient``: the import path MLflow scripts use for the client.

The client itself is ``gittrack.Client`` (``client.py``); this module only gives it MLflow's
module path, so ``from mlflow.tracking.client import MlflowClient`` keeps working after the
import line is changed to gittrack.
"""

from __future__ import annotations

from gittrack.client import Client

MlflowClient = Client

__all__ = ["MlflowClient"]
