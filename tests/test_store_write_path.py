"""The low-level write path, against real git: stored zlib streams, pack indexes, spare
files, renameat2 helpers, in-process ref updates and reads of missing objects."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack.errors import ConflictError, CorruptDataError
from gittrack.store import files, packs
from gittrack.store.background import Background
from gittrack.store.branch import Blob, TrackingBranch
from gittrack.store.files import SpareFiles, replace_file
from gittrack.store.git import GitRepo
from gittrack.store.refs import RefMovedError
from gittrack.store.trees import TreeEntry

from .conftest import git, make_repo
from .hostile_branch import commit_on_branch


@pytest.mark.parametrize("size", [0, 1, 100, 0xFFFF, 0x10000, 200_000])
def test_a_stored_zlib_stream_round_trips_through_zlib(size: int) -> None:
    data = os.urandom(size)
    stream = packs._stored_zlib(data)
    assert zlib.decompress(stream) == data
    # stored blocks: 5 bytes of header per 65535-byte block, 2 of zlib header, 4 of adler32
    blocks = max(1, -(-size // 0xFFFF))
    assert len(stream) == size + 5 * blocks + 6


def test_deflate_stores_trees_of_any_size_and_compresses_large_blobs() -> None:
    big = b"0123456789abcdef" * 20_000
    tree = packs.deflate("tree", big)
    assert tree == packs._stored_zlib(big)
    assert zlib.decompress(tree) == big
    assert packs.deflate("blob", big[:4095]) == packs._stored_zlib(big[:4095])
    blob = packs.deflate("blob", big[:4096])
    assert zlib.decompress(blob) == big[:4096]
    assert len(blob) < 4096
    assert len(packs.deflate("blob", big)) < len(big) // 10


def _object(kind: str, data: bytes) -> tuple[str, tuple[str, bytes]]:
    sha = hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()
    return sha, (kind, data)


def _varied_objects() -> dict[str, tuple[str, bytes]]:
    """300 blobs of 7 B to 5 KiB, an empty and a random 100 KB blob, an 85 KB tree, a commit."""
    blobs = [f"blob {i}\n".encode() * (1 + i * 37 % 700) for i in range(300)]
    objects = dict(_object("blob", data) for data in [*blobs, b"", os.urandom(100_000)])
    entry = bytes.fromhex(next(iter(objects)))
    # a tree is never compressed: this one takes two stored deflate blocks
    tree, item = _object("tree", b"".join(b"100644 f%05d\0" % i + entry for i in range(2500)))
    objects[tree] = item
    who = "A <a@b> 1 +0000"
    commit, item = _object("commit", f"tree {tree}\nauthor {who}\ncommitter {who}\n\nc\n".encode())
    objects[commit] = item
    return objects


def test_a_built_pack_is_verified_and_read_by_git_and_its_index_matches_index_pack(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "fresh", initial_commit=False)
    objects = _varied_objects()
    pack, index, name = packs.build_pack(packs.pack_entries(objects))
    base = repo / ".git" / "objects" / "pack" / f"pack-{name}"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".pack").write_bytes(pack)
    base.with_suffix(".idx").write_bytes(index)
    verified = git(repo, "verify-pack", "-v", str(base.with_suffix(".idx")))
    assert f"non delta: {len(objects)} objects" in verified
    # every object, byte for byte, through one cat-file --batch (the output is binary)
    request = "".join(f"{sha}\n" for sha in objects).encode()
    out = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, input=request, capture_output=True, check=True
    ).stdout
    for sha, (kind, data) in objects.items():
        header, _, out = out.partition(b"\n")
        assert header.decode() == f"{sha} {kind} {len(data)}"
        assert out[: len(data) + 1] == data + b"\n"
        out = out[len(data) + 1 :]
    assert out == b""
    commit, tree = list(objects)[-1], list(objects)[-2]
    assert git(repo, "cat-file", "-p", commit).encode() == objects[commit][1]
    assert len(objects[tree][1]) > 0x10000
    assert len(git(repo, "cat-file", "-p", tree).splitlines()) == 2500
    git(repo, "fsck", "--strict")
    rebuilt = tmp_path / "rebuilt.idx"
    git(repo, "index-pack", "-o", str(rebuilt), str(base.with_suffix(".pack")))
    assert rebuilt.read_bytes() == index


def _spares_in(pool: Path) -> dict[str, int]:
    """Each spare file of a pool directory (``<batch>/<n>``) with its inode."""
    return {str(p): p.stat().st_ino for p in pool.glob("*/*")}


@pytest.fixture
def chores():
    background = Background("test-chores")
    yield background
    background.drain()


@pytest.fixture
def spares(tmp_path: Path, chores: Background):
    """A pool with its first batch of spares ready."""
    pool = SpareFiles(tmp_path / "spare", chores, batch=4)
    pool.take()
    chores.drain()
    yield pool
    pool.discard()


def test_the_first_take_schedules_a_fill_and_later_takes_hand_out_empty_files(
    tmp_path: Path, chores: Background
) -> None:
    pool = SpareFiles(tmp_path / "spare", chores, batch=4)
    assert pool.take() is None
    chores.drain()
    taken = pool.take()
    assert taken is not None
    spare, fd = taken
    assert pool.directory in Path(spare).parents
    assert Path(spare).is_file() and Path(spare).stat().st_size == 0
    # handed out open for writing, though read-only (packs and indexes are)
    assert os.write(fd, b"x") == 1 and Path(spare).stat().st_mode & 0o777 == 0o444
    os.close(fd)
    pool.discard()


def test_replace_file_renames_a_spare_over_the_target(spares: SpareFiles, tmp_path: Path) -> None:
    before = _spares_in(spares.directory)
    target = tmp_path / "out" / "object"  # its directory is created on the way
    replace_file(target, b"payload\n" * 100, 0o444, spares)
    assert target.read_bytes() == b"payload\n" * 100
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    (used,) = set(before) - set(_spares_in(spares.directory))  # exactly one spare is gone
    assert not os.path.exists(used) and before[used] == target.stat().st_ino
    assert os.listdir(target.parent) == ["object"]


def test_replace_file_still_writes_when_the_spare_was_deleted_behind_the_pool(
    spares: SpareFiles, tmp_path: Path
) -> None:
    for spare in _spares_in(spares.directory):
        os.unlink(spare)
    target = tmp_path / "object"
    replace_file(target, b"fallback", 0o444, spares)
    assert target.read_bytes() == b"fallback"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tmp_")] == []


def test_sweep_removes_batches_of_exited_processes_and_keeps_this_one(
    tmp_path: Path, chores: Background
) -> None:
    pool = SpareFiles(tmp_path / "spare", chores)
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    dead = pool.directory / f"{socket.gethostname()}-{child.pid}-1"
    alive = pool.directory / f"{socket.gethostname()}-{os.getpid()}-7"
    for batch in (dead, alive):
        batch.mkdir(parents=True)
        (batch / "0").touch()
    pool.sweep()
    assert not dead.exists()
    assert (alive / "0").is_file()


def test_discard_removes_this_process_batch_directories(spares: SpareFiles) -> None:
    prefix = f"{socket.gethostname()}-{os.getpid()}-"
    assert [p for p in spares.directory.iterdir() if p.name.startswith(prefix)]
    spares.discard()
    assert [p for p in spares.directory.iterdir() if p.name.startswith(prefix)] == []


def test_rename_noreplace_refuses_an_existing_target_and_keeps_both(tmp_path: Path) -> None:
    src, dst, fresh = tmp_path / "src", tmp_path / "dst", tmp_path / "fresh"
    src.write_text("source")
    dst.write_text("target")
    if not files.rename_noreplace(str(src), str(fresh)):
        pytest.skip("renameat2(RENAME_NOREPLACE) is not available here")
    assert fresh.read_text() == "source" and not src.exists()
    with pytest.raises(FileExistsError):
        files.rename_noreplace(str(fresh), str(dst))
    assert (fresh.read_text(), dst.read_text()) == ("source", "target")


def test_exchange_swaps_the_contents_of_two_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("one")
    second.write_text("two")
    if not files.exchange(str(first), str(second)):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert (first.read_text(), second.read_text()) == ("two", "one")


@pytest.fixture(params=["with-spares", "without-spares"])
def refs_repo(request: pytest.FixtureRequest, repo: Path):
    """(GitRepo, first commit, second commit) with branch ``feature`` at the first commit."""
    gr = GitRepo(repo)
    if request.param == "with-spares":
        assert gr.spare_files.take() is None  # schedules the first batch
        gr.chores.drain()
    else:  # a pool that never has a spare ready: every lock is created in place
        gr.spare_files = SpareFiles(gr.gittrack_dir / "spare", gr.chores, batch=0)
    first = git(repo, "rev-parse", "HEAD").strip()
    second = git(repo, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "second").strip()
    git(repo, "branch", "feature", first)
    yield gr, first, second, request.param == "with-spares"
    git(repo, "fsck", "--strict")
    gr.spare_files.discard()
    gr.close()


def _assert_feature_at(gr: GitRepo, sha: str) -> None:
    """git resolves the branch to ``sha`` and no lock is left behind."""
    assert git(gr.path, "rev-parse", "refs/heads/feature").strip() == sha
    assert not (gr.common_dir / "refs/heads/feature.lock").exists()


def test_a_ref_moves_from_its_expected_value_with_a_reflog_line_and_no_lock(refs_repo) -> None:
    gr, first, second, with_spares = refs_repo
    ref = gr.common_dir / "refs/heads/feature"
    log = gr.common_dir / "logs/refs/heads/feature"
    log_lines = log.read_text().splitlines()
    spares_before = set(_spares_in(gr.spare_files.directory).values())
    gr.update_ref("refs/heads/feature", second, first, "gittrack: move\nsecond line")
    _assert_feature_at(gr, second)
    assert ref.read_text() == f"{second}\n"
    lines = log.read_text().splitlines()
    assert lines[:-1] == log_lines
    assert lines[-1].startswith(f"{first} {second} Test User <test@example.com> ")
    assert lines[-1].endswith("\tgittrack: move")
    assert git(gr.path, "reflog", "show", "--format=%H", "refs/heads/feature").split()[0] == second
    # the lock (and so the ref now) is a spare exactly when spares are ready
    assert (ref.stat().st_ino in spares_before) is with_spares
    assert ref.stat().st_mode & 0o777 == 0o644  # a ref's mode, though spares are read-only
    gr.chores.drain()
    assert len(spares_before - set(_spares_in(gr.spare_files.directory).values())) == with_spares


def test_a_reader_holding_the_replaced_ref_file_reads_its_value_never_another_refs(
    refs_repo,
) -> None:
    gr, first, second, _ = refs_repo
    ref = gr.common_dir / "refs/heads/feature"
    third = git(gr.path, "commit-tree", f"{second}^{{tree}}", "-p", second, "-m", "3").strip()
    git(gr.path, "branch", "other", second)
    with open(ref, "rb") as reader:  # opened just before the update, read after it
        replaced = os.fstat(reader.fileno()).st_ino
        gr.update_ref("refs/heads/feature", second, first)
        for _ in range(4):  # later updates of any ref take new locks
            gr.update_ref("refs/heads/other", third, second)
            gr.update_ref("refs/heads/other", second, third)
        assert reader.read() == f"{first}\n".encode()
    assert ref.stat().st_ino != replaced
    _assert_feature_at(gr, second)
    gr.chores.drain()
    # the replaced file went away; no trash is left behind
    trash = list(gr.spare_files.directory.glob("*trash/*"))
    assert trash == []


def test_a_ref_update_from_a_wrong_value_conflicts_and_changes_nothing(refs_repo) -> None:
    gr, first, second, _ = refs_repo
    ref = gr.common_dir / "refs/heads/feature"
    inode = ref.stat().st_ino
    with pytest.raises(ConflictError, match="refs/heads/feature"):
        gr.update_ref("refs/heads/feature", first, second)
    with pytest.raises(ConflictError):
        gr.update_ref("refs/heads/feature", second, None)
    assert ref.read_text() == f"{first}\n" and ref.stat().st_ino == inode
    _assert_feature_at(gr, first)


def test_a_ref_locked_by_another_writer_conflicts_and_the_lock_is_left_alone(refs_repo) -> None:
    gr, first, second, _ = refs_repo
    ref = gr.common_dir / "refs/heads/feature"
    lock = ref.with_name("feature.lock")
    lock.write_text("held by someone else\n")
    inode = lock.stat().st_ino
    with pytest.raises(ConflictError, match="feature.lock"):
        gr.update_ref("refs/heads/feature", second, first)
    assert lock.read_text() == "held by someone else\n" and lock.stat().st_ino == inode
    assert ref.read_text() == f"{first}\n"
    lock.unlink()
    gr.update_ref("refs/heads/feature", second, first)
    _assert_feature_at(gr, second)


def test_a_ref_only_in_packed_refs_is_updated_and_git_sees_the_new_value(refs_repo) -> None:
    gr, first, second, _ = refs_repo
    git(gr.path, "pack-refs", "--all")
    ref = gr.common_dir / "refs/heads/feature"
    assert not ref.exists()
    assert f"{first} refs/heads/feature" in (gr.common_dir / "packed-refs").read_text()
    with pytest.raises(ConflictError):
        gr.update_ref("refs/heads/feature", second, second)
    gr.update_ref("refs/heads/feature", second, first)
    _assert_feature_at(gr, second)
    gr.update_ref("refs/heads/feature", first, second)  # now through the loose ref
    _assert_feature_at(gr, first)


def test_a_new_ref_in_a_new_directory_is_created_when_expected_absent(refs_repo) -> None:
    gr, first, _, _ = refs_repo
    gr.update_ref("refs/heads/gittrack/new/branch", first, None)
    assert git(gr.path, "rev-parse", "refs/heads/gittrack/new/branch").strip() == first


def test_a_ref_named_like_a_directory_of_refs_conflicts_and_keeps_them(repo: Path) -> None:
    gr = GitRepo(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "release/1")  # refs/tags/release/ is a directory; git has no reflog for it
    try:
        with pytest.raises(ConflictError):
            gr.update_ref("refs/tags/release", head, None)
    finally:
        gr.close()
        assert git(repo, "tag", "-l").split() == ["release/1"]
        assert not (repo / ".git/refs/tags/release.lock").exists()


def test_reading_an_object_that_does_not_exist_raises_corrupt_data_naming_it(repo: Path) -> None:
    gr = GitRepo(repo)
    missing = "0123456789abcdef0123456789abcdef01234567"
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "repack", "-adq")  # HEAD is read through cat-file --batch too
    try:
        with pytest.raises(CorruptDataError, match=missing):
            gr.reader.read(missing)
        with pytest.raises(CorruptDataError, match=missing):
            gr.reader.read_many([head, missing])
        assert gr.reader.read(head)[0] == "commit"  # the cat-file process still answers
    finally:
        gr.close()


def test_a_tree_written_here_reads_back_as_git_lists_it(repo: Path) -> None:
    gr = GitRepo(repo)
    try:
        blob = gr.write_object("blob", b"new file\n")
        base = git(repo, "rev-parse", "HEAD^{tree}").strip()
        written = gr.update_tree(base, {"zz-added.txt": TreeEntry("100644", "zz-added.txt", blob)})
        assert written is not None
        listed = [
            TreeEntry(meta.split()[0].lstrip("0") or "0", name, meta.split()[2])
            for meta, name in (
                line.split("\t", 1) for line in git(repo, "ls-tree", written).splitlines()
            )
        ]
        assert [(e.mode.lstrip("0"), e.name, e.sha) for e in gr.read_tree(written)] == [
            (e.mode, e.name, e.sha) for e in listed
        ]
        assert ("100644", "zz-added.txt", blob) in [(e.mode, e.name, e.sha) for e in listed]
    finally:
        gr.close()


def test_objects_written_before_the_swap_only_when_the_ref_is_where_expected(refs_repo) -> None:
    gr, first, second, _ = refs_repo
    calls: list[str] = []
    with pytest.raises(RefMovedError):
        gr.update_ref("refs/heads/feature", first, second, before_swap=lambda: calls.append("x"))
    assert calls == [] and not (gr.common_dir / "refs/heads/feature.lock").exists()
    gr.update_ref("refs/heads/feature", second, first, before_swap=lambda: calls.append("y"))
    assert calls == ["y"]
    _assert_feature_at(gr, second)


def test_a_commit_on_a_stale_tip_is_rebuilt_and_leaves_no_object_behind(repo: Path) -> None:
    ours, theirs = GitRepo(repo), GitRepo(repo)
    mine = TrackingBranch(ours, "tracking", dict)
    other = TrackingBranch(theirs, "tracking", dict)
    mine.commit(lambda _snap: {"a.txt": Blob(b"a")}, "a\n")  # mine now knows the tip
    other.commit(lambda _snap: {"b.txt": Blob(b"b")}, "b\n")  # moves it behind mine's back
    ours.chores.drain()
    theirs.chores.drain()
    tip = mine.commit(lambda _snap: {"c.txt": Blob(b"c")}, "c\n")
    ours.chores.drain()
    # the attempt on the stale tip wrote nothing: every object is reachable
    assert git(repo, "fsck", "--unreachable", "--no-reflogs").strip() == ""
    assert git(repo, "ls-tree", "--name-only", tip).split() == ["a.txt", "b.txt", "c.txt"]
    assert git(repo, "rev-list", "--count", "refs/heads/tracking").strip() == "4"
    git(repo, "fsck", "--strict")
    ours.close()
    theirs.close()


def test_a_write_refused_on_a_stale_tip_is_judged_again_on_the_moved_branch(repo: Path) -> None:
    """This process remembers the tip it last wrote; a pull by another process that removed
    the experiment must not make creating it again fail on the remembered tip."""
    experiment_id = mlflow.create_experiment("again")
    commit_on_branch(repo, {f".tracking/experiments/{experiment_id}.yaml": None})
    assert mlflow.create_experiment("again") == experiment_id


def test_a_path_writer_replaces_the_target_only_when_it_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gittrack.store.files import replacing

    monkeypatch.chdir(tmp_path)
    Path("out.csv").write_text("old\n")
    with pytest.raises(RuntimeError), replacing("out.csv") as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert Path("out.csv").read_text() == "old\n"
    with replacing("out.csv") as tmp:
        Path(tmp).write_text("new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert Path("out.csv").read_text() == "new\n"
