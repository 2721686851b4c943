"""Fresh, isolated places to benchmark in: a project git repository and a tracking store.

Every measurement gets a new temporary directory holding a small project (a git repository
whose ``train.py`` is the workload script) and, for MLflow, a store next to it. Git runs with
the user's global and system configuration hidden, and identity set in the project repository
only, so the user's own git setup neither leaks in nor gets touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WORKLOAD_SCRIPT = Path(__file__).resolve().with_name("write_workloads.py")

# Variables that would point git or the trackers somewhere else than the sandbox.
_INHERITED_PREFIXES = ("GIT_", "GITTRACK_", "MLFLOW_")

_PROJECT_FILES = {
    "README.md": "# demo model\n\nTrains a small model.\n",
    ".gitignore": "*.log\n__pycache__/\n",
    "src/model.py": "def build(hidden_units: int) -> list[int]:\n    return [hidden_units]\n",
    "src/data.py": "def load() -> list[float]:\n    return [0.0, 1.0]\n",
}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without git/tracker settings, git config isolated, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=clean_env(), capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


@dataclass(frozen=True)
class Sandbox:
    """One measurement's directory: ``project/`` (a git repository) and ``store/``."""

    root: Path

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def store(self) -> Path:
        return self.root / "store"

    def tracking_uri(self, backend: str) -> str:
        """The URI each backend is pointed at: the project repository itself for gittrack."""
        if backend == "gittrack":
            return str(self.project)
        if backend == "file":
            return (self.store / "mlruns").as_uri()
        if backend == "sqlite":
            return f"sqlite:///{self.store / 'mlflow.db'}"
        raise ValueError(f"unknown backend {backend!r}")

    def env(self, backend: str) -> dict[str, str]:
        uri = self.tracking_uri(backend)
        if backend == "gittrack":
            return clean_env({"GITTRACK_TRACKING_URI": uri})
        return clean_env(
            {
                "MLFLOW_TRACKING_URI": uri,
                "MLFLOW_ALLOW_FILE_STORE": "true",
                # No network calls in the measured loop (MLflow 3 sends usage events).
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                "GIT_PYTHON_REFRESH": "quiet",
            }
        )


def make_project(path: Path, dirty: bool) -> None:
    """A git repository with one commit; ``dirty`` adds a modification and an untracked file."""
    for rel, text in _PROJECT_FILES.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    shutil.copyfile(WORKLOAD_SCRIPT, path / "train.py")
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Benchmark User")
    git(path, "config", "user.email", "benchmark@example.com")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "Initial project")
    if dirty:
        with (path / "src/model.py").open("a") as fh:
            fh.write("\n\ndef dropout() -> float:\n    return 0.1\n")
        (path / "notes.txt").write_text("work in progress\n")


@contextmanager
def sandbox(parent: Path | None, dirty: bool = False) -> Iterator[Sandbox]:
    """A fresh sandbox, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="gittrack-bench-", dir=parent))
    try:
        box = Sandbox(root)
        box.project.mkdir()
        box.store.mkdir()
        make_project(box.project, dirty)
        yield box
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class DiskSize:
    apparent: int  # sum of file sizes in bytes
    allocated: int  # blocks the filesystem allocated, in bytes (what `du` shows)


def disk_size(paths: list[Path]) -> DiskSize:
    """Total size of files and directories (recursively); missing paths count as zero."""
    apparent = allocated = 0
    for top in paths:
        if not top.exists():
            continue
        entries = [top]
        for dirpath, dirnames, filenames in os.walk(top):
            entries += [Path(dirpath, name) for name in (*dirnames, *filenames)]
        for entry in entries:
            st = os.lstat(entry)
            allocated += st.st_blocks * 512
            if not entry.is_dir():
                apparent += st.st_size
    return DiskSize(apparent, allocated)


def packed_size(repo: Path) -> dict[str, int]:
    """``git gc --aggressive --prune=now``, then ``git count-objects -v`` (sizes in bytes)."""
    before = _count_objects(repo)
    allocated_before = disk_size([repo / ".git" / "objects"]).allocated
    git(repo, "gc", "--aggressive", "--prune=now", "--quiet")
    after = _count_objects(repo)
    return {
        "loose_objects_before_gc": before["count"],
        "loose_bytes_before_gc": before["size"] * 1024,
        "packs_before_gc": before["packs"],
        "objects_in_packs_before_gc": before["in-pack"],
        "pack_bytes_before_gc": before["size-pack"] * 1024,
        "objects_dir_allocated_before_gc": allocated_before,
        "packs": after["packs"],
        "in_pack": after["in-pack"],
        "size_pack": after["size-pack"] * 1024,
        "loose_bytes_after_gc": after["size"] * 1024,
    }


def _count_objects(repo: Path) -> dict[str, int]:
    fields = {}
    for line in git(repo, "count-objects", "-v").splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            fields[key.strip()] = int(value)
    return fields


# ------------------------------------------------------------------------- filesystem
def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/self/mounts; Linux only)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    target = str(path.resolve())
    best, kind = "", "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fields[2]
    return kind


def new_file_cost(parent: Path | None, files: int = 200) -> float:
    """Microseconds to create one new small file: both libraries create many per run."""
    root = Path(tempfile.mkdtemp(prefix="gittrack-bench-probe-", dir=parent))
    try:
        os.sync()
        start = time.perf_counter()
        for index in range(files):
            fd = os.open(root / f"f{index}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, b"x" * 64)
            os.close(fd)
        return (time.perf_counter() - start) / files * 1e6
    finally:
        shutil.rmtree(root, ignore_errors=True)
