"""The run index cache: incremental updates, and a rebuild (never a wrong answer) otherwise."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import gittrack
from gittrack import Client
from gittrack.errors import CorruptDataError, CorruptDataWarning
from gittrack.query import cache_file
from gittrack.query.index import run_index
from gittrack.query.search import search_runs
from gittrack.store import layout
from gittrack.store.branch import Blob
from gittrack.tracking.repository import forget_repositories, open_repository
from tests.conftest import SRC, git, make_repo, run_script


def add_runs(path: Path, count: int, prefix: str = "run", start: int = 1_000) -> list[str]:
    client = Client(str(path))
    ids = []
    for i in range(count):
        run = client.create_run("0", start_time=start + i, run_name=f"{prefix}-{i}")
        client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1))
        client.log_param(run.info.run_id, "i", str(i))
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids


def search(path: Path) -> list[str]:
    """Names of the active runs, newest first, through the index."""
    found = search_runs(open_repository(str(path)), output_format="list")
    return [run.info.run_name for run in found]


def refresh(path: Path):
    return run_index(open_repository(str(path))).last_refresh


def fresh_process_view(path: Path) -> None:
    """Drop in-memory handles, as a new process would start."""
    forget_repositories()


def cache_dir(path: Path) -> Path:
    return path / ".git" / "gittrack" / "cache"


def manifest(path: Path) -> Path:
    (found,) = cache_dir(path).glob("runs-*.json")
    return found


# ------------------------------------------------------------------ modes


def test_the_first_search_builds_the_index_and_saves_it(repo: Path) -> None:
    add_runs(repo, 3)
    assert search(repo) == ["run-2", "run-1", "run-0"]
    assert refresh(repo).mode == "full"
    assert refresh(repo).rows_read == 3
    assert manifest(repo).exists()


def test_a_second_search_in_the_same_process_reads_nothing(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    search(repo)
    assert refresh(repo).mode == "memory"


def test_a_new_process_loads_the_saved_index(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    fresh_process_view(repo)
    assert search(repo) == ["run-1", "run-0"]
    assert refresh(repo).mode == "disk"


def test_new_runs_are_read_incrementally(repo: Path) -> None:
    add_runs(repo, 3)
    search(repo)
    add_runs(repo, 2, prefix="new", start=5_000)
    assert search(repo)[:2] == ["new-1", "new-0"]
    assert refresh(repo).mode == "incremental"
    assert refresh(repo).rows_read == 2
    fresh_process_view(repo)
    add_runs(repo, 1, prefix="newer", start=9_000)
    assert search(repo)[0] == "newer-0"
    assert (refresh(repo).mode, refresh(repo).rows_read) == ("incremental", 1)


def test_deleting_tagging_and_restoring_a_committed_run_rereads_only_that_run(repo: Path) -> None:
    ids = add_runs(repo, 3)
    search(repo)
    client = Client()
    client.delete_run(ids[0])
    assert search(repo) == ["run-2", "run-1"]
    assert (refresh(repo).mode, refresh(repo).rows_read) == ("incremental", 1)
    client.set_tag(ids[1], "team", "vision")
    frame = gittrack.search_runs(filter_string="tags.team = 'vision'")
    assert frame["run_id"].tolist() == [ids[1]]
    client.restore_run(ids[0])
    assert search(repo) == ["run-2", "run-1", "run-0"]
    assert refresh(repo).rows_read == 1


def test_a_tip_without_run_changes_reads_no_run(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    Client().create_experiment("another")  # moves the tip, leaves .tracking/runs alone
    search(repo)
    assert (refresh(repo).mode, refresh(repo).rows_read) == ("incremental", 0)


# ------------------------------------------------------------------ robustness


def test_a_deleted_cache_is_rebuilt(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    fresh_process_view(repo)
    for path in cache_dir(repo).iterdir():
        path.unlink()
    assert search(repo) == ["run-1", "run-0"]
    assert refresh(repo).mode == "full"


@pytest.mark.parametrize(
    "damage",
    [
        "truncate-data",
        "flip-a-byte",
        "garbage-manifest",
        "missing-data",
        "other-version",
        "other-format",
        "bad-file-name",
    ],
)
def test_a_damaged_cache_is_rebuilt_not_trusted(repo: Path, damage: str) -> None:
    add_runs(repo, 3)
    expected = search(repo)
    fresh_process_view(repo)
    doc = json.loads(manifest(repo).read_text())
    data = cache_dir(repo) / doc["file"]
    if damage == "truncate-data":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "flip-a-byte":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "garbage-manifest":
        manifest(repo).write_text("{not json")
    elif damage == "missing-data":
        data.unlink()
    elif damage == "other-version":
        manifest(repo).write_text(json.dumps({**doc, "gittrack": "0.0.1"}))
    elif damage == "other-format":
        manifest(repo).write_text(json.dumps({**doc, "cache_format": 999}))
    elif damage == "bad-file-name":
        manifest(repo).write_text(json.dumps({**doc, "file": "../../config"}))
    assert search(repo) == expected
    assert refresh(repo).mode == "full"


def test_a_cache_claiming_the_current_tip_with_other_rows_is_caught(repo: Path) -> None:
    """Rows edited behind the manifest's back fail the digest: rebuilt, never served."""
    add_runs(repo, 2)
    search(repo)
    fresh_process_view(repo)
    doc = json.loads(manifest(repo).read_text())
    (cache_dir(repo) / doc["file"]).write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    assert search(repo) == ["run-1", "run-0"]
    assert refresh(repo).mode == "full"


def test_a_cached_tree_that_is_gone_from_the_object_store_means_a_rebuild(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    fresh_process_view(repo)
    doc = json.loads(manifest(repo).read_text())
    missing = "0123456789abcdef0123456789abcdef01234567"
    manifest(repo).write_text(json.dumps({**doc, "tip": missing, "runs_tree": missing}))
    assert search(repo) == ["run-1", "run-0"]
    assert refresh(repo).mode == "full"
    assert "cannot be compared" in (refresh(repo).reason or "")


def test_a_rewritten_branch_gives_the_runs_of_the_new_tip(repo: Path) -> None:
    add_runs(repo, 2)
    old_tip = git(repo, "rev-parse", "gittrack").strip()
    add_runs(repo, 2, prefix="dropped", start=3_000)
    search(repo)
    git(repo, "update-ref", "refs/heads/gittrack", old_tip)  # e.g. a force-pushed rewrite
    add_runs(repo, 1, prefix="other", start=6_000)
    fresh_process_view(repo)
    assert search(repo) == ["other-0", "run-1", "run-0"]
    assert refresh(repo).mode == "incremental"
    assert refresh(repo).rows_removed == 2


def test_the_index_cache_holds_arrow_never_a_pickle(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    saved = json.loads(manifest(repo).read_text())
    assert saved["storage"] == "arrow"
    data = (cache_dir(repo) / saved["file"]).read_bytes()
    assert data.startswith(b"ARROW1")  # the Arrow IPC file magic


def test_a_cache_left_as_a_pickle_by_an_older_version_is_rebuilt_not_unpickled(
    repo: Path,
) -> None:
    add_runs(repo, 1)
    search(repo)
    path = manifest(repo)
    saved = json.loads(path.read_text())
    # A crafted pickle that would leave a mark if anything loaded it.
    marker = repo / "unpickled"
    payload = pickle.dumps(_Mark(str(marker)))
    (cache_dir(repo) / saved["file"]).write_bytes(payload)
    saved.update(storage="pickle", digest=f"{zlib.crc32(payload):08x}")
    path.write_text(json.dumps(saved))
    fresh_process_view(repo)
    assert search(repo) == ["run-0"]
    assert refresh(repo).mode == "full"
    assert not marker.exists()


class _Mark:
    """Unpickling this object creates a file: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (Path(self.path),))


def test_an_unwritable_cache_directory_still_answers(repo: Path) -> None:
    add_runs(repo, 1)
    cache = cache_dir(repo)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the directory should be")
    assert search(repo) == ["run-0"]


def test_concurrent_searchers_leave_one_complete_index(repo: Path) -> None:
    add_runs(repo, 5)
    code = (
        "import gittrack\n"
        "for _ in range(3):\n"
        "    f = gittrack.search_runs(search_all_experiments=True)\n"
        "    assert len(f) == 5, len(f)\n"
    )
    env = {"PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=repo, env={**_env(), **env})
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert not list(cache_dir(repo).glob(".tmp-*"))
    fresh_process_view(repo)
    assert len(search(repo)) == 5
    assert refresh(repo).mode == "disk"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITTRACK_", "MLFLOW_"))}


def test_searching_never_writes_the_tracking_branch(repo: Path) -> None:
    add_runs(repo, 2)
    search(repo)
    add_runs(repo, 1, prefix="more", start=5_000)
    refs = git(repo, "for-each-ref")
    search(repo)
    assert git(repo, "for-each-ref") == refs


def test_a_corrupt_run_on_the_branch_is_skipped_with_a_warning_naming_its_path(
    repo: Path,
) -> None:
    run_id, _other = add_runs(repo, 2)
    handle = open_repository(str(repo))
    where = f"{layout.run_dir(run_id)}/meta.yaml"
    handle.branch.commit(lambda _snap: {where: Blob(b"format: 1\nrun_id: [unclosed\n")}, "break")
    with pytest.warns(CorruptDataWarning, match=where):
        assert search(repo) == ["run-1"]
    with pytest.raises(CorruptDataError, match=where):
        Client(str(repo)).get_run(run_id)

    fresh_process_view(repo)  # read from the saved index: still reported
    with pytest.warns(CorruptDataWarning, match=where):
        assert search(repo) == ["run-1"]
    assert refresh(repo).mode == "disk"


# ------------------------------------------------------------------ two clones


def test_runs_pulled_from_a_second_clone_are_read_without_a_full_rebuild(
    tmp_path: Path, monkeypatch
) -> None:
    first = make_repo(tmp_path / "first")
    monkeypatch.chdir(first)
    add_runs(first, 3)
    assert len(search(first)) == 3
    second = tmp_path / "second"
    git(tmp_path, "clone", "-q", str(first), str(second))
    git(second, "config", "user.name", "Other User")
    git(second, "config", "user.email", "other@example.com")
    git(second, "fetch", "-q", "origin", "gittrack:gittrack")
    add_runs(second, 2, prefix="from-second", start=9_000)

    git(first, "fetch", "-q", str(second), "gittrack:refs/remotes/second/gittrack")
    git(first, "update-ref", "refs/heads/gittrack", "refs/remotes/second/gittrack")
    fresh_process_view(first)
    names = search(first)
    assert names[:2] == ["from-second-1", "from-second-0"]
    assert len(names) == 5
    assert refresh(first).mode == "incremental"
    assert refresh(first).rows_read == 2


# ------------------------------------------------------------------ saved in the background


def _slow_encoding(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Large indexes (here: any) saved in the background, their encoding held up, so the
    write is still under way when the caller goes on."""
    real = cache_file._encode

    def slow(frame):  # noqa: ANN001, ANN202
        time.sleep(seconds)
        return real(frame)

    monkeypatch.setattr(cache_file, "BACKGROUND_MIN", 1)
    monkeypatch.setattr(cache_file, "_encode", slow)


def test_a_large_index_saved_in_the_background_is_loaded_by_the_next_view(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_runs(repo, 3)
    _slow_encoding(monkeypatch, 0.5)
    assert search(repo) == ["run-2", "run-1", "run-0"]
    assert refresh(repo).mode == "full"
    fresh_process_view(repo)
    assert search(repo) == ["run-2", "run-1", "run-0"]
    assert refresh(repo).mode == "disk"  # the load waited for the write


def test_the_log_fast_path_waits_for_an_index_still_being_written(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_runs(repo, 2)
    _slow_encoding(monkeypatch, 0.5)
    search(repo)
    repository = open_repository(str(repo))
    saved = cache_file.IndexCache(repo / ".git" / "gittrack" / "cache", repository.branch.ref)
    columns = saved.read_columns(repository.branch.tip(), lambda name: name == "run_name")
    assert columns is not None
    assert sorted(columns.columns["run_name"]) == ["run-0", "run-1"]


def test_a_column_added_to_the_frame_while_its_index_is_written_is_not_saved(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_runs(repo, 2)
    _slow_encoding(monkeypatch, 0.5)
    frame = run_index(open_repository(str(repo))).frame()
    frame["scratch"] = 1
    fresh_process_view(repo)
    reloaded = run_index(open_repository(str(repo))).frame()
    assert refresh(repo).mode == "disk"
    assert "scratch" not in reloaded.columns


def test_a_process_exiting_right_after_a_large_build_still_saves_its_index(repo: Path) -> None:
    add_runs(repo, 2)
    code = (
        "import time\n"
        "import gittrack\n"
        "from gittrack.query import cache_file\n"
        "real = cache_file._encode\n"
        "def slow(frame):\n"
        "    time.sleep(1.0)\n"
        "    return real(frame)\n"
        "cache_file._encode = slow\n"
        "cache_file.BACKGROUND_MIN = 1\n"
        "assert len(gittrack.search_runs(search_all_experiments=True)) == 2\n"
    )
    done = run_script(code, repo)
    assert done.returncode == 0, done.stderr
    assert manifest(repo).exists()
    fresh_process_view(repo)
    assert search(repo) == ["run-1", "run-0"]
    assert refresh(repo).mode == "disk"
