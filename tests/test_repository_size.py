"""Tracking objects are delta-compressed in the background: the repository and a push of the
branch stay near what ``git repack -adf`` makes of them, and nothing is lost on the way."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from gittrack import Client
from gittrack.store import packs
from gittrack.store.compaction import compact, compaction_lock, geometric_merge
from gittrack.store.packs import written_by_gittrack

from .conftest import SRC, git, make_repo, run_script, tree_fingerprint

WRITER = """
import sys
import gittrack as mlflow
first, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + count):
    with mlflow.start_run():
        mlflow.log_params({f"param_{k}": str((i * 7 + k) % 97) for k in range(10)})
        mlflow.log_metrics({f"metric_{k}": (i * 31 + k) % 101 / 7 for k in range(10)})
print("committed", count, flush=True)
"""


def _objects_bytes(git_dir: Path) -> int:
    return sum(p.stat().st_size for p in (git_dir / "objects").rglob("*") if p.is_file())


def _repack_floor(repo: Path, scratch: Path) -> int:
    """Bytes of ``.git/objects`` after ``git repack -adf`` (on a copy)."""
    shutil.copytree(repo / ".git", scratch)
    git(scratch, "repack", "-adfq")
    return _objects_bytes(scratch)


def _pushed_bytes(repo: Path, remote: Path) -> int:
    git(remote.parent, "init", "-q", "--bare", str(remote))
    git(repo, "push", "-q", str(remote), "gittrack")
    return _objects_bytes(remote)


def _wait_for_compaction(repo: Path, timeout: float = 300.0) -> None:
    """Wait until the detached compaction a writer started (if any) has finished: it holds
    this lock from before it starts until it exits."""
    lock = repo / ".git" / "gittrack" / "compaction.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, "compaction did not finish"
                time.sleep(0.05)
    finally:
        os.close(fd)


def _fsck(repo: Path) -> None:
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _params_logged(count: int) -> list[int]:
    runs = Client().search_runs(["0"], max_results=count + 100)
    return sorted(int(run.data.params["param_0"]) for run in runs)


def _expected_params(first: int, count: int) -> list[int]:
    return sorted((i * 7) % 97 for i in range(first, first + count))


def test_two_thousand_runs_take_at_most_twice_what_git_repack_adf_makes_of_them(
    repo: Path, tmp_path: Path
) -> None:
    before = tree_fingerprint(repo)

    proc = subprocess.run(
        [sys.executable, "-c", WRITER, "0", "2000"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout == "committed 2000\n", proc.stderr
    _wait_for_compaction(repo)

    stored = _objects_bytes(repo / ".git")
    floor = _repack_floor(repo, tmp_path / "floor.git")
    pushed = _pushed_bytes(repo, tmp_path / "remote.git")
    assert stored <= 2 * floor, (stored, floor)
    assert pushed <= 2 * floor, (pushed, floor)
    _fsck(repo)
    assert _params_logged(2000) == _expected_params(0, 2000)
    assert tree_fingerprint(repo) == before


def test_writers_running_during_compactions_lose_no_run(repo: Path) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(first), "500"],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (0, 500)
    ]
    compactions_during_writes = 0
    while any(w.poll() is None for w in writers):
        with compaction_lock(repo / ".git") as held:
            if held and compact(repo / ".git", force=True).written:
                compactions_during_writes += any(w.poll() is None for w in writers)
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0 and out == "committed 500\n", err

    assert compactions_during_writes >= 2
    with compaction_lock(repo / ".git"):
        compact(repo / ".git", force=True)
    _fsck(repo)
    assert _params_logged(1000) == _expected_params(0, 1000)


KILLABLE_COMPACTION = """
import sys
from gittrack.store.compaction import compact
print("started", flush=True)
compact(sys.argv[1], force=True)
print("done", flush=True)
"""


def test_a_compaction_killed_at_any_point_loses_nothing_and_the_next_one_completes(
    repo: Path,
) -> None:
    proc = run_script(WRITER.replace("sys.argv[1]", "'0'").replace("sys.argv[2]", "'300'"), repo)
    assert proc.returncode == 0, proc.stderr
    _wait_for_compaction(repo)
    objects = git(repo, "cat-file", "--batch-all-objects", "--batch-check")

    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4):
        with compaction_lock(repo / ".git"):  # what the detached process holds
            killed = subprocess.Popen(
                [sys.executable, "-c", KILLABLE_COMPACTION, str(repo / ".git")],
                cwd=repo,
                env={**os.environ, "PYTHONPATH": str(SRC)},
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            assert killed.stdout is not None and killed.stdout.readline() == b"started\n"
            time.sleep(delay)
            os.killpg(killed.pid, signal.SIGKILL)  # the process and its git pack-objects
            killed.wait()
        assert git(repo, "cat-file", "--batch-all-objects", "--batch-check") == objects
        _fsck(repo)

    with compaction_lock(repo / ".git"):
        compact(repo / ".git", force=True)
    packs = list((repo / ".git" / "objects" / "pack").glob("pack-*.pack"))
    assert not [p for p in packs if written_by_gittrack(str(p))]  # every raw pack compacted
    assert git(repo, "cat-file", "--batch-all-objects", "--batch-check") == objects
    _fsck(repo)
    assert _params_logged(300) == _expected_params(0, 300)


def test_compaction_takes_only_the_packs_gittrack_wrote(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "project")
    for i in range(20):  # the user's own history, packed by git
        (repo / "data.txt").write_text("line\n" * 100 + f"{i}\n")
        git(repo, "add", "data.txt")
        git(repo, "commit", "-q", "-m", f"data {i}")
    git(repo, "gc", "-q")
    (repo / "kept.txt").write_text("kept\n")
    git(repo, "add", "kept.txt")
    git(repo, "commit", "-q", "-m", "kept")
    git(repo, "repack", "-dq")  # a second pack of git's, which the user keeps
    pack_dir = repo / ".git" / "objects" / "pack"
    users = sorted(p.name for p in pack_dir.glob("pack-*"))
    kept = next(p for p in pack_dir.glob("pack-*.pack") if p.stat().st_size < 2000)
    kept.with_suffix(".keep").write_text("mine\n")
    users.append(kept.with_suffix(".keep").name)
    assert not any(written_by_gittrack(str(p)) for p in pack_dir.glob("pack-*.pack"))

    proc = run_script(WRITER.replace("sys.argv[1]", "'0'").replace("sys.argv[2]", "'100'"), repo)
    assert proc.returncode == 0, proc.stderr
    _wait_for_compaction(repo)
    raw = [p for p in pack_dir.glob("pack-*.pack") if written_by_gittrack(str(p))]
    assert len(raw) >= 2
    raw[0].with_suffix(".keep").write_text("kept by the user\n")  # one of ours, kept
    with compaction_lock(repo / ".git"):
        report = compact(repo / ".git", force=True)

    assert sorted(report.taken) == sorted(map(str, raw[1:]))
    assert raw[0].exists()
    assert set(users) <= {p.name for p in pack_dir.glob("pack-*")}
    _fsck(repo)
    assert len(Client(str(repo)).search_runs(["0"], max_results=500)) == 100


def test_compacted_packs_are_merged_geometrically() -> None:
    assert geometric_merge({"a": 1, "b": 1, "c": 10}) == ["a", "b"]
    assert geometric_merge({"a": 1, "b": 3, "c": 10}) == []
    assert geometric_merge({"a": 5, "b": 6, "c": 7}) == ["a", "b", "c"]
    assert geometric_merge({"a": 5}) == []


def _commit_pack(pack_dir: Path, seed: int) -> tuple[str, dict[str, bytes]]:
    blobs = [f"blob {seed}-{j}\n".encode() for j in range(3)]
    objects = {hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest(): ("blob", b) for b in blobs}
    entries = packs.pack_entries(objects)
    return packs.write_pack(pack_dir, entries), entries


def test_a_small_pack_merge_does_not_write_again_the_objects_of_a_pack_taken_meanwhile(
    repo: Path,
) -> None:
    pack_dir = repo / ".git" / "objects" / "pack"
    small = packs.SmallPacks(pack_dir, limit=3, levels=1)
    first, first_entries = _commit_pack(pack_dir, 0)
    small.add(first, first_entries)
    packs.remove_pack(first)  # taken by a compaction: its objects are in another pack now
    for seed in (1, 2):
        small.add(*_commit_pack(pack_dir, seed))  # the third add merges

    left = list(pack_dir.glob("pack-*.idx"))
    assert len(left) == 1
    ids = set(packs.index_object_ids(left[0].read_bytes()) or ())
    assert len(ids) == 6 and not ids & set(first_entries)
