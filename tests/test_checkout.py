"""``gittrack checkout``, ``runs show --code`` and ``compare --code``: a run's exact code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

import gittrack
from tests.conftest import git, gittrack_cli, tree_fingerprint

LARGE = 1_500_000  # over the default size cap for untracked files in a snapshot


def _files(root: Path, skip: set[str] = frozenset()) -> dict[str, bytes]:
    """Every file under ``root`` (not ``.git``), relative path -> bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not path.is_file() or rel in skip:
            continue
        found[rel] = path.read_bytes()
    return found


def _dirty_tree(repo: Path) -> None:
    (repo / "train.py").write_text("print('train, changed')\nlr = 0.3\n")
    (repo / "model").mkdir()
    (repo / "model" / "net.py").write_bytes(b"weights = b'\\x00\\xff'\n\xc3\xa9\n")
    (repo / "notes.txt").write_text("untracked but not ignored\n")
    (repo / "debug.log").write_text("ignored by .gitignore\n")
    (repo / "big.bin").write_bytes(b"x" * LARGE)
    (repo / "run.sh").write_text("#!/bin/sh\npython train.py\n")
    (repo / "run.sh").chmod(0o755)


def _run_here(params: dict[str, str] | None = None) -> str:
    with gittrack.start_run() as run:
        gittrack.log_params(params or {"lr": "0.3", "depth": "4"})
        gittrack.log_metric("acc", 0.9)
    return run.info.run_id


def test_checkout_of_a_dirty_tree_run_holds_the_files_as_they_were_byte_for_byte(
    repo: Path, tmp_path: Path
):
    _dirty_tree(repo)
    as_started = _files(repo, skip={"debug.log", "big.bin"})
    run_id = _run_here()
    (repo / "train.py").write_text("print('edited after the run')\n")
    (repo / "notes.txt").unlink()
    before = tree_fingerprint(repo)

    target = tmp_path / "checkout"
    result = gittrack_cli(repo, "checkout", run_id, "--path", str(target))

    assert result.returncode == 0, result.stderr
    assert _files(target, skip={".gittrack-run.yaml"}) == as_started
    assert os.access(target / "run.sh", os.X_OK) and not os.access(target / "train.py", os.X_OK)
    assert "big.bin" in result.stderr and "too large for the snapshot" in result.stderr
    assert tree_fingerprint(repo) == before
    assert git(target, "status", "--porcelain").splitlines() == ["?? .gittrack-run.yaml"]


def test_checkout_writes_the_runs_params_and_code_to_gittrack_run_yaml(repo: Path, tmp_path: Path):
    _dirty_tree(repo)
    run_id = _run_here({"lr": "0.3", "depth": "4"})
    run = gittrack.get_run(run_id)

    result = gittrack_cli(repo, "checkout", run_id, "--path", str(tmp_path / "co"))

    assert result.returncode == 0, result.stderr
    document = yaml.safe_load((tmp_path / "co" / ".gittrack-run.yaml").read_text())
    assert document["run_id"] == run_id
    assert document["params"] == {"depth": "4", "lr": "0.3"}
    assert document["source"]["commit"] == run.source.commit
    assert document["source"]["code"] == run.source.snapshot
    assert document["source"]["untracked_skipped"] == ["big.bin"]
    assert git(tmp_path / "co", "rev-parse", "HEAD").strip() == run.source.snapshot


def test_checkout_of_a_clean_run_is_its_commit_beside_the_repository_by_default(repo: Path):
    run_id = _run_here()
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "train.py").write_text("print('a later edit')\n")
    before = tree_fingerprint(repo)

    result = gittrack_cli(repo, "checkout", run_id)

    target = repo.parent / f"{repo.name}-run-{run_id[:8]}"
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert git(target, "rev-parse", "HEAD").strip() == head
    assert (target / "train.py").read_text() == "print('train')\n"
    assert tree_fingerprint(repo) == before
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_checkout_to_a_path_that_exists_is_a_one_line_error_and_adds_nothing(
    repo: Path, tmp_path: Path
):
    run_id = _run_here()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me\n")
    worktrees = git(repo, "worktree", "list")
    before = tree_fingerprint(repo)

    result = gittrack_cli(repo, "checkout", run_id, "--path", str(taken))

    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "already exists" in result.stderr
    assert str(taken) in result.stderr
    assert _files(taken) == {"mine.txt": b"keep me\n"}
    assert git(repo, "worktree", "list") == worktrees
    assert tree_fingerprint(repo) == before


def test_checkout_of_a_run_without_source_is_a_one_line_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GITTRACK_SOURCE_CAPTURE", "none")
    run_id = _run_here()

    result = gittrack_cli(repo, "checkout", run_id, "--path", str(tmp_path / "co"))

    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and "recorded no source commit" in result.stderr
    assert not (tmp_path / "co").exists()
    assert "Traceback" not in result.stderr


def test_checkout_of_an_unknown_run_is_a_one_line_error(repo: Path, tmp_path: Path):
    _run_here()

    result = gittrack_cli(repo, "checkout", "0" * 32, "--path", str(tmp_path / "co"))

    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "0" * 32 in result.stderr
    assert not (tmp_path / "co").exists()


def test_runs_show_code_prints_the_uncommitted_change_against_the_base_commit(repo: Path):
    _dirty_tree(repo)
    run_id = _run_here()
    run = gittrack.get_run(run_id)

    result = gittrack_cli(repo, "runs", "show", run_id, "--code")

    assert result.returncode == 0, result.stderr
    expected = git(repo, "diff", "--patch", run.source.commit, run.source.snapshot, "--")
    assert result.stdout == expected
    assert "+lr = 0.3" in result.stdout and "notes.txt" in result.stdout
    assert "debug.log" not in result.stdout


def test_runs_show_code_of_a_clean_run_prints_no_patch_and_says_why(repo: Path):
    run_id = _run_here()

    result = gittrack_cli(repo, "runs", "show", run_id, "--code")

    assert result.returncode == 0
    assert result.stdout == ""
    assert "no uncommitted change" in result.stderr


def test_compare_code_is_the_diff_from_the_first_runs_code_to_the_second(repo: Path):
    first = _run_here()
    (repo / "train.py").write_text("print('train v2')\n")
    git(repo, "commit", "-qam", "v2")
    (repo / "extra.py").write_text("x = 1\n")
    second = _run_here()
    second_code = gittrack.get_run(second).source.snapshot
    first_commit = gittrack.get_run(first).source.commit

    result = gittrack_cli(repo, "compare", first, second, "--code")

    assert result.returncode == 0, result.stderr
    assert result.stdout == git(repo, "diff", "--patch", first_commit, second_code, "--")
    assert "+print('train v2')" in result.stdout and "+x = 1" in result.stdout


def test_compare_code_takes_exactly_two_runs(repo: Path):
    runs = [_run_here() for _ in range(3)]

    result = gittrack_cli(repo, "compare", *runs, "--code")

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "exactly two runs" in result.stderr


def test_checkout_of_a_dirty_run_captured_without_snapshot_is_its_commit_with_a_warning(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GITTRACK_SOURCE_CAPTURE", "commit")
    (repo / "train.py").write_text("print('uncommitted')\n")
    run_id = _run_here()

    result = gittrack_cli(repo, "checkout", run_id, "--path", str(tmp_path / "co"), "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["commit"] == record["base"] == git(repo, "rev-parse", "HEAD").strip()
    assert record["uncommitted_change_captured"] is False
    assert "changes were not captured" in result.stderr
    assert (tmp_path / "co" / "train.py").read_text() == "print('train')\n"


@pytest.mark.parametrize(
    "command, code, words",
    [
        (["runs", "show", "0" * 32, "--code"], 3, "does not exist"),
        (["compare", "0" * 32, "RUN", "--code"], 3, "does not exist"),
        (["runs", "show", "RUN", "--code"], 5, "recorded no source commit"),
    ],
)
def test_code_of_an_unknown_run_or_one_without_source_is_a_one_line_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], code: int, words: str
):
    monkeypatch.setenv("GITTRACK_SOURCE_CAPTURE", "none")
    run_id = _run_here()

    result = gittrack_cli(repo, *[run_id if word == "RUN" else word for word in command])

    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("recorded", ["blob", "tree", "HEAD", "main"])
def test_a_recorded_commit_that_is_not_a_commit_id_is_refused_as_damaged(
    repo: Path, recorded: str
) -> None:
    import dataclasses

    from gittrack.errors import CorruptDataError
    from gittrack.gitflow.checkout import run_code
    from gittrack.tracking.repository import open_repository

    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "train")
    names = {"blob": "HEAD:train.py", "tree": "HEAD^{tree}"}
    bad = git(repo, "rev-parse", names[recorded]).strip() if recorded in names else recorded
    with gittrack.start_run() as started:
        pass
    run = gittrack.get_run(started.info.run_id)
    crafted = dataclasses.replace(run, source=dataclasses.replace(run.source, commit=bad))

    with pytest.raises(CorruptDataError, match=f"source commit '{bad}'.*not a commit"):
        run_code(open_repository(str(repo)), crafted)


@pytest.mark.parametrize("recorded", ["HEAD", "main", "--output=/tmp/gittrack-leak"])
def test_the_source_diff_shows_nothing_for_a_recorded_snapshot_that_is_not_a_commit_id(
    repo: Path, recorded: str
) -> None:
    import dataclasses

    from gittrack import Client

    (repo / "train.py").write_text("print(1)\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "train")
    with gittrack.start_run() as started:
        pass
    client = Client()
    run = client.get_run(started.info.run_id)
    source = dataclasses.replace(run.source, dirty=True, snapshot=recorded)
    crafted = dataclasses.replace(run, source=source)
    before = tree_fingerprint(repo)
    original = Client.get_run
    try:
        Client.get_run = lambda self, run_id: crafted  # type: ignore[method-assign]
        assert client.get_source_diff(run.info.run_id) is None
    finally:
        Client.get_run = original  # type: ignore[method-assign]
    assert tree_fingerprint(repo) == before
    assert not Path("/tmp/gittrack-leak").exists()
