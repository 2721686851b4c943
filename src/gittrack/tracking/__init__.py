"""Tracking domain: runs, experiments, source capture. ``MlflowClient`` is ``gittrack.Client``."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "MlflowClient":
        from gittrack.client import Client

        return Client
    raise AttributeError(f"module 'gittrack.tracking' has no attribute {name!r}")
