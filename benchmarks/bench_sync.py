"""Sharing benchmark: merge of two diverged tracking branches, gittrack vs ``git merge``;
repository and push size against ``git repack -adf``.

    python benchmarks/bench_sync.py                      # 10,000 runs a side, 1,000 diverged
    python benchmarks/bench_sync.py --runs 2000 --diverged 200 --repeats 1   # quicker
    python benchmarks/bench_sync.py --size-runs 10000,100000   # adds the 100,000-run size rows

What is built (through gittrack's plumbing, not its logging API, so that building takes
seconds): a repository whose tracking branch holds ``--runs - --diverged`` runs (meta, params
and metrics files like those of a real run, 10 params and 10 metrics), then two branches on it
that each add ``--diverged`` runs and re-tag ten shared runs (so some ``meta.yaml`` files
changed on both sides and merge by rule): two branches of ``--runs`` runs each.

What is measured (medians over ``--repeats``, each in a new process, caches cold):

- ``gittrack merge``: ``gitflow.merge.merge_commits`` of the two tips (tree merge, rule
  merges, the merge commit written as one pack); the target is ≤ 2 s;
- ``git merge`` (the floor): ``git merge --no-edit`` of the same two tips in a scratch work
  tree checked out at one of them (``git clone --shared``); it meets add/add conflicts in the
  files changed on both sides, which gittrack resolves and git leaves to the user.

Size rows (``--size-runs``, default 10,000; 100,000 takes about five minutes more): runs
logged through the public API (``start_run``, 10 params, 10 metrics, one commit each) by one
process in a new repository, then the wait for the background compaction
(``store/compaction.py``) to finish. Measured: the bytes of ``.git/objects``, and the bytes
a ``git push`` of the branch to an empty bare repository sends (what that repository holds
afterwards), each against the floor: ``.git/objects`` of a copy after ``git repack -adf``.
The target is ≤ 2× the floor.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from gittrack.store.branch import Blob, _split, apply_changes  # noqa: E402
from gittrack.store.codecs import dump_yaml  # noqa: E402
from gittrack.store.git import GitRepo  # noqa: E402

MERGE_TARGET_SECONDS = 2.0
SIZE_TARGET_RATIO = 2.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and args[0] != "merge":
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def run_files(run_id: str, n: int, tags: dict[str, str]) -> dict[str, Blob]:
    base = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}"
    meta = {
        "format": 1, "run_id": run_id, "run_name": f"run-{n}", "experiment_id": "0",
        "status": "FINISHED", "lifecycle": "active", "start_time": "2026-01-01T00:00:00.000Z",
        "end_time": "2026-01-01T00:00:01.000Z", "parent_run_id": None, "user": "bench",
        "tags": tags, "metrics": {},
    }  # fmt: skip
    metrics = "".join(
        f'{{"key": "m{k}", "value": {n * 0.001 + k}, "step": 0, "timestamp": {1000 + k}}}\n'
        for k in range(10)
    )
    return {
        f"{base}/meta.yaml": Blob(dump_yaml(meta)),
        f"{base}/params.yaml": Blob(dump_yaml({f"p{k}": str(n + k) for k in range(10)})),
        f"{base}/metrics.jsonl": Blob(metrics.encode()),
    }


def run_id(seed: str, n: int) -> str:
    import hashlib

    return hashlib.sha256(f"{seed}-{n}".encode()).hexdigest()[:32]


def build(path: Path, runs: int, diverged: int) -> tuple[str, str]:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "config", "user.name", "bench")
    git(path, "config", "user.email", "bench@example.com")
    repo = GitRepo(path)
    shared = runs - diverged
    files: dict[str, Blob] = {}
    for n in range(shared):
        files.update(run_files(run_id("base", n), n, {"k": "v"}))
    with repo.collected_objects() as objects:
        tree = apply_changes(repo, None, _split(files))
        base = repo.write_commit(tree, [], "base\n")
        objects.write()
    tips = []
    for side in ("ours", "theirs"):
        changes: dict[str, Blob] = {}
        for n in range(diverged):
            changes.update(run_files(run_id(side, n), n, {"k": "v"}))
        for n in range(10):  # a tag on the same runs on both sides: merged by rule
            changes.update(
                {k: v for k, v in run_files(run_id("base", n), n, {"k": "v", side: "1"}).items()
                 if k.endswith("meta.yaml")}
            )  # fmt: skip
        with repo.collected_objects() as objects:
            side_tree = apply_changes(repo, tree, _split(changes))
            tips.append(repo.write_commit(side_tree, [base], f"{side}\n"))
            objects.write()
    repo.close()
    git(path, "update-ref", "refs/heads/gittrack", tips[0])
    git(path, "update-ref", "refs/heads/other", tips[1])
    return tips[0], tips[1]


MERGE_CODE = """
import sys, time
sys.path.insert(0, {src!r})
from gittrack.gitflow.merge import merge_commits
from gittrack.store.git import GitRepo
start = time.perf_counter()
repo = GitRepo({path!r})
outcome = merge_commits(repo, {ours!r}, {theirs!r}, "merge\\n")
print(time.perf_counter() - start, outcome.kind)
"""


def time_gittrack(path: Path, ours: str, theirs: str) -> float:
    code = MERGE_CODE.format(src=str(SRC), path=str(path), ours=ours, theirs=theirs)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, kind = out.stdout.split()
    assert kind == "merged", kind
    return float(seconds)


def time_git_merge(path: Path, scratch: Path, theirs: str) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    git(path.parent, "clone", "-q", "--shared", "-b", "gittrack", str(path), str(scratch))
    git(scratch, "config", "user.name", "bench")
    git(scratch, "config", "user.email", "bench@example.com")
    start = time.perf_counter()
    subprocess.run(
        ["git", "merge", "-q", "--no-edit", theirs], cwd=scratch, capture_output=True, check=False
    )
    return time.perf_counter() - start


WRITER = """
import sys, time
sys.path.insert(0, {src!r})
import gittrack as mlflow
start = time.perf_counter()
for i in range({runs}):
    with mlflow.start_run():
        mlflow.log_params({{f"param_{{k}}": str((i * 7 + k) % 97) for k in range(10)}})
        mlflow.log_metrics({{f"metric_{{k}}": (i * 31 + k) % 101 / 7 for k in range(10)}})
print({runs} / (time.perf_counter() - start))
"""


def objects_bytes(git_dir: Path) -> int:
    return sum(p.stat().st_size for p in (git_dir / "objects").rglob("*") if p.is_file())


def measure_sizes(tmp: Path, runs: int) -> dict[str, float]:
    """Log ``runs`` runs, wait for the compaction, and measure store, push and floor."""
    from gittrack.store.compaction import wait_for_compaction

    path = tmp / f"size-{runs}"
    git(tmp, "init", "-q", "-b", "main", str(path))
    git(path, "config", "user.name", "bench")
    git(path, "config", "user.email", "bench@example.com")
    git(path, "commit", "-q", "--allow-empty", "-m", "project")
    log(f"logging {runs} runs ...")
    code = WRITER.format(src=str(SRC), runs=runs)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=path, capture_output=True, text=True, check=True
    )
    start = time.perf_counter()
    if not wait_for_compaction(path / ".git"):
        raise SystemExit("the background compaction did not finish")
    waited = time.perf_counter() - start
    stored = objects_bytes(path / ".git")
    floor_dir = tmp / f"floor-{runs}.git"
    shutil.copytree(path / ".git", floor_dir)
    git(floor_dir, "repack", "-adfq")
    floor = objects_bytes(floor_dir)
    remote = tmp / f"remote-{runs}.git"
    git(tmp, "init", "-q", "--bare", str(remote))
    git(path, "push", "-q", str(remote), "gittrack")
    pushed = objects_bytes(remote)
    for scratch in (floor_dir, remote, path):
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "rate": float(out.stdout.split()[-1]),
        "waited": waited,
        "stored": stored,
        "pushed": pushed,
        "floor": floor,
    }


def size_rows(runs: int, sizes: dict[str, float]) -> list[str]:
    floor = sizes["floor"]
    rows = []
    for label, key in ((".git/objects", "stored"), ("git push of the branch", "pushed")):
        ratio = sizes[key] / floor
        verdict = "PASS" if ratio <= SIZE_TARGET_RATIO else "FAIL"
        rows.append(
            f"| {label}, {runs:,} runs | {sizes[key] / 1e6:.1f} MB | {floor / 1e6:.1f} MB | "
            f"{ratio:.2f}× | ≤ {SIZE_TARGET_RATIO:.0f}× | {verdict} |"
        )
    return rows


def merge_row(args: argparse.Namespace, tmp: str) -> str:
    path = Path(tmp) / "repo"
    log(f"building two branches of {args.runs} runs, diverged by {args.diverged} ...")
    ours, theirs = build(path, args.runs, args.diverged)
    os.environ.pop("GIT_DIR", None)
    ours_times, git_times = [], []
    for i in range(args.repeats):
        log(f"repeat {i + 1}/{args.repeats}")
        ours_times.append(time_gittrack(path, ours, theirs))
        git_times.append(time_git_merge(path, Path(tmp) / "scratch", theirs))
    mine, floor = statistics.median(ours_times), statistics.median(git_times)
    verdict = "PASS" if mine <= MERGE_TARGET_SECONDS else "FAIL"
    return (
        f"| merge of 2 × {args.runs} runs diverged by {args.diverged} | {mine:.2f} s | "
        f"{floor:.2f} s | {mine / floor:.2f}× | ≤ {MERGE_TARGET_SECONDS:.0f} s | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--diverged", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--size-runs",
        default="10000",
        help="comma-separated run counts for the size rows (e.g. 10000,100000); 0: none",
    )
    parser.add_argument("--no-merge", action="store_true", help="skip the merge row")
    args = parser.parse_args()
    size_counts = [int(n) for n in args.size_runs.split(",") if int(n) > 0]
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="gittrack-bench-sync-") as tmp:
        if not args.no_merge:
            rows.append(merge_row(args, tmp))
        for runs in size_counts:
            sizes = measure_sizes(Path(tmp), runs)
            rows += size_rows(runs, sizes)
            notes.append(
                f"{runs:,} runs: logged at {sizes['rate']:.0f} runs/s; the compaction still "
                f"running when the writer exited finished {sizes['waited']:.1f} s later"
            )
    print("| workload | gittrack | floor | ratio | target | result |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    if notes:
        print("\nFloors: `git merge` in a scratch work tree; `git repack -adf` for sizes.")
        print("\n".join(f"- {note}" for note in notes))


if __name__ == "__main__":
    main()
