"""Model-registry benchmark: listing vs GTO and git, loading by stage vs MLflow.

    pip install -e ".[sklearn,bench]"          # gittrack, MLflow and GTO
    python benchmarks/bench_registry.py        # about a minute
    python benchmarks/bench_registry.py --models 10 --versions 5 --repeats 3   # quicker
    python benchmarks/bench_registry.py --json results.json --no-mlflow --no-gto

What is built: a git repository whose registry gittrack wrote through its API: ``--models``
models (default 50) with ``--versions`` versions each (default 10), and per model version N
in ``Staging``, N-1 in ``Production`` and N-2 in ``Archived`` (500 + 150 = 650 tags by
default). Model ``m00`` is a real scikit-learn RandomForest (100 trees, iris); the others point
at stand-in artifacts, which listing never opens.

What is measured (medians over ``--repeats``; every contender runs in its own new process):

- ``git for-each-ref``: the one git call gittrack's listing makes, with its format;
- listing with the API: ``Client().search_registered_models()`` (every model with its latest
  version per stage), first call in a new process and then warm;
- listing from the shell: ``gittrack models list --json`` vs ``gto show --json`` (both include
  starting the interpreter);
- ``pyfunc.load_model("models:/m00/Production")``: gittrack on its repository vs MLflow on a
  sqlite store holding the same estimator (saved with cloudpickle by both), registered and
  moved to Production; the first load in a new process (gittrack's model cache emptied
  first) and warm loads.

With ``--ops``, registry writes at scale instead (``python benchmarks/bench_registry.py --ops``):
``create_model_version``, a stage transition with ``archive_existing_versions=True`` and an
alias move, each timed ``--repeats`` times in a warm process, ``--rounds`` processes per
contender taken in turn with MLflow's, on a model with two versions in a registry of
about 10 tags and of about 10,000 tags (``--filler-models`` models of 10 tags each, written
with ``git fast-import`` as another clone's registry would arrive), then on a model with
1,000 versions; MLflow's sqlite store runs the same operations on the same numbers of models
and versions. Also ``gittrack models list --json`` at 10,000 tags, in process through
``main(argv)`` and as a new process. Targets: each operation <= 10 ms at both sizes, >= 2x
faster than MLflow at 1,000 versions, ``models list`` <= 100 ms.

Isolation: temporary directories, git config only in the sandbox repository
(``GIT_CONFIG_GLOBAL=/dev/null``), MLflow telemetry off; variables starting with ``GIT_``,
``GITTRACK_`` or ``MLFLOW_`` are removed from the environment. Progress goes to stderr, the
table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LIST_TARGET_SECONDS = 0.100


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITTRACK_", "MLFLOW_"))
    }
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, env=clean_env(**extra), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def python(code: str, cwd: Path, *argv: str) -> Any:
    """Run ``code`` in a new interpreter with ``argv``; it prints one JSON document last."""
    out = run([sys.executable, "-c", textwrap.dedent(code), *argv], cwd).stdout
    return json.loads(out.strip().splitlines()[-1])


def wall(args: list[str], cwd: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(args, cwd, GTO_EMOJIS="false")
        times.append(time.perf_counter() - started)
    return times


# ------------------------------------------------------------------------------ setup

BUILD = """
import json, pickle, sys, time
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
import gittrack, gittrack.sklearn
from gittrack import Client

models, versions = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
X, y = load_iris(return_X_y=True)
forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
with open(sys.argv[3], "wb") as out:
    pickle.dump(forest, out)
with gittrack.start_run():
    real = gittrack.sklearn.log_model(forest, "model", serialization_format="cloudpickle")
client = Client()
for m in range(models):
    name = f"m{m:02d}"
    if m == 0:
        source = real.model_uri
    else:
        run = client.create_run("0")
        client.log_text(run.info.run_id, "flavors: {}\\n", "model/MLmodel")
        client.set_terminated(run.info.run_id)
        source = f"runs:/{run.info.run_id}/model"
    client.create_registered_model(name, description=f"model {m}")
    for _ in range(versions):
        client.create_model_version(name, source)
    for offset, stage in ((0, "Staging"), (1, "Production"), (2, "Archived")):
        if versions - offset >= 1:
            client.transition_model_version_stage(name, versions - offset, stage)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

MLFLOW_BUILD = """
import json, pickle, sys
import mlflow, mlflow.sklearn
mlflow.set_tracking_uri(sys.argv[1])
with open(sys.argv[2], "rb") as handle:
    forest = pickle.load(handle)
with mlflow.start_run():
    mlflow.sklearn.log_model(
        forest, name="model", registered_model_name="m00", serialization_format="cloudpickle"
    )
mlflow.MlflowClient().transition_model_version_stage("m00", 1, "Production")
print(json.dumps({"ok": True}))
"""


def make_project(path: Path) -> Path:
    path.mkdir(parents=True)
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "Bench"],
        ["git", "config", "user.email", "bench@example.com"],
        ["git", "config", "commit.gpgsign", "false"],
        ["git", "config", "tag.gpgsign", "false"],
    ):
        run(args, path)
    (path / "train.py").write_text("print('train')\n")
    run(["git", "add", "train.py"], path)
    run(["git", "commit", "-q", "-m", "initial"], path)
    return path


# ------------------------------------------------------------------------------ measures

LIST_API = """
import json, sys, time
started = time.perf_counter()
from gittrack import Client
imported = time.perf_counter()
models = Client().search_registered_models(max_results=None)
first = time.perf_counter() - imported
warm = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    again = Client().search_registered_models(max_results=None)
    warm.append(time.perf_counter() - t)
assert len(again) == len(models)
stages = sum(len(m.latest_versions) for m in models)
print(json.dumps({"first": first, "warm": warm, "models": len(models), "latest": stages}))
"""

LOAD = """
import json, sys, time
import numpy as np
from sklearn.datasets import load_iris
import {module} as mlflow
import {module}.pyfunc
{setup}
X, _ = load_iris(return_X_y=True)
t = time.perf_counter()
model = mlflow.pyfunc.load_model("models:/m00/Production")
first = time.perf_counter() - t
warm = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    model = mlflow.pyfunc.load_model("models:/m00/Production")
    warm.append(time.perf_counter() - t)
print(json.dumps({{"first": first, "warm": warm, "prediction": np.asarray(model.predict(X)).tolist()}}))
"""


def measure(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    project = make_project(base / "project")
    forest = base / "forest.pkl"
    log(f"building the registry: {args.models} models x {args.versions} versions ...")
    built = python(BUILD, project, str(args.models), str(args.versions), str(forest))
    tags = run(["git", "tag", "-l"], project).stdout.split()
    log(f"  {len(tags)} tags in {built['seconds']:.1f} s")
    results: dict[str, Any] = {"tags": len(tags), "build_seconds": built["seconds"]}

    from gittrack.registry.tags_io import _FORMAT  # the exact call gittrack makes

    log("git for-each-ref ...")
    results["for_each_ref"] = wall(
        ["git", "for-each-ref", f"--format={_FORMAT}", "refs/tags"], project, args.repeats
    )
    log("gittrack: listing through the API ...")
    api = [python(LIST_API, project, str(args.repeats)) for _ in range(args.repeats)]
    results["api_first"] = [a["first"] for a in api]
    results["api_warm"] = [t for a in api for t in a["warm"]]
    results["api_models"] = api[0]["models"]
    log("gittrack models list (CLI) ...")
    results["cli"] = wall(
        [sys.executable, "-m", "gittrack", "models", "list", "--json"], project, args.repeats
    )
    if not args.no_gto:
        log("gto show (CLI) ...")
        gto = [sys.executable, "-c", "import sys; from gto.cli import app; sys.exit(app())"]
        results["gto"] = wall([*gto, "show", "--json"], project, max(1, min(args.repeats, 3)))

    log("gittrack: pyfunc.load_model('models:/m00/Production') ...")
    gittrack_loads = []
    for _ in range(args.repeats):
        shutil.rmtree(project / ".git" / "gittrack" / "cache" / "models", ignore_errors=True)
        code = LOAD.format(module="gittrack", setup="")
        gittrack_loads.append(python(code, project, "10"))
    results["load_gittrack_first"] = [r["first"] for r in gittrack_loads]
    results["load_gittrack_warm"] = [t for r in gittrack_loads for t in r["warm"]]

    if not args.no_mlflow:
        store = base / "mlflow"
        store.mkdir()
        uri = f"sqlite:///{store / 'mlflow.db'}"
        log("MLflow: logging and registering the same estimator (sqlite store) ...")
        python(MLFLOW_BUILD, store, uri, str(forest))
        setup = f"mlflow.set_tracking_uri({uri!r})"
        mlflow_loads = []
        log("MLflow: pyfunc.load_model('models:/m00/Production') ...")
        for _ in range(args.repeats):
            code = LOAD.format(module="mlflow", setup=setup)
            mlflow_loads.append(python(code, store, "10"))
        results["load_mlflow_first"] = [r["first"] for r in mlflow_loads]
        results["load_mlflow_warm"] = [t for r in mlflow_loads for t in r["warm"]]
        results["same_predictions"] = (
            gittrack_loads[0]["prediction"] == mlflow_loads[0]["prediction"]
        )
    return results


# ------------------------------------------------------------------------------ operations

OPS_TARGET_SECONDS = 0.010
OPS_LIST_TARGET_SECONDS = 0.100
OPS_SPEEDUP_TARGET = 2.0

OPS = """
import json, sys, time
name, repeats, engine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if engine == "mlflow":
    import mlflow
    mlflow.set_tracking_uri(sys.argv[4])
    client = mlflow.MlflowClient()
else:
    from gittrack import Client
    client = Client()
source = "s3://bucket/model"
def timed(call):
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
# one warm-up of each operation: the first reads what the process had not seen yet
client.create_model_version(name, source)
client.transition_model_version_stage(name, 1, "Production", archive_existing_versions=True)
client.set_registered_model_alias(name, "champion", 1)
out = {"create": [], "transition": [], "alias": []}
for i in range(repeats):
    out["create"].append(timed(lambda: client.create_model_version(name, source)))
for i in range(repeats):
    out["transition"].append(timed(lambda v=2 - i % 2: client.transition_model_version_stage(
        name, v, "Production", archive_existing_versions=True)))
for i in range(repeats):
    out["alias"].append(timed(lambda v=2 - i % 2: client.set_registered_model_alias(
        name, "champion", v)))
print(json.dumps(out))
"""

MLFLOW_FILL = """
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
client = mlflow.MlflowClient()
models, versions, target, target_versions = (int(a) for a in sys.argv[2:6])
for m in range(models):
    client.create_registered_model(f"f{m:05d}")
    for _ in range(versions):
        client.create_model_version(f"f{m:05d}", "s3://bucket/filler")
client.create_registered_model("target")
for _ in range(target_versions):
    client.create_model_version("target", "s3://bucket/model")
print(json.dumps({"ok": True}))
"""

LIST_IN_PROCESS = """
import io, json, sys, time, contextlib
from gittrack.cli.main import main
times = []
for _ in range(int(sys.argv[1]) + 1):
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        main(["models", "list", "--json"])
    times.append(time.perf_counter() - started)
print(json.dumps({"first": times[0], "warm": times[1:], "models": len(json.loads(out.getvalue()))}))
"""


def fill_tags(project: Path, models: int, versions: int, prefix: str = "f", first: int = 1) -> int:
    """Write ``models`` x (``versions`` registrations + Staging + Production) annotated tags
    on the tracking branch's head with ``git fast-import``; returns how many."""
    head = run(["git", "rev-parse", "gittrack"], project).stdout.strip()
    chunks, count = [], 0
    committer = "Filler <filler@example.com> 1700000000 +0000"
    for m in range(models):
        name = f"{prefix}{m:05d}" if prefix == "f" else prefix
        names = [f"{name}@v{n}.0.0" for n in range(first, versions + 1)]
        for n, tag in enumerate(names):
            # each version on its own commit (same tree as the tracking branch's head)
            parent = f"from {head}\n" if count == 0 else ""
            chunks.append(
                f"commit refs/bench/filler\nmark :{count + 1}\ncommitter {committer}\n"
                f"data 0\n{parent}\n".encode()
            )
            count += 1
            labels = [tag]
            if prefix == "f" and n == 0:
                labels.append(f"{name}#Production#1")
            if prefix == "f" and n == 1:
                labels.append(f"{name}#Staging#2")
            for label in labels:
                message = f"Registering {label}\n".encode()
                chunks.append(
                    f"tag {label}\nfrom :{count}\ntagger {committer}\n"
                    f"data {len(message)}\n".encode()
                    + message
                    + b"\n"
                )
    proc = subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=project,
        env=clean_env(),
        input=b"".join(chunks),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"git fast-import failed: {proc.stderr.decode()}")
    return count


GITTRACK_TARGET = """
from gittrack import Client
client = Client()
client.create_registered_model("target")
for _ in range(2):
    client.create_model_version("target", "s3://bucket/model")
print("{}")
"""


def ops_case(
    args: argparse.Namespace, base: Path, label: str, filler_models: int, versions: int
) -> dict[str, Any]:
    """One size: the same registry in gittrack and in MLflow, and the operations timed."""
    project = make_project(base / f"project-{label}")
    python(GITTRACK_TARGET, project)
    if versions > 2:
        fill_tags(project, 1, versions, prefix="target", first=3)  # v1 and v2 exist
    if filler_models:
        fill_tags(project, filler_models, 8)
    tags = len(run(["git", "tag", "-l"], project).stdout.split())
    contenders = [("gittrack", project, ())]
    if not args.no_mlflow:
        store = base / f"mlflow-{label}"
        store.mkdir()
        uri = f"sqlite:///{store / 'mlflow.db'}"
        log(f"{label}: MLflow sqlite with {filler_models} models x 8 versions + target ...")
        python(MLFLOW_FILL, store, uri, str(filler_models), "8", "0", str(max(versions, 2)))
        contenders.append(("mlflow", store, (uri,)))
    result: dict[str, Any] = {"tags": tags}
    # Rounds alternate the contenders, so that a machine busier at one moment slows both.
    for round_number in range(args.rounds):
        for engine, cwd, extra in contenders:
            log(f"{label}: {tags} tags; {engine} operations, round {round_number + 1} ...")
            samples = python(OPS, cwd, "target", str(args.repeats), engine, *extra)
            merged = result.setdefault(engine, {})
            for op, times in samples.items():
                merged.setdefault(op, []).extend(times)
    if filler_models > 1 and not args.no_list:
        log(f"{label}: gittrack models list ...")
        listed = python(LIST_IN_PROCESS, project, str(args.repeats))
        result["list_in_process"] = listed
        result["list_cli"] = wall(
            [sys.executable, "-m", "gittrack", "models", "list", "--json"], project, 3
        )
    return result


def measure_ops(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    return {
        "10 tags": ops_case(args, base, "small", 1, 2),
        "10,000 tags": ops_case(args, base, "large", args.filler_models, 2),
        "1,000 versions": ops_case(args, base, "deep", 0, 1000),
    }


def print_ops(results: dict[str, Any]) -> None:
    print("\nRegistry operations (median of the repeats, one warm process each)")
    header = ["case", "operation", "gittrack", "mlflow sqlite", "x faster", "target", "result"]
    rows = []
    names = {
        "create": "create_model_version",
        "transition": "transition (archive_existing)",
        "alias": "alias move",
    }
    for case, result in results.items():
        for op, label in names.items():
            ours = median(result["gittrack"][op])
            theirs = median(result["mlflow"][op]) if "mlflow" in result else None
            ratio = theirs / ours if theirs and ours else None
            ok = ours <= OPS_TARGET_SECONDS
            target = f"<= {fmt_seconds(OPS_TARGET_SECONDS)}"
            if case == "1,000 versions":
                target += f", >= {OPS_SPEEDUP_TARGET:.0f}x"
                ok = ok and ratio is not None and ratio >= OPS_SPEEDUP_TARGET
            rows.append([f"{case} ({result['tags']} tags)", label, fmt_seconds(ours),
                         fmt_seconds(theirs), f"{ratio:.1f}x" if ratio else "-", target,
                         "PASS" if ok else "FAIL"])  # fmt: skip
        if "list_in_process" in result:
            listed = result["list_in_process"]
            warm = median(listed["warm"])
            rows.append([f"{case} ({result['tags']} tags)",
                         f"models list, main(argv), warm ({listed['models']} models)",
                         fmt_seconds(warm), "-", "-", f"<= {fmt_seconds(OPS_LIST_TARGET_SECONDS)}",
                         "PASS" if warm <= OPS_LIST_TARGET_SECONDS else "FAIL"])  # fmt: skip
            rows.append([f"{case} ({result['tags']} tags)", "models list, main(argv), first",
                         fmt_seconds(listed["first"]), "-", "-", "-", "-"])  # fmt: skip
            rows.append([f"{case} ({result['tags']} tags)",
                         "gittrack models list (new process)",
                         fmt_seconds(median(result["list_cli"])), "-", "-", "-", "-"])  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


# ------------------------------------------------------------------------------ report


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def report(results: dict[str, Any]) -> list[dict[str, Any]]:
    m = {k: median(v) if isinstance(v, list) else v for k, v in results.items()}
    rows = [
        ("git for-each-ref refs/tags (gittrack's format)", m["for_each_ref"], None, None, None),
        (
            "list registry, API, warm",
            m["api_warm"],
            m.get("gto"),
            "gto show",
            ("<=", LIST_TARGET_SECONDS),
        ),
        (
            "list registry, API, first call in a new process",
            m["api_first"],
            m.get("gto"),
            "gto show",
            ("<=", LIST_TARGET_SECONDS),
        ),
        ("list registry, CLI (incl. interpreter start)", m["cli"], m.get("gto"), "gto show", None),
        (
            "load models:/m00/Production, first (cold cache)",
            m["load_gittrack_first"],
            m.get("load_mlflow_first"),
            "mlflow",
            ("<=", "ref"),
        ),
        (
            "load models:/m00/Production, warm",
            m["load_gittrack_warm"],
            m.get("load_mlflow_warm"),
            "mlflow",
            ("<=", "ref"),
        ),
    ]
    table = []
    for label, ours, reference, against, target in rows:
        ratio = reference / ours if reference and ours else None
        verdict = "-"
        target_text = "-"
        if target is not None:
            limit = reference if target[1] == "ref" else target[1]
            target_text = f"<= {against}" if target[1] == "ref" else f"<= {fmt_seconds(limit)}"
            verdict = "N/A" if limit is None else ("PASS" if ours <= limit else "FAIL")
        table.append(
            {
                "measure": label,
                "gittrack": fmt_seconds(ours),
                "reference": f"{fmt_seconds(reference)} ({against})" if against else "-",
                "x faster": f"{ratio:.1f}x" if ratio else "-",
                "target": target_text,
                "result": verdict,
            }
        )
    return table


def print_table(rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print(
        f"\nRegistry benchmark: {results['api_models']} models, {results['tags']} tags "
        f"(built by gittrack in {results['build_seconds']:.1f} s)"
    )
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths)).rstrip())
    if "same_predictions" in results:
        print(f"\nsame predictions from both loaded models: {results['same_predictions']}")
    print("'x faster' = reference time / gittrack time; medians over the repeats.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument("--no-gto", action="store_true", help="skip gto show")
    parser.add_argument("--ops", action="store_true", help="time registry writes at scale")
    parser.add_argument("--rounds", type=int, default=3, help="--ops: rounds per contender")
    parser.add_argument("--filler-models", type=int, default=1000, help="--ops: 10 tags each")
    parser.add_argument("--no-list", action="store_true", help="--ops: skip models list")
    args = parser.parse_args(argv)
    if args.ops:
        with tempfile.TemporaryDirectory(prefix="gittrack-bench-ops-", dir=args.tmpdir) as tmp:
            ops = measure_ops(args, Path(tmp))
        print_ops(ops)
        if args.json:
            args.json.write_text(json.dumps(ops, indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="gittrack-bench-registry-", dir=args.tmpdir) as tmp:
        results = measure(args, Path(tmp))
    rows = report(results)
    print_table(rows, results)
    if args.json:
        args.json.write_text(json.dumps({"samples": results, "table": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
