"""Small packs do not pile up: what a writer that died left is merged by the next one."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from gittrack import Client
from gittrack.store import packs
from gittrack.store.packs import merge_small_packs

from .conftest import SRC, git

KILLED_WRITER = """
import os, signal, sys
import gittrack as mlflow
for i in range(int(sys.argv[1])):
    with mlflow.start_run():
        mlflow.log_param("i", i)
        mlflow.log_metric("m", float(i))
print("committed", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _packs(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / ".git" / "objects" / "pack").glob("pack-*.pack"))


def _fsck(repo: Path) -> None:
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_small_packs_left_by_killed_writers_are_merged_by_the_next_writer(repo: Path) -> None:
    writers, runs_each = 6, 8
    for _ in range(writers):
        proc = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, str(runs_each)],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL and proc.stdout == "committed\n", proc.stderr

    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER.replace("os.kill", "print"), "2"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr

    # Each writer merged what the ones before it left: at most the last killed writer's
    # packs, the merged one and the last writer's own two are left of 50 commits.
    assert len(_packs(repo)) <= runs_each + 4
    _fsck(repo)
    runs = Client().search_runs(["0"], max_results=1000)
    assert len(runs) == writers * runs_each + 2
    assert sorted(int(r.data.params["i"]) for r in runs) == sorted(
        [*range(runs_each)] * writers + [0, 1]
    )


def _write_small_packs(pack_dir: Path, count: int) -> None:
    """Packs as a commit writes them (full objects), of distinct blobs."""
    for i in range(count):
        blobs = [f"blob {i}-{j}\n".encode() for j in range(3)]
        objects = {hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest(): ("blob", b) for b in blobs}
        packs.write_pack(pack_dir, packs.pack_entries(objects))


def test_merging_leaves_incomplete_kept_and_delta_packs_alone_and_loses_no_object(
    repo: Path,
) -> None:
    pack_dir = repo / ".git" / "objects" / "pack"
    for i in range(30):  # similar blobs, so that git stores deltas
        (repo / "data.txt").write_text("line\n" * 200 + f"{i}\n")
        git(repo, "add", "data.txt")
        git(repo, "commit", "-q", "-m", f"data {i}")
    git(repo, "repack", "-dq")
    deltas = set(_packs(repo))
    _write_small_packs(pack_dir, 4)
    small = [p for p in _packs(repo) if p not in deltas]
    assert len(small) >= 4
    kept, incomplete = small[0], small[1]
    (pack_dir / kept).with_suffix(".keep").write_text("")
    shutil.copyfile(pack_dir / incomplete, pack_dir / "pack-0123456789abcdef.pack")
    objects_before = git(repo, "cat-file", "--batch-all-objects", "--batch-check")

    merged = merge_small_packs(pack_dir)

    assert merged is not None
    left = set(_packs(repo))
    assert deltas | {kept, "pack-0123456789abcdef.pack", Path(merged).name} == left
    assert git(repo, "cat-file", "--batch-all-objects", "--batch-check") == objects_before
    (pack_dir / "pack-0123456789abcdef.pack").unlink()
    _fsck(repo)
    assert merge_small_packs(pack_dir) is None  # one small pack left: nothing to merge


def test_a_damaged_small_pack_is_left_out_of_the_merge_and_kept(repo: Path) -> None:
    pack_dir = repo / ".git" / "objects" / "pack"
    _write_small_packs(pack_dir, 3)
    damaged = pack_dir / _packs(repo)[0]
    data = bytearray(damaged.read_bytes())
    data[20] ^= 0xFF
    damaged.chmod(0o644)
    damaged.write_bytes(bytes(data))

    merged = merge_small_packs(pack_dir)

    assert merged is not None
    assert set(_packs(repo)) == {damaged.name, Path(merged).name}
    assert damaged.read_bytes() == bytes(data)
