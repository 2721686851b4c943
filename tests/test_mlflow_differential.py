"""gittrack against MLflow itself on the same scenarios (issue 11: drop-in for MLflow scripts).

Each scenario is one function of the tracking module (``gittrack`` or ``mlflow``). The
``differential`` fixture runs it under gittrack, in a fresh git repository, and under the
installed MLflow on a sqlite store in ``tmp_path``, normalises both results (NaN compares
equal to NaN) and hands them back to be compared. The module is skipped when MLflow is not
installed (the ``bench`` extra installs it, and ``.ci/run`` uses that).

Covered: validation as MLflow's (keys, long values, metric values, empty pages, what stays
refused), order as MLflow's (experiments, NaN against missing metrics, model versions, NaN
in filters, statuses set after the run), and the run-state rules (no silent no-ops, ended
runs writable, an active run per thread), whose scenarios live in ``test_run_state.py``.

Where MLflow's two backends disagree (sqlite and the file store), gittrack follows sqlite;
``test_where_mlflow_backends_disagree_gittrack_follows_sqlite`` shows the case it knows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gittrack
from gittrack.errors import InvalidInputError

from .test_run_state import (
    _log_after_end_scenario,
    _run_name_scenario,
    _set_terminated_scenario,
    _thread_scenario,
    _update_run_scenario,
)

Scenario = Callable[[Any], Any]


# ------------------------------------------------------------------------- harness
def normalise(value: Any) -> Any:
    """A result both libraries can be compared on: NaN as the text "NaN", tuples as lists,
    numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _forget_mlflow_state(ml: Any) -> None:
    """End MLflow's runs and forget its active experiment (kept in a global and in
    ``MLFLOW_EXPERIMENT_ID``, which gittrack reads too)."""
    while ml.active_run() is not None:
        ml.end_run()
    ml.set_tracking_uri("")
    ml.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture
def differential(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Scenario], tuple[Any, Any]]]:
    """``differential(scenario)``: the normalised results of ``scenario(gittrack)`` (in
    ``repo``) and ``scenario(mlflow)`` (on a new sqlite store). ``differential.mlflow(scenario,
    backend)`` runs MLflow alone, on ``"sqlite"`` or the ``"file"`` store."""
    ml = pytest.importorskip("mlflow")
    stores = iter(range(100))

    def under_mlflow(scenario: Scenario, backend: str = "sqlite") -> Any:
        store = tmp_path / f"mlflow-{next(stores)}"
        store.mkdir()
        if backend == "sqlite":
            ml.set_tracking_uri(f"sqlite:///{store}/m.db")
        else:
            monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
            ml.set_tracking_uri(store.joinpath("mlruns").as_uri())
        try:
            return normalise(scenario(ml))
        finally:
            _forget_mlflow_state(ml)

    def both(scenario: Scenario) -> tuple[Any, Any]:
        return normalise(scenario(gittrack)), under_mlflow(scenario)

    both.mlflow = under_mlflow  # type: ignore[attr-defined]
    yield both
    _forget_mlflow_state(ml)


def outcome(call: Callable[[], Any], m: Any) -> Any:
    """What a call gave, or "refused" when it raised the library's ``MlflowException``
    (gittrack's is its ``GittrackError``)."""
    try:
        return call()
    except m.exceptions.MlflowException:
        return "refused"


def user_tags(run: Any) -> dict[str, str]:
    """A run's tags without the ones each library sets itself."""
    return {k: v for k, v in run.data.tags.items() if not k.startswith(("mlflow.", "gittrack."))}


def registered_versions(m: Any, plan: list[str]) -> str:
    """Register one version per name in ``plan`` (in that order), all from one run."""
    client = m.MlflowClient()
    with m.start_run() as run:
        m.log_text("flavor: none", "model/MLmodel")
    for name in dict.fromkeys(plan):
        client.create_registered_model(name)
    for name in plan:
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return run.info.run_id


# ----------------------------------------------------------- validation (item 5)
def _keys_scenario(m: Any) -> dict[str, Any]:
    with m.start_run() as run:
        m.log_param("é:lr", 0.1)
        m.log_metric("ü:loss", 1.0)
        m.set_tag("日本:team", "vision")
        m.log_param("a b.c-d/e_f", 2)
    got = m.get_run(run.info.run_id).data
    return {
        "params": got.params,
        "metrics": got.metrics,
        "tags": user_tags(m.get_run(run.info.run_id)),
    }


def test_keys_with_non_ascii_letters_and_colons_are_accepted_as_in_mlflow(differential) -> None:
    ours, theirs = differential(_keys_scenario)
    assert ours == theirs
    assert ours["params"] == {"é:lr": "0.1", "a b.c-d/e_f": "2"}


def _long_values_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    with m.start_run() as run:
        run_id = run.info.run_id
        m.log_param("p", "x" * 6001)
        m.set_tag("t", "y" * 8001)
        client.log_param(run_id, "client_p", "z" * 7000)
        client.log_batch(
            run_id,
            params=[m.entities.Param("batch_p", "b" * 6500)],
            tags=[m.entities.RunTag("batch_t", "c" * 9000)],
        )
        m.log_param("exact", "e" * 6000)
    got = m.get_run(run_id).data
    experiment_tag = outcome(lambda: client.set_experiment_tag("0", "long", "v" * 20001), m)
    return {
        "param_lengths": {k: len(v) for k, v in got.params.items()},
        "tag_lengths": {k: len(v) for k, v in user_tags(m.get_run(run_id)).items()},
        "prefix_kept": got.params["p"] == "x" * 6000,
        "experiment_tag_over_20000": experiment_tag,
    }


def test_param_and_tag_values_over_the_limit_are_cut_to_it_as_in_mlflow(differential) -> None:
    ours, theirs = differential(_long_values_scenario)
    assert ours == theirs
    assert ours["param_lengths"] == {"p": 6000, "client_p": 6000, "batch_p": 6000, "exact": 6000}
    assert ours["tag_lengths"] == {"t": 8000, "batch_t": 8000}


def _long_values_refused_scenario(m: Any) -> dict[str, Any]:
    with m.start_run() as run:
        refused = {
            "param": outcome(lambda: m.log_param("p", "x" * 6001), m),
            "tag": outcome(lambda: m.set_tag("t", "y" * 8001), m),
        }
    return {**refused, "stored": m.get_run(run.info.run_id).data.params}


def test_long_values_are_refused_when_truncation_is_switched_off_as_in_mlflow(
    differential, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    ours, theirs = differential(_long_values_refused_scenario)
    assert ours == theirs == {"param": "refused", "tag": "refused", "stored": {}}
    with gittrack.start_run(), pytest.raises(InvalidInputError, match="'p' has a value of 6001"):
        gittrack.log_param("p", "x" * 6001)


def _registry_tags_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    registered_versions(m, ["churn"])

    def model_tag(key: str, value: str) -> Any:
        client.set_registered_model_tag("churn", key, value)
        return len(client.get_registered_model("churn").tags[key])

    def version_tag(key: str, value: str) -> Any:
        client.set_model_version_tag("churn", "1", key, value)
        return len(client.get_model_version("churn", "1").tags[key])

    return {
        kind: {
            "over_8000": outcome(lambda s=setter: s("long", "x" * 9000), m),
            "at_100000": outcome(lambda s=setter: s("longest", "y" * 100_000), m),
            "over_100000": outcome(lambda s=setter: s("too_long", "z" * 100_001), m),
            "bad_key": outcome(lambda s=setter: s("../up", "v"), m),
            "long_key": outcome(lambda s=setter: s("k" * 251, "v"), m),
        }
        for kind, setter in (("model", model_tag), ("version", version_tag))
    }


def test_registry_tag_values_keep_mlflows_registry_limit_of_100000_characters(
    differential,
) -> None:
    ours, theirs = differential(_registry_tags_scenario)
    assert ours == theirs
    assert ours["model"] == ours["version"]
    assert ours["model"] == {
        "over_8000": 9000,
        "at_100000": 100_000,
        "over_100000": "refused",
        "bad_key": "refused",
        "long_key": "refused",
    }


def _metric_values_scenario(m: Any) -> dict[str, Any]:
    with m.start_run() as run:
        m.log_metric("text", "1.5")
        m.log_metric("nan_text", "nan")
        m.log_metric("flag", True)
        m.log_metric("np32", np.float32(0.25))
        m.log_metric("np0d", np.array(3.0))
        m.log_metric("np1", np.array([4.0]))
        m.log_metrics({"many_text": "2.5", "many_int": 7})
        refused = {
            "word": outcome(lambda: m.log_metric("word", "abc"), m),
            "none": outcome(lambda: m.log_metric("none", None), m),
        }
    return {"metrics": m.get_run(run.info.run_id).data.metrics, **refused}


def test_metric_values_are_converted_as_mlflow_converts_them(differential) -> None:
    ours, theirs = differential(_metric_values_scenario)
    assert ours == theirs
    assert ours["metrics"]["text"] == 1.5 and ours["metrics"]["flag"] == 1.0
    assert ours["word"] == ours["none"] == "refused"


def test_a_metric_value_mlflow_refuses_gets_a_message_naming_it(repo: Path) -> None:
    with gittrack.start_run():
        with pytest.raises(InvalidInputError, match="metric 'm' got value 'abc' of type str"):
            gittrack.log_metric("m", "abc")


def _empty_page_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    registered_versions(m, ["model"])
    result = {}
    for size in (0, -1):
        frame = m.search_runs(max_results=size, search_all_experiments=True)
        result[size] = {
            "fluent search_runs": (len(frame), list(frame.columns)),
            "fluent search_runs list": m.search_runs(
                max_results=size, search_all_experiments=True, output_format="list"
            ),
            "fluent search_experiments": m.search_experiments(max_results=size),
            "fluent search_registered_models": m.search_registered_models(max_results=size),
            "fluent search_model_versions": m.search_model_versions(max_results=size),
            "client search_registered_models": list(
                client.search_registered_models(max_results=size)
            ),
            "client search_runs": outcome(
                lambda s=size: client.search_runs(["0"], max_results=s), m
            ),
            "client search_experiments": outcome(
                lambda s=size: client.search_experiments(max_results=s), m
            ),
            "client search_model_versions": outcome(
                lambda s=size: client.search_model_versions(max_results=s), m
            ),
        }
    return result


def test_a_page_size_of_zero_or_less_is_answered_per_api_as_in_mlflow(differential) -> None:
    ours, theirs = differential(_empty_page_scenario)
    assert ours == theirs
    assert ours[0]["fluent search_runs"][0] == 0
    assert ours[0]["client search_runs"] == "refused"


def _still_refused_scenario(m: Any) -> dict[str, Any]:
    with m.start_run() as run:
        refused = {
            "param key with ..": outcome(lambda: m.log_param("../x", 1), m),
            "param key from /": outcome(lambda: m.log_param("/x", 1), m),
            "param key with !": outcome(lambda: m.log_param("a!b", 1), m),
            "metric key with ..": outcome(lambda: m.log_metric("a/../b", 1.0), m),
            "tag key with *": outcome(lambda: m.set_tag("a*b", "v"), m),
            "artifact leaving the run": outcome(lambda: m.log_text("x", "../escape.txt"), m),
        }
    got = m.get_run(run.info.run_id).data
    return {**refused, "stored": (got.params, got.metrics, user_tags(m.get_run(run.info.run_id)))}


def test_what_mlflow_refuses_stays_refused_with_nothing_stored(differential) -> None:
    ours, theirs = differential(_still_refused_scenario)
    assert ours == theirs
    stored = ours.pop("stored")
    assert stored == [{}, {}, {}]
    assert set(ours.values()) == {"refused"}


def test_a_refused_key_or_artifact_path_is_named_in_the_message(repo: Path) -> None:
    with gittrack.start_run():
        with pytest.raises(InvalidInputError, match="'a!b' contains '!'"):
            gittrack.log_param("a!b", 1)
        with pytest.raises(InvalidInputError, match="'../escape.txt' escapes the run"):
            gittrack.log_text("x", "../escape.txt")


# ----------------------------------------------------------------- order (item 6)
def _experiment_order_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    for name in ("beta", "alpha", "gamma"):
        client.create_experiment(name)
    return {
        "fluent": [e.name for e in m.search_experiments()],
        "client": [e.name for e in client.search_experiments()],
        "by name": [e.name for e in client.search_experiments(order_by=["name DESC"])],
    }


def test_search_experiments_lists_the_newest_first_and_default_last_as_in_mlflow(
    differential,
) -> None:
    ours, theirs = differential(_experiment_order_scenario)
    assert ours == theirs
    assert ours["fluent"] == ["gamma", "alpha", "beta", "Default"]


def _nan_metric_runs(m: Any) -> None:
    """Six runs whose metric ``m`` is a number, NaN or missing, named so that the name
    order never agrees with the expected one by chance."""
    for name, value in [
        ("a-missing", None),
        ("b-nan", math.nan),
        ("c-one", 1.0),
        ("d-missing", None),
        ("e-nan", math.nan),
        ("f-two", 2.0),
    ]:
        with m.start_run(run_name=name):
            if value is not None:
                m.log_metric("m", value)
            m.log_metric("x", 1.0)


def _names(m: Any, **search: Any) -> list[str]:
    return list(m.search_runs(**search)["tags.mlflow.runName"])


def _nan_order_scenario(m: Any) -> dict[str, Any]:
    _nan_metric_runs(m)
    orders = {
        f"{direction} then name {tie}": _names(
            m, order_by=[f"metrics.m {direction}", f"tags.mlflow.runName {tie}"]
        )
        for direction in ("ASC", "DESC")
        for tie in ("ASC", "DESC")
    }
    client_order = [
        r.info.run_name for r in m.MlflowClient().search_runs(["0"], order_by=["metrics.m DESC"])
    ]
    return {**orders, "client DESC": client_order}


def test_a_nan_metric_sorts_after_numbers_and_before_missing_in_both_directions_as_in_mlflow(
    differential,
) -> None:
    ours, theirs = differential(_nan_order_scenario)
    assert ours == theirs
    assert ours["DESC then name DESC"] == [
        "f-two",
        "c-one",
        "e-nan",
        "b-nan",
        "d-missing",
        "a-missing",
    ]


def _nan_filter_scenario(m: Any) -> dict[str, Any]:
    _nan_metric_runs(m)
    filters = [
        "metrics.m != 1",
        "metrics.m = 1",
        "metrics.m > 0",
        "metrics.m <= 2",
        "metrics.m != 1 and metrics.x = 1",
    ]
    return {f: sorted(_names(m, filter_string=f)) for f in filters}


def test_a_nan_latest_value_matches_not_equal_only_as_in_mlflow_sqlite(differential) -> None:
    ours, theirs = differential(_nan_filter_scenario)
    assert ours == theirs
    assert ours["metrics.m != 1"] == ["b-nan", "e-nan", "f-two"]


def _model_version_order_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    registered_versions(m, ["zeta", "alpha", "Mid", "zeta", "alpha"])

    def listed(versions: Any) -> list[tuple[str, str]]:
        return [(v.name, str(v.version)) for v in versions]

    return {
        "client": listed(client.search_model_versions()),
        "fluent": listed(m.search_model_versions()),
        "by name": listed(client.search_model_versions(order_by=["name ASC"])),
        "by version": listed(client.search_model_versions(order_by=["version_number ASC"])),
        "one model": listed(client.search_model_versions("name = 'zeta'")),
    }


def test_search_model_versions_lists_the_latest_updated_first_as_in_mlflow(
    differential,
) -> None:
    ours, theirs = differential(_model_version_order_scenario)
    assert ours == theirs
    assert ours["client"][:2] == [["alpha", "2"], ["zeta", "2"]]


def _status_filter_scenario(m: Any) -> dict[str, Any]:
    client = m.MlflowClient()
    ids = {}
    for name in ("ended", "killed", "failed", "updated", "live"):
        ids[name] = client.create_run("0", run_name=name).info.run_id
    client.set_terminated(ids["ended"])
    client.set_terminated(ids["killed"], "KILLED")
    client.set_terminated(ids["failed"], "FINISHED")
    client.set_terminated(ids["failed"], "FAILED")
    client.update_run(ids["updated"], status="FINISHED")
    result = {}
    for status in ("FINISHED", "KILLED", "FAILED", "RUNNING"):
        fluent = _names(m, filter_string=f"status = '{status}'", experiment_ids=["0"])
        client_names = [
            r.info.run_name for r in client.search_runs(["0"], f"attributes.status = '{status}'")
        ]
        result[status] = (sorted(fluent), sorted(client_names))
    return result


def test_the_status_filter_sees_statuses_set_after_the_run_as_in_mlflow(differential) -> None:
    ours, theirs = differential(_status_filter_scenario)
    assert ours == theirs
    assert ours["FINISHED"][0] == ["ended", "updated"]


# ------------------------------------------------------ artifact_location (item 1)
def _artifact_location_scenario(m: Any, base: Path) -> dict[str, Any]:
    """Runs of experiments with a local path and a ``file://`` artifact_location; every
    path is given relative to ``base`` with the run id as ``<run>``."""
    client = m.MlflowClient()
    result = {}
    for kind, folder in (("path", "plain"), ("uri", "uri")):
        location = str(base / folder) if kind == "path" else (base / folder).as_uri()
        experiment_id = m.create_experiment(f"stored {kind}", artifact_location=location)
        with m.start_run(experiment_id=experiment_id) as run:
            m.log_text("hello", "notes/hello.txt")
            m.log_dict({"a": 1}, "config.json")
        run_id = run.info.run_id
        client.log_text(run_id, "late", "late.txt")  # to the finished run

        def relative(text: str, run_id: str = run_id) -> str:
            return (
                text.replace(base.as_uri(), "<base-uri>")
                .replace(str(base), "<base>")
                .replace(run_id, "<run>")
            )

        download = client.download_artifacts(run_id, "notes/hello.txt", str(base / f"dl-{kind}"))
        result[kind] = {
            "experiment": relative(m.get_experiment(experiment_id).artifact_location),
            "artifact_uri": relative(client.get_run(run_id).info.artifact_uri),
            "files": sorted(
                relative(str(f.relative_to(base)))
                for f in (base / folder).rglob("*")
                if f.is_file()
            ),
            "listed": [(f.path, f.is_dir) for f in client.list_artifacts(run_id)],
            "downloaded": Path(download).read_text(),
            "status": client.get_run(run_id).info.status,
        }
    result["remote"] = outcome(
        lambda: m.create_experiment("remote", artifact_location="s3://b/p"), m
    )
    return result


def test_artifact_location_stores_run_artifacts_in_mlflows_layout(
    differential, tmp_path: Path
) -> None:
    def scenario(m: Any) -> Any:
        base = tmp_path / f"artifacts-{m.__name__}"
        base.mkdir()
        return _artifact_location_scenario(m, base)

    ours, theirs = differential(scenario)
    assert ours["remote"] == "refused" and theirs["remote"] != "refused"
    ours.pop("remote"), theirs.pop("remote")
    assert ours == theirs
    assert ours["path"]["artifact_uri"] == "<base>/plain/<run>/artifacts"
    assert ours["uri"]["artifact_uri"] == "<base-uri>/uri/<run>/artifacts"


# ------------------------------------------- run state (items 1-3, test_run_state.py)
@pytest.mark.parametrize(
    "scenario",
    [
        _set_terminated_scenario,
        _update_run_scenario,
        _run_name_scenario,
        _log_after_end_scenario,
        _thread_scenario,
    ],
    ids=[
        "set_terminated on an ended run",
        "update_run name and status",
        "run name and its tag, rename on resume",
        "logging to a finished run keeps its status",
        "a worker thread sees no active run",
    ],
)
def test_run_state_follows_mlflow(differential, scenario: Scenario) -> None:
    ours, theirs = differential(scenario)
    assert ours == theirs


# ------------------------------------------------------ where MLflow disagrees with itself
def _registered_model_empty_page_scenario(m: Any) -> Any:
    registered_versions(m, ["model"])
    return outcome(lambda: list(m.MlflowClient().search_registered_models(max_results=0)), m)


def test_where_mlflow_backends_disagree_gittrack_follows_sqlite(differential) -> None:
    """``MlflowClient.search_registered_models(max_results=0)``: sqlite answers no models,
    the file store refuses the page size; gittrack answers as sqlite."""
    ours, sqlite = differential(_registered_model_empty_page_scenario)
    file_store = differential.mlflow(_registered_model_empty_page_scenario, backend="file")
    assert sqlite == [] and file_store == "refused"
    assert ours == sqlite
