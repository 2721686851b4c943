"""Automatic logging: ``gittrack.autolog()`` turns on every supported integration.

Only scikit-learn is supported; ``gittrack.sklearn.autolog`` takes its specific options.
"""

from __future__ import annotations

import importlib.util
from typing import Any


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    **_ignored: Any,
) -> None:
    """Log params, metrics and models of every supported library's training calls.

    With scikit-learn installed this is ``gittrack.sklearn.autolog`` with the same options;
    ``disable=True`` turns autologging off again.
    """
    if importlib.util.find_spec("sklearn") is None:
        return
    from gittrack.autologging import sklearn as sklearn_autolog

    sklearn_autolog.autolog(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        log_datasets=log_datasets,
        disable=disable,
        silent=silent,
        extra_tags=extra_tags,
    )
