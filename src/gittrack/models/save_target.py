"""The directory a model is saved into.

MLflow refuses to save over anything: the target must not exist or be an empty directory. A
save that fails part-way removes what it wrote, so a retry meets the same empty target.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gittrack.errors import ConflictError


def prepare_target(path: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Create the model directory ``path``.

    Returns the directory and whether this call created it. Raises ``ConflictError`` when
    ``path`` already exists and is not an empty directory.
    """
    model_dir = Path(path)
    if model_dir.exists():
        if not model_dir.is_dir() or any(model_dir.iterdir()):
            raise ConflictError(
                f"cannot save a model to {model_dir}: it already exists and is not an empty "
                "directory"
            )
        return model_dir, False
    model_dir.mkdir(parents=True)
    return model_dir, True


def remove_partial_save(model_dir: Path, created: bool) -> None:
    """Undo a failed save: remove the directory when it was created, else empty it again."""
    if created:
        shutil.rmtree(model_dir, ignore_errors=True)
        return
    for child in model_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
