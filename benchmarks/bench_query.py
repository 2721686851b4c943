"""Query benchmark: gittrack's run index against MLflow's sqlite store, on the same runs.

    python benchmarks/bench_query.py                      # 1,000 / 10,000 / 100,000 runs
    python benchmarks/bench_query.py --sizes 1000 10000   # a quicker pass
    python benchmarks/bench_query.py --dir /tmp/bq --keep # reuse generated data next time

Every run has 10 params, 10 metrics and 3 tags (plus ``mlflow.runName`` and ``mlflow.user``,
which both trackers set). The same deterministic runs are written to a gittrack repository
(bulk: 1,000 runs per tracking commit through ``TrackingBranch``, then ``git repack`` as
``git gc`` would) and to an MLflow sqlite database (bulk inserts into MLflow's own tables,
created by its ``SqlAlchemyStore``). Each measurement runs in a fresh interpreter, timing the
call only (imports and opening the store are excluded):

* search: ``search_runs(filter_string="metrics.m0 > 0.5 and params.p1 = 'x'",
  order_by=["metrics.m0 DESC"])`` returning MLflow's DataFrame;
  - warm: the median of repeated searches in one process, for both libraries;
  - first call of a new process: gittrack with its index cache on disk, MLflow with its
    database; this is what a command-line call costs (imports excluded);
  - cold: gittrack with its index cache deleted first, so every run is read from git;
  time targets are checked on the warm and the new-process figures, the speed-up target on
  the warm one (like for like);
* peak memory: the maximum resident set size of the search process;
* ``get_metric_history`` of one metric with 10,000 points (median of repeats).

The table compares against the targets of the query-engine issue and prints PASS or FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARAMS_PER_RUN = 10
METRICS_PER_RUN = 10
TAGS_PER_RUN = 3
RUNS_PER_COMMIT = 1_000
HISTORY_POINTS = 10_000
FILTER = "metrics.m0 > 0.5 and params.p1 = 'x'"
ORDER_BY = ["metrics.m0 DESC"]
BASE_TIME = 1_750_000_000_000
SEED = 20_261_123
REPEATS = 7
_HERE = Path(__file__).resolve()
_SRC = _HERE.parents[1] / "src"


# ------------------------------------------------------------------ the runs


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    name: str
    start: int
    end: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_specs(count: int) -> Iterator[list[RunSpec]]:
    """The runs in chunks of ``RUNS_PER_COMMIT``, the same every time for a given count."""
    for chunk_start in range(0, count, RUNS_PER_COMMIT):
        rng = random.Random(f"{SEED}-{chunk_start}")
        chunk = []
        for i in range(chunk_start, min(count, chunk_start + RUNS_PER_COMMIT)):
            start = BASE_TIME + i * 1_000 + rng.randrange(500)
            params = {f"p{k}": f"v{rng.randrange(50)}" for k in range(PARAMS_PER_RUN)}
            params["p1"] = rng.choice("xyz")
            chunk.append(
                RunSpec(
                    run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    name=f"run-{i}",
                    start=start,
                    end=start + rng.randrange(1_000, 100_000),
                    params=params,
                    metrics={f"m{k}": round(rng.random(), 6) for k in range(METRICS_PER_RUN)},
                    tags={
                        f"t{k}": rng.choice(["red", "green", "blue"]) for k in range(TAGS_PER_RUN)
                    },
                )
            )
        yield chunk


def history_points() -> list[tuple[int, float, int]]:
    rng = random.Random(SEED)
    return [(step, rng.random(), BASE_TIME + step) for step in range(HISTORY_POINTS)]


# ------------------------------------------------------------------ gittrack side


def build_gittrack(path: Path, count: int) -> dict[str, str]:
    from gittrack.store import layout
    from gittrack.store.branch import Blob
    from gittrack.store.codecs import dump_yaml, format_time, metric_line
    from gittrack.store.git import GitRepo
    from gittrack.store.git_process import run_git
    from gittrack.tracking.repository import TrackingRepository

    path.mkdir(parents=True)
    run_git(["init", "-q", "-b", "main", str(path)], cwd=path)
    handle = TrackingRepository(GitRepo(path))
    handle.init()
    experiment = handle.experiments.create("bench")

    def meta(spec: RunSpec, metrics: dict[str, dict]) -> bytes:
        return dump_yaml(
            {
                "format": 1,
                "run_id": spec.run_id,
                "run_name": spec.name,
                "experiment_id": experiment,
                "status": "FINISHED",
                "lifecycle": "active",
                "start_time": format_time(spec.start),
                "end_time": format_time(spec.end),
                "parent_run_id": None,
                "user": "bench",
                "tags": {"mlflow.runName": spec.name, "mlflow.user": "bench", **spec.tags},
                "source": {
                    "commit": None,
                    "branch": None,
                    "dirty": False,
                    "snapshot": None,
                    "untracked_skipped": [],
                    "entry_point": None,
                },
                "metrics": metrics,
            }
        )

    def summary(value: float, step: int, timestamp: int, count: int = 1, low=None, high=None):
        return {
            "value": value,
            "step": step,
            "timestamp": timestamp,
            "min": value if low is None else low,
            "max": value if high is None else high,
            "count": count,
        }

    def files(spec: RunSpec) -> dict[str, Blob]:
        base = layout.run_dir(spec.run_id)
        lines = b"".join(
            metric_line(json.dumps(k), v, 0, spec.end) for k, v in spec.metrics.items()
        )
        return {
            f"{base}/meta.yaml": Blob(
                meta(spec, {k: summary(v, 0, spec.end) for k, v in spec.metrics.items()})
            ),
            f"{base}/params.yaml": Blob(dump_yaml(spec.params)),
            f"{base}/metrics.jsonl": Blob(lines),
        }

    for chunk in run_specs(count):
        changes: dict[str, Blob] = {}
        for spec in chunk:
            changes.update(files(spec))
        handle.branch.commit(lambda _snap, c=changes: c, f"Add {len(chunk)} benchmark runs\n")
        _progress(f"gittrack: {chunk[-1].name.split('-')[1]} runs written")

    points = history_points()
    history = RunSpec(uuid.uuid4().hex, "history", BASE_TIME, BASE_TIME + 1, {}, {}, {})
    values = [v for _, v, _ in points]
    base = layout.run_dir(history.run_id)
    last_step, last_value, last_time = points[-1]
    history_files = {
        f"{base}/meta.yaml": Blob(
            meta(
                history,
                {
                    "loss": summary(
                        last_value, last_step, last_time, len(points), min(values), max(values)
                    )
                },
            )
        ),
        f"{base}/params.yaml": Blob(b"{}\n"),
        f"{base}/metrics.jsonl": Blob(
            b"".join(metric_line('"loss"', v, s, t) for s, v, t in points)
        ),
    }
    handle.branch.commit(lambda _snap: history_files, "Add the history benchmark run\n")
    handle.repo.git("repack", "-a", "-d", "-q")
    handle.repo.close()
    return {"experiment": experiment, "history_run": history.run_id}


# ------------------------------------------------------------------ MLflow side


def build_mlflow(path: Path, count: int) -> dict[str, str]:
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    path.mkdir(parents=True)
    store = SqlAlchemyStore(f"sqlite:///{path / 'mlflow.db'}", str(path / "artifacts"))
    experiment = store.create_experiment("bench")

    def rows(spec: RunSpec) -> dict[str, list[dict[str, Any]]]:
        tags = {"mlflow.runName": spec.name, "mlflow.user": "bench", **spec.tags}
        metrics = [
            {
                "key": k,
                "value": v,
                "timestamp": spec.end,
                "step": 0,
                "is_nan": False,
                "run_uuid": spec.run_id,
            }
            for k, v in spec.metrics.items()
        ]
        return {
            "runs": [
                {
                    "run_uuid": spec.run_id,
                    "name": spec.name,
                    "source_type": "LOCAL",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": spec.start,
                    "end_time": spec.end,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{path}/artifacts/{spec.run_id}",
                    "experiment_id": experiment,
                }
            ],
            "params": [
                {"key": k, "value": v, "run_uuid": spec.run_id} for k, v in spec.params.items()
            ],
            "tags": [{"key": k, "value": v, "run_uuid": spec.run_id} for k, v in tags.items()],
            "metrics": metrics,
        }

    tables = {"runs": SqlRun, "params": SqlParam, "tags": SqlTag, "metrics": SqlMetric}
    with store.ManagedSessionMaker() as session:
        for chunk in run_specs(count):
            batch: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
            for spec in chunk:
                for name, values in rows(spec).items():
                    batch[name].extend(values)
            for name, model in tables.items():
                session.execute(insert(model.__table__), batch[name])
            session.execute(insert(SqlLatestMetric.__table__), batch["metrics"])
            session.commit()
            _progress(f"mlflow: {chunk[-1].name.split('-')[1]} runs written")
    history_run = store.create_run(experiment, "bench", BASE_TIME, [], "history")
    run_id = history_run.info.run_id
    points = history_points()
    with store.ManagedSessionMaker() as session:
        session.execute(
            insert(SqlMetric.__table__),
            [
                {
                    "key": "loss",
                    "value": v,
                    "timestamp": t,
                    "step": s,
                    "is_nan": False,
                    "run_uuid": run_id,
                }
                for s, v, t in points
            ],
        )
        s, v, t = points[-1]
        session.execute(
            insert(SqlLatestMetric.__table__),
            [
                {
                    "key": "loss",
                    "value": v,
                    "timestamp": t,
                    "step": s,
                    "is_nan": False,
                    "run_uuid": run_id,
                }
            ],
        )
    return {
        "experiment": experiment,
        "history_run": run_id,
        "uri": f"sqlite:///{path / 'mlflow.db'}",
    }


# ------------------------------------------------------------------ measurements (child side)


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    info = json.loads(Path(args.info).read_text())
    if args.library == "gittrack":
        import pandas  # noqa: F401  (imports are not timed, for either library)
        import pyarrow  # noqa: F401

        import gittrack as lib
        import gittrack.query.search  # noqa: F401

        lib.set_tracking_uri(info["path"])
        client = lib.Client()
        repository = client.repository  # open the repository before timing
        if args.mode == "cold":
            shutil.rmtree(repository.repo.gittrack_dir / "cache", ignore_errors=True)
    else:
        import logging

        import mlflow as lib

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        lib.set_tracking_uri(info["uri"])
        client = lib.MlflowClient()
        client.get_experiment(info["experiment"])  # open the store before timing

    if args.what == "history":

        def call():
            return client.get_metric_history(info["history_run"], "loss")
    else:

        def call():
            return lib.search_runs(
                experiment_ids=[info["experiment"]], filter_string=FILTER, order_by=ORDER_BY
            )

    first, result = _timed(call)
    repeats = [_timed(call)[0] for _ in range(args.repeats)]
    out = {
        "first": first,
        "median": statistics.median(repeats) if repeats else first,
        "rows": len(result),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.library == "gittrack" and args.what == "search":
        from gittrack.query.index import run_index

        out["refresh"] = run_index(client.repository).last_refresh.mode
    if args.what == "search" and len(result):
        out["first_ids"] = list(result["run_id"][:5])
    return out


def run_child(library: str, what: str, mode: str, info: Path, repeats: int, timeout: float):
    cmd = [
        sys.executable,
        str(_HERE),
        "--measure",
        library,
        "--what",
        what,
        "--mode",
        mode,
        "--info",
        str(info),
        "--repeats",
        str(repeats),
    ]
    env = {**os.environ, "PYTHONPATH": f"{_SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("GITTRACK_TRACKING_URI", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"{library} {what} {mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the report


@dataclass
class Row:
    runs: str
    case: str
    gittrack: str
    mlflow: str
    ratio: str
    target: str
    result: str


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "timeout"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "-"
    return f"{theirs / ours:,.1f}x faster" if theirs >= ours else f"{ours / theirs:,.1f}x slower"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(rows: list[Row]) -> None:
    headers = ["runs", "case", "gittrack", "MLflow sqlite", "ratio", "target", "result"]
    cells = [[r.runs, r.case, r.gittrack, r.mlflow, r.ratio, r.target, r.result] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |")


# Targets per size: (warm seconds, cold seconds, min speed-up over MLflow, peak MB)
TARGETS: dict[int, dict[str, float]] = {
    1_000: {"warm": 0.040, "speedup": 10},
    10_000: {"warm": 0.100, "cold": 3.0},
    100_000: {"warm": 1.0, "peak_mb": 1024},
}


def prepare(root: Path, count: int) -> tuple[Path, Path]:
    """Generate (or reuse) the data of one size; returns the two info files."""
    directory = root / f"{count}"
    git_info, ml_info = directory / "gittrack.json", directory / "mlflow.json"
    if not git_info.exists():
        shutil.rmtree(directory / "gittrack", ignore_errors=True)
        started = time.perf_counter()
        info = build_gittrack(directory / "gittrack", count)
        info["path"] = str(directory / "gittrack")
        git_info.write_text(json.dumps(info))
        _progress(f"gittrack data for {count:,} runs: {time.perf_counter() - started:,.1f} s\n")
    if not ml_info.exists():
        shutil.rmtree(directory / "mlflow", ignore_errors=True)
        started = time.perf_counter()
        ml_info.write_text(json.dumps(build_mlflow(directory / "mlflow", count)))
        _progress(f"MLflow data for {count:,} runs: {time.perf_counter() - started:,.1f} s\n")
    return git_info, ml_info


def bench_size(root: Path, count: int, timeout: float) -> list[Row]:
    git_info, ml_info = prepare(root, count)
    size = f"{count:,}"
    target = TARGETS.get(count, {})
    cold = run_child("gittrack", "search", "cold", git_info, 0, timeout)
    warm = run_child("gittrack", "search", "warm", git_info, REPEATS, timeout)
    theirs = run_child(
        "mlflow", "search", "warm", ml_info, 1 if count >= 100_000 else REPEATS, timeout
    )
    if warm and theirs and warm["rows"] != theirs["rows"]:
        raise RuntimeError(f"row counts differ: gittrack {warm['rows']}, MLflow {theirs['rows']}")
    if warm and theirs and warm.get("first_ids") != theirs.get("first_ids"):
        raise RuntimeError("gittrack and MLflow return the runs in a different order")

    def get(result: dict | None, field: str) -> float | None:
        return result[field] if result else None

    warm_target, cold_target = target.get("warm"), target.get("cold")
    speedup, peak_target = target.get("speedup"), target.get("peak_mb")
    rows = []
    # Warm: repeated searches in one process, for both libraries (index in memory for gittrack,
    # sqlite pages and SQLAlchemy caches warm for MLflow).
    ours, mlflow_warm = get(warm, "median"), get(theirs, "median")
    checks, text = [], []
    if warm_target is not None:
        checks.append(ours is not None and ours <= warm_target)
        text.append(f"<= {_ms(warm_target)}")
    if speedup is not None:
        checks.append(bool(ours and mlflow_warm and mlflow_warm / ours >= speedup))
        text.append(f">= {speedup:.0f}x MLflow")
    matched = warm["rows"] if warm else "?"
    rows.append(
        Row(
            size,
            f"search, warm: repeated in one process ({matched} rows)",
            _ms(ours),
            _ms(mlflow_warm),
            _ratio(ours, mlflow_warm),
            " and ".join(text) or "-",
            _verdict(all(checks)) if checks else "-",
        )
    )
    # A new process whose index is on disk (a CLI call), against MLflow's first call.
    ours, mlflow_first = get(warm, "first"), get(theirs, "first")
    rows.append(
        Row(
            size,
            "search, first call of a new process (index cache on disk)",
            _ms(ours),
            _ms(mlflow_first),
            _ratio(ours, mlflow_first),
            f"<= {_ms(warm_target)}" if warm_target else "-",
            _verdict(bool(ours and ours <= warm_target)) if warm_target else "-",
        )
    )
    ours = get(cold, "first")
    rows.append(
        Row(
            size,
            "search, cold: index cache deleted, first call",
            _ms(ours),
            _ms(mlflow_first),
            _ratio(ours, mlflow_first),
            f"<= {_ms(cold_target)}" if cold_target else "-",
            _verdict(bool(ours and ours <= cold_target)) if cold_target else "-",
        )
    )
    peak = get(warm, "peak_rss_mb")
    rows.append(
        Row(
            size,
            "peak memory (RSS) of the warm search process",
            f"{peak:,.0f} MB" if peak else "-",
            f"{theirs['peak_rss_mb']:,.0f} MB" if theirs else "-",
            "-",
            f"<= {peak_target:,.0f} MB" if peak_target else "-",
            _verdict(bool(peak and peak <= peak_target)) if peak_target else "-",
        )
    )
    cold_peak = get(cold, "peak_rss_mb")
    rows.append(
        Row(
            size,
            "peak memory (RSS) of the cold build process",
            f"{cold_peak:,.0f} MB" if cold_peak else "-",
            "-",
            "-",
            "-",
            "-",
        )
    )
    return rows


def bench_history(root: Path, count: int, timeout: float) -> Row:
    git_info, ml_info = prepare(root, count)
    ours = run_child("gittrack", "history", "warm", git_info, REPEATS, timeout)
    theirs = run_child("mlflow", "history", "warm", ml_info, REPEATS, timeout)
    if ours and theirs and ours["rows"] != theirs["rows"]:
        raise RuntimeError("history lengths differ")
    ours_t = ours["median"] if ours else None
    ml_t = theirs["median"] if theirs else None
    return Row(
        f"{HISTORY_POINTS:,} points",
        "get_metric_history (median)",
        _ms(ours_t),
        _ms(ml_t),
        _ratio(ours_t, ml_t),
        "<= 30.0 ms",
        _verdict(bool(ours_t and ours_t <= 0.030)),
    )


def _progress(message: str) -> None:
    sys.stderr.write(f"\r{message}")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--dir", help="where the generated data goes (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds allowed per measurement process"
    )
    parser.add_argument("--measure", choices=["gittrack", "mlflow"], help=argparse.SUPPRESS)
    parser.add_argument("--what", default="search", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="warm", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=REPEATS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        args.library = args.measure
        print(json.dumps(measure(args)))
        return 0

    sys.path.insert(0, str(_SRC))
    os.environ.update(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="gittrack-bench-query-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for count in sorted(args.sizes):
            rows += bench_size(root, count, args.timeout)
            _progress(f"measured {count:,} runs\n")
        rows.append(bench_history(root, min(args.sizes), args.timeout))
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    print(
        f"\nfilter: {FILTER!r}, order_by: {ORDER_BY}; runs: {PARAMS_PER_RUN} params, "
        f"{METRICS_PER_RUN} metrics, {TAGS_PER_RUN} tags each; python {sys.version.split()[0]}"
    )
    return 0 if all(r.result != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
