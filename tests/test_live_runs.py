"""Live runs shared between processes, and orphans left by processes that died."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

from gittrack import Client
from gittrack.entities import RunStatus

from .conftest import SRC, run_script

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
        recovered = client.repository.recovered  # recovery at client start must not fail

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
