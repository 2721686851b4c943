"""search_runs on real repositories: MLflow's DataFrame, filters, order, paging and views."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gittrack
from gittrack import Client, ViewType
from gittrack.errors import GittrackError, InvalidInputError
from gittrack.query.search import search_runs
from tests.conftest import make_repo

INF = math.inf


def make_run(
    client: Client,
    experiment_id: str,
    name: str,
    start: int,
    metrics: list[tuple[str, float, int]] = (),  # type: ignore[assignment]
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    status: str = "FINISHED",
) -> str:
    run_id = client.create_run(
        experiment_id, start_time=start, run_name=name, tags=tags
    ).info.run_id
    for key, value, step in metrics:
        client.log_metric(run_id, key, value, timestamp=start + step, step=step)
    for key, value in (params or {}).items():
        client.log_param(run_id, key, value)
    client.set_terminated(run_id, status, end_time=start + 100)
    return run_id


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """A repository with runs in two experiments; returns (path, run ids by name, exp id)."""
    path = make_repo(tmp_path_factory.mktemp("search") / "project")
    client = Client(str(path))
    exp = client.create_experiment("exp")
    ids = {
        "a": make_run(
            client,
            exp,
            "a",
            1000,
            [("loss", 0.9, 0), ("loss", 0.5, 2), ("loss", 0.7, 1), ("acc", 0.9, 0)],
            {"lr": "0.01", "optimizer": "adam"},
            {"team": "vision"},
        ),
        "b": make_run(
            client,
            exp,
            "b",
            2000,
            [("loss", 0.25, 0)],
            {"lr": "0.1", "optimizer": "Adam"},
            {"team": "nlp"},
            status="FAILED",
        ),
        "c": make_run(
            client,
            exp,
            "c",
            3000,
            [("loss", INF, 0), ("acc", 0.5, 0)],
            {"optimizer": "sgd", "data path": "/data/a_b"},
            {"team": "vision"},
        ),
        "d": make_run(
            client, exp, "d", 4000, [("loss", -INF, 0), ("acc", math.nan, 0)], {"lr": "1e-3"}
        ),
        "e": make_run(
            client, exp, "e", 5000, [("acc", 1.0, 0)], {"optimizer": "a%b"}, {"team": ""}
        ),
        "f": make_run(client, exp, "f", 6000, [("loss", 0.1, 0)], {"lr": "0.5"}),
        "g": make_run(client, "0", "g", 500, [("loss", 0.3, 0)]),
    }
    client.delete_run(ids["f"])
    return path, ids, exp


@pytest.fixture
def client(tracked) -> Client:
    path, _ids, _exp = tracked
    gittrack.set_tracking_uri(path)
    return Client(str(path))


def names(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return frame["tags.mlflow.runName"].tolist()


def search_names(client: Client, filter_string: str = "", **kwargs) -> list[str]:
    kwargs.setdefault("experiment_ids", None)
    frame = search_runs(client.repository, filter_string=filter_string, **kwargs)
    return names(frame)


# ------------------------------------------------------------------ the DataFrame


def test_the_dataframe_has_mlflow_columns_in_mlflow_order(client, tracked) -> None:
    _, _, exp = tracked
    frame = gittrack.search_runs(experiment_ids=[exp])
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    rest = list(frame.columns[6:])
    prefixes = [c.split(".", 1)[0] for c in rest]
    assert prefixes == sorted(prefixes, key=["metrics", "params", "tags"].index)
    assert {"metrics.loss", "metrics.acc", "params.lr", "params.data path", "tags.team"} <= set(
        rest
    )
    assert isinstance(frame.index, pd.RangeIndex)


def test_times_are_utc_datetimes_and_metrics_are_floats(client, tracked) -> None:
    _, ids, exp = tracked
    frame = gittrack.search_runs(experiment_ids=[exp])
    assert str(frame["start_time"].dt.tz) == "UTC"
    row = frame[frame["run_id"] == ids["a"]].iloc[0]
    assert row["start_time"] == pd.Timestamp(1000, unit="ms", tz="UTC")
    assert row["end_time"] == pd.Timestamp(1100, unit="ms", tz="UTC")
    assert frame["metrics.loss"].dtype == np.float64
    assert row["artifact_uri"] == f"runs:/{ids['a']}"


def test_a_metric_column_holds_the_value_of_the_highest_step(client, tracked) -> None:
    _, ids, exp = tracked
    frame = gittrack.search_runs(experiment_ids=[exp])
    assert frame.set_index("run_id").loc[ids["a"], "metrics.loss"] == 0.5


def test_runs_without_a_key_hold_nan(client, tracked) -> None:
    _, ids, exp = tracked
    frame = gittrack.search_runs(experiment_ids=[exp]).set_index("run_id")
    assert math.isnan(frame.loc[ids["e"], "metrics.loss"])
    assert pd.isna(frame.loc[ids["e"], "params.lr"])
    assert pd.isna(frame.loc[ids["d"], "tags.team"])


def test_columns_are_those_of_the_returned_runs_only(client, tracked) -> None:
    _, _, exp = tracked
    frame = gittrack.search_runs(experiment_ids=["0"])
    assert "params.lr" not in frame.columns
    assert "metrics.loss" in frame.columns
    only_e = gittrack.search_runs(experiment_ids=[exp], filter_string="run_name = 'e'")
    assert {"metrics.acc", "params.optimizer", "tags.team"} <= set(only_e.columns)
    assert not {"metrics.loss", "params.lr"} & set(only_e.columns)


def test_a_metric_whose_latest_value_is_nan_keeps_its_column(client, tracked) -> None:
    _, ids, exp = tracked
    frame = gittrack.search_runs(experiment_ids=[exp], filter_string="run_name = 'd'")
    assert "metrics.acc" in frame.columns
    assert math.isnan(frame.loc[0, "metrics.acc"])
    assert frame.loc[0, "metrics.loss"] == -INF


def test_an_empty_result_has_the_attribute_columns(client) -> None:
    frame = gittrack.search_runs(search_all_experiments=True, filter_string="metrics.acc > 100")
    assert list(frame.columns) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert len(frame) == 0


def test_the_list_format_gives_runs_equal_to_get_run(client, tracked) -> None:
    _, ids, exp = tracked
    runs = gittrack.search_runs(experiment_ids=[exp], output_format="list")
    assert [r.info.run_name for r in runs] == ["e", "d", "c", "b", "a"]
    for run in runs:
        assert_same_run(run, client.get_run(run.info.run_id))


def assert_same_run(found, expected) -> None:
    """Equal runs; NaN equals NaN and the order of keys does not matter."""
    assert found.info == expected.info
    assert found.data.params == expected.data.params
    assert found.data.tags == expected.data.tags
    assert repr(sorted(found.data.metrics.items())) == repr(sorted(expected.data.metrics.items()))
    assert repr(sorted(found.metric_summaries.items())) == repr(
        sorted(expected.metric_summaries.items())
    )
    assert found.source == expected.source
    assert found.parent_run_id == expected.parent_run_id


def test_an_unknown_output_format_is_rejected(client) -> None:
    with pytest.raises(InvalidInputError, match="output_format"):
        gittrack.search_runs(output_format="arrow")


# ------------------------------------------------------------------ experiments


def test_the_active_experiment_is_searched_by_default(client, tracked) -> None:
    assert names(gittrack.search_runs()) == ["g"]
    gittrack.set_experiment("exp")
    assert names(gittrack.search_runs()) == ["e", "d", "c", "b", "a"]


def test_experiment_names_select_experiments_and_unknown_names_are_skipped(client) -> None:
    assert names(gittrack.search_runs(experiment_names=["exp", "nope"])) == [
        "e",
        "d",
        "c",
        "b",
        "a",
    ]


def test_ids_and_names_together_are_rejected(client, tracked) -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        gittrack.search_runs(experiment_ids=["0"], experiment_names=["exp"])


def test_search_all_experiments_skips_deleted_experiments(tmp_path: Path, monkeypatch) -> None:
    path = make_repo(tmp_path / "p")
    monkeypatch.chdir(path)
    client = Client()
    kept = client.create_experiment("kept")
    gone = client.create_experiment("gone")
    make_run(client, kept, "k", 1000)
    make_run(client, gone, "x", 2000)
    client.delete_experiment(gone)
    assert names(gittrack.search_runs(search_all_experiments=True)) == ["k"]


# ------------------------------------------------------------------ filters end to end


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.loss = 0.25", ["b"]),
        ("metrics.loss != 0.25", ["d", "c", "a"]),
        ("metrics.loss < 0.5", ["d", "b"]),
        ("metrics.loss <= 0.5", ["d", "b", "a"]),
        ("metrics.loss > 0.25", ["c", "a"]),
        ("metrics.loss >= 0.25", ["c", "b", "a"]),
        ("metrics.loss > 1e308", ["c"]),
        ("params.lr = '0.1'", ["b"]),
        ("params.lr != '0.1'", ["d", "a"]),
        ("params.optimizer LIKE 'a%'", ["e", "a"]),
        ("params.optimizer ILIKE 'a%'", ["e", "b", "a"]),
        ("params.optimizer LIKE '_dam'", ["b", "a"]),
        ("params.optimizer LIKE 'A%'", ["b"]),
        ("params.optimizer ILIKE '_DAM'", ["b", "a"]),
        ("params.`data path` LIKE '%a_b'", ["c"]),
        ("params.lr IS NULL", ["e", "c"]),
        ("params.lr IS NOT NULL", ["d", "b", "a"]),
        ("tags.team = ''", ["e"]),
        ("tags.team IN ('nlp', 'vision')", ["c", "b", "a"]),
        ("tags.team NOT IN ('nlp')", ["e", "c", "a"]),
        ("attributes.status = 'FAILED'", ["b"]),
        ("status != 'FAILED'", ["e", "d", "c", "a"]),
        ("run_name LIKE '%c%'", ["c"]),
        ("attr.start_time >= 4000", ["e", "d"]),
        ("created < 2000", ["a"]),
        ("end_time = 3100", ["c"]),
        ("metrics.loss < 0.3 oR tags.team = 'vision'", ["d", "c", "b", "a"]),
        ("(metrics.acc > 0.6 or metrics.loss < 0) AnD params.lr like '%'", ["d", "a"]),
        ('metrics."loss" > 0.4', ["c", "a"]),
        ("metrics.`loss` >= 0.5", ["c", "a"]),
    ],
)
def test_filters_select_the_expected_runs(client, tracked, filter_string, expected) -> None:
    _, _, exp = tracked
    assert search_names(client, filter_string, experiment_ids=[exp]) == expected


def test_in_on_run_id_selects_those_runs(client, tracked) -> None:
    _, ids, exp = tracked
    filter_string = f"attributes.run_id IN ('{ids['a']}', '{ids['c']}')"
    assert search_names(client, filter_string, experiment_ids=[exp]) == ["c", "a"]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("foo.loss > 1", "unknown prefix 'foo'"),
        ("params.lr = adam", "unquoted"),
        ("params.lr = 0.1", "quote the value"),
        ("params.lr > '0.1'", "comparator '>' is not valid"),
        ("metrics.loss 0.1", "expected a comparator"),
        ("metrics.loss > 0.1 garbage", "expected AND, OR or the end"),
        ("params.lr = 'abc", "unterminated"),
        ("(metrics.loss > 0.1", "expected ')'"),
        ("metrics.loss > 0.1)", "unexpected ')'"),
    ],
)
def test_bad_filters_raise_an_error_naming_the_problem(client, bad, fragment) -> None:
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        gittrack.search_runs(search_all_experiments=True, filter_string=bad)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(
        alphabet=st.sampled_from(list("metrics.lo sparam'\"`()<>=!andorINLIKE%_01.-,")), max_size=40
    )
)
def test_any_filter_text_gives_runs_or_the_projects_error(client, text) -> None:
    try:
        frame = search_runs(client.repository, filter_string=text)
    except GittrackError:
        return
    assert isinstance(frame, pd.DataFrame)


# ------------------------------------------------------------------ order and paging


def test_the_default_order_is_start_time_descending(client) -> None:
    assert search_names(client) == ["e", "d", "c", "b", "a", "g"]


def test_nan_and_missing_sort_last_both_ways_and_infinities_are_numbers(client, tracked) -> None:
    _, _, exp = tracked
    up = search_names(client, experiment_ids=[exp], order_by=["metrics.loss ASC"])
    down = search_names(client, experiment_ids=[exp], order_by=["metrics.loss DESC"])
    assert up == ["d", "b", "a", "c", "e"]
    assert down == ["c", "a", "b", "d", "e"]
    assert search_names(client, experiment_ids=[exp], order_by=["metrics.acc"]) == [
        "c",
        "a",
        "e",
        "d",
        "b",
    ]


def test_several_order_keys_break_ties_in_turn(client, tracked) -> None:
    _, _, exp = tracked
    order = ["tags.team DESC", "metrics.loss ASC"]
    assert search_names(client, experiment_ids=[exp], order_by=order) == ["a", "c", "b", "e", "d"]


def test_max_results_limits_the_dataframe(client) -> None:
    frame = gittrack.search_runs(search_all_experiments=True, max_results=2)
    assert names(frame) == ["e", "d"]


def test_paging_visits_every_run_once_in_order(client) -> None:
    seen, token = [], None
    while True:
        page = client.search_runs(["0", *_exp_ids(client)], max_results=2, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if token is None:
            break
    assert seen == ["e", "d", "c", "b", "a", "g"]


def _exp_ids(client: Client) -> list[str]:
    return [e.experiment_id for e in client.search_experiments() if e.name == "exp"]


def test_a_foreign_page_token_is_rejected(client) -> None:
    with pytest.raises(InvalidInputError, match="page token"):
        client.search_runs(["0"], page_token="not-a-token")


@pytest.mark.parametrize("bad", [0, -1, 50_001, "10"])
def test_client_max_results_must_be_a_positive_page_size(client, bad) -> None:
    with pytest.raises(InvalidInputError, match="max_results"):
        client.search_runs(["0"], max_results=bad)


# ------------------------------------------------------------------ views and live runs


def test_deleted_runs_are_found_only_in_the_deleted_and_all_views(client) -> None:
    assert "f" not in search_names(client)
    assert search_names(client, run_view_type=ViewType.DELETED_ONLY) == ["f"]
    assert search_names(client, run_view_type=ViewType.ALL)[0] == "f"
    assert search_names(client, run_view_type="deleted_only") == ["f"]


def test_a_restored_run_is_active_again(repo: Path) -> None:
    client = Client()
    run_id = make_run(client, "0", "r", 1000)
    client.delete_run(run_id)
    assert search_names(client) == []
    client.restore_run(run_id)
    assert search_names(client) == ["r"]


def test_live_runs_are_included_with_their_latest_metrics(repo: Path) -> None:
    make_run(Client(), "0", "done", 1000, [("loss", 0.4, 0)])
    with gittrack.start_run(run_name="live") as run:
        gittrack.log_metric("loss", 0.9, step=0)
        gittrack.log_metric("loss", 0.2, step=1)
        gittrack.log_param("lr", "0.3")
        frame = gittrack.search_runs().set_index("tags.mlflow.runName")
        assert frame.loc["live", "status"] == "RUNNING"
        assert frame.loc["live", "metrics.loss"] == 0.2
        assert frame.loc["live", "params.lr"] == "0.3"
        assert names(gittrack.search_runs(filter_string="metrics.loss < 0.3")) == ["live"]
    frame = gittrack.search_runs().set_index("run_id")
    assert frame.loc[run.info.run_id, "status"] == "FINISHED"


def test_a_resumed_run_shows_its_live_state_once(repo: Path) -> None:
    client = Client()
    run_id = make_run(client, "0", "again", 1000, [("loss", 0.5, 0)])
    with gittrack.start_run(run_id=run_id):
        gittrack.log_metric("loss", 0.1, step=5)
        frame = gittrack.search_runs()
        assert frame["run_id"].tolist() == [run_id]
        assert frame.loc[0, "status"] == "RUNNING"
        assert frame.loc[0, "metrics.loss"] == 0.1


# ------------------------------------------------------------------ MLflow parity


PARITY_FILTERS = [
    ("", None),
    ("metrics.m0 > 0.5", ["metrics.m0 DESC"]),
    ("metrics.m0 > 0.5 and params.p1 = 'x'", ["metrics.m0 DESC"]),
    ("metrics.m1 <= 0.3", ["metrics.m1 ASC"]),
    ("params.p0 LIKE 'v1%'", ["params.p0"]),
    ("params.p0 ILIKE 'V_'", ["params.p0 DESC"]),
    ("tags.t0 != 'red'", ["metrics.m1"]),
    ("tags.t1 = 'b' AND metrics.m0 < 0.8", ["start_time ASC"]),
    ("attributes.status = 'FAILED'", None),
    ("attributes.run_name LIKE 'run-1%'", ["attributes.run_name"]),
    ("params.p1 != 'y'", ["params.p1", "metrics.m0 DESC"]),
    ("metrics.m2 = 0.5", None),
]


@pytest.mark.slow
def test_filters_return_the_same_runs_as_mlflow_sqlite(tmp_path: Path, monkeypatch) -> None:
    mlflow_store = pytest.importorskip("mlflow.store.tracking.sqlalchemy_store")
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    store = mlflow_store.SqlAlchemyStore(
        f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "mlartifacts")
    )
    path = make_repo(tmp_path / "p")
    monkeypatch.chdir(path)
    client = Client()
    rng = np.random.default_rng(7)
    for i in range(40):
        name = f"run-{i}"
        start = 1_000 + i * 10
        metrics = {f"m{j}": float(round(rng.random(), 1)) for j in range(3) if rng.random() > 0.1}
        params = {"p0": f"v{i % 13}", "p1": ["x", "y", "z"][i % 3]}
        tags = {"t0": ["red", "blue"][i % 2], "t1": "ab"[i % 4 // 2]}
        status = "FAILED" if i % 7 == 0 else "FINISHED"
        run = store.create_run("0", "u", start, [RunTag("mlflow.runName", name)], name)
        store.log_batch(
            run.info.run_id,
            [Metric(k, v, start, 0) for k, v in metrics.items()],
            [Param(k, v) for k, v in params.items()],
            [RunTag(k, v) for k, v in tags.items()],
        )
        store.update_run_info(run.info.run_id, RunStatus.from_string(status), start + 100, name)
        make_run(
            client,
            "0",
            name,
            start,
            [(k, v, 0) for k, v in metrics.items()],
            params,
            tags,
            status=status,
        )
    for filter_string, order_by in PARITY_FILTERS:
        theirs = store.search_runs(["0"], filter_string, ViewType.ACTIVE_ONLY, 1000, order_by)
        ours = gittrack.search_runs(filter_string=filter_string, order_by=order_by)
        assert names(ours) == [r.info.run_name for r in theirs], filter_string
