"""Write-path benchmark: gittrack against MLflow (file store and sqlite), side by side.

    python benchmarks/bench_write.py            # full run, about 6 minutes on 2 cores
    python benchmarks/bench_write.py --quick    # smoke mode for CI, under 2 minutes
    python benchmarks/bench_write.py --json results.json --only 1,3a

Every measurement runs in a new interpreter inside a new temporary directory (see
``sandboxes.py``); the workload code is ``write_workloads.py``. Repeats go round-robin over the
contenders, so a machine that slows down mid-benchmark slows all of them alike. The table shows
the median of the repeats; the JSON keeps every sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from sandboxes import (
    Sandbox,
    clean_env,
    disk_size,
    filesystem_type,
    git,
    new_file_cost,
    packed_size,
    sandbox,
)

MB = 1_000_000
T = TypeVar("T")
WORKER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Contender:
    name: str  # column name
    library: str  # module imported by the worker
    backend: str  # store kind (see Sandbox.tracking_uri)


GITTRACK = Contender("gittrack", "gittrack", "gittrack")
MLFLOW_FILE = Contender("mlflow file", "mlflow", "file")
MLFLOW_SQLITE = Contender("mlflow sqlite", "mlflow", "sqlite")
MLFLOW_CONTENDERS = (MLFLOW_FILE, MLFLOW_SQLITE)


@dataclass(frozen=True)
class Settings:
    quick: bool
    seconds: float  # time budget of one throughput repeat
    repeats: int
    import_repeats: int
    size_runs: int
    tmpdir: Path | None

    @classmethod
    def for_mode(cls, quick: bool, tmpdir: Path | None) -> Settings:
        if quick:
            return cls(True, 0.5, 2, 3, 200, tmpdir)
        return cls(False, 2.0, 5, 10, 1000, tmpdir)


@dataclass(frozen=True)
class Target:
    """gittrack's goal: an absolute bound and/or a minimum advantage over MLflow backends."""

    bound: float | None = None
    min_advantage: dict[str, float] = field(default_factory=dict)

    def describe(self, higher_is_better: bool, fmt: Callable[[float], str]) -> str:
        parts = []
        if self.bound is not None:
            parts.append(f"{'≥' if higher_is_better else '≤'} {fmt(self.bound)}")
        for name, factor in self.min_advantage.items():
            parts.append(f"≥ {factor:g}× {name.removeprefix('mlflow ')}")
        return ", ".join(parts)


@dataclass
class Row:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    target: Target
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, contender: str) -> float | None:
        found = self.samples.get(contender)
        return statistics.median(found) if found else None

    def advantage(self, contender: str) -> float | None:
        """How many times better gittrack is than ``contender`` (>1: gittrack is better)."""
        ours, theirs = self.value(GITTRACK.name), self.value(contender)
        if ours is None or theirs is None or ours <= 0 or theirs <= 0:
            return None
        return ours / theirs if self.higher_is_better else theirs / ours

    def passed(self) -> bool | None:
        ours = self.value(GITTRACK.name)
        if ours is None:
            return None
        ok = True
        if self.target.bound is not None:
            ok = ours >= self.target.bound if self.higher_is_better else ours <= self.target.bound
        for name, factor in self.target.min_advantage.items():
            advantage = self.advantage(name)
            if advantage is None:
                return None
            ok = ok and advantage >= factor
        return ok

    def format(self, value: float) -> str:
        if self.unit == "MB":
            return f"{value / MB:.2f} MB"
        if self.unit == "s":
            return f"{value:.3f} s"
        return f"{value:,.0f} {self.unit}"

    def to_json(self) -> dict:
        names = [GITTRACK.name, *(c.name for c in MLFLOW_CONTENDERS)]
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "values": {n: self.value(n) for n in names},
            "advantage": {c.name: self.advantage(c.name) for c in MLFLOW_CONTENDERS},
            "samples": self.samples,
            "target": asdict(self.target),
            "passed": self.passed(),
            "notes": self.notes,
            "errors": self.errors,
        }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ workers
class WorkerError(RuntimeError):
    pass


def run_worker(
    box: Sandbox, contender: Contender, workload: str, *, seconds: float, max_items: int
) -> dict:
    """Run ``train.py`` (the workload script) in the sandbox's project; its JSON result."""
    cmd = [
        sys.executable,
        "train.py",
        f"--library={contender.library}",
        f"--workload={workload}",
        f"--tracking-uri={box.tracking_uri(contender.backend)}",
        f"--seconds={seconds}",
        "--repeats=1",
        f"--max-items={max_items}",
    ]
    proc = subprocess.run(
        cmd,
        cwd=box.project,
        env=box.env(contender.backend),
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"{contender.name} {workload} exited {proc.returncode}:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rotated(items: list[T], shift: int) -> list[T]:
    """``items`` starting at ``shift``: each repeat starts with a different contender."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def measure_throughput(
    row: Row,
    workload: str,
    contenders: list[Contender],
    settings: Settings,
    *,
    max_items: int,
    dirty: bool = False,
) -> Row:
    """Median rate over repeats; each repeat is a fresh sandbox and interpreter per contender."""
    snapshots: set[int] = set()
    for repeat in range(settings.repeats):
        for contender in _rotated(contenders, repeat):
            if contender.name in row.errors:
                continue
            with sandbox(settings.tmpdir, dirty=dirty) as box:
                try:
                    result = run_worker(
                        box, contender, workload, seconds=settings.seconds, max_items=max_items
                    )
                except (WorkerError, subprocess.TimeoutExpired) as exc:
                    row.errors[contender.name] = str(exc)
                    _log(f"[{row.key}] {contender.name}: FAILED\n{exc}")
                    continue
                if dirty and contender is GITTRACK:
                    snapshots.add(_distinct_snapshots(box))
            sample = result["samples"][0]
            rate = sample["items"] / sample["seconds"]
            row.samples.setdefault(contender.name, []).append(rate)
            _log(
                f"[{row.key}] {contender.name:13} repeat {repeat + 1}/{settings.repeats}: "
                f"{row.format(rate)} ({sample['items']:,} in {sample['seconds']:.2f} s)"
            )
    ours = row.samples.get(GITTRACK.name)
    if ours and len(ours) > 1:
        row.notes.append(
            f"gittrack repeats ranged {row.format(min(ours))} to {row.format(max(ours))}"
        )
    if dirty and snapshots:
        cached = snapshots == {1}
        row.notes.append(
            f"source snapshots per gittrack repeat: {sorted(snapshots)} "
            f"({'capture cached' if cached else 'capture NOT cached'})"
        )
    return row


def _distinct_snapshots(box: Sandbox) -> int:
    """Distinct second parents (code snapshots) of the tracking branch's run commits."""
    head = git(box.project, "rev-parse", "HEAD").strip()
    seconds = {
        parents.split()[1]
        for parents in git(box.project, "log", "--format=%P", "refs/heads/gittrack").splitlines()
        if len(parents.split()) > 1
    }
    return len(seconds - {head}) if seconds else 0


# ------------------------------------------------------------------------ import time
_IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def measure_import(row: Row, contenders: list[Contender], settings: Settings) -> Row:
    """Seconds for ``import <module>`` in a fresh interpreter (after one untimed warm-up)."""
    modules: dict[str, list[Contender]] = {}
    for contender in contenders:
        modules.setdefault(contender.library, []).append(contender)
    with tempfile.TemporaryDirectory(dir=settings.tmpdir) as cwd:
        for repeat in range(settings.import_repeats + 1):
            for module in _rotated(list(modules), repeat):
                proc = subprocess.run(
                    [sys.executable, "-c", _IMPORT_SNIPPET.format(module=module)],
                    cwd=cwd,
                    env=clean_env({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}),
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                if proc.returncode != 0:
                    for contender in modules[module]:
                        row.errors[contender.name] = proc.stderr.strip() or "failed"
                    continue
                if repeat == 0:
                    continue  # warm-up: compiles .pyc files, fills the OS cache
                seconds = float(proc.stdout.strip())
                for contender in modules[module]:
                    row.samples.setdefault(contender.name, []).append(seconds)
                _log(f"[{row.key}] import {module:9} repeat {repeat}: {seconds:.3f} s")
    if any(c.library == "mlflow" for c in contenders):
        row.notes.append("`import mlflow` does not depend on the backend: one figure, shown twice")
    return row


# ---------------------------------------------------------------------------- storage
def measure_storage(row: Row, contenders: list[Contender], settings: Settings) -> Row:
    """Bytes on disk after ``settings.size_runs`` runs (gittrack: packed after gc)."""
    runs = settings.size_runs
    for contender in contenders:
        with sandbox(settings.tmpdir) as box:
            try:
                result = run_worker(box, contender, "fixed_runs", seconds=0, max_items=runs)
            except (WorkerError, subprocess.TimeoutExpired) as exc:
                row.errors[contender.name] = str(exc)
                _log(f"[{row.key}] {contender.name}: FAILED\n{exc}")
                continue
            sample = result["samples"][0]
            rate = f"{sample['items'] / sample['seconds']:,.0f} runs/s"
            if contender is GITTRACK:
                sizes = packed_size(box.project)
                size = sizes["size_pack"]
                before = sizes["objects_dir_allocated_before_gc"]
                row.notes.append(
                    f"gittrack: {runs:,} runs at {rate}; before gc "
                    f"{sizes['loose_objects_before_gc']:,} loose objects and "
                    f"{sizes['packs_before_gc']:,} packs, {before / MB:.1f} MB allocated; "
                    f"after gc {sizes['in_pack']:,} objects in {sizes['packs']} pack(s), "
                    f"{size / MB:.2f} MB"
                )
            else:
                store = box.store / "mlruns" if contender.backend == "file" else box.store
                usage = disk_size([store])
                size = usage.allocated
                files = sum(len(names) for _, _, names in os.walk(store))
                row.notes.append(
                    f"{contender.name}: {runs:,} runs at {rate}; {files:,} file(s), "
                    f"{usage.allocated / MB:.1f} MB allocated (du), "
                    f"{usage.apparent / MB:.2f} MB of file content"
                )
            row.samples[contender.name] = [float(size)]
            _log(f"[{row.key}] {contender.name:13} {runs:,} runs: {row.format(size)}")
    return row


# ------------------------------------------------------------------------------ report
def environment(settings: Settings) -> dict:
    tmp = settings.tmpdir or Path(tempfile.gettempdir())

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
        "gittrack": version("gittrack"),
        "mlflow": version("mlflow"),
        "tmpdir": str(tmp),
        "filesystem": filesystem_type(tmp),
        "mode": "quick" if settings.quick else "full",
        "repeats": settings.repeats,
        "seconds_per_repeat": settings.seconds,
    }


def render(rows: list[Row], env: dict) -> str:
    names = [GITTRACK.name, *(c.name for c in MLFLOW_CONTENDERS)]
    header = ["#", "workload", *names, "× file", "× sqlite", "target", "result"]
    table = [header]
    for row in rows:
        cells = [row.key, row.title]
        for name in names:
            value = row.value(name)
            cells.append(
                "error" if name in row.errors else "—" if value is None else row.format(value)
            )
        for contender in MLFLOW_CONTENDERS:
            advantage = row.advantage(contender.name)
            cells.append("—" if advantage is None else f"{advantage:,.1f}×")
        cells.append(row.target.describe(row.higher_is_better, row.format))
        passed = row.passed()
        cells.append("N/A" if passed is None else "PASS" if passed else "FAIL")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    numeric = set(range(2, 2 + len(names) + len(MLFLOW_CONTENDERS)))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [
        f"gittrack {env['gittrack']} vs mlflow {env['mlflow']} — {env['date']}, {env['mode']} "
        f"mode ({env['repeats']} repeats of {env['seconds_per_repeat']:g} s, median shown)",
        f"Python {env['python']}, {env['cpus']} CPUs, {env['platform']}, {env['git']}",
        f"sandboxes in {env['tmpdir']} ({env['filesystem']}): creating one new file costs "
        f"{env['new_file_us_before']:.0f} µs before / {env['new_file_us_after']:.0f} µs after",
        "× = how many times better gittrack is (faster, or smaller)",
        "",
        line(table[0]),
        line(["-" * w for w in widths]),
        *(line(cells) for cells in table[1:]),
    ]
    notes = [f"  {row.key}: {note}" for row in rows for note in row.notes]
    if notes:
        out += ["", "Notes:", *notes]
    errors = [
        f"  {row.key} {name}: {text.splitlines()[0]}"
        for row in rows
        for name, text in row.errors.items()
    ]
    if errors:
        out += ["", "Errors:", *errors]
    return "\n".join(out)


# -------------------------------------------------------------------------------- main
ROW_KEYS = ("1", "2", "3a", "3b", "4", "5")


def plan(settings: Settings, contenders: list[Contender]) -> dict[str, Callable[[], Row]]:
    """The rows, each a thunk so that ``--only`` runs just the chosen ones."""
    ratio = {MLFLOW_FILE.name: 100.0}
    runs_ratio = {c.name: 10.0 for c in MLFLOW_CONTENDERS}
    names = {c.name for c in contenders}
    ratio = {k: v for k, v in ratio.items() if k in names}
    runs_ratio = {k: v for k, v in runs_ratio.items() if k in names}
    scale = settings.size_runs / 1000
    size_title = f"storage of {settings.size_runs:,} runs (gittrack: pack after gc)"
    if scale != 1:
        size_title += f", target scaled ×{scale:g}"

    def runs_row(key: str, dirty: bool) -> Row:
        tree = "dirty" if dirty else "clean"
        row = Row(
            key,
            f"runs: 10 params, 10 metrics, 3 tags, commit ({tree} tree)",
            "runs/s",
            True,
            Target(300, runs_ratio),
        )
        return measure_throughput(row, "runs", contenders, settings, max_items=20_000, dirty=dirty)

    return {
        "1": lambda: measure_throughput(
            Row("1", "log_metric, 1 point per call", "points/s", True, Target(100_000, ratio)),
            "log_metric",
            contenders,
            settings,
            max_items=300_000,
        ),
        "2": lambda: measure_throughput(
            Row("2", "log_metrics, 10 keys per call", "points/s", True, Target(200_000)),
            "log_metrics",
            contenders,
            settings,
            max_items=100_000,
        ),
        "3a": lambda: runs_row("3a", dirty=False),
        "3b": lambda: runs_row("3b", dirty=True),
        "4": lambda: measure_import(
            Row("4", "import time, fresh interpreter", "s", False, Target(0.5)),
            contenders,
            settings,
        ),
        "5": lambda: measure_storage(
            Row("5", size_title, "MB", False, Target(7 * MB * scale)), contenders, settings
        ),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark gittrack's write path against MLflow (file store and sqlite)."
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (e.g. for CI)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--only", metavar="ROWS", help=f"comma-separated rows to run, of {','.join(ROW_KEYS)}"
    )
    parser.add_argument(
        "--tmpdir", type=Path, help="where sandboxes are created (default: the system temp dir)"
    )
    parser.add_argument("--repeats", type=int, help="override the number of repeats")
    parser.add_argument("--seconds", type=float, help="override the time budget of a repeat")
    parser.add_argument("--size-runs", type=int, help="override the run count of row 5")
    parser.add_argument(
        "--no-mlflow", action="store_true", help="measure gittrack only (no ratios)"
    )
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 1 when a target is missed"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.for_mode(args.quick, args.tmpdir)
    overrides = {
        "repeats": args.repeats,
        "seconds": args.seconds,
        "size_runs": args.size_runs,
        "import_repeats": args.repeats,
    }
    settings = Settings(**{**asdict(settings), **{k: v for k, v in overrides.items() if v}})
    chosen = args.only.split(",") if args.only else list(ROW_KEYS)
    unknown = [key for key in chosen if key not in ROW_KEYS]
    if unknown:
        _log(f"unknown rows {unknown}: choose among {', '.join(ROW_KEYS)}")
        return 2
    env = environment(settings)
    contenders = [GITTRACK]
    if not args.no_mlflow:
        if env["mlflow"] == "not installed":
            _log("mlflow is not installed (pip install mlflow): measuring gittrack only")
        else:
            contenders += MLFLOW_CONTENDERS
    env["new_file_us_before"] = new_file_cost(settings.tmpdir)
    thunks = plan(settings, contenders)
    started = time.perf_counter()
    rows = [thunks[key]() for key in ROW_KEYS if key in chosen]
    env["new_file_us_after"] = new_file_cost(settings.tmpdir)
    env["wall_seconds"] = round(time.perf_counter() - started, 1)

    print(render(rows, env))
    if args.json:
        results = [row.passed() for row in rows]
        document = {
            "environment": env,
            "settings": {**asdict(settings), "tmpdir": str(settings.tmpdir or "")},
            "rows": [row.to_json() for row in rows],
            "all_passed": all(r is True for r in results),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        _log(f"results written to {args.json}")
    if args.fail_on_miss and any(row.passed() is not True for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
