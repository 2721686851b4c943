"""Live runs shared between processes, and orphans left by processes that died."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

from gittrack import Client
from gittrack.entities import RunStatus

from .conftest import SRC, git, run_script

ORPHANS_SCRIPT = """
import os, sys
from gittrack import Client
client = Client()
for _ in range(int(sys.argv[1])):
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "a", 1.0)
    print(run_id, flush=True)
os._exit(0)
"""


def _live_dir(repo: Path, run_id: str) -> Path:
    return repo / ".git" / "gittrack" / "live" / run_id


def _orphans(repo: Path, count: int) -> list[str]:
    """Live runs left behind by a process that exited without ending them."""
    proc = subprocess.run(
        [sys.executable, "-c", ORPHANS_SCRIPT, str(count)],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _break_meta(repo: Path, run_id: str) -> None:
    """Give a live run a field no schema accepts, as a hand edit or a buggy older version
    could have written it, so that it cannot be committed."""
    meta_path = _live_dir(repo, run_id) / "meta.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["status"] = "EXPLODED"
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))


def _recover_cli(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gittrack", "recover"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )


def test_an_orphan_that_cannot_be_committed_is_kept_and_reported_while_the_others_are_recovered(
    repo: Path,
) -> None:
    first, bad, last = _orphans(repo, 3)
    _break_meta(repo, bad)
    kept = (_live_dir(repo, bad) / "metrics.jsonl").read_bytes()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Client()
        client.create_experiment("a write")  # recovery at the first write must not fail it
        recovered = client.repository.recovered

    assert any(bad in str(w.message) for w in caught)
    for run_id in (first, last):
        assert client.get_run(run_id).info.status == RunStatus.KILLED
        assert not _live_dir(repo, run_id).exists()
    problems = [r for r in recovered if not r.committed]
    assert [r.run_id for r in problems] == [bad]
    assert "status" in problems[0].note
    assert (_live_dir(repo, bad) / "metrics.jsonl").read_bytes() == kept
    assert Client().recover()[0].run_id == bad  # still reported, never deleted


def test_other_commands_keep_working_while_an_orphan_cannot_be_committed(repo: Path) -> None:
    good, bad = _orphans(repo, 2)
    _break_meta(repo, bad)
    result = run_script(
        "import gittrack as mlflow, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "with mlflow.start_run() as r:\n"
        "    mlflow.log_metric('b', 2.0)\n"
        "ids = set(mlflow.search_runs(search_all_experiments=True)['run_id'])\n"
        f"print(r.info.run_id in ids, {good!r} in ids)\n",
        repo,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_a_file_where_a_live_run_directory_belongs_is_reported_and_the_rest_goes_on(
    repo: Path,
) -> None:
    good, bad = _orphans(repo, 2)
    shutil.rmtree(_live_dir(repo, bad))
    _live_dir(repo, bad).write_bytes(b"not a directory\n")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Client()
        listed = {r.info.run_id for r in client.search_runs(["0"])}
        client.create_experiment("a write")  # the first write recovers what it can

    assert good in listed and bad not in listed
    assert client.get_run(good).info.status == RunStatus.KILLED
    assert any(bad in str(w.message) for w in caught)
    [kept] = [r for r in client.recover() if r.run_id == bad]
    assert not kept.committed and "Not a directory" in (kept.note or "")
    result = _recover_cli(repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert bad in result.stderr


def test_gittrack_recover_exits_non_zero_naming_the_orphan_it_could_not_commit(
    repo: Path,
) -> None:
    good, bad = _orphans(repo, 2)
    _break_meta(repo, bad)

    result = _recover_cli(repo)

    assert result.returncode != 0
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    bad_lines = [line for line in lines if bad in line]
    assert bad_lines and "status" in " ".join(bad_lines)
    assert Client().get_run(good).info.status == RunStatus.KILLED
    assert _recover_cli(repo).returncode != 0  # kept: reported again, until it is fixed


OWNER_SCRIPT = """
import os, sys, time
import gittrack as mlflow
current = sys.argv[1]
for i in range(int(sys.argv[2])):
    run = mlflow.start_run()
    with open(current + ".tmp", "w") as fh:
        fh.write(run.info.run_id)
    os.replace(current + ".tmp", current)
    while not os.path.exists(current + ".ready"):  # the other process is logging too
        time.sleep(0.01)
    for step in range(200):
        mlflow.log_metric("own", float(step), step=step)
        time.sleep(0.0002)
    mlflow.end_run()
with open(current + ".tmp", "w") as fh:
    fh.write("done")
os.replace(current + ".tmp", current)
"""

ATTACHER_SCRIPT = """
import sys
from gittrack import MlflowClient
from gittrack.errors import InvalidStateError
current = sys.argv[1]
client = MlflowClient()
open(current + ".ready", "w").close()
k = 0
while True:
    with open(current) as fh:
        run_id = fh.read()
    if run_id == "done":
        break
    for i in range(50):  # on, whatever the owner does meanwhile (an ended run takes it too)
        try:
            if i % 10 == 0:
                client.log_param(run_id, f"p{k}", str(k))
            client.log_metric(run_id, "attached", float(k), step=k)
        except InvalidStateError:
            print("refused", run_id, k, flush=True)
            break
        print("param" if i % 10 == 0 else "logged", run_id, k, flush=True)
        k += 1
    k += 1
"""


def _python(script: str, repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_points_another_process_logs_into_a_run_land_in_that_run(
    repo: Path, tmp_path: Path
) -> None:
    current = tmp_path / "current-run"
    owner = _python(OWNER_SCRIPT, repo, str(current), "25")
    while not current.exists():
        assert owner.poll() is None, owner.communicate()
    attacher = _python(ATTACHER_SCRIPT, repo, str(current))
    owner_out, owner_err = owner.communicate(timeout=300)
    attacher_out, attacher_err = attacher.communicate(timeout=300)
    assert owner.returncode == 0, owner_err
    assert attacher.returncode == 0, attacher_err

    returned: dict[str, set[int]] = {}
    params: dict[str, dict[str, str]] = {}
    for line in attacher_out.splitlines():
        outcome, run_id, k = line.split()
        if outcome in ("logged", "param"):
            returned.setdefault(run_id, set()).add(int(k))
        if outcome == "param":
            params.setdefault(run_id, {})[f"p{k}"] = k
    assert sum(map(len, returned.values())) > 100  # the two processes did overlap
    client = Client()
    runs = client.search_runs(["0"], max_results=1000)
    assert len(runs) == 25
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "attached")]
        assert len(steps) == len(set(steps))
        assert set(steps) == returned.get(run.info.run_id, set()), run.info.run_id
        assert len(client.get_metric_history(run.info.run_id, "own")) == 200
        assert run.data.params == params.get(run.info.run_id, {})


STEPPED_OWNER = """
import sys
import gittrack as mlflow
first = mlflow.start_run()
print(first.info.run_id, flush=True)
sys.stdin.readline()
mlflow.end_run()
second = mlflow.start_run()
print(second.info.run_id, flush=True)
sys.stdin.readline()
mlflow.end_run()
"""


def test_logging_into_a_run_its_owner_ended_lands_in_that_run_and_no_other(repo: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", STEPPED_OWNER],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdin is not None and owner.stdout is not None
    first = owner.stdout.readline().strip()
    client = Client()
    client.log_metric(first, "attached", 1.0)
    client.log_param(first, "attached", "yes")
    owner.stdin.write("\n")
    owner.stdin.flush()
    second = owner.stdout.readline().strip()  # the first run's directory is now a spare

    # The stale handle on the first run notices it was committed: each call is a new
    # commit of the first run (MLflow lets an ended run take data), never a write into
    # the directory the second run reuses.
    client.log_metric(first, "attached", 2.0, step=1)
    client.log_param(first, "late", "yes")
    owner.stdin.write("\n")
    owner.stdin.flush()
    assert owner.wait(timeout=60) == 0

    assert [m.value for m in client.get_metric_history(first, "attached")] == [1.0, 2.0]
    assert client.get_run(first).data.params == {"attached": "yes", "late": "yes"}
    assert client.get_run(first).info.status == "FINISHED"
    assert client.get_metric_history(second, "attached") == []
    assert client.get_run(second).data.params == {}


SLEEPING_OWNER = """
import time
import gittrack as mlflow
run = mlflow.start_run()
mlflow.log_metric("own", 1.0)
print(run.info.run_id, flush=True)
time.sleep(600)
"""

STREAMING_ATTACHER = """
import os
import sys
from gittrack import MlflowClient
client = MlflowClient()
run_id, stop = sys.argv[1], sys.argv[2]
for k in range(1_000_000):
    if os.path.exists(stop):
        break
    client.log_metric(run_id, "attached", float(k), step=k)
    print(k, flush=True)
"""


def test_points_logged_into_an_orphan_while_it_is_recovered_are_all_committed(
    repo: Path, tmp_path: Path
) -> None:
    owner = _python(SLEEPING_OWNER, repo)
    assert owner.stdout is not None
    run_id = owner.stdout.readline().strip()
    stop = tmp_path / "stop"
    attacher = _python(STREAMING_ATTACHER, repo, run_id, str(stop))
    assert attacher.stdout is not None
    while int(attacher.stdout.readline()) < 200:
        pass
    owner.kill()
    owner.wait()

    client = Client()
    client.create_experiment("a write")  # the first write recovers, while it logs on
    recovered = client.repository.recovered
    last = ""
    for _ in range(20):  # then on, into the committed run
        last = attacher.stdout.readline().strip()
    stop.write_text("")
    rest, err = attacher.communicate(timeout=120)
    assert attacher.returncode == 0, err

    assert [r.run_id for r in recovered if r.committed] == [run_id]
    returned = int((rest.split() or [last])[-1]) + 1
    steps = [m.step for m in client.get_metric_history(run_id, "attached")]
    assert steps == list(range(returned))


ARTIFACT_OWNER = """
import sys
import gittrack as mlflow
for _ in range(3):
    run = mlflow.start_run()
    print(run.info.run_id, flush=True)
    sys.stdin.readline()
    mlflow.end_run()
mlflow.start_run()
mlflow.log_text("own", "own.txt")
mlflow.end_run()
"""

ARTIFACT_ATTACHER = """
import sys
from gittrack import MlflowClient
client = MlflowClient()
run_id = sys.argv[1]
after_end = 0
for k in range(100_000):  # a bound, never reached: the run ends within seconds
    client.log_text(run_id, str(k), f"attached/{k}.txt")
    print(k, flush=True)
    if client.get_run(run_id).info.status != "RUNNING":
        after_end += 1
        if after_end > 3:  # a few into the ended run too, each its own commit
            break
"""


def test_artifacts_another_process_logs_while_the_owner_ends_the_run_all_land_in_it(
    repo: Path,
) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", ARTIFACT_OWNER],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdin is not None and owner.stdout is not None
    returned: dict[str, list[str]] = {}
    for _ in range(3):
        run_id = owner.stdout.readline().strip()
        attacher = _python(ARTIFACT_ATTACHER, repo, run_id)
        assert attacher.stdout is not None
        first = [attacher.stdout.readline() for _ in range(5)]
        assert all(k.strip().isdigit() for k in first), attacher.communicate()
        owner.stdin.write("\n")  # the attacher is logging: now the owner ends the run
        owner.stdin.flush()
        out = "".join(first) + attacher.stdout.read()  # through the same buffer
        assert attacher.wait(timeout=120) == 0, attacher.communicate()
        returned[run_id] = [f"attached/{k}.txt" for k in out.split()]
    owner.stdin.close()
    assert owner.wait(timeout=120) == 0

    client = Client()
    for run_id, paths in returned.items():
        stored = {f.path for f in client.list_artifacts(run_id, "attached")}
        assert stored == set(paths), f"{len(set(paths) - stored)} returned but not in {run_id}"
    for run in client.search_runs(["0"]):
        if run.info.run_id not in returned:
            assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["own.txt"]
    live = repo / ".git" / "gittrack" / "live"
    assert [p.name for p in live.iterdir() if not p.name.startswith(".")] == []


def test_a_search_or_listing_never_commits_the_orphans_of_dead_processes(repo: Path) -> None:
    """Reads never write (issue: a read that writes): the command line's listings and a
    search leave the branch and the staging area as they found them."""
    orphans = _orphans(repo, 2)
    tip = git(repo, "rev-parse", "gittrack")
    for args in (["runs", "list"], ["search"], ["experiments", "list"]):
        result = subprocess.run(
            [sys.executable, "-m", "gittrack", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr)
    listed = run_script(
        "import gittrack as mlflow\nprint(len(mlflow.search_runs(search_all_experiments=True)))\n",
        repo,
    )
    assert listed.returncode == 0, listed.stderr
    assert git(repo, "rev-parse", "gittrack") == tip
    assert all(_live_dir(repo, run_id).is_dir() for run_id in orphans)
    started = run_script("import gittrack as mlflow\nmlflow.start_run()\nmlflow.end_run()\n", repo)
    assert started.returncode == 0, started.stderr
    assert not any(_live_dir(repo, run_id).exists() for run_id in orphans)
    assert all(Client().get_run(run_id).info.status == RunStatus.KILLED for run_id in orphans)
