"""Web UI timings in a real headless Chromium: the runs table's first page with 10,000 runs
and a metric chart of a 100,000-point series (issue 14's acceptance figures).

    python benchmarks/bench_ui.py                 # 10,000 runs, 100,000 points
    python benchmarks/bench_ui.py --runs 2000     # a smaller repository
    python benchmarks/bench_ui.py --keep DIR      # build (or reuse) the repository in DIR

The repository is built with ``Client`` (one commit per run, as a training script makes them).
Each figure is the median of ``--repeats`` page loads in a fresh tab, measured by the browser:
from navigation start until the table rows, or the chart's SVG, are in the page. Needs the
``ui`` and ``dev`` extras and Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gittrack import Client
from gittrack.entities import Metric, Param

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def build(path: Path, runs: int, points: int) -> str:
    """A repository with ``runs`` runs and one run with a ``points``-point series."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        for args in (
            ["init", "-q", "-b", "main"],
            ["config", "user.name", "Bench"],
            ["config", "user.email", "bench@example.com"],
        ):
            subprocess.run(["git", *args], cwd=path, check=True)
        (path / "train.py").write_text("print('train')\n")
        subprocess.run(["git", "add", "."], cwd=path, check=True)
        subprocess.run(["git", "commit", "-qm", "initial"], cwd=path, check=True)
    client = Client(str(path))
    found = client.search_runs_page(filter_string="attributes.run_name = 'long-series'", limit=1)
    if found.total:
        return found.runs[0].info.run_id
    started = time.perf_counter()
    exp = client.create_experiment("bench-ui")
    stamp = 1_700_000_000_000
    for i in range(runs):
        run_id = client.create_run(exp, run_name=f"run-{i:05d}").info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("rmse", 1.0 / (i + 1), stamp, 0), Metric("r2", i / runs, stamp, 0)],
            params=[Param("alpha", str(i % 17)), Param("depth", str(i % 9))],
        )
        client.set_terminated(run_id)
        if (i + 1) % 1000 == 0:
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"  {i + 1} runs ({rate:.0f} runs/s)", file=sys.stderr)
    run_id = client.create_run(exp, run_name="long-series").info.run_id
    for start in range(0, points, 10_000):
        batch = [
            Metric("loss", 1.0 / (s + 1) + (s % 97) * 1e-4, stamp + s, s)
            for s in range(start, min(points, start + 10_000))
        ]
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)
    return run_id


@contextlib.contextmanager
def serving(path: Path):
    import socket

    import uvicorn

    from gittrack.ui.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Client(str(path))), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def time_load(context, url: str, selector: str) -> float:
    """Milliseconds from navigation start until ``selector`` is in the page: a new tab of one
    browser profile, so the page, its modules and the API answers are all loaded again while
    plotly.min.js comes from the browser's cache, as for a user on their second visit."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_selector(selector, timeout=60_000)
        return page.evaluate("performance.now()")
    finally:
        page.close()


def time_in_app(page, url: str, selector: str, attribute_of: str) -> float:
    """Milliseconds the page itself reports for fetching and drawing, after an in-app
    navigation (the ``data-render-ms`` the runs table and each chart record)."""
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_selector(selector, timeout=60_000)
    return float(page.locator(attribute_of).first.get_attribute("data-render-ms"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build or reuse the repository here")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    scratch = None if args.keep else tempfile.mkdtemp(prefix="gittrack-bench-ui-")
    path = args.keep or Path(scratch) / "repo"
    try:
        started = time.perf_counter()
        long_run = build(path, args.runs, args.points)
        print(f"repository ready in {time.perf_counter() - started:.1f} s: {path}", file=sys.stderr)
        with serving(path) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            rows = "#runs-table tbody tr"
            chart_selector = ".chart[data-metric='loss'][data-render-ms] path.js-line"
            run_url = f"{url}/#/run/{long_run}"
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            cold_table = time_load(context, url + "/#/runs", rows)
            cold_chart = time_load(context, run_url, chart_selector)
            table = [time_load(context, url + "/#/runs", rows) for _ in range(args.repeats)]
            chart = [time_load(context, run_url, chart_selector) for _ in range(args.repeats)]
            page = context.new_page()
            table_app = [
                time_in_app(page, url + "/#/runs", rows + "[data-run-id]", "main")
                for _ in range(args.repeats)
            ]
            chart_app = [
                time_in_app(page, run_url, chart_selector, ".chart[data-metric='loss']")
                for _ in range(args.repeats)
            ]
            browser.close()
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"first visit (empty cache): runs table {cold_table:.0f} ms, chart {cold_chart:.0f} ms")
    print("| what | median | max | target |\n| --- | --- | --- | --- |")
    for what, samples, target in (
        (f"runs table, first page of {args.runs} runs: page load to rows", table, 1000),
        ("  the same, fetch + render reported by the page", table_app, 1000),
        (f"chart of a {args.points}-point series: page load to chart", chart, 500),
        ("  the same, fetch + draw reported by the chart", chart_app, 500),
    ):
        print(
            f"| {what} | {statistics.median(samples):.0f} ms | {max(samples):.0f} ms | {target} ms |"
        )


if __name__ == "__main__":
    main()
