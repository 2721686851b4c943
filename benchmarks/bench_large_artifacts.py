"""Large artifacts: peak memory and time to log (and commit) then download one file.

    python benchmarks/bench_large_artifacts.py               # 1 KB, 200 MB and 1 GB
    python benchmarks/bench_large_artifacts.py --sizes 1000,1073741824 --no-mlflow

Each case runs in a new interpreter in a new temporary repository (``sandboxes.py``): it logs a
file of the given size (sparse, so making it costs nothing) in one run, ends the run, then
downloads the artifact. Peak memory is the largest ``ru_maxrss`` of the interpreter and of the
git processes it waited for. The target (issue 10 item 5): a 1 GB artifact stays under 100 MB
above a run with a 1 KB artifact. gittrack stores files of 10 MB and more as Git LFS objects.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sandboxes import clean_env, git

TARGET_MB = 100
_WORKER = r"""
import json, os, resource, sys, time
library, size, scratch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tracking = __import__(library)
if library == "mlflow":
    tracking.set_tracking_uri("file://" + os.path.join(scratch, "mlruns"))
source = os.path.join(scratch, "data.bin")
with open(source, "wb") as handle:
    handle.truncate(size)
start = time.perf_counter()
with tracking.start_run() as run:
    tracking.log_artifact(source)
logged = time.perf_counter() - start
os.unlink(source)
start = time.perf_counter()
out = tracking.tracking.MlflowClient().download_artifacts(
    run.info.run_id, "data.bin", os.path.join(scratch, "out"))
read = time.perf_counter() - start
assert os.path.getsize(out) == size
peak = max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"peak_mb": peak / 1024, "log_s": logged, "read_s": read}))
"""


def measure(library: str, size: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "project"
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "config", "user.name", "Bench")
        git(repo, "config", "user.email", "bench@example.com")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
        proc = subprocess.run(
            [sys.executable, "-c", _WORKER, library, str(size), scratch],
            cwd=repo,
            env=clean_env({"MLFLOW_ALLOW_FILE_STORE": "true"}),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(proc.stdout)


def _size(size: int) -> str:
    return f"{size / 1000:,.0f} KB" if size < 1 << 20 else f"{size / (1 << 20):,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"1000,{200 << 20},{1 << 30}")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    libraries = ["gittrack"] + ([] if args.no_mlflow else ["mlflow"])
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| library | artifact | peak memory | above 1 KB run | log+commit | download |")
    print("| --- | --- | --- | --- | --- | --- |")
    for library in libraries:
        base = None
        for size in sizes:
            result = measure(library, size)
            base = result["peak_mb"] if base is None else base
            above = result["peak_mb"] - base
            verdict = "" if library != "gittrack" else (" PASS" if above < TARGET_MB else " FAIL")
            print(
                f"| {library} | {_size(size)} | {result['peak_mb']:.0f} MB | "
                f"{above:+.0f} MB{verdict} | {result['log_s']:.2f} s | {result['read_s']:.2f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
