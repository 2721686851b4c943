"""Large artifacts: Git LFS pointer files on the branch, content in the LFS object store,
streamed on the way in and out (issue 10 item 5, DESIGN §2 and §10)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import gittrack
from gittrack import Client
from gittrack.errors import CorruptDataError, NotFoundError, RepositoryError
from gittrack.gitflow import sync
from tests.conftest import git, make_repo, run_script, tree_fingerprint
from tests.registry_support import set_config

MB = 1024 * 1024
SPEC_URL = "https://git-lfs.github.com/spec/v1"
_POINTER = re.compile(
    rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n"
)


@dataclass(frozen=True)
class Pointer:
    oid: str
    size: int


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer file git-lfs writes (its spec, v1), read independently of gittrack."""
    found = _POINTER.fullmatch(data)
    return Pointer(found[1].decode(), int(found[2])) if found else None


HAS_GIT_LFS = shutil.which("git-lfs") is not None


def _file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that does not compress (so no store can cheat)."""
    block = hashlib.sha256(path.name.encode()).digest() * (MB // 32)
    with open(path, "wb") as handle:
        for start in range(0, size, MB):
            handle.write(block[: min(MB, size - start)])
            block = block[1:] + block[:1]
    return path


def _branch_blob(repo: Path, run_id: str, rel: str) -> bytes:
    spec = f"gittrack:.tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/artifacts/{rel}"
    return subprocess.run(
        ["git", "cat-file", "blob", spec], cwd=repo, capture_output=True, check=True
    ).stdout


def _log(repo: Path, source: Path, artifact_path: str | None = None) -> str:
    with gittrack.start_run() as run:
        gittrack.log_artifact(str(source), artifact_path)
    return run.info.run_id


def _same(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and _sha(a) == _sha(b)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- storing
def test_a_20_mb_artifact_is_an_lfs_pointer_on_the_branch_and_reads_back_identical(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "weights.bin", 20 * MB)
    before = tree_fingerprint(repo)
    run_id = _log(repo, source, "model")

    pointer = parse_pointer(_branch_blob(repo, run_id, "model/weights.bin"))
    assert pointer is not None and pointer.size == 20 * MB and pointer.oid == _sha(source)
    stored = repo / ".git" / "lfs" / "objects" / pointer.oid[:2] / pointer.oid[2:4] / pointer.oid
    assert _same(stored, source)

    client = Client()
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "model")] == [
        ("model/weights.bin", 20 * MB)
    ]
    single = Path(client.download_artifacts(run_id, "model/weights.bin", str(tmp_path / "a")))
    whole = Path(client.download_artifacts(run_id, None, str(tmp_path / "b")))
    assert _same(single, source) and _same(whole / "model" / "weights.bin", source)
    assert tree_fingerprint(repo) == before


@pytest.mark.skipif(not HAS_GIT_LFS, reason="git-lfs is not installed (.ci/run installs it)")
def test_the_pointer_on_the_branch_is_byte_for_byte_what_git_lfs_writes(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "weights.bin", 12 * MB)
    run_id = _log(repo, source)
    expected = subprocess.run(
        ["git", "lfs", "pointer", f"--file={source}"], cwd=repo, capture_output=True, check=True
    ).stdout
    assert _branch_blob(repo, run_id, "weights.bin") == expected


def test_an_artifact_below_the_threshold_stays_an_ordinary_blob(repo: Path, tmp_path: Path):
    source = _file(tmp_path / "small.bin", 3 * MB)
    run_id = _log(repo, source)
    assert _branch_blob(repo, run_id, "small.bin") == source.read_bytes()
    assert not (repo / ".git" / "lfs").exists()


def test_the_lfs_threshold_is_read_from_the_configuration(repo: Path, tmp_path: Path) -> None:
    set_config(Client(), artifacts={"lfs_threshold": 2000})
    at = _file(tmp_path / "at.bin", 2000)
    under = _file(tmp_path / "under.bin", 1999)
    with gittrack.start_run() as run:
        gittrack.log_artifact(str(at))
        gittrack.log_artifact(str(under))
    run_id = run.info.run_id
    assert parse_pointer(_branch_blob(repo, run_id, "at.bin")) is not None
    assert _branch_blob(repo, run_id, "under.bin") == under.read_bytes()
    out = Path(Client().download_artifacts(run_id, None, str(tmp_path / "out")))
    assert _same(out / "at.bin", at) and _same(out / "under.bin", under)


def test_a_configured_threshold_that_is_not_a_positive_integer_is_refused_by_name(
    repo: Path, tmp_path: Path
) -> None:
    set_config(Client(), artifacts={"lfs_threshold": 0})
    with pytest.raises(CorruptDataError, match=r"config\.yaml.*lfs_threshold"):
        with gittrack.start_run():
            gittrack.log_artifact(str(_file(tmp_path / "a.bin", 10)))


def test_a_small_artifact_that_looks_like_a_pointer_reads_back_as_itself(
    repo: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "pointer.txt"
    fake.write_text(f"version {SPEC_URL}\noid sha256:{'ab' * 32}\nsize 12345\n")
    run_id = _log(repo, fake)
    out = Path(Client().download_artifacts(run_id, "pointer.txt", str(tmp_path / "out")))
    assert out.read_bytes() == fake.read_bytes()
    assert Client().list_artifacts(run_id)[0].file_size == fake.stat().st_size


def test_a_model_whose_file_is_in_lfs_loads_through_runs_and_models_uris(
    repo: Path, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    import gittrack.sklearn

    set_config(Client(), artifacts={"lfs_threshold": 100})
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with gittrack.start_run() as run:
        gittrack.sklearn.log_model(model, "model")
    run_id = run.info.run_id
    assert parse_pointer(_branch_blob(repo, run_id, "model/model.pkl")) is not None
    gittrack.register_model(f"runs:/{run_id}/model", "big")
    for uri in (f"runs:/{run_id}/model", "models:/big/1"):
        assert gittrack.sklearn.load_model(uri).predict([[3.0]])[0] == pytest.approx(6.0)


def test_a_store_that_cannot_be_written_leaves_the_run_live_the_branch_as_it_was_and_no_lock(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "big.bin", 11 * MB)
    Client().repository.init()
    tip = git(repo, "rev-parse", "gittrack")
    (repo / ".git" / "lfs").write_text("in the way\n")  # the store cannot be created
    run = gittrack.start_run()
    gittrack.log_artifact(str(source))
    with pytest.raises(RepositoryError, match=r"not committed.*Git LFS store.*still live"):
        gittrack.end_run()
    assert git(repo, "rev-parse", "gittrack") == tip
    assert not list((repo / ".git").rglob("*.lock"))
    (repo / ".git" / "lfs").unlink()
    gittrack.end_run()  # ending again commits it, with everything logged
    out = Client().download_artifacts(run.info.run_id, "big.bin", str(tmp_path / "out"))
    assert _same(Path(out), source)


# --------------------------------------------------------------------------- missing content
def test_a_missing_lfs_object_is_named_with_the_command_that_fetches_it_before_writing(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "big.bin", 11 * MB)
    with gittrack.start_run() as run:
        gittrack.log_text("kept", "dir/a.txt")
        gittrack.log_artifact(str(source), "dir")
    shutil.rmtree(repo / ".git" / "lfs" / "objects")
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    client = Client()
    for path in ("dir", "dir/big.bin"):
        dst = tmp_path / f"out-{path.replace('/', '-')}"
        with pytest.raises(NotFoundError) as caught:
            client.download_artifacts(run.info.run_id, path, str(dst))
        message = str(caught.value)
        assert "`git lfs fetch origin gittrack`" in message and "dir/big.bin" in message
        assert not any(p.is_file() for p in dst.rglob("*"))  # nothing half-written
    assert client.list_artifacts(run.info.run_id, "dir")[1].file_size == 11 * MB


def test_a_truncated_lfs_object_is_reported_as_corrupt_not_returned(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "big.bin", 11 * MB)
    run_id = _log(repo, source)
    objects = repo / ".git" / "lfs" / "objects"
    stored = next(p for p in objects.rglob("*") if p.is_file())
    stored.unlink()  # it may be a hard link of another file: replace, never truncate in place
    stored.write_bytes(b"partial")
    with pytest.raises(CorruptDataError, match="has 7 bytes, its pointer says"):
        Client().download_artifacts(run_id, "big.bin", str(tmp_path / "out"))


# --------------------------------------------------------------------------- sharing
def _remote_and_clone(tmp_path: Path, repo: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    for key, value in (("user.name", "Other"), ("user.email", "other@example.com")):
        git(clone, "config", key, value)
    return remote, clone


@pytest.mark.skipif(not HAS_GIT_LFS, reason="git-lfs is not installed (.ci/run installs it)")
def test_with_git_lfs_push_sends_the_content_and_a_clone_reads_it_after_git_lfs_fetch(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "weights.bin", 20 * MB)
    remote, clone = _remote_and_clone(tmp_path, repo)
    run_id = _log(repo, source, "model")
    assert "model/weights.bin" in git(repo, "lfs", "ls-files", "gittrack")

    sync.push(str(repo))
    pointer = parse_pointer(_branch_blob(repo, run_id, "model/weights.bin"))
    assert pointer is not None
    pushed = remote / "lfs" / "objects" / pointer.oid[:2] / pointer.oid[2:4] / pointer.oid
    assert _same(pushed, source)

    sync.pull(str(clone))
    other = Client(str(clone))
    with pytest.raises(NotFoundError, match="`git lfs fetch origin gittrack`"):
        other.download_artifacts(run_id, "model", str(tmp_path / "early"))
    git(clone, "lfs", "fetch", "origin", "gittrack")
    before = tree_fingerprint(clone)
    out = Path(other.download_artifacts(run_id, "model/weights.bin", str(tmp_path / "late")))
    assert _same(out, source)
    assert tree_fingerprint(clone) == before


def test_push_without_git_lfs_pushes_the_runs_and_says_how_to_send_the_content(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "weights.bin", 11 * MB)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    run_id = _log(repo, source)
    bin_dir = tmp_path / "bin"  # a PATH with git and python but no git-lfs
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    code = (
        "import json, sys\n"
        "from gittrack.gitflow import sync\n"
        f"report = sync.push({str(repo)!r})\n"
        "print(json.dumps([report.pushed, report.lines()]))\n"
    )
    proc = run_script(code, repo, env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    pushed, lines = json.loads(proc.stdout)
    assert pushed
    assert any("git-lfs is not installed" in line and "`git lfs push origin gittrack`" in line
               for line in lines)  # fmt: skip
    assert run_id in git(remote, "ls-tree", "-r", "--name-only", "gittrack")


@pytest.mark.skipif(not HAS_GIT_LFS, reason="git-lfs is not installed (.ci/run installs it)")
def test_a_remote_that_takes_no_lfs_content_still_gets_the_runs_and_the_user_is_told(
    repo: Path, tmp_path: Path
) -> None:
    source = _file(tmp_path / "weights.bin", 11 * MB)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "config", "lfs.url", "http://127.0.0.1:9/nothing-listens-here")
    run_id = _log(repo, source)
    report = sync.push(str(repo))
    assert report.pushed and run_id in git(remote, "ls-tree", "-r", "--name-only", "gittrack")
    assert any(
        "could not be pushed to 'origin'" in line and "`git lfs push origin gittrack`" in line
        for line in report.lines()
    )


# --------------------------------------------------------------------------- memory
_MEMORY_SCRIPT = """
import os, resource, sys, tempfile
import gittrack
size = int(sys.argv[1])
scratch = tempfile.mkdtemp(dir=sys.argv[2])
source = os.path.join(scratch, "data.bin")
with open(source, "wb") as handle:  # sparse: costs no disk or time to make
    handle.truncate(size)
with gittrack.start_run() as run:
    gittrack.log_artifact(source)
os.unlink(source)
out = gittrack.tracking.MlflowClient().download_artifacts(
    run.info.run_id, "data.bin", os.path.join(scratch, "out"))
assert os.path.getsize(out) == size
os.unlink(out)
peaks = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF,
         resource.RUSAGE_CHILDREN)]
print(max(peaks) // 1024)
"""


def _peak_mb(repo: Path, tmp_path: Path, size: int) -> int:
    script = tmp_path / "memory.py"
    script.write_text(_MEMORY_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(size), str(tmp_path)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(Path(gittrack.__file__).parents[1])},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.slow
def test_logging_and_reading_a_200_mb_artifact_stays_within_100_mb_of_a_plain_run(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "project")
    plain = _peak_mb(repo, tmp_path, 1000)
    large = _peak_mb(repo, tmp_path, 200 * MB)
    assert large - plain < 100, f"plain run {plain} MB, 200 MB artifact {large} MB"
