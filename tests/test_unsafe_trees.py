"""Artifact trees fetched from elsewhere never write outside the destination they are read into.

git's default push and fetch accept tree entries named ``..``, ``.``, ``.git`` or with a slash
in them. Every reader that writes a tree out refuses such a name, naming the entry, before it
writes anything; ``doctor`` reports them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import CorruptDataError

from .hostile_branch import BLOB, TREE, blob, commit_on_branch, raw_tree

UNSAFE_NAMES = [b"..", b".", b".git", b".GIT", b"a/b", b"a\\b", b"", b"/etc"]


def _run_with_model_dir(repo: Path) -> str:
    with mlflow.start_run() as run:
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    return run.info.run_id


def _escaping_tree(repo: Path, unsafe: bytes) -> str:
    """artifacts/model holding MLmodel and an entry ``unsafe`` -> ``..`` -> ``escaped.txt``:
    written out as named, ``escaped.txt`` lands two levels above the model's directory."""
    payload = blob(repo, b"written outside\n")
    inner = raw_tree(repo, [(BLOB, b"escaped.txt", payload)])
    climb = raw_tree(repo, [(TREE, b"..", inner)])
    return raw_tree(
        repo,
        [(BLOB, b"MLmodel", blob(repo, b"flavors: {}\n")), (TREE, unsafe, climb)],
    )


def _plant(repo: Path, run_id: str, unsafe: bytes) -> str:
    path = f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}/artifacts/model"
    commit_on_branch(repo, {path: (TREE, _escaping_tree(repo, unsafe))})
    return path


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("unsafe", UNSAFE_NAMES, ids=lambda n: repr(n.decode()))
def test_download_artifacts_refuses_an_unsafe_entry_name_and_writes_nothing(
    repo: Path, tmp_path: Path, unsafe: bytes
) -> None:
    run_id = _run_with_model_dir(repo)
    _plant(repo, run_id, unsafe)
    outside = tmp_path / "downloads"
    destination = outside / "inner" / "dst"
    destination.mkdir(parents=True)

    with pytest.raises(CorruptDataError, match="unsafe tree entry name") as caught:
        Client().download_artifacts(run_id, "model", str(destination))

    assert repr(unsafe.decode()) in str(caught.value)
    assert _files_under(outside) == []


def test_listing_artifacts_refuses_an_entry_named_dot_dot(repo: Path) -> None:
    run_id = _run_with_model_dir(repo)
    _plant(repo, run_id, b"..")
    with pytest.raises(CorruptDataError, match=r"model/'\.\.'"):
        Client().list_artifacts(run_id, "model")


def test_loading_a_model_whose_tree_climbs_out_refuses_and_writes_nothing_outside(
    repo: Path, tmp_path: Path
) -> None:
    run_id = _run_with_model_dir(repo)
    _plant(repo, run_id, b"..")
    outside = tmp_path / "models"
    destination = outside / "inner" / "dst"
    destination.mkdir(parents=True)

    with pytest.raises(CorruptDataError, match="unsafe tree entry name"):
        mlflow.pyfunc.load_model(f"runs:/{run_id}/model", dst_path=str(destination))
    assert _files_under(outside) == []

    with pytest.raises(CorruptDataError, match="unsafe tree entry name"):
        mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    cache = repo / ".git" / "gittrack" / "cache"
    assert not [p for p in cache.rglob("escaped.txt")]


def test_doctor_reports_each_unsafe_entry_name_on_the_branch(repo: Path) -> None:
    run_id = _run_with_model_dir(repo)
    path = _plant(repo, run_id, b".git")

    problems = Client().doctor()

    unsafe = [p for p in problems if "unsafe tree entry name" in p.message]
    assert [p.path for p in unsafe] == [f"{path}/'.git'"]


def test_a_run_with_a_safe_artifact_tree_still_downloads(repo: Path, tmp_path: Path) -> None:
    run_id = _run_with_model_dir(repo)
    out = Client().download_artifacts(run_id, "model", str(tmp_path / "dst"))
    assert (Path(out) / "MLmodel").read_text() == "flavors: {}\n"
