"""Nothing logged is lost, and the user's repository is never touched."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import RunStatus
from gittrack.errors import ConflictError
from gittrack.store.staging import Staging

from .conftest import SRC, git, run_script, tree_fingerprint


def _dirty_repo_with_stash(repo: Path) -> None:
    (repo / "data.csv").write_text("a,b\n1,2\n")
    git(repo, "add", "data.csv")
    git(repo, "commit", "-q", "-m", "data")
    (repo / "train.py").write_text("print('stashed change')\n")
    git(repo, "stash", "-q")
    (repo / "train.py").write_text("print('unstaged change')\n")
    (repo / "data.csv").write_text("a,b\n1,3\n")
    git(repo, "add", "data.csv")
    (repo / "scratch.txt").write_text("untracked\n")
    (repo / "run.log").write_text("ignored\n")


def test_a_full_workflow_leaves_the_user_repository_byte_for_byte_unchanged(
    repo: Path, tmp_path: Path
) -> None:
    _dirty_repo_with_stash(repo)
    before = tree_fingerprint(repo)
    artifact = tmp_path / "outside.txt"
    artifact.write_text("artifact")

    client = Client()
    experiment = mlflow.set_experiment("workflow")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"a": 1, "b": "x"})
        for step in range(10):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.set_tags({"phase": "test"})
        mlflow.log_artifact(str(artifact), "files")
        mlflow.log_dict({"k": [1, 2]}, "d.json")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("m", 2.0)
    client.set_tag(parent.info.run_id, "after", "done")
    client.delete_run(child.info.run_id)
    client.restore_run(child.info.run_id)
    client.rename_experiment(experiment.experiment_id, "workflow2")
    client.get_metric_history(parent.info.run_id, "loss")
    client.download_artifacts(parent.info.run_id, "", tmp_path / "dl")
    client.list_artifacts(parent.info.run_id)
    client.recover()
    mlflow.search_runs(search_all_experiments=True)
    with mlflow.start_run(run_id=parent.info.run_id):
        mlflow.log_metric("loss", 0.01, step=11)

    assert tree_fingerprint(repo) == before
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    snapshot = mlflow.get_run(parent.info.run_id).source.snapshot
    assert git(repo, "show", f"{snapshot}:train.py") == "print('unstaged change')\n"
    assert git(repo, "show", f"{snapshot}:data.csv") == "a,b\n1,3\n"
    assert git(repo, "show", f"{snapshot}:scratch.txt") == "untracked\n"


KILL_SCRIPT = """
import os, sys
import gittrack as mlflow
run = mlflow.start_run(run_name="doomed")
print(run.info.run_id, flush=True)
for i in range(10_000):
    mlflow.log_metric("loss", float(i), step=i)
os.write(1, b"logged\\n")
import time
time.sleep(600)
"""


def _start_logging_process(repo: Path) -> tuple[subprocess.Popen[str], str]:
    """A process that has logged 10,000 points and now sleeps with its run open."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "logged"
    return proc, run_id


def test_a_run_killed_with_sigkill_keeps_every_point_and_is_recovered_as_killed(repo: Path) -> None:
    proc, run_id = _start_logging_process(repo)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    client = Client()
    tip = git(repo, "rev-parse", "gittrack")
    # Reads never write: the orphan is still live until this process first writes.
    assert client.get_run(run_id).info.status == RunStatus.RUNNING
    assert client.search_runs([client.get_run(run_id).info.experiment_id])
    assert git(repo, "rev-parse", "gittrack") == tip
    client.create_experiment("a write")  # the first write commits the orphan first
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.KILLED
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(10_000))
    assert run.data.metrics["loss"] == 9999.0
    assert not (repo / ".git" / "gittrack" / "live" / run_id).exists()


STREAM_SCRIPT = """
import os
import gittrack as mlflow
run = mlflow.start_run()
os.write(1, (run.info.run_id + "\\n").encode())
i = 0
while True:
    mlflow.log_metric("x", float(i), step=i)
    if i % 500 == 0:
        os.write(1, f"{i}\\n".encode())
    i += 1
"""


def test_a_run_killed_mid_stream_keeps_every_returned_point(repo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STREAM_SCRIPT],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    last_reported = 0
    while last_reported < 20_000:
        last_reported = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = run_script("import gittrack; print(gittrack.Client().recover())", repo)
    assert result.returncode == 0, result.stderr
    steps = [m.step for m in Client().get_metric_history(run_id, "x")]
    assert steps == list(range(len(steps)))
    assert len(steps) > last_reported


def test_a_torn_last_line_is_dropped_and_reported_on_recovery(repo: Path) -> None:
    result = run_script(
        "import gittrack as m, os\n"
        "r = m.start_run()\n"
        "m.log_metric('a', 1.0)\nm.log_metric('a', 2.0, step=1)\n"
        "print(r.info.run_id, flush=True)\nos._exit(0)\n",
        repo,
    )
    run_id = result.stdout.strip()
    metrics = repo / ".git" / "gittrack" / "live" / run_id / "metrics.jsonl"
    with open(metrics, "ab") as fh:
        fh.write(b'{"key": "a", "value": 3.0, "st')
    client = Client()
    recovered = client.repository.recovered + client.recover()  # opening recovers already
    assert recovered and recovered[0][0] == run_id
    assert "incomplete" in (recovered[0][1] or "")
    run = Client().get_run(run_id)
    assert run.info.status == RunStatus.KILLED
    assert [m.value for m in Client().get_metric_history(run_id, "a")] == [1.0, 2.0]
    assert "incomplete" in run.data.tags["gittrack.recovery"]


def test_a_live_run_of_a_running_process_is_not_recovered(repo: Path) -> None:
    proc, run_id = _start_logging_process(repo)
    try:
        assert Client().recover() == []
        assert Client().get_run(run_id).info.status == RunStatus.RUNNING
    finally:
        proc.kill()
        proc.wait()


WORKER = """
import sys
import gittrack as mlflow
worker = int(sys.argv[1])
mlflow.set_experiment("concurrent")
for i in range(50):
    with mlflow.start_run(run_name=f"w{worker}-{i}"):
        mlflow.log_params({"worker": worker, "i": i})
        mlflow.log_metrics({"m": float(i), "w": float(worker)})
        mlflow.set_tag("t", f"{worker}-{i}")
"""


def test_four_processes_creating_fifty_runs_each_lose_nothing(repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(w)],
            cwd=repo,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    deadline = time.time() + 300
    for proc in procs:
        _, err = proc.communicate(timeout=max(1, deadline - time.time()))
        assert proc.returncode == 0, err

    files = git(repo, "ls-tree", "-r", "--name-only", "gittrack").split()
    metas = [f for f in files if f.endswith("/meta.yaml")]
    assert len(metas) == 200
    names = set()
    for path in metas:
        meta = yaml.safe_load(git(repo, "show", f"gittrack:{path}"))
        assert meta["status"] == "FINISHED"
        params = yaml.safe_load(
            git(repo, "show", f"gittrack:{path.replace('meta.yaml', 'params.yaml')}")
        )
        assert meta["run_name"] == f"w{params['worker']}-{params['i']}"
        names.add(meta["run_name"])
    assert len(names) == 200
    first_parent = git(repo, "rev-list", "--first-parent", "gittrack").split()
    run_commits = [c for c in first_parent if "Run-Id:" in git(repo, "log", "-1", "--format=%B", c)]
    assert len(run_commits) == 200
    # Linear: each first-parent commit's first parent is the next one down the chain.
    chain = git(repo, "log", "--first-parent", "--format=%H %P", "gittrack").splitlines()
    for line, below in zip(chain, chain[1:]):
        assert line.split()[1] == below.split()[0]
    assert (
        subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True).returncode == 0
    )


FORK_SCRIPT = """
import os
import gittrack as mlflow
mlflow.set_experiment("forked")
with mlflow.start_run(run_name="before-fork"):
    pass
children = []
for worker in range(3):
    pid = os.fork()
    if pid == 0:
        mlflow.fluent._state.runs.stack.clear()
        with mlflow.start_run(run_name=f"child-{worker}"):
            mlflow.log_metric("w", float(worker))
        os._exit(0)
    children.append(pid)
for pid in children:
    assert os.waitpid(pid, 0)[1] == 0
with mlflow.start_run(run_name="after-fork"):
    pass
print(sorted(r.info.run_name for r in mlflow.search_runs(output_format="list")))
"""


def test_forked_children_log_their_own_runs_without_sharing_git_pipes(repo: Path) -> None:
    result = run_script(FORK_SCRIPT, repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        ["after-fork", "before-fork", "child-0", "child-1", "child-2"]
    )


def test_a_crash_between_commit_and_cleanup_keeps_the_finished_status(repo: Path) -> None:
    result = run_script(
        "import os, gittrack as m\n"
        "from gittrack.store.staging import Staging\n"
        "Staging.recycle = lambda self, *rest: os._exit(0)  # die right after the commit\n"
        "with m.start_run() as r:\n"
        "    print(r.info.run_id, flush=True)\n"
        "    m.log_metric('a', 1.0)\n",
        repo,
    )
    run_id = result.stdout.strip()
    assert (repo / ".git" / "gittrack" / "live" / run_id).exists()
    client = Client()
    client.recover()
    assert client.get_run(run_id).info.status == RunStatus.FINISHED
    assert not (repo / ".git" / "gittrack" / "live" / run_id).exists()
    commits = git(repo, "log", "--format=%s", "gittrack").splitlines()
    assert sum(run_id in subject for subject in commits) == 1, git(
        repo, "log", "-p", "-2", "gittrack"
    )


def test_live_files_stay_valid_yaml_as_params_and_tags_are_appended(repo: Path) -> None:
    run = mlflow.start_run(tags={"a": "1"})
    live = repo / ".git" / "gittrack" / "live" / run.info.run_id
    mlflow.log_params({"p1": 1, "p2": "two words"})
    mlflow.log_param("p3", "yes")
    mlflow.set_tags({"b": "2", "c": "no"})
    assert yaml.safe_load((live / "params.yaml").read_text()) == {
        "p1": "1",
        "p2": "two words",
        "p3": "yes",
    }
    assert yaml.safe_load((live / "meta.yaml").read_text())["tags"]["c"] == "no"
    mlflow.set_tag("a", "changed")  # an existing key: the file is rewritten, not appended
    mlflow.delete_tag("b")
    tags = yaml.safe_load((live / "meta.yaml").read_text())["tags"]
    assert tags["a"] == "changed" and "b" not in tags and tags["c"] == "no"
    mlflow.end_run()
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params == {"p1": "1", "p2": "two words", "p3": "yes"}
    assert got.data.tags["a"] == "changed" and got.data.tags["c"] == "no"


def test_the_owner_sees_and_keeps_what_another_process_wrote_into_its_live_run(
    repo: Path,
) -> None:
    run = mlflow.start_run(tags={"a": "1"})
    run_id = run.info.run_id
    mlflow.log_param("mine", 1)
    mlflow.log_metric("loss", 0.5, step=1)
    result = run_script(
        "import gittrack as m\n"
        "c = m.Client()\n"
        f"c.set_tag({run_id!r}, 'a', 'theirs')\n"  # an existing key: meta.yaml is replaced
        f"c.log_param({run_id!r}, 'their_param', 2)\n"  # appended to params.yaml
        f"c.log_metric({run_id!r}, 'loss', 0.25, step=2)\n",  # appended to metrics.jsonl
        repo,
    )
    assert result.returncode == 0, result.stderr
    mlflow.set_tag("b", "mine")  # a new key: appended by the owner, to the new meta.yaml
    with pytest.raises(ConflictError, match="their_param"):
        mlflow.log_param("their_param", 3)
    mlflow.log_param("mine_too", 4)
    mlflow.log_metrics({"loss": 0.125}, step=3)
    mlflow.end_run()
    got = mlflow.get_run(run_id)
    assert got.data.tags["a"] == "theirs" and got.data.tags["b"] == "mine"
    assert got.data.params == {"mine": "1", "their_param": "2", "mine_too": "4"}
    history = Client().get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert got.data.metrics == {"loss": 0.125}


def test_a_torn_last_line_of_a_live_yaml_file_is_dropped(repo: Path) -> None:
    result = run_script(
        "import os, gittrack as m\n"
        "r = m.start_run()\nm.log_param('kept', 1)\n"
        "print(r.info.run_id, flush=True)\nos._exit(0)\n",
        repo,
    )
    run_id = result.stdout.strip()
    with open(repo / ".git" / "gittrack" / "live" / run_id / "params.yaml", "ab") as fh:
        fh.write(b'torn: "unfinish')
    Client().recover()
    run = Client().get_run(run_id)
    assert run.data.params == {"kept": "1"}
    assert run.info.status == RunStatus.KILLED


def test_finished_runs_leave_no_directories_behind(repo: Path) -> None:
    result = run_script(
        "import os, gittrack as m\n"
        "for i in range(5):\n"
        "    with m.start_run():\n"
        "        m.log_param('i', i)\n"
        "        m.log_text('x', 'a/b.txt')\n"
        "print(sorted(os.listdir('.git/gittrack/live')))\n",
        repo,
    )
    assert result.returncode == 0, result.stderr
    during = ast.literal_eval(result.stdout.strip())
    # Only private directories while the process runs: spare directories (a bounded pool,
    # plus one being emptied) and retired artifact directories awaiting deletion.
    assert all(name.startswith((".new-spare-", ".done-")) for name in during)
    assert sum(name.startswith(".new-spare-") for name in during) <= Staging.MAX_SPARES + 1
    assert os.listdir(repo / ".git" / "gittrack" / "live") == []
    assert len(mlflow.search_runs(output_format="list")) == 5


def test_small_packs_are_merged_so_the_pack_directory_stays_small(repo: Path) -> None:
    result = run_script(
        "import gittrack as m\n"
        "for i in range(100):\n"
        "    with m.start_run():\n"
        "        m.log_param('i', i)\n",
        repo,
    )
    assert result.returncode == 0, result.stderr
    packs = [p for p in os.listdir(repo / ".git" / "objects" / "pack") if p.endswith(".pack")]
    assert len(packs) < 10
    assert len(mlflow.search_runs(output_format="list")) == 100
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_metrics_beyond_what_is_remembered_are_read_back_from_the_file(repo: Path) -> None:
    from gittrack.store.staging import REMEMBERED_METRIC_BYTES

    count = REMEMBERED_METRIC_BYTES // 60 + 100  # every line is longer than 60 bytes
    with mlflow.start_run() as run:
        for step in range(count):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"nan": float("nan"), "inf": float("inf"), "int": 3}, step=0)
    history = Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(count))
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics["loss"] == 1.0 / count and got.data.metrics["int"] == 3.0
    assert (
        got.data.metrics["inf"] == float("inf")
        and got.data.metrics["nan"] != got.data.metrics["nan"]
    )


def test_a_run_remembers_its_points_and_commits_what_the_file_would_say(repo: Path) -> None:
    values = [0.1, -0.0, 1e300, float("nan"), float("-inf"), 7]
    with mlflow.start_run() as run:
        for step, value in enumerate(values):
            mlflow.log_metric("m", value, step=step, timestamp=1_000 + step)
        mlflow.log_metrics({"a": 1, "b": 2.5}, step=9, timestamp=5_000)
    run_id = run.info.run_id
    shard = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}"
    committed = git(repo, "show", f"gittrack:{shard}/metrics.jsonl")
    assert [json.loads(line) for line in committed.splitlines()] == [
        *(
            {"key": "m", "value": value, "step": step, "timestamp": 1_000 + step}
            for step, value in enumerate([0.1, -0.0, 1e300, "NaN", "-Infinity", 7.0])
        ),
        {"key": "a", "value": 1.0, "step": 9, "timestamp": 5_000},
        {"key": "b", "value": 2.5, "step": 9, "timestamp": 5_000},
    ]
    meta = yaml.safe_load(git(repo, "show", f"gittrack:{shard}/meta.yaml"))
    assert meta["metrics"]["m"] == {
        "value": 7.0,
        "step": 5,
        "timestamp": 1_005,
        "min": "-Infinity",
        "max": 1e300,
        "count": 6,
    }
