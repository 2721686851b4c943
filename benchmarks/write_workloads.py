"""One write workload of one tracking library, in this process; prints one JSON line.

``bench_write.py`` copies this file into a fresh project repository as ``train.py`` and runs it
there, once per (library, workload), so each measurement starts from a new interpreter and a
new store. The same code drives both libraries: gittrack is imported as ``mlflow``.

Only the standard library is imported here, so that nothing but the tracking library itself
is measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

EXPERIMENT = "bench"
PARAMS_PER_RUN = 10
METRICS_PER_RUN = 10
TAGS_PER_RUN = 3
KEYS_PER_LOG_METRICS = 10
WARMUP_RUNS = 3


@dataclass
class Sample:
    """One timed repeat: ``items`` operations (points or runs) in ``seconds``."""

    items: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def timed_loop(do: Callable[[int, int], None], seconds: float, max_items: int) -> Sample:
    """Call ``do(first, count)`` in growing chunks until ``seconds`` pass or ``max_items`` ran.

    Chunks start at one operation and grow towards the remaining time at the observed rate, so
    a fast library is not slowed by clock reads and a slow one does not overshoot the budget.
    """
    os.sync()  # start with no dirty metadata left over from setup or an earlier repeat
    done = 0
    chunk = 1
    elapsed = 0.0
    start = time.perf_counter()
    while elapsed < seconds and done < max_items:
        count = min(chunk, max_items - done)
        do(done, count)
        done += count
        elapsed = time.perf_counter() - start
        rate = done / elapsed if elapsed > 0 else float(done)
        remaining = max(int(rate * (seconds - elapsed)), 1)
        chunk = max(1, min(chunk * 2, remaining))
    return Sample(done, elapsed)


def run_params(index: int) -> dict[str, str]:
    rng = random.Random(index)
    return {
        "learning_rate": f"{rng.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]):g}",
        "batch_size": str(rng.choice([16, 32, 64, 128, 256])),
        "epochs": str(rng.randint(5, 100)),
        "optimizer": rng.choice(["adam", "sgd", "adamw", "rmsprop"]),
        "dropout": f"{rng.uniform(0.0, 0.5):.3f}",
        "weight_decay": f"{rng.choice([0.0, 1e-5, 1e-4, 1e-3]):g}",
        "hidden_units": str(rng.choice([64, 128, 256, 512, 1024])),
        "num_layers": str(rng.randint(1, 12)),
        "activation": rng.choice(["relu", "gelu", "tanh", "silu"]),
        "seed": str(index),
    }


def run_metrics(index: int) -> dict[str, float]:
    rng = random.Random(-1 - index)
    names = ["loss", "val_loss", "accuracy", "val_accuracy", "precision"]
    names += ["recall", "f1", "auc", "train_time_s", "throughput"]
    return {name: rng.random() for name in names[:METRICS_PER_RUN]}


def run_tags(index: int) -> dict[str, str]:
    return {"team": "vision", "dataset": f"shard-{index % 7}", "sweep": f"sweep-{index // 100}"}


class Workloads:
    """The timed operations, written once against the MLflow fluent API."""

    def __init__(self, tracker: Any, seconds: float, repeats: int, max_items: int) -> None:
        self.tracker = tracker
        self.seconds = seconds
        self.repeats = repeats
        self.max_items = max_items

    def log_metric(self) -> tuple[list[Sample], dict[str, float]]:
        """Points per second of ``log_metric(key, value, step=i)`` inside one run per repeat."""
        values = [random.Random(7).random() for _ in range(4096)]
        log_metric = self.tracker.log_metric

        def do(first: int, count: int) -> None:
            for step in range(first, first + count):
                log_metric("loss", values[step & 4095], step=step)

        return self._in_runs(do, points_per_item=1)

    def log_metrics(self) -> tuple[list[Sample], dict[str, float]]:
        """Points per second of ``log_metrics`` with 10 keys per call."""
        rng = random.Random(11)
        keys = [f"metric_{k}" for k in range(KEYS_PER_LOG_METRICS)]
        batches = [{key: rng.random() for key in keys} for _ in range(256)]
        log_metrics = self.tracker.log_metrics

        def do(first: int, count: int) -> None:
            for step in range(first, first + count):
                log_metrics(batches[step & 255], step=step)

        return self._in_runs(do, points_per_item=KEYS_PER_LOG_METRICS)

    def _in_runs(
        self, do: Callable[[int, int], None], points_per_item: int
    ) -> tuple[list[Sample], dict[str, float]]:
        samples = []
        finish_seconds = []
        with self.tracker.start_run():
            do(0, 100)  # warm-up: first-call imports and caches
        for _ in range(self.repeats):
            self.tracker.start_run()
            sample = timed_loop(do, self.seconds, self.max_items)
            samples.append(Sample(sample.items * points_per_item, sample.seconds))
            start = time.perf_counter()
            self.tracker.end_run()
            finish_seconds.append(time.perf_counter() - start)
        return samples, {"end_run_seconds_max": max(finish_seconds)}

    def runs(self) -> tuple[list[Sample], dict[str, float]]:
        """Runs per second: start, 10 params, 10 metrics, 3 tags, end (one commit each)."""
        total = WARMUP_RUNS + self.repeats * self.max_items
        payloads = [(run_params(i), run_metrics(i), run_tags(i)) for i in range(total)]
        tracker = self.tracker
        offset = 0

        def do(first: int, count: int) -> None:
            for params, metrics, tags in payloads[offset + first : offset + first + count]:
                with tracker.start_run():
                    tracker.log_params(params)
                    tracker.log_metrics(metrics)
                    tracker.set_tags(tags)

        do(0, WARMUP_RUNS)  # warm-up: source capture, store caches, lazy imports
        offset = WARMUP_RUNS
        samples = []
        for _ in range(self.repeats):
            sample = timed_loop(do, self.seconds, self.max_items)
            samples.append(sample)
            offset += sample.items
        return samples, {"runs_logged": offset}

    def fixed_runs(self) -> tuple[list[Sample], dict[str, float]]:
        """Exactly ``max_items`` runs (no warm-up, no time budget): the storage workload."""
        tracker = self.tracker
        os.sync()
        start = time.perf_counter()
        for index in range(self.max_items):
            with tracker.start_run():
                tracker.log_params(run_params(index))
                tracker.log_metrics(run_metrics(index))
                tracker.set_tags(run_tags(index))
        return [Sample(self.max_items, time.perf_counter() - start)], {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=("gittrack", "mlflow"), required=True)
    parser.add_argument(
        "--workload", choices=("log_metric", "log_metrics", "runs", "fixed_runs"), required=True
    )
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-items", type=int, default=1_000_000, help="cap per repeat")
    args = parser.parse_args(argv)

    tracker = importlib.import_module(args.library)
    tracker.set_tracking_uri(args.tracking_uri)
    tracker.set_experiment(EXPERIMENT)
    workloads = Workloads(tracker, args.seconds, args.repeats, args.max_items)
    samples, extra = getattr(workloads, args.workload)()
    print(
        json.dumps(
            {
                "library": args.library,
                "version": getattr(tracker, "__version__", "?"),
                "workload": args.workload,
                "samples": [asdict(s) for s in samples],
                "extra": extra,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
