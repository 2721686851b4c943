"""Crash campaign: ``kill -9`` gittrack at random moments, then ``gittrack recover`` alone.

    python tests/soak/crash_campaign.py --kills 200
    python tests/soak/crash_campaign.py --minutes 10 --seed 7

Each round starts one workload in a new process (short runs; runs with artifacts; registry
writes; ``gittrack recover`` itself, with orphaned runs to commit), kills it with SIGKILL at a
random moment, runs ``gittrack recover`` once, and then checks what a user relies on: every
metric point whose ``log_metric`` returned is committed, every model version whose
``register_model`` returned has its tag, ``git fsck --strict`` is clean, no ref lock is left
and no live run is left behind. The counts are printed at the end; the exit code is 1 when
anything was lost. ``tests/test_crash_campaign.py`` runs a few rounds of it under pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Each workload prints "ready" once imported, then one line per thing that returned:
# "P <run_id> <step> <value>" for a point, "V <version>" for a registered version.
_PRELUDE = """
import os, sys
import gittrack as mlflow
def say(line):
    os.write(1, (line + "\\n").encode())
say("ready")
"""

RUNS = """
for r in range(10_000):
    with mlflow.start_run(run_name=f"short-{r}") as run:
        mlflow.log_params({"r": r, "kind": "short"})
        mlflow.set_tag("t", "x")
        for step in range(5):
            mlflow.log_metric("m", float(r * 10 + step), step=step)
            say(f"P {run.info.run_id} {step} {float(r * 10 + step)}")
"""

ARTIFACTS = """
for r in range(10_000):
    with mlflow.start_run(run_name=f"files-{r}") as run:
        for step in range(3):
            mlflow.log_metric("m", float(step), step=step)
            say(f"P {run.info.run_id} {step} {float(step)}")
        mlflow.log_text(os.urandom(20_000).hex(), "data/noise.txt")
        mlflow.log_dict({"r": r}, "model/MLmodel.json")
"""

REGISTRY = """
from gittrack import Client
client = Client()
with mlflow.start_run() as run:
    mlflow.log_text("weights", "model/weights.txt")
for _ in range(10_000):
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "campaign")
    say(f"V {version.version}")
    client.set_registered_model_alias("campaign", "latest-ok", version.version)
"""

# Orphans for the recover workload: processes that log and die without ending their run.
ORPHANS = """
mlflow.get_tracking_uri()  # the children share this handle: none recovers another's run
for r in range(4):
    pid = os.fork()
    if pid == 0:
        mlflow.fluent._state.runs.stack.clear()
        run = mlflow.start_run(run_name=f"orphan-{r}")
        for step in range(50):
            mlflow.log_metric("m", float(step), step=step)
        mlflow.log_text("x" * 1000, "orphan.txt")
        say(f"O {run.info.run_id}")
        os._exit(0)
    os.waitpid(pid, 0)
"""

WORKLOADS = ("runs", "artifacts", "registry", "recover")


@dataclass
class Counts:
    kills: int = 0
    points_checked: int = 0
    points_lost: int = 0
    versions_checked: int = 0
    versions_lost: int = 0
    recover_failures: int = 0
    fsck_failures: int = 0
    locks_left: int = 0
    live_runs_left: int = 0
    by_workload: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def lost_anything(self) -> bool:
        return bool(
            self.points_lost
            or self.versions_lost
            or self.recover_failures
            or self.fsck_failures
            or self.locks_left
            or self.live_runs_left
        )

    def table(self) -> str:
        rows = [
            ("kills", self.kills),
            *((f"  of {name}", self.by_workload[name]) for name in WORKLOADS),
            ("points checked", self.points_checked),
            ("points lost", self.points_lost),
            ("versions checked", self.versions_checked),
            ("versions lost", self.versions_lost),
            ("recover failures", self.recover_failures),
            ("fsck failures", self.fsck_failures),
            ("locks left", self.locks_left),
            ("live runs left", self.live_runs_left),
        ]
        return "\n".join(f"{name:<18} {value:>8}" for name, value in rows)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def make_repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.name", "Campaign"),
        ("config", "user.email", "campaign@example.com"),
        ("commit", "-q", "--allow-empty", "-m", "initial"),
    ):
        _git(path, *args).check_returncode()
    return path


class Campaign:
    """Rounds of start, kill, recover and check on one repository."""

    def __init__(self, repo: Path, rng: random.Random, max_delay: float = 1.0) -> None:
        self.repo = repo
        self.rng = rng
        self.max_delay = max_delay
        self.counts = Counts()
        self.points: dict[str, dict[int, float]] = {}  # every point that returned
        self.versions: set[int] = set()

    def round(self, workload: str) -> None:
        if workload == "recover":
            self._make_orphans()
            proc = self._start([sys.executable, "-m", "gittrack", "recover"], ready=False)
        else:
            code = _PRELUDE + {"runs": RUNS, "artifacts": ARTIFACTS, "registry": REGISTRY}[workload]
            proc = self._start([sys.executable, "-c", code], ready=True)
        time.sleep(self.rng.uniform(0.0, self.max_delay))
        os.kill(proc.pid, signal.SIGKILL)
        self._collect(proc)
        self.counts.kills += 1
        self.counts.by_workload[workload] += 1
        self.recover_and_check(workload)

    def _start(self, command: list[str], ready: bool) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            command, cwd=self.repo, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        if ready:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            if first.strip() != b"ready":
                raise RuntimeError(f"workload did not start: {first!r}")
        return proc

    def _collect(self, proc: subprocess.Popen[bytes]) -> None:
        """Read what the killed process said had returned (a torn last line is ignored)."""
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
        for line in out.decode(errors="replace").split("\n")[:-1]:
            parts = line.split()
            if parts and parts[0] == "P" and len(parts) == 4:
                self.points.setdefault(parts[1], {})[int(parts[2])] = float(parts[3])
            elif parts and parts[0] == "V" and len(parts) == 2:
                self.versions.add(int(parts[1]))

    def _make_orphans(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-c", _PRELUDE + ORPHANS],
            cwd=self.repo,
            env=_env(),
            capture_output=True,
            timeout=300,
            check=False,
        )
        for line in proc.stdout.decode().splitlines():
            if line.startswith("O "):
                self.points[line.split()[1]] = {step: float(step) for step in range(50)}

    def recover_and_check(self, workload: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "gittrack", "recover", "--json"],
            cwd=self.repo,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            self.counts.recover_failures += 1
            self.counts.problems.append(f"{workload}: recover failed: {result.stderr.strip()}")
        self._check_points(workload)
        self._check_versions(workload)
        # fsck lists the packs, then reads them: a background compaction that replaces packs
        # meanwhile (as git gc would) makes it report packs "not opened". Checked after it.
        from gittrack.store.compaction import wait_for_compaction

        wait_for_compaction(self.repo / ".git")
        fsck = _git(self.repo, "fsck", "--strict", "--no-progress")
        if fsck.returncode != 0:
            self.counts.fsck_failures += 1
            self.counts.problems.append(f"{workload}: fsck: {fsck.stdout}{fsck.stderr}")
        git_dir = self.repo / ".git"
        locks = [
            p for p in git_dir.rglob("*.lock") if "gittrack" not in p.relative_to(git_dir).parts[:1]
        ]
        if locks:
            self.counts.locks_left += len(locks)
            self.counts.problems.append(f"{workload}: locks left: {locks}")
            for lock in locks:  # the next rounds check their own damage
                lock.unlink()
        live = git_dir / "gittrack" / "live"
        left = (
            [p.name for p in live.iterdir() if not p.name.startswith(".")] if live.exists() else []
        )
        if left:
            self.counts.live_runs_left += len(left)
            self.counts.problems.append(f"{workload}: live runs left: {left}")

    def _check_points(self, workload: str) -> None:
        """Every point that returned is in the committed ``metrics.jsonl`` of its run."""
        for run_id, expected in list(self.points.items()):
            path = f"gittrack:.tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/metrics.jsonl"
            shown = _git(self.repo, "show", path)
            found: dict[int, float] = {}
            for line in shown.stdout.splitlines() if shown.returncode == 0 else []:
                point = json.loads(line)
                if point["key"] == "m":
                    found[point["step"]] = float(point["value"])
            self.counts.points_checked += len(expected)
            lost = [step for step, value in expected.items() if found.get(step) != value]
            if lost:
                self.counts.points_lost += len(lost)
                self.counts.problems.append(f"{workload}: run {run_id} lost steps {lost}")
            del self.points[run_id]  # checked once: later rounds check new points

    def _check_versions(self, workload: str) -> None:
        tags = set(_git(self.repo, "tag", "--list", "campaign@v*").stdout.split())
        for version in sorted(self.versions):
            self.counts.versions_checked += 1
            if f"campaign@v{version}.0.0" not in tags:
                self.counts.versions_lost += 1
                self.counts.problems.append(f"{workload}: version {version} has no tag")
        self.versions.clear()


def run_campaign(
    repo: Path, kills: int | None, minutes: float | None, seed: int, max_delay: float = 1.0
) -> Counts:
    """Rounds over the workloads in turn until ``kills`` kills or ``minutes`` have passed."""
    campaign = Campaign(repo, random.Random(seed), max_delay)
    deadline = time.monotonic() + minutes * 60 if minutes else None
    index = 0
    while (kills is None or campaign.counts.kills < kills) and (
        deadline is None or time.monotonic() < deadline
    ):
        campaign.round(WORKLOADS[index % len(WORKLOADS)])
        index += 1
    return campaign.counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, help="stop after this many kills")
    parser.add_argument("--minutes", type=float, help="stop after this many minutes")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the kill moments")
    parser.add_argument("--max-delay", type=float, default=1.0, help="latest kill, in seconds")
    parser.add_argument("--repo", type=Path, help="where to make the repository (a new one)")
    args = parser.parse_args(argv)
    if args.kills is None and args.minutes is None:
        args.kills = 40
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gittrack-crash-") as scratch:
        repo = make_repository(args.repo or Path(scratch) / "repo")
        counts = run_campaign(repo, args.kills, args.minutes, args.seed, args.max_delay)
    print(counts.table())
    for problem in counts.problems:
        print("problem:", problem)
    return 1 if counts.lost_anything else 0


if __name__ == "__main__":
    sys.exit(main())
