"""One corrupt file on the tracking branch never stops a search, a listing or another command.

Each kind of corruption is committed with git plumbing, as a hostile or broken pull would leave
it. Searches and listings skip the bad run with a warning naming the file; reading that run
directly raises ``CorruptDataError`` naming it; ``doctor`` reports it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import CorruptDataError, CorruptDataWarning

from .conftest import git
from .conftest import gittrack_cli as cli
from .hostile_branch import BLOB, TREE, blob, commit_on_branch, put_file, raw_tree


def _run_dir(run_id: str) -> str:
    return f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}"


def _meta(repo: Path, run_id: str) -> dict:
    return yaml.safe_load(git(repo, "show", f"gittrack:{_run_dir(run_id)}/meta.yaml"))


def _edit_meta(change: Callable[[dict], None]) -> Callable[[Path, str, str], str]:
    def corrupt(repo: Path, run_id: str, _other: str) -> str:
        doc = _meta(repo, run_id)
        change(doc)
        path = f"{_run_dir(run_id)}/meta.yaml"
        put_file(repo, path, yaml.safe_dump(doc).encode())
        return path

    return corrupt


def _write(name: str, data: bytes) -> Callable[[Path, str, str], str]:
    def corrupt(repo: Path, run_id: str, _other: str) -> str:
        path = f"{_run_dir(run_id)}/{name}"
        put_file(repo, path, data)
        return path

    return corrupt


def _missing_meta(repo: Path, run_id: str, _other: str) -> str:
    commit_on_branch(repo, {f"{_run_dir(run_id)}/meta.yaml": None})
    return f"{_run_dir(run_id)}/meta.yaml"


def _other_runs_meta(repo: Path, run_id: str, other: str) -> str:
    path = f"{_run_dir(run_id)}/meta.yaml"
    put_file(repo, path, git(repo, "show", f"gittrack:{_run_dir(other)}/meta.yaml").encode())
    return path


def _meta_is_a_directory(repo: Path, run_id: str, _other: str) -> str:
    inside = raw_tree(repo, [(BLOB, b"x", blob(repo, b"x\n"))])
    path = f"{_run_dir(run_id)}/meta.yaml"
    commit_on_branch(repo, {path: (TREE, inside)})
    return path


def _run_dir_is_a_file(repo: Path, run_id: str, _other: str) -> str:
    path = _run_dir(run_id)
    commit_on_branch(repo, {path: (BLOB, blob(repo, b"not a directory\n"))})
    return path


def _source_branch_is_a_date(doc: dict) -> None:
    doc["source"]["branch"] = __import__("datetime").date(2020, 1, 2)


CORRUPTIONS = {
    "invalid YAML": _write("meta.yaml", b"status: [unclosed\nrun_id: x\n"),
    "schema violation": _edit_meta(lambda d: d.update(status="DONE")),
    "empty meta.yaml": _write("meta.yaml", b""),
    "missing meta.yaml": _missing_meta,
    "mismatched run id": _other_runs_meta,
    "a list instead of a mapping": _write("meta.yaml", b"- a\n- b\n"),
    "a scalar instead of a mapping": _write("meta.yaml", b"just some text\n"),
    "a tag value of the wrong type": _edit_meta(lambda d: d["tags"].update(n=1)),
    "a tag key of the wrong type": _edit_meta(lambda d: d["tags"].update({1: "x"})),
    "a parent run id of the wrong type": _edit_meta(lambda d: d.update(parent_run_id=5)),
    "a date where the source branch belongs": _edit_meta(_source_branch_is_a_date),
    "an impossible start time": _edit_meta(
        lambda d: d.update(start_time="2026-13-45T25:61:61.000Z")
    ),
    "an unreadable metric summary": _edit_meta(lambda d: d["metrics"]["loss"].update(value="high")),
    "a metric key of the wrong type": _edit_meta(
        lambda d: d["metrics"].update({7: d["metrics"]["loss"]})
    ),
    "invalid UTF-8": _write("meta.yaml", b"format: 1\nrun_name: \xff\xfe\n"),
    "params.yaml a list": _write("params.yaml", b"- 1\n- 2\n"),
    "params.yaml invalid YAML": _write("params.yaml", b"lr: [0.1\n"),
    "params.yaml with a number value": _write("params.yaml", b"lr: 0.1\n"),
    "params.yaml with a number key": _write("params.yaml", b"1: x\n"),
    "meta.yaml a directory": _meta_is_a_directory,
    "run directory a file": _run_dir_is_a_file,
}


def _two_runs(repo: Path) -> tuple[str, str]:
    """(victim, kept): two finished runs of the Default experiment."""
    ids = []
    for name in ("victim", "kept"):
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("p", name)
            mlflow.log_metric("loss", 0.5)
        ids.append(run.info.run_id)
    return ids[0], ids[1]


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_run_is_skipped_by_searches_raised_by_get_run_and_reported_by_doctor(
    repo: Path, kind: str
) -> None:
    victim, kept = _two_runs(repo)
    path = CORRUPTIONS[kind](repo, victim, kept)

    with pytest.warns(CorruptDataWarning, match=path):
        found = mlflow.search_runs(output_format="list")
    assert [r.info.run_id for r in found] == [kept]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptDataWarning)
        assert list(mlflow.search_runs()["run_id"]) == [kept]
        assert [r.info.run_id for r in Client().search_runs(["0"])] == [kept]

    with pytest.raises(CorruptDataError, match=path.rpartition("/")[0]):
        Client().get_run(victim)

    assert any(p.path.startswith(_run_dir(victim)) for p in Client().doctor())

    listed = cli(repo, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [kept]
    assert f"gittrack: warning: skipped: {path}" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_a_corrupt_run_found_by_an_incremental_refresh_is_skipped_too(repo: Path) -> None:
    victim, kept = _two_runs(repo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(mlflow.search_runs(output_format="list")) == 2  # the index is built
    path = CORRUPTIONS["invalid YAML"](repo, victim, kept)
    with pytest.warns(CorruptDataWarning, match=path):
        assert [r.info.run_id for r in mlflow.search_runs(output_format="list")] == [kept]
    put_file(repo, path, git(repo, "show", f"gittrack~1:{path}").encode())  # repaired
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(mlflow.search_runs(output_format="list")) == 2


def test_a_bad_metrics_line_is_reported_by_metric_history_and_doctor_not_by_searches(
    repo: Path,
) -> None:
    victim, kept = _two_runs(repo)
    path = f"{_run_dir(victim)}/metrics.jsonl"
    put_file(repo, path, b'garbage\n{"key": "loss", "value": 1, "step": 0, "timestamp": 1}\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(mlflow.search_runs(output_format="list")) == 2
    with pytest.warns(CorruptDataWarning, match=f"{path}: line 1 is not a metric point"):
        [point] = Client().get_metric_history(victim, "loss")
    assert (point.value, point.step, point.timestamp) == (1.0, 0, 1)
    assert [p.path for p in Client().doctor()] == [path]


def test_a_corrupt_live_run_is_skipped_by_searches(repo: Path) -> None:
    _victim, kept = _two_runs(repo)
    run = mlflow.start_run(run_name="live")
    live_meta = repo / ".git" / "gittrack" / "live" / run.info.run_id / "meta.yaml"
    live_meta.write_bytes(b"- not\n- a mapping\n")
    with pytest.warns(CorruptDataWarning, match=run.info.run_id):
        found = mlflow.search_runs(output_format="list")
    assert kept in [r.info.run_id for r in found]
    assert run.info.run_id not in [r.info.run_id for r in found]


def test_a_corrupt_experiment_file_is_skipped_by_listings_and_raised_by_get(repo: Path) -> None:
    experiment_id = mlflow.create_experiment("broken")
    mlflow.create_experiment("fine")
    path = f".tracking/experiments/{experiment_id}.yaml"
    put_file(repo, path, b"name: [unclosed\n")

    with pytest.warns(CorruptDataWarning, match=path):
        names = [e.name for e in mlflow.search_experiments()]
    assert names and "fine" in names and "broken" not in names
    with pytest.raises(CorruptDataError, match=path):
        Client().get_experiment(experiment_id)
    assert [p.path for p in Client().doctor()] == [path]
    listed = cli(repo, "experiments", "list")
    assert listed.returncode == 0 and "fine" in listed.stdout
    assert f"skipped: {path}" in listed.stderr


def test_an_experiment_file_naming_another_id_is_skipped_and_reported(repo: Path) -> None:
    experiment_id = mlflow.create_experiment("one")
    other = mlflow.create_experiment("two")
    path = f".tracking/experiments/{experiment_id}.yaml"
    put_file(repo, path, git(repo, "show", f"gittrack:.tracking/experiments/{other}.yaml").encode())
    with pytest.warns(CorruptDataWarning, match=path):
        assert sorted(e.name for e in mlflow.search_experiments()) == ["Default", "two"]
    assert any(p.path == path and "does not match" in p.message for p in Client().doctor())


def test_a_new_experiment_never_overwrites_an_unreadable_experiment_file(repo: Path) -> None:
    experiment_id = mlflow.create_experiment("broken")
    path = f".tracking/experiments/{experiment_id}.yaml"
    put_file(repo, path, b"name: [unclosed\n")
    new_id = mlflow.create_experiment("broken")
    assert new_id != experiment_id
    assert git(repo, "show", f"gittrack:{path}") == "name: [unclosed\n"


def test_doctor_reports_a_run_directory_without_meta_yaml(repo: Path) -> None:
    victim, _kept = _two_runs(repo)
    _missing_meta(repo, victim, _kept)
    problems = Client().doctor()
    assert [(p.path, p.message) for p in problems] == [
        (_run_dir(victim), "run directory without meta.yaml")
    ]


def test_doctor_reports_a_run_in_the_wrong_shard(repo: Path) -> None:
    victim, _kept = _two_runs(repo)
    tree = git(repo, "rev-parse", f"gittrack:{_run_dir(victim)}").strip()
    wrong = f".tracking/runs/00/00/{victim}"
    commit_on_branch(repo, {_run_dir(victim): None, wrong: (TREE, tree)})
    problems = Client().doctor()
    assert [p.path for p in problems] == [wrong]
    assert f"belongs in {_run_dir(victim)}" in problems[0].message


def test_a_tree_entry_name_that_is_not_utf8_does_not_stop_searches(repo: Path) -> None:
    victim, kept = _two_runs(repo)
    shard = f".tracking/runs/{victim[:2]}/{victim[2:4]}"
    entries = [
        (TREE, name.encode(), git(repo, "rev-parse", f"gittrack:{shard}/{name}").strip())
        for name in [victim]
    ]
    entries.append((BLOB, b"\xff\xfe-stray", blob(repo, b"x\n")))
    commit_on_branch(repo, {shard: (TREE, raw_tree(repo, entries))})
    assert sorted(r.info.run_id for r in mlflow.search_runs(output_format="list")) == sorted(
        [victim, kept]
    )
    assert Client().get_run(victim).info.run_id == victim


def test_a_corrupt_model_or_version_file_is_skipped_by_registry_listings(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    for name in ("good", "bad_version", "bad_model"):
        mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    version_path = ".tracking/models/bad_version/versions/1.yaml"
    model_path = ".tracking/models/bad_model/model.yaml"
    put_file(repo, version_path, b"name: [unclosed\n")
    put_file(repo, model_path, b"- not a mapping\n")
    client = Client()

    with pytest.warns(CorruptDataWarning) as caught:
        assert [m.name for m in client.search_registered_models()] == ["good"]
        assert [(v.name, v.version) for v in client.search_model_versions()] == [("good", "1")]
    reported = " ".join(str(w.message) for w in caught)
    assert version_path in reported and model_path in reported

    with pytest.raises(CorruptDataError, match=version_path):
        client.get_model_version("bad_version", 1)
    with pytest.raises(CorruptDataError, match=model_path):
        client.get_registered_model("bad_model")
    assert {p.path for p in client.doctor()} == {version_path, model_path}
    listed = cli(repo, "models", "list")
    assert listed.returncode == 0 and "good" in listed.stdout, listed.stderr
    assert f"skipped: {model_path}" in listed.stderr
