"""Datasets (``gittrack.data``) and ``log_input``: recorded with the run, shown, searchable,
and described exactly as MLflow describes the same data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gittrack
from gittrack.entities import Dataset, DatasetInput, InputTag
from gittrack.errors import InvalidInputError
from tests.conftest import git, gittrack_cli, tree_fingerprint
from tests.hostile_branch import put_file


@pytest.fixture
def real_mlflow(tmp_path: Path):
    """The installed MLflow on a sqlite store in tmp_path; its fluent state is left clean."""
    ml = pytest.importorskip("mlflow")
    ml.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    yield ml
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _wine() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "alcohol": rng.normal(13, 1, 40),
            "ash": rng.integers(1, 4, 40),
            "origin": [f"v{i % 3}" for i in range(40)],
            "when": pd.date_range("2024-01-01", periods=40),
            "quality": rng.integers(0, 2, 40),
        }
    )


FRAMES = {
    "wine": _wine,
    "strings and ints": lambda: pd.DataFrame({"s": ["a", "b", None], "i": [1, 2, 3]}),
    "long": lambda: pd.DataFrame({"x": np.arange(12_000, dtype=float)}),
    "empty": lambda: pd.DataFrame({"x": pd.Series([], dtype=float)}),
}


@pytest.mark.parametrize("frame", FRAMES, ids=list(FRAMES))
def test_a_frame_gets_mlflows_digest_schema_and_profile(real_mlflow: Any, frame: str) -> None:
    df = FRAMES[frame]()
    ours = gittrack.data.from_pandas(df, source="data/wine.csv", targets=None, name="wine")
    theirs = real_mlflow.data.from_pandas(df, source="data/wine.csv", name="wine")
    got, want = ours.to_dict(), theirs.to_dict()
    assert got["digest"] == want["digest"]
    assert {k: got[k] for k in ("name", "source", "source_type", "profile")} == {
        k: want[k] for k in ("name", "source", "source_type", "profile")
    }
    assert (got["schema"] and json.loads(got["schema"])) == (
        want["schema"] and json.loads(want["schema"])
    )


ARRAYS = {
    "matrix with targets": lambda: (np.arange(12.0).reshape(4, 3), np.array([0, 1, 0, 1])),
    "features only": lambda: (np.arange(30_000, dtype=np.int32).reshape(-1, 3), None),
    "dict of arrays": lambda: ({"a": np.ones((2, 2)), "b": np.zeros(3)}, None),
}


@pytest.mark.parametrize("arrays", ARRAYS, ids=list(ARRAYS))
def test_arrays_get_mlflows_digest_schema_and_profile(real_mlflow: Any, arrays: str) -> None:
    features, targets = ARRAYS[arrays]()
    got = gittrack.data.from_numpy(features, targets=targets, source="s3://b/x.npy").to_dict()
    want = real_mlflow.data.from_numpy(features, targets=targets, source="s3://b/x.npy").to_dict()
    assert got["digest"] == want["digest"]
    assert json.loads(got["profile"]) == json.loads(want["profile"])
    assert (got["source"], got["source_type"]) == (want["source"], want["source_type"])
    if not isinstance(features, dict):
        schema = json.loads(got["schema"])["mlflow_tensorspec"]
        expected = json.loads(want["schema"])["mlflow_tensorspec"]
        assert {k: v and json.loads(v) for k, v in schema.items()} == {
            k: v and json.loads(v) for k, v in expected.items()
        }


@pytest.mark.parametrize(
    "source", ["data/wine.csv", "/abs/wine.csv", "https://x.org/w.csv", "s3://bucket/k.csv"]
)
def test_sources_resolve_to_mlflows_type_and_document(real_mlflow: Any, source: str) -> None:
    df = pd.DataFrame({"x": [1.0]})
    ours = gittrack.data.from_pandas(df, source=source)
    theirs = real_mlflow.data.from_pandas(df, source=source)
    assert (ours.source_type, ours.source.to_json()) == (
        theirs.source._get_source_type(),
        theirs.source.to_json(),
    )


def test_without_a_source_the_dataset_names_the_code_that_built_it(repo: Path) -> None:
    dataset = gittrack.data.from_pandas(pd.DataFrame({"x": [1]}))
    assert dataset.name == "dataset"
    assert dataset.source_type == "code"
    assert set(json.loads(dataset.source.to_json())["tags"]) == {
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
    }


def test_a_given_digest_and_name_are_kept(repo: Path) -> None:
    dataset = gittrack.data.from_pandas(pd.DataFrame({"x": [1]}), name="n", digest="abc")
    assert (dataset.name, dataset.digest) == ("n", "abc")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gittrack.data.from_pandas([1, 2]), "DataFrame"),
        (lambda: gittrack.data.from_pandas(pd.DataFrame({"x": [1]}), targets="y"), "'y'"),
        (lambda: gittrack.data.from_pandas(pd.DataFrame({"x": [1]}), source="ftp://h/x"), "ftp"),
        (lambda: gittrack.data.from_numpy("not an array"), "numpy array"),
    ],
)
def test_bad_dataset_arguments_are_refused_with_the_value_named(call: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()


# --------------------------------------------------------------------- log_input
def _scenario_log_inputs(ml: Any) -> dict[str, Any]:
    """Three runs with datasets, the same calls in either library."""
    wine = ml.data.from_pandas(_wine(), source="data/wine.csv", name="wine", targets="quality")
    iris = ml.data.from_numpy(np.arange(8.0).reshape(4, 2), source="data/iris.npy", name="iris")
    runs = {}
    with ml.start_run(run_name="train") as run:
        ml.log_input(wine, context="training", tags={"split": "a"})
        ml.log_input(wine, context="eval")  # same dataset: not recorded again
        ml.log_input(iris, context="eval")
        runs["train"] = run.info.run_id
    with ml.start_run(run_name="eval") as run:
        ml.log_input(iris, context="eval")
        runs["eval"] = run.info.run_id
    with ml.start_run(run_name="none") as run:
        runs["none"] = run.info.run_id
    return runs


def _inputs_of(ml: Any, run_id: str) -> list[tuple]:
    return [
        (
            d.dataset.name,
            d.dataset.digest,
            d.dataset.source_type,
            d.dataset.source,
            json.loads(d.dataset.profile),
            sorted((t.key, t.value) for t in d.tags),
        )
        for d in ml.get_run(run_id).inputs.dataset_inputs
    ]


def test_logged_inputs_are_read_back_as_mlflow_reads_them(repo: Path, real_mlflow: Any) -> None:
    ours, theirs = _scenario_log_inputs(gittrack), _scenario_log_inputs(real_mlflow)
    for name in ours:
        assert _inputs_of(gittrack, ours[name]) == _inputs_of(real_mlflow, theirs[name]), name
    assert len(_inputs_of(gittrack, ours["train"])) == 2


FILTERS = [
    "dataset.name = 'wine'",
    "dataset.name = 'iris'",
    "datasets.name != 'wine'",
    "dataset.name LIKE 'w%'",
    "dataset.name ILIKE 'IR%'",
    "dataset.name IN ('wine', 'nope')",
    "dataset.name NOT IN ('wine')",
    "dataset.context = 'eval'",
    "dataset.context = 'training'",
    "dataset.context != 'eval'",
    "dataset.name = 'wine' and dataset.context = 'eval'",
    "dataset.digest LIKE '%'",
]


@pytest.mark.parametrize("flt", FILTERS)
def test_dataset_filters_select_the_runs_mlflow_selects(
    repo: Path, real_mlflow: Any, flt: str
) -> None:
    _scenario_log_inputs(gittrack)
    _scenario_log_inputs(real_mlflow)

    def names(ml: Any) -> list[str]:
        return sorted(
            r.info.run_name for r in ml.search_runs(filter_string=flt, output_format="list")
        )

    assert names(gittrack) == names(real_mlflow)


def test_a_digest_filter_finds_the_run_and_the_frame_search_agrees(repo: Path) -> None:
    runs = _scenario_log_inputs(gittrack)
    digest = gittrack.get_run(runs["eval"]).inputs.dataset_inputs[0].dataset.digest
    frame = gittrack.search_runs(filter_string=f"dataset.digest = '{digest}'")
    assert sorted(frame["run_id"]) == sorted([runs["train"], runs["eval"]])


def test_inputs_of_a_live_run_are_readable_and_searchable(repo: Path) -> None:
    with gittrack.start_run() as run:
        gittrack.log_input(gittrack.data.from_pandas(_wine(), name="wine"), context="training")
        live = gittrack.get_run(run.info.run_id)
        assert [d.dataset.name for d in live.inputs.dataset_inputs] == ["wine"]
        found = gittrack.search_runs(filter_string="dataset.name = 'wine'", output_format="list")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert found[0].inputs.dataset_inputs[0].tags == [
            InputTag("mlflow.data.context", "training")
        ]


def test_an_ended_run_takes_inputs_in_one_commit_and_keeps_its_status(repo: Path) -> None:
    with gittrack.start_run() as run:
        pass
    before = git(repo, "rev-list", "--count", "gittrack").strip()
    client = gittrack.MlflowClient()
    dataset = gittrack.data.from_numpy(np.ones((3, 2)), name="ones").to_entity()
    client.log_inputs(run.info.run_id, [DatasetInput(dataset, [InputTag("k", "v")])])
    client.log_inputs(run.info.run_id, [DatasetInput(dataset)])  # already there: no commit
    assert int(git(repo, "rev-list", "--count", "gittrack")) == int(before) + 1
    got = gittrack.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert [(d.dataset.name, d.tags) for d in got.inputs.dataset_inputs] == [
        ("ones", [InputTag("k", "v")])
    ]


def test_logging_inputs_leaves_the_users_repository_alone(repo: Path) -> None:
    before = tree_fingerprint(repo)
    with gittrack.start_run():
        gittrack.log_input(gittrack.data.from_pandas(_wine(), source="data/wine.csv"))
    assert tree_fingerprint(repo) == before


BAD_INPUTS = {
    "name too long": (Dataset("n" * 501, "d", "local", "{}"), "500"),
    "digest too long": (Dataset("n", "d" * 37, "local", "{}"), "36"),
    "empty digest": (Dataset("n", "", "local", "{}"), "digest"),
    "name not a string": (Dataset(3, "d", "local", "{}"), "string"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_a_bad_input_is_refused_before_anything_is_written(repo: Path, bad: str) -> None:
    dataset, message = BAD_INPUTS[bad]
    with gittrack.start_run() as run:
        good = gittrack.data.from_pandas(_wine(), name="good").to_entity()
        with pytest.raises(InvalidInputError, match=message):
            gittrack.MlflowClient().log_inputs(
                run.info.run_id, [DatasetInput(good), DatasetInput(dataset)]
            )
    assert gittrack.get_run(run.info.run_id).inputs.dataset_inputs == []


def test_context_without_a_dataset_is_refused(repo: Path) -> None:
    with gittrack.start_run(), pytest.raises(InvalidInputError, match="need a dataset"):
        gittrack.log_input(None, context="training")


def test_runs_show_prints_the_inputs(repo: Path) -> None:
    with gittrack.start_run() as run:
        gittrack.log_input(
            gittrack.data.from_pandas(_wine(), source="data/wine.csv", name="wine"),
            context="training",
        )
    digest = gittrack.get_run(run.info.run_id).inputs.dataset_inputs[0].dataset.digest
    shown = gittrack_cli(repo, "runs", "show", run.info.run_id)
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout.split("[inputs]", 1)[1]
    assert "wine" in section and digest in section and "training" in section
    as_json = json.loads(gittrack_cli(repo, "runs", "show", run.info.run_id, "--json").stdout)
    assert as_json["inputs"][0]["name"] == "wine"
    assert as_json["inputs"][0]["tags"] == {"mlflow.data.context": "training"}


def test_a_run_with_unreadable_inputs_is_skipped_and_the_others_are_found(repo: Path) -> None:
    with gittrack.start_run() as good:
        gittrack.log_input(gittrack.data.from_pandas(_wine(), name="wine"))
    with gittrack.start_run() as bad:
        pass
    where = f".tracking/runs/{bad.info.run_id[:2]}/{bad.info.run_id[2:4]}/{bad.info.run_id}"
    meta = git(repo, "show", f"gittrack:{where}/meta.yaml")
    put_file(repo, f"{where}/meta.yaml", (meta + "inputs:\n- dataset: {}\n").encode())
    with pytest.warns(UserWarning):
        found = gittrack.search_runs(filter_string="dataset.name = 'wine'")
    assert list(found["run_id"]) == [good.info.run_id]


def test_inputs_logged_to_one_run_in_two_clones_are_merged_as_a_union(tmp_path: Path) -> None:
    import yaml

    from gittrack.store.codecs import dump_yaml
    from gittrack.store.git import GitRepo
    from tests.conftest import make_repo
    from tests.test_merge import diverge, merged_files, meta, run_path

    repo = GitRepo(make_repo(tmp_path / "merge"))
    rid = "cd" * 16

    def with_inputs(*names: str) -> bytes:
        doc = meta(rid)
        entry = {"source_type": "local", "source": "{}", "schema": None, "profile": None}
        doc["inputs"] = [{"dataset": {"name": n, "digest": n, **entry}, "tags": {}} for n in names]
        return dump_yaml(doc)

    path = run_path(rid, "meta.yaml")
    ours, theirs = diverge(
        repo, {path: with_inputs("a")}, {path: with_inputs("a", "b")}, {path: with_inputs("a", "c")}
    )
    results = []
    for first, second in ((ours, theirs), (theirs, ours)):
        _outcome, files = merged_files(repo, first, second)
        doc = yaml.safe_load(files[path])
        results.append(sorted(e["dataset"]["name"] for e in doc["inputs"]))
    assert results == [["a", "b", "c"], ["a", "b", "c"]]


def test_the_fast_reader_reads_a_meta_yaml_with_inputs_without_falling_back(repo: Path) -> None:
    import yaml

    from gittrack.store.fast_yaml import parse_subset

    with gittrack.start_run() as run:
        gittrack.log_input(gittrack.data.from_pandas(_wine(), name="wine"), context="training")
        gittrack.log_input(gittrack.data.from_numpy(np.ones((2, 2)), name="ones"))
    rid = run.info.run_id
    data = git(repo, "show", f"gittrack:.tracking/runs/{rid[:2]}/{rid[2:4]}/{rid}/meta.yaml")
    assert "inputs:\n- dataset:" in data
    assert parse_subset(data.encode()) == yaml.safe_load(data)  # raises if it would fall back


def test_gittrack_search_filters_on_datasets_from_the_command_line(repo: Path) -> None:
    runs = _scenario_log_inputs(gittrack)
    found = gittrack_cli(repo, "search", "dataset.context = 'training'", "--json")
    assert found.returncode == 0, found.stderr
    assert [row["run_id"] for row in json.loads(found.stdout)] == [runs["train"]]
    bad = gittrack_cli(repo, "search", "dataset.size = '1'")
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1 and "dataset.size" in bad.stderr
