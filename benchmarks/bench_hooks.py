"""Cost of the git hooks and ``gittrack log`` on a repository with many runs.

Builds a project whose history has ``--commits`` commits with ``--runs`` runs spread over them
(10 params and 10 metrics each), installs the hooks, then times, each ``--repeats`` times:
a ``git commit`` with the post-commit hook and nothing to relabel against the same commit
without hooks, the hook alone (``gittrack hooks run post-commit``), and ``gittrack log -n 50``.
Targets (issue 10): hook <= 0.3 s, log <= 0.5 s at 10,000 runs.

    python benchmarks/bench_hooks.py --runs 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

BUILD = """
import sys, subprocess
import gittrack as mlflow
runs, commits = int(sys.argv[1]), int(sys.argv[2])
per_commit = max(1, runs // commits)
for c in range(commits):
    with open("train.py", "a") as fh:
        fh.write(f"# change {c}\\n")
    subprocess.run(["git", "commit", "-qam", f"change {c}"], check=True)
    for i in range(per_commit):
        with mlflow.start_run():
            mlflow.log_params({f"p{k}": k * i for k in range(10)})
            mlflow.log_metrics({f"m{k}": k * 0.5 + i for k in range(10)})
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with tempfile.TemporaryDirectory(prefix="gittrack-bench-hooks-") as tmp:
        repo = Path(tmp) / "project"
        repo.mkdir()
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "config", "user.name", "Bench"],
            ["git", "config", "user.email", "bench@example.com"],
        ):
            subprocess.run(cmd, cwd=repo, check=True)
        (repo / "train.py").write_text("print('train')\n")
        subprocess.run(["git", "add", "."], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "initial"], cwd=repo, check=True)
        print(f"building {args.runs} runs over {args.commits} commits ...", file=sys.stderr)
        build = [sys.executable, "-c", BUILD, str(args.runs), str(args.commits)]
        subprocess.run(build, cwd=repo, env=env, check=True)
        gittrack = [sys.executable, "-m", "gittrack"]
        _run([*gittrack, "log", "-n", "1"], repo, env)  # warm the query cache once
        plain, hooked, hook_only, log, interpreter = [], [], [], [], []
        for round_ in range(args.repeats):
            (repo / "notes.txt").write_text(f"plain {round_}\n")
            subprocess.run(["git", "add", "notes.txt"], cwd=repo, check=True)
            plain.append(_run(["git", "commit", "-qm", "plain"], repo, env))
        _run([*gittrack, "hooks", "install"], repo, env)
        for round_ in range(args.repeats):
            (repo / "notes.txt").write_text(f"hooked {round_}\n")
            subprocess.run(["git", "add", "notes.txt"], cwd=repo, check=True)
            hooked.append(_run(["git", "commit", "-qm", "hooked"], repo, env))
            hook_only.append(_run([*gittrack, "hooks", "run", "post-commit"], repo, env))
            log.append(_run([*gittrack, "log", "-n", "50"], repo, env))
            interpreter.append(_run([sys.executable, "-c", "pass"], repo, env))
    rows = [
        ("python -c pass (the floor)", interpreter, None),
        ("git commit, no hooks", plain, None),
        ("git commit, gittrack hooks", hooked, None),
        ("post-commit hook alone", hook_only, 0.3),
        ("gittrack log -n 50", log, 0.5),
    ]
    print(f"{'measure':32} {'median s':>9} {'target s':>9}")
    for name, values, target in rows:
        print(f"{name:32} {statistics.median(values):9.3f} {target if target else '':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
