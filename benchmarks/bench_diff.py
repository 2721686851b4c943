"""Cost of ``gittrack diff`` on a repository with many runs, next to ``dvc metrics diff``.

Builds a project whose first-parent history has ``--commits`` commits with ``--runs`` runs
spread over them (10 params and 10 metrics each, every run on a clean tree), then times, each
``--repeats`` times after one warm-up (which builds the query index's cache), the whole
command ``gittrack diff BASE HEAD --md`` in a fresh interpreter, BASE being the commit halfway
back. Target (issue 13): <= 0.5 s at 10,000 runs over 1,000 commits.

Side by side, when DVC is installed (``--dvc PATH/TO/dvc``, e.g. a venv's), the same history
is built as a DVC repository whose commits each hold ``metrics.json`` (the metrics of that
commit's last run), and ``dvc metrics diff BASE HEAD --md`` is timed on the same two commits;
both outputs are printed.

    python benchmarks/bench_diff.py --runs 10000 --commits 1000 --dvc /tmp/dvcvenv/bin/dvc
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandboxes import clean_env, git

SRC = Path(__file__).resolve().parents[1] / "src"

BUILD = """
import json, sys, subprocess
import gittrack as mlflow
runs, commits, dvc_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
per_commit = max(1, runs // commits)
mlflow.set_experiment("bench")
for c in range(commits):
    with open("train.py", "a") as fh:
        fh.write(f"# change {c}\\n")
    subprocess.run(["git", "commit", "-qam", f"change {c}"], check=True)
    for i in range(per_commit):
        metrics = {f"m{k}": k * 0.5 + i + c / 1000 for k in range(10)}
        with mlflow.start_run():
            mlflow.log_params({f"p{k}": str(k * i + c % 3) for k in range(10)})
            mlflow.log_metrics(metrics)
    if dvc_dir != "-":  # the same history, metrics in a file, for dvc metrics diff
        with open(f"{dvc_dir}/train.py", "a") as fh:
            fh.write(f"# change {c}\\n")
        with open(f"{dvc_dir}/metrics.json", "w") as fh:
            json.dump(metrics, fh, indent=2)
        subprocess.run(["git", "-C", dvc_dir, "add", "-A"], check=True)
        subprocess.run(["git", "-C", dvc_dir, "commit", "-qm", f"change {c}"], check=True)
"""


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return elapsed, proc.stdout


def _project(path: Path) -> None:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Bench")
    git(path, "config", "user.email", "bench@example.com")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "initial")


def _dvc_project(path: Path, dvc: str, env: dict[str, str]) -> None:
    _project(path)
    subprocess.run([dvc, "init", "-q"], cwd=path, env=env, check=True)
    (path / "dvc.yaml").write_text("metrics:\n  - metrics.json\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "dvc init")


def _build(
    repo: Path, dvc_repo: Path | None, dvc: str | None, args: argparse.Namespace, env: dict
) -> None:
    _project(repo)
    if dvc_repo is not None and dvc:
        _dvc_project(dvc_repo, dvc, env)
    start = time.perf_counter()
    command = [sys.executable, "-c", BUILD, str(args.runs), str(args.commits)]
    subprocess.run([*command, str(dvc_repo or "-")], cwd=repo, env=env, check=True)
    elapsed = time.perf_counter() - start
    print(f"built {args.runs} runs over {args.commits} commits in {elapsed:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dvc", help="the dvc executable (default: dvc on PATH, if any)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build here and keep it; measure again what an earlier --keep built",
    )
    args = parser.parse_args(argv)
    dvc = args.dvc or shutil.which("dvc")
    env = clean_env({"PYTHONPATH": str(SRC)})
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode cached
    with tempfile.TemporaryDirectory(prefix="gittrack-bench-diff-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        repo, dvc_repo = where / "project", where / "dvc-project"
        if repo.exists():  # kept from an earlier --keep run: measure it again
            dvc = dvc if dvc_repo.exists() else None
        else:
            _build(repo, dvc_repo if dvc else None, dvc, args, env)
        base = f"HEAD~{args.commits // 2}"
        startup = [sys.executable, "-c", "import gittrack.cli.main"]
        _timed(startup, repo, env)
        startup_s = statistics.median(_timed(startup, repo, env)[0] for _ in range(args.repeats))
        print(f"interpreter start and gittrack's CLI import alone: median {startup_s:.3f} s")
        command = [sys.executable, "-m", "gittrack", "diff", base, "HEAD", "--md"]
        _timed(command, repo, env)  # warm-up: builds the index cache, as any earlier query does
        times, out = [], ""
        for _ in range(args.repeats):
            elapsed, out = _timed(command, repo, env)
            times.append(elapsed)
        gittrack_s = statistics.median(times)
        print(
            f"\ngittrack diff {base} HEAD --md: median {gittrack_s:.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}; target <= 0.5 s)\n"
        )
        print(out)
        if not dvc:
            print("dvc metrics diff: not run: dvc is not installed (pass --dvc PATH)")
            return 0
        dvc_command = [dvc, "metrics", "diff", base, "HEAD", "--md"]
        _timed(dvc_command, dvc_repo, env)
        dvc_times, dvc_out = [], ""
        for _ in range(args.repeats):
            elapsed, dvc_out = _timed(dvc_command, dvc_repo, env)
            dvc_times.append(elapsed)
        dvc_s = statistics.median(dvc_times)
        print(
            f"dvc metrics diff {base} HEAD --md: median {dvc_s:.3f} s "
            f"(min {min(dvc_times):.3f}, max {max(dvc_times):.3f})\n"
        )
        print(dvc_out)
        print("| command | median s | ratio to gittrack |")
        print("| --- | ---: | ---: |")
        print(f"| gittrack diff | {gittrack_s:.3f} | 1.00 |")
        print(f"| dvc metrics diff | {dvc_s:.3f} | {dvc_s / gittrack_s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
