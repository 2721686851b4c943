"""Where things live on the tracking branch and in ``$GIT_DIR/gittrack`` (DESIGN §2)."""

from __future__ import annotations

import re

TRACKING_ROOT = ".tracking"
CONFIG_PATH = f"{TRACKING_ROOT}/config.yaml"
EXPERIMENTS_DIR = f"{TRACKING_ROOT}/experiments"
RUNS_DIR = f"{TRACKING_ROOT}/runs"
MODELS_DIR = f"{TRACKING_ROOT}/models"
DEFAULT_BRANCH = "gittrack"
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_STAGES = ["None", "Staging", "Production", "Archived"]
FORMAT_VERSION = 1
MLMODEL_FILE_NAME = "MLmodel"  # describes a model directory (``models/model_format.py``)

# A run id is 32 lowercase hex digits (``uuid4().hex``, as MLflow), also its directory name.
RUN_ID = re.compile(r"[0-9a-f]{32}")


def is_run_id(name: object) -> bool:
    """Whether ``name`` is a run id: a string of 32 lowercase hex digits.

    Args:
        name: anything; a run directory's name, or a run id given by a user.

    Returns:
        True when it is a run id.
    """
    return isinstance(name, str) and RUN_ID.fullmatch(name) is not None


def run_dir(run_id: str) -> str:
    """Two-level shards keep every tree small, whatever the number of runs."""
    return f"{RUNS_DIR}/{run_id[0:2]}/{run_id[2:4]}/{run_id}"


LIVE_SNAPSHOTS_PREFIX = "refs/gittrack/live/"


def live_snapshot_ref(run_id: str) -> str:
    """The ref that keeps a live run's source snapshot from ``git gc`` until the run's
    commit takes the snapshot as a parent."""
    return f"{LIVE_SNAPSHOTS_PREFIX}{run_id}"


def experiment_path(experiment_id: str) -> str:
    return f"{EXPERIMENTS_DIR}/{experiment_id}.yaml"


def model_dir(name: str) -> str:
    return f"{MODELS_DIR}/{name}"


def initial_config() -> dict:
    return {
        "format": FORMAT_VERSION,
        "source": {"capture": "snapshot", "untracked_size_cap": 1_000_000},
        "registry": {"stages": list(DEFAULT_STAGES), "policy": {}},
        "notifications": {},
    }
