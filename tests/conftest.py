"""Shared fixtures: real git repositories in temporary directories."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import gittrack.fluent
from gittrack.tracking.repository import forget_repositories

SRC = Path(__file__).resolve().parents[1] / "src"


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    """Run git in ``repo`` and return stdout (raises with stderr on failure)."""
    proc = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


def make_repo(path: Path, initial_commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    if initial_commit:
        (path / "train.py").write_text("print('train')\n")
        (path / ".gitignore").write_text("*.log\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "initial")
    return path


def run_script(code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Run Python code in a fresh interpreter with gittrack importable."""
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def gittrack_cli(
    cwd: Path, *args: str, timeout: float = 300, fresh_process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the ``gittrack`` command line in ``cwd`` and capture what it prints.

    In process, through ``gittrack.cli.main.main(argv)``: what a user sees is decided there
    (exit code, stdout, one-line errors on stderr), and a new interpreter per command would
    cost most of the suite's time. ``fresh_process=True`` runs ``python -m gittrack`` instead,
    for the smoke test of the installed entry point and for tests that need a process of
    their own.
    """
    # A command that runs the user's program (reproduce, bisect --run) lets that program print
    # through the process's own file descriptors, which only a separate process captures.
    runs_a_program = bool(args) and (args[0] == "reproduce" or "--run" in args)
    if fresh_process or runs_a_program:
        return subprocess.run(
            [sys.executable, "-m", "gittrack", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    from gittrack.cli.main import main

    # Text streams over bytes, as sys.stdout is: commands that print patches write bytes to
    # ``sys.stdout.buffer``.
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    previous_dir = os.getcwd()
    previous_warning = warnings.showwarning
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse: usage errors and --help
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.chdir(previous_dir)
        warnings.showwarning = previous_warning
    outputs = []
    for stream in (stdout, stderr):
        stream.flush()
        outputs.append(stream.buffer.getvalue().decode("utf-8", errors="replace"))  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["gittrack", *args], code, *outputs)


def tree_fingerprint(repo: Path) -> dict[str, str]:
    """Hash of every file in the work tree and of the parts of .git a user owns."""
    out: dict[str, str] = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    gitdir = repo / ".git"
    for name in ("index", "HEAD", "packed-refs", "ORIG_HEAD", "FETCH_HEAD", "config"):
        p = gitdir / name
        out[f".git/{name}"] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "-"
    for ref in sorted((gitdir / "refs").rglob("*")):
        rel = ref.relative_to(gitdir).as_posix()
        if ref.is_file() and not rel.startswith("refs/heads/gittrack"):
            out[f".git/{rel}"] = ref.read_text()
    out["status"] = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    out["stash"] = git(repo, "stash", "list")
    out["branch"] = git(repo, "symbolic-ref", "HEAD")
    return out


def _reset_mlflow() -> None:
    """Forget MLflow's fluent state (active runs, experiment) that an earlier differential test
    left behind, so each test starts MLflow as a fresh process would."""
    ml = sys.modules.get("mlflow")
    if ml is None:
        return
    with contextlib.suppress(Exception):
        while ml.active_run() is not None:
            ml.end_run()
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None and hasattr(fluent, "_active_experiment_id"):
        fluent._active_experiment_id = None


@pytest.fixture(autouse=True)
def _isolated_state(monkeypatch: pytest.MonkeyPatch):
    for var in (
        "GITTRACK_TRACKING_URI",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "GITTRACK_BRANCH",
        "GITTRACK_SOURCE_CAPTURE",
    ):
        monkeypatch.delenv(var, raising=False)
    gittrack.fluent._reset_state()
    forget_repositories()
    _reset_mlflow()
    yield
    while gittrack.fluent._state.runs.stack:
        gittrack.fluent._state.runs.stack.pop()
    gittrack.fluent._reset_state()
    forget_repositories()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh repository with one commit, as the working directory."""
    path = make_repo(tmp_path / "project")
    monkeypatch.chdir(path)
    return path
