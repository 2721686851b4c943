"""Tracking domain: runs, experiments, source capture.

MLflow scripts import the client as ``mlflow.tracking.MlflowClient`` and from
``mlflow.tracking.client``. This domain may not import the client, which sits above it
(DESIGN §7), so the package root, the one module above every layer, binds both names when
``gittrack`` is imported (``gittrack/__init__.py``, ``_mlflow_client_paths``): importing
``gittrack.tracking`` always imports the root first.
"""
