"""``gittrack reproduce RUN -- CMD…``: run a command again on a run's exact code (DESIGN §13).

The job ``mlflow run`` does for an MLflow Project, without an MLproject file. As ``mlflow run``
does, the launcher creates the new run first, then starts the command with the run's id in
``MLFLOW_RUN_ID``, so the script's own ``start_run()`` resumes that run instead of starting
another one. The new run:

- records the original's code (commit, snapshot) as its source, since it runs on exactly
  that code, checked out in a linked worktree;
- carries the tag ``gittrack.reproduces=<original run id>`` and the original's params, logged
  before the command starts (a script that logs a different value for a param fails, as a
  param never changes);
- is committed as SCHEDULED before the command starts, and ended by the launcher when the
  command did not end it: FINISHED on exit status 0, else FAILED (MLflow's rule for a run
  the script did not end itself), KILLED when gittrack itself is interrupted.

The command's environment names the run and its params (``ENV_*`` below). Param keys are
free text, so each key becomes ``GITTRACK_PARAM_<KEY>`` with the key upper-cased and every
character other than A-Z, 0-9 and ``_`` turned into ``_``; keys that would share a name get
no variable of their own (a warning names them), and ``GITTRACK_PARAMS`` always holds every
param exactly, as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gittrack.entities import Run, RunStatus, SourceInfo
from gittrack.errors import GittrackError, InvalidInputError
from gittrack.gitflow.checkout import Checkout, checkout_run, remove_worktree, run_code
from gittrack.tracking.repository import TrackingRepository

REPRODUCES_TAG = "gittrack.reproduces"
ENV_RUN_IDS = ("MLFLOW_RUN_ID", "GITTRACK_RUN_ID")
ENV_EXPERIMENT_ID = "MLFLOW_EXPERIMENT_ID"
ENV_TRACKING_URI = "GITTRACK_TRACKING_URI"
ENV_REPRODUCES = "GITTRACK_REPRODUCES"
ENV_PARAMS = "GITTRACK_PARAMS"
ENV_PARAM_PREFIX = "GITTRACK_PARAM_"


@dataclass(frozen=True)
class Reproduction:
    """The outcome: the original and new runs, the command's exit status, and the worktree
    (``kept`` False when it was a temporary one, removed since)."""

    original: Run
    new: Run
    exit_code: int
    path: Path
    kept: bool
    untracked_skipped: tuple[str, ...]

    def metric_changes(self) -> list[dict[str, Any]]:
        """One row per metric of either run (by key): ``metric``, ``original`` and
        ``reproduced`` (latest values, None when that run has no such metric) and
        ``change`` (reproduced - original)."""
        old, now = self.original.data.metrics, self.new.data.metrics
        rows = []
        for key in sorted({*old, *now}):
            before, after = old.get(key), now.get(key)
            change = after - before if before is not None and after is not None else None
            rows.append({"metric": key, "original": before, "reproduced": after, "change": change})
        return rows


def param_env_name(key: str) -> str:
    """``GITTRACK_PARAM_`` and ``key`` upper-cased, other characters than A-Z, 0-9, ``_``
    as ``_`` (``learning-rate`` -> ``GITTRACK_PARAM_LEARNING_RATE``)."""
    return ENV_PARAM_PREFIX + re.sub(r"[^A-Z0-9_]", "_", key.upper())


def param_environment(params: Mapping[str, str]) -> dict[str, str]:
    """The environment variables that carry ``params`` (see the module docstring)."""
    by_name: dict[str, list[str]] = {}
    for key in sorted(params):
        by_name.setdefault(param_env_name(key), []).append(key)
    env = {ENV_PARAMS: json.dumps(dict(sorted(params.items())), ensure_ascii=False)}
    for name, keys in by_name.items():
        if len(keys) == 1:
            env[name] = params[keys[0]]
        else:
            warnings.warn(
                f"params {', '.join(repr(k) for k in keys)} would all be {name}: read them "
                f"from {ENV_PARAMS} instead",
                UserWarning,
                stacklevel=2,
            )
    return env


def check_command(command: Sequence[str]) -> list[str]:
    """The command as a list, refused when it is empty or its program cannot be found.

    :raises InvalidInputError: names the program and says what is expected.
    """
    command = list(command)
    if not command or not command[0]:
        raise InvalidInputError("no command given: write it after --, e.g. -- python train.py")
    program = command[0]
    if os.sep not in program and shutil.which(program) is None:
        raise InvalidInputError(f"command {program!r} is not found on PATH")
    return command


def reproduce_run(
    repository: TrackingRepository,
    run_id: str,
    command: Sequence[str],
    path: Path | None = None,
) -> Reproduction:
    """Check out ``run_id``'s code, run ``command`` there as a new run, and return both runs.

    :param path: where the worktree goes (it is kept); by default a temporary worktree,
        removed afterwards.
    :raises InvalidInputError: the command is empty or not found.
    :raises NotFoundError, InvalidStateError, ConflictError: as ``checkout_run``; all are
        raised before anything is written.
    """
    command = check_command(command)
    original = repository.runs.get(run_id)
    run_code(repository, original)  # no source, code missing: refused before the checkout
    scratch = None if path is not None else Path(tempfile.mkdtemp(prefix="gittrack-reproduce-"))
    target = path if path is not None else scratch / f"run-{original.info.run_id[:8]}"
    try:
        checkout = checkout_run(repository, original.info.run_id, target)
        try:
            new_id = _start_new_run(repository, original)
            try:
                exit_code = _run_command(repository, command, checkout, original, new_id)
            except BaseException:  # interrupted (Ctrl-C): the run says so
                _end_if_live(repository, new_id, RunStatus.KILLED)
                raise
            _end_if_live(
                repository, new_id, RunStatus.FINISHED if exit_code == 0 else RunStatus.FAILED
            )
        finally:
            if scratch is not None:
                remove_worktree(repository, checkout.path)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return Reproduction(
        original=original,
        new=repository.runs.get(new_id),
        exit_code=exit_code,
        path=checkout.path,
        kept=scratch is None,
        untracked_skipped=checkout.code.untracked_skipped,
    )


def _start_new_run(repository: TrackingRepository, original: Run) -> str:
    """Create the new run (the original's source and params, the reproduces tag) and commit
    it as SCHEDULED, for the command to resume.

    Committed, not left live: a live run is owned by the process holding its lock, and one
    whose lock nobody holds is an orphan that the next gittrack process commits as KILLED.
    """
    source = original.source
    new = repository.runs.create(
        original.info.experiment_id,
        tags={REPRODUCES_TAG: original.info.run_id},
        source=SourceInfo(
            commit=source.commit,
            branch=source.branch,
            dirty=source.dirty,
            snapshot=source.snapshot,
            untracked_skipped=tuple(source.untracked_skipped),
            entry_point=source.entry_point,
        ),
        same_repo_source=True,
    )
    new_id = new.info.run_id
    try:
        if original.data.params:
            repository.runs.log_params(new_id, dict(original.data.params))
    except BaseException:
        repository.runs.end(new_id, RunStatus.FAILED)
        raise
    repository.runs.end(new_id, RunStatus.SCHEDULED)
    return new_id


def _run_command(
    repository: TrackingRepository,
    command: list[str],
    checkout: Checkout,
    original: Run,
    new_id: str,
) -> int:
    env = dict(os.environ)
    env.update(param_environment(original.data.params))
    env.update({name: new_id for name in ENV_RUN_IDS})
    env[ENV_EXPERIMENT_ID] = original.info.experiment_id
    env[ENV_TRACKING_URI] = str(repository.path)
    env[ENV_REPRODUCES] = original.info.run_id
    env.pop("MLFLOW_EXPERIMENT_NAME", None)  # the run's experiment is the one to use
    return run_user_command(command, checkout.path, env)


def run_user_command(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run the user's command in ``cwd`` and return its exit status (127, with a warning,
    when it cannot be started). Its standard output goes to this process's standard error,
    so what gittrack prints on stdout (a table, JSON) stays whole."""
    try:
        out = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (a test, a notebook)
        out = None
    try:
        return subprocess.run(list(command), cwd=cwd, env=env, stdout=out, check=False).returncode
    except OSError as exc:  # not executable, say
        warnings.warn(f"could not start {command[0]!r}: {exc.strerror}", UserWarning, stacklevel=2)
        return 127


def _end_if_live(repository: TrackingRepository, run_id: str, status: str) -> None:
    """End the new run with ``status`` when the command did not: it never resumed it (still
    SCHEDULED), or it died while the run was live."""
    live = repository.staging.exists(run_id)
    if not live and repository.runs.get(run_id).info.status != RunStatus.SCHEDULED:
        return
    try:
        repository.runs.end(run_id, status)
    except GittrackError as exc:  # a process the command left behind still holds it
        warnings.warn(
            f"run {run_id} is still live ({exc.message}); `gittrack recover` ends it once "
            "that process is gone",
            UserWarning,
            stacklevel=2,
        )
