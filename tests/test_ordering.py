"""order_by parsing and run sorting: MLflow's natural order, directions, missing values last."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import FilterSyntaxError, Key, apply_filter
from gittrack.query.ordering import DEFAULT_ORDER, OrderKey, parse_order_by, sort_runs

INF = math.inf
NAN = math.nan


def make_frame(rows: list[dict]) -> pd.DataFrame:
    """A run frame from compact rows: ``name``, ``start`` and prefixed key columns."""
    records = []
    for index, row in enumerate(rows):
        record = {
            "run_id": row.get("run_id", f"{index + 1:032x}"),
            "experiment_id": "0",
            "run_name": row["name"],
            "user_id": row.get("user", "ana"),
            "status": row.get("status", "FINISHED"),
            "artifact_uri": f"file:///tmp/{row['name']}",
            "start_time": row["start"],
            "end_time": row.get("end", NAN),
            "lifecycle_stage": "active",
        }
        record.update({k: v for k, v in row.items() if "." in k})
        records.append(record)
    df = pd.DataFrame(records)
    df["start_time"] = df["start_time"].astype("int64")
    df["end_time"] = df["end_time"].astype("float64")
    for column in df.columns:
        if column.startswith("metrics."):
            df[column] = df[column].astype("float64")
        elif column.startswith(("params.", "tags.")):
            df[column] = df[column].astype(object).where(df[column].notna(), None)
    return df


@pytest.fixture
def runs() -> pd.DataFrame:
    return make_frame(
        [
            {"name": "a", "start": 100, "metrics.loss": 0.5, "params.lr": "0.1", "end": 900.0},
            {"name": "b", "start": 300, "metrics.loss": NAN, "params.lr": "10"},
            {"name": "c", "start": 200, "metrics.loss": INF, "params.lr": "9", "end": 700.0},
            {"name": "d", "start": 300, "metrics.loss": -INF, "tags.team": "nlp"},
            {"name": "e", "start": 200, "metrics.loss": 0.25, "params.lr": "10"},
            {"name": "f", "start": 50, "params.lr": "0.1", "tags.team": "cv", "end": 800.0},
        ]
    )


def order(df: pd.DataFrame, order_by: list[str] | None) -> list[str]:
    return sort_runs(df, parse_order_by(order_by))["run_name"].tolist()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("metrics.loss", OrderKey(Key("metric", "loss"), ascending=True)),
        ("metric.loss DESC", OrderKey(Key("metric", "loss"), ascending=False)),
        ("params.lr asc", OrderKey(Key("param", "lr"), ascending=True)),
        ("param.lr Desc", OrderKey(Key("param", "lr"), ascending=False)),
        ("tags.mlflow.runName", OrderKey(Key("tag", "mlflow.runName"))),
        ("tags.`a.b` desc", OrderKey(Key("tag", "a.b"), ascending=False)),
        ('metrics."val loss"', OrderKey(Key("metric", "val loss"))),
        ("metrics.'val loss' DESC", OrderKey(Key("metric", "val loss"), ascending=False)),
        ("start_time", OrderKey(Key("attribute", "start_time"))),
        ("attributes.start_time DESC", OrderKey(Key("attribute", "start_time"), False)),
        ("attr.end_time", OrderKey(Key("attribute", "end_time"))),
        ("created desc", OrderKey(Key("attribute", "start_time"), ascending=False)),
        ("run_name", OrderKey(Key("attribute", "run_name"))),
        ("  status   DESC  ", OrderKey(Key("attribute", "status"), ascending=False)),
    ],
)
def test_order_by_clauses_use_the_filter_key_rules(clause, expected):
    assert parse_order_by([clause]) == [expected]


def test_no_order_by_means_the_natural_order_only():
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []


def test_a_single_string_is_one_clause():
    assert parse_order_by("metrics.loss DESC") == [OrderKey(Key("metric", "loss"), ascending=False)]


def test_the_natural_order_is_start_time_descending_then_run_id_ascending():
    natural = (
        OrderKey(Key("attribute", "start_time"), ascending=False),
        OrderKey(Key("attribute", "run_id"), ascending=True),
    )
    assert natural == DEFAULT_ORDER


@pytest.mark.parametrize(
    ("clause", "position", "fragment"),
    [
        ("", 0, "empty order_by clause"),
        ("   ", 0, "empty order_by clause"),
        ("metrics.loss up", 13, "expected ASC, DESC"),
        ("metrics.loss ASC DESC", 17, "expected the end of the clause"),
        ("metrics.loss DESC,", 17, "expected the end of the clause"),
        ("foo.loss", 0, "unknown prefix 'foo'"),
        ("loss", 0, "unknown attribute 'loss'"),
        ("metrics.`loss", 8, "unterminated"),
        ("DESC", 0, "unknown attribute 'DESC'"),
        ("= 1", 0, "expected a key"),
    ],
)
def test_malformed_order_by_clauses_are_rejected(clause, position, fragment):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_order_by([clause])
    assert caught.value.position == position
    assert fragment in str(caught.value)


def test_a_non_string_clause_is_rejected():
    with pytest.raises(InvalidInputError, match="must be a string"):
        parse_order_by([3])  # type: ignore[list-item]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_order_by_text_parses_or_raises_invalid_input(clause):
    try:
        keys = parse_order_by([clause])
    except InvalidInputError:
        return
    assert len(keys) == 1


# --------------------------------------------------------------------------- sorting


def test_runs_are_in_natural_order_without_order_by(runs):
    # b and d share start_time 300 and c and e share 200: run_id breaks the tie.
    assert order(runs, None) == ["b", "d", "c", "e", "a", "f"]


def test_metrics_sort_ascending_with_missing_and_nan_last(runs):
    assert order(runs, ["metrics.loss"]) == ["d", "e", "a", "c", "b", "f"]
    assert order(runs, ["metrics.loss ASC"]) == ["d", "e", "a", "c", "b", "f"]


def test_metrics_sort_descending_with_missing_and_nan_still_last(runs):
    assert order(runs, ["metrics.loss DESC"]) == ["c", "a", "e", "d", "b", "f"]


def test_missing_values_among_themselves_keep_the_natural_order(runs):
    # b (NaN, start 300) before f (missing, start 50), whichever the direction.
    assert order(runs, ["metrics.loss"])[-2:] == ["b", "f"]
    assert order(runs, ["metrics.loss desc"])[-2:] == ["b", "f"]


def test_params_sort_as_strings_not_numbers(runs):
    assert order(runs, ["params.lr"]) == ["a", "f", "b", "e", "c", "d"]
    assert order(runs, ["params.lr DESC"]) == ["c", "b", "e", "a", "f", "d"]


def test_tags_sort_with_missing_last(runs):
    assert order(runs, ["tags.team"]) == ["f", "d", "b", "c", "e", "a"]
    assert order(runs, ["tags.team DESC"]) == ["d", "f", "b", "c", "e", "a"]


def test_time_attributes_sort_numerically_with_missing_end_times_last(runs):
    assert order(runs, ["start_time ASC"]) == ["f", "a", "c", "e", "b", "d"]
    assert order(runs, ["end_time"]) == ["c", "f", "a", "b", "d", "e"]
    assert order(runs, ["created DESC"]) == ["b", "d", "c", "e", "a", "f"]


def test_ties_fall_back_to_the_natural_order(runs):
    # b and e share lr "10": b started later, so it comes first in both directions.
    assert order(runs, ["params.lr"])[2:4] == ["b", "e"]
    assert order(runs, ["params.lr DESC"])[1:3] == ["b", "e"]


def test_multiple_keys_break_ties_in_turn(runs):
    assert order(runs, ["params.lr DESC", "metrics.loss"]) == ["c", "e", "b", "a", "f", "d"]
    assert order(runs, ["params.lr", "start_time ASC"]) == ["f", "a", "e", "b", "c", "d"]


def test_run_id_sorts_in_either_direction(runs):
    assert order(runs, ["run_id DESC"]) == ["f", "e", "d", "c", "b", "a"]
    assert order(runs, ["attributes.run_id"]) == ["a", "b", "c", "d", "e", "f"]


def test_a_key_absent_from_the_frame_keeps_the_natural_order(runs):
    assert order(runs, ["metrics.never_logged DESC"]) == order(runs, None)


def test_index_labels_travel_with_their_rows(runs):
    labelled = runs.set_axis(list("uvwxyz"))
    result = sort_runs(labelled, parse_order_by(["metrics.loss"]))
    assert result.index.tolist() == ["x", "y", "u", "w", "v", "z"]
    assert result.loc["u", "run_name"] == "a"


def test_sorting_an_empty_frame_gives_an_empty_frame(runs):
    assert sort_runs(runs.iloc[0:0], parse_order_by(["metrics.loss"])).empty


def test_sorting_works_on_pandas_string_columns(runs):
    as_str = runs.copy()
    for column in ("run_id", "run_name", "params.lr", "tags.team"):
        as_str[column] = runs[column].astype("str").where(runs[column].notna())
    for order_by in (["params.lr"], ["tags.team DESC"], ["run_id DESC"], None):
        assert order(as_str, order_by) == order(runs, order_by)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 1.0, -1.0, INF, -INF, NAN]),
            st.sampled_from([None, "a", "b", "B", ""]),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(
        st.sampled_from(["metrics.m", "metrics.m DESC", "params.p", "params.p desc", "start_time"]),
        max_size=3,
    ),
)
def test_sorting_is_a_permutation_with_missing_values_last(rows, order_by):
    frame = make_frame(
        [
            {"name": f"r{i}", "start": start, "metrics.m": metric, "params.p": param}
            for i, (metric, param, start) in enumerate(rows)
        ]
    )
    result = sort_runs(frame, parse_order_by(order_by))
    assert sorted(result["run_id"]) == sorted(frame["run_id"])
    if order_by and order_by[0].startswith("metrics.m"):
        missing = result["metrics.m"].isna().to_numpy()
        assert not (missing[:-1] & ~missing[1:]).any()


# --------------------------------------------------------------------------- MLflow parity


def _parity_rows(count: int = 60) -> list[dict]:
    rng = random.Random(7)
    rows = []
    for index in range(count):
        row = {
            "run_id": f"{rng.getrandbits(128):032x}",
            "name": rng.choice(["run-1", "run-2", "other", "Run-3"]),
            "user": rng.choice(["ana", "bob", "ANA"]),
            "status": rng.choice(["RUNNING", "FINISHED", "FAILED"]),
            "start": rng.choice([1_000, 2_000, 3_000]) + index % 2,
            "end": rng.choice([NAN, 1_500.0, 3_500.0]),
        }
        for key in ("metrics.m0", "metrics.val loss"):
            value = rng.choice([None, -INF, -1.0, 0.0, 0.5, 2.0, INF])
            if value is not None:
                row[key] = value
        for key in ("params.p", "tags.t"):
            value = rng.choice([None, "a", "b", "10", "9", "B", ""])
            if value is not None:
                row[key] = value
        rows.append(row)
    return rows


def _as_mlflow_runs(rows: list[dict]) -> list:
    entities = pytest.importorskip("mlflow.entities")
    result = []
    for row in rows:
        info = entities.RunInfo(
            run_id=row["run_id"],
            experiment_id="0",
            user_id=row["user"],
            status=row["status"],
            start_time=row["start"],
            end_time=None if math.isnan(row["end"]) else int(row["end"]),
            lifecycle_stage="active",
            artifact_uri=f"file:///tmp/{row['name']}",
            run_name=row["name"],
        )
        values = {kind: {} for kind in ("metrics", "params", "tags")}
        for column, value in row.items():
            if "." in column:
                kind, key = column.split(".", 1)
                values[kind][key] = value
        data = entities.RunData(
            metrics=[entities.Metric(k, v, 0, 0) for k, v in values["metrics"].items()],
            params=[entities.Param(k, v) for k, v in values["params"].items()],
            tags=[entities.RunTag(k, v) for k, v in values["tags"].items()],
        )
        result.append(entities.Run(info, data))
    return result


@pytest.mark.parametrize(
    "order_by",
    [
        [],
        ["metrics.m0"],
        ["metrics.m0 DESC"],
        ["metrics.`val loss` desc", "params.p"],
        ["params.p ASC", "metrics.m0 DESC"],
        ["params.p DESC"],
        ["tags.t desc", "end_time"],
        ["end_time DESC"],
        ["start_time ASC"],
        ["run_name", "created DESC"],
        ["status", "user_id DESC"],
        ["run_id DESC"],
        ["artifact_uri", "metrics.m0"],
    ],
)
def test_sorting_matches_mlflow(order_by):
    pytest.importorskip("mlflow")
    from mlflow.utils.search_utils import SearchUtils

    rows = _parity_rows()
    expected = [run.info.run_id for run in SearchUtils.sort(_as_mlflow_runs(rows), order_by)]
    assert sort_runs(make_frame(rows), parse_order_by(order_by))["run_id"].tolist() == expected


# --------------------------------------------------------------------------- performance


def _large_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, object] = {
        "run_id": [f"{value:032x}" for value in rng.integers(0, 2**63, n)],
        "experiment_id": "0",
        "run_name": [f"run-{i}" for i in range(n)],
        "user_id": "ana",
        "status": rng.choice(["FINISHED", "FAILED", "RUNNING"], n),
        "artifact_uri": "file:///tmp/artifacts",
        "start_time": 1_700_000_000_000 + rng.integers(0, n * 10, n),
        "end_time": np.nan,
        "lifecycle_stage": "active",
    }
    for i in range(5):
        metric = rng.random(n)
        metric[rng.random(n) < 0.1] = np.nan
        data[f"metrics.m{i}"] = metric
        data[f"params.p{i}"] = rng.choice(np.array(["x", "y", "z", None], dtype=object), n)
        data[f"tags.t{i}"] = rng.choice(np.array(["a", "b", None], dtype=object), n)
    return pd.DataFrame(data)


def test_filter_and_order_by_over_100k_runs_returns_the_matching_rows_in_order():
    frame = _large_frame(100_000)
    order_by = parse_order_by(["metrics.m1 DESC", "params.p2"])
    result = sort_runs(apply_filter(frame, "metrics.m0 > 0.5 and params.p1 = 'x'"), order_by)
    assert 0 < len(result) < len(frame)
    assert (result["metrics.m0"] > 0.5).all()
    assert (result["params.p1"] == "x").all()
    ranked = result["metrics.m1"].dropna()
    assert ranked.is_monotonic_decreasing
