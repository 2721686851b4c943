"""Cost of ``gittrack bisect`` over a first-parent history where every commit has runs.

Builds a project whose ``main`` has ``--commits`` commits (``git fast-import``), one run on
each (made the way a run on that commit records it: ``source.commit``), with a metric that
steps from 0.9 to 0.7 at a planted commit; then times ``gittrack bisect --metric acc --good
<first> --bad <last>`` as a user runs it (a fresh process, so the figure includes Python's
start and the import, with compiled bytecode as an installed package has), once to build the
query index (that first call also compiles the bytecode into a scratch cache) and then
``--repeats`` times, and prints the median and the steps taken.
Target (issue 13): <= 1 s at 1,000 commits.

    python benchmarks/bench_bisect.py --commits 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LOG_RUNS = """
import sys
from gittrack.client import Client
from gittrack.entities import SourceInfo
commits = sys.stdin.read().split()
planted = int(sys.argv[1])
client = Client()
client.init()
runs = client.repository.runs
for index, commit in enumerate(commits):
    run = runs.create("0", source=SourceInfo(commit=commit), same_repo_source=True)
    client.log_metric(run.info.run_id, "acc", 0.9 if index < planted else 0.7)
    client.set_terminated(run.info.run_id)
"""


def fast_import_stream(count: int) -> bytes:
    """``count`` commits on ``refs/heads/main``, each changing ``train.py``."""
    parts = []
    for index in range(count):
        message = f"change {index}\n".encode()
        content = f"step = {index}\n".encode()
        parts.append(
            b"commit refs/heads/main\n"
            + f"committer Bench <bench@example.com> {1_700_000_000 + index} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + f"M 100644 inline train.py\ndata {len(content)}\n".encode()
            + content
            + b"\n"
        )
    return b"".join(parts)


def build(repo: Path, count: int, planted: int, env: dict[str, str]) -> list[str]:
    """The project with its history and runs; returns the commits, oldest first."""
    repo.mkdir()
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "Bench"],
        ["git", "config", "user.email", "bench@example.com"],
    ):
        subprocess.run(cmd, cwd=repo, check=True)
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=repo, input=fast_import_stream(count), check=True
    )
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=repo, check=True)
    out = subprocess.run(
        ["git", "rev-list", "--reverse", "main"], cwd=repo, check=True, capture_output=True
    )
    commits = out.stdout.decode().split()
    subprocess.run(
        [sys.executable, "-c", LOG_RUNS, str(planted)],
        cwd=repo,
        env=env,
        input="\n".join(commits).encode(),
        check=True,
    )
    return commits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time it as installed: with compiled bytecode
    planted = args.commits * 2 // 3
    with tempfile.TemporaryDirectory(prefix="gittrack-bench-bisect-") as tmp:
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")  # none left in the source tree
        repo = Path(tmp) / "project"
        start = time.perf_counter()
        commits = build(repo, args.commits, planted, env)
        print(f"built {len(commits)} commits with runs in {time.perf_counter() - start:.1f} s")
        cmd = [sys.executable, "-m", "gittrack", "bisect", "--metric", "acc"]
        cmd += ["--good", commits[0], "--bad", commits[-1], "--json"]
        times, output = [], ""
        start = time.perf_counter()
        subprocess.run(cmd, cwd=repo, env=env, capture_output=True, check=True)
        first = time.perf_counter() - start
        for _ in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            output = proc.stdout
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
        found = json.loads(output)
        correct = found["first_bad"] == commits[planted]
        print(
            "| commits | first, builds the index (s) | bisect median (s) | min (s) | steps "
            "| found planted commit | target |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        median = statistics.median(times)
        verdict = "PASS" if median <= 1.0 and correct else "FAIL"
        print(
            f"| {len(commits)} | {first:.3f} | {median:.3f} | {min(times):.3f} "
            f"| {len(found['steps'])} | {correct} | <= 1 s: {verdict} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
