"""``gittrack init``: create the tracking branch in a repository (``git init`` it if needed)."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from gittrack.client import Client
from gittrack.errors import RepositoryError
from gittrack.store.git_process import run_git


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "init", help="create the tracking branch (git init the folder if needed)"
    )
    parser.add_argument("path", nargs="?", default=None, help="folder (default: current directory)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    target = Path(args.path or args.repo or ".").resolve()
    target.mkdir(parents=True, exist_ok=True)
    probe = run_git(["rev-parse", "--git-dir"], cwd=target, check=False)
    if probe.returncode != 0:
        try:
            run_git(["init", "-q"], cwd=target)
        except (RepositoryError, subprocess.SubprocessError) as exc:
            raise RepositoryError(f"could not git init {target}: {exc}") from exc
        print(f"Initialized an empty git repository in {target}")
    client = Client(str(target))
    tip = client.init()
    print(
        f"Tracking branch {client.repository.branch.ref} at {tip[:12]} in {client.repository.path}"
    )
    return 0
