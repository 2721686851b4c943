"""How gittrack starts ``git``: one environment for every git process it runs.

Every git gittrack starts runs with optional locks disabled (nothing refreshes the user's
index behind their back) and carries ``NESTED_HOOK_ENV``, so the gittrack part of the hooks it
fires sits out instead of recursing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping

from gittrack.errors import RepositoryError

NESTED_HOOK_ENV = "GITTRACK_HOOK_RUNNING"
# Every git gittrack starts carries NESTED_HOOK_ENV, so the gittrack part of the hooks it fires
# (reference-transaction on its own fetch, push and update-ref) sits out instead of recursing.
_GIT_ENV_BASE = {
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
    "GIT_TERMINAL_PROMPT": "0",
    NESTED_HOOK_ENV: "1",
}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with git's settings for gittrack and ``extra`` on top."""
    env = dict(os.environ)
    env.update(_GIT_ENV_BASE)
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Iterable[str],
    cwd: str | os.PathLike[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command; on failure raise ``RepositoryError`` with git's own message."""
    cmd = ["git", "--no-optional-locks", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, input=input, env=git_env(env), capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise RepositoryError("git is not installed or not on PATH") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise RepositoryError(f"git {' '.join(args)} failed: {message}")
    return proc
