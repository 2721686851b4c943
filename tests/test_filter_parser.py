"""The search filter language: grammar, MLflow semantics, extensions and error messages."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import (
    And,
    Comparison,
    FilterSyntaxError,
    Key,
    MatchAll,
    Or,
    apply_filter,
    filter_mask,
    parse_filter,
)

INF = math.inf
NAN = math.nan

RUNS = [
    {
        "name": "alpha",
        "status": "FINISHED",
        "user": "ana",
        "start": 1_000,
        "end": 2_000.0,
        "metrics": {"loss": 0.5, "acc": 0.9, "val loss": 0.3},
        "params": {"lr": "0.01", "optimizer": "adam", "data.path": "/data/a_b"},
        "tags": {"team": "vision", "mlflow.runName": "alpha", "a-b/c": "x"},
    },
    {
        "name": "beta",
        "status": "FAILED",
        "user": "bob",
        "start": 2_000,
        "metrics": {"loss": 0.25},
        "params": {"lr": "0.1", "optimizer": "Adam"},
        "tags": {"team": "nlp"},
    },
    {
        "name": "gamma",
        "status": "FINISHED",
        "user": "ANA",
        "start": 3_000,
        "end": 4_500.0,
        "metrics": {"loss": INF, "acc": 0.5},
        "params": {"optimizer": "sgd", "data.path": "/data/abc"},
        "tags": {"team": "vision", "note": "line one\nline two"},
    },
    {
        "name": "delta",
        "status": "RUNNING",
        "user": "bob",
        "start": 4_000,
        "metrics": {"loss": -INF, "acc": NAN},
        "params": {"lr": "1e-3"},
        "tags": {},
    },
    {
        "name": "epsilon",
        "status": "KILLED",
        "user": "cy",
        "start": 5_000,
        "end": 5_100.0,
        "metrics": {"acc": 1.0},
        "params": {"optimizer": "a.b*c"},
        "tags": {"team": ""},
    },
]
ALL = ["alpha", "beta", "gamma", "delta", "epsilon"]


def run_id(index: int) -> str:
    return f"{index + 1:032x}"


def make_frame(runs: list[dict], strings: str = "object") -> pd.DataFrame:
    """The run frame of the query layer; ``strings`` picks object or pandas ``str`` columns."""
    rows = []
    for index, run in enumerate(runs):
        row = {
            "run_id": run_id(index),
            "experiment_id": "0",
            "run_name": run["name"],
            "user_id": run["user"],
            "status": run["status"],
            "artifact_uri": f"file:///tmp/artifacts/{run['name']}",
            "start_time": run["start"],
            "end_time": run.get("end", NAN),
            "lifecycle_stage": "active",
        }
        row.update({f"metrics.{k}": v for k, v in run["metrics"].items()})
        row.update({f"params.{k}": v for k, v in run["params"].items()})
        row.update({f"tags.{k}": v for k, v in run["tags"].items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    df["start_time"] = df["start_time"].astype("int64")
    df["end_time"] = df["end_time"].astype("float64")
    for column in df.columns:
        if column.startswith("metrics."):
            df[column] = df[column].astype("float64")
        elif not column.endswith("_time"):
            df[column] = _string_column(df[column], strings)
    return df


def _string_column(column: pd.Series, strings: str) -> pd.Series:
    if strings == "str":
        return column.astype("str").where(column.notna())
    return column.astype(object).where(column.notna(), None)


@pytest.fixture(params=["object", "str"])
def runs(request: pytest.FixtureRequest) -> pd.DataFrame:
    return make_frame(RUNS, request.param)


def names(df: pd.DataFrame, filter_string: str | None) -> list[str]:
    return apply_filter(df, filter_string)["run_name"].tolist()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\t"])
def test_an_empty_filter_matches_every_run(runs, empty):
    assert parse_filter(empty) == MatchAll()
    assert names(runs, empty) == ALL


def test_a_comparison_parses_to_key_comparator_and_value():
    assert parse_filter("metrics.loss < 0.5") == Comparison(Key("metric", "loss"), "<", 0.5)


def test_and_binds_tighter_than_or():
    tree = parse_filter("metrics.a > 1 or metrics.b > 2 and metrics.c > 3")
    assert tree == Or(
        (
            Comparison(Key("metric", "a"), ">", 1.0),
            And(
                (
                    Comparison(Key("metric", "b"), ">", 2.0),
                    Comparison(Key("metric", "c"), ">", 3.0),
                )
            ),
        )
    )


def test_chained_and_is_flattened():
    tree = parse_filter("metrics.a > 1 and (metrics.b > 2 and metrics.c > 3)")
    assert isinstance(tree, And)
    assert len(tree.operands) == 3


def test_parsed_filters_are_cached():
    assert parse_filter("params.p = 'cached'") is parse_filter("params.p = 'cached'")


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("metric", "metric"),
        ("metrics", "metric"),
        ("param", "param"),
        ("params", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tag", "tag"),
        ("tags", "tag"),
        ("`metrics`", "metric"),
    ],
)
def test_every_mlflow_prefix_alias_is_accepted(prefix, kind):
    value = "1" if kind == "metric" else "'1'"
    tree = parse_filter(f"{prefix}.k = {value}")
    assert isinstance(tree, Comparison)
    assert tree.key == Key(kind, "k")


@pytest.mark.parametrize("prefix", ["attribute", "attributes", "attr", "run", ""])
def test_attribute_prefixes_and_no_prefix_name_an_attribute(prefix):
    key = f"{prefix}.status" if prefix else "status"
    tree = parse_filter(f"{key} = 'FINISHED'")
    assert tree == Comparison(Key("attribute", "status"), "=", "FINISHED")


@pytest.mark.parametrize(
    ("alias", "name"),
    [("created", "start_time"), ("Created", "start_time"), ('"run name"', "run_name")],
)
def test_attribute_aliases_resolve_to_their_column(alias, name):
    value = "1" if name == "start_time" else "'x'"
    tree = parse_filter(f"attributes.{alias} = {value}")
    assert isinstance(tree, Comparison)
    assert tree.key == Key("attribute", name)


@pytest.mark.parametrize(
    "key",
    ['metrics."val loss"', "metrics.'val loss'", "metrics.`val loss`", "`metrics`.`val loss`"],
)
def test_keys_with_special_characters_are_quoted_with_any_quote(runs, key):
    assert names(runs, f"{key} < 0.4") == ["alpha"]


def test_a_quoted_key_may_contain_dots(runs):
    assert names(runs, "params.`data.path` = '/data/a_b'") == ["alpha"]


def test_an_unquoted_dotted_key_splits_at_the_first_dot(runs):
    tree = parse_filter("tags.mlflow.runName = 'alpha'")
    assert isinstance(tree, Comparison)
    assert tree.key == Key("tag", "mlflow.runName")
    assert names(runs, "tags.mlflow.runName = 'alpha'") == ["alpha"]


def test_an_unquoted_key_may_contain_dashes_and_slashes(runs):
    assert names(runs, "tags.a-b/c = 'x'") == ["alpha"]


@pytest.mark.parametrize("key", ['"start_time"', "`start_time`"])
def test_a_bare_attribute_may_be_quoted_as_a_key(key):
    assert parse_filter(f"{key} > 1") == Comparison(Key("attribute", "start_time"), ">", 1.0)


@pytest.mark.parametrize(
    ("literal", "value"),
    [("3", 3.0), ("-2", -2.0), ("+2", 2.0), ("0.25", 0.25), (".5", 0.5), ("5.", 5.0)]
    + [("1e-3", 1e-3), ("1E+3", 1e3), ("-2.5e2", -250.0), ("1e999", INF)],
)
def test_numeric_literals_may_be_int_float_or_scientific(literal, value):
    tree = parse_filter(f"metrics.m > {literal}")
    assert tree == Comparison(Key("metric", "m"), ">", value)


def test_comparators_need_no_surrounding_spaces(runs):
    assert names(runs, "metrics.loss>0.3 and params.optimizer='adam'") == ["alpha"]


@pytest.mark.parametrize(
    "filter_string",
    [
        "params.optimizer like 'a%' AND metrics.loss > 0",
        "params.optimizer LIKE 'a%' and metrics.loss > 0",
        "params.optimizer Like 'a%' aNd metrics.loss > 0",
    ],
)
def test_keywords_are_case_insensitive(runs, filter_string):
    assert names(runs, filter_string) == ["alpha"]


def test_lowercase_or_ilike_in_and_is_null_are_keywords(runs):
    filter_string = (
        "params.optimizer ilike 'ADAM' or run_id in ('00000000000000000000000000000004') "
        "or tags.team is null or tags.team is not null and status not in ('FINISHED')"
    )
    assert names(runs, filter_string) == ["alpha", "beta", "delta", "epsilon"]


@pytest.mark.parametrize(
    ("literal", "text"),
    [
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'C:\\dir'", "C:\\dir"),
        ("'a \"b\" c'", 'a "b" c'),
    ],
)
def test_quotes_inside_strings_are_escaped_by_doubling_or_backslash(literal, text):
    assert parse_filter(f"params.p = {literal}") == Comparison(Key("param", "p"), "=", text)


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("= 0.5", ["alpha"]),
        ("!= 0.5", ["beta", "gamma", "delta"]),
        ("< 0.5", ["beta", "delta"]),
        ("<= 0.5", ["alpha", "beta", "delta"]),
        ("> 0.25", ["alpha", "gamma"]),
        (">= 0.25", ["alpha", "beta", "gamma"]),
    ],
)
def test_metrics_compare_numerically_with_every_comparator(runs, comparison, expected):
    assert names(runs, f"metrics.loss {comparison}") == expected


def test_a_run_without_the_metric_matches_no_comparison_not_even_not_equal(runs):
    # MLflow's rule: a missing value never satisfies a comparison. epsilon logged no loss.
    assert "epsilon" not in names(runs, "metrics.loss != 12345")
    assert "epsilon" not in names(runs, "metrics.loss < 12345")


def test_a_nan_metric_behaves_as_missing(runs):
    # delta's acc is NaN: the frame cannot tell it from a missing value.
    assert names(runs, "metrics.acc != 0.5") == ["alpha", "epsilon"]
    assert names(runs, "metrics.acc < 100") == ["alpha", "gamma", "epsilon"]


def test_infinite_metrics_compare_as_infinities(runs):
    assert names(runs, "metrics.loss > 1e300") == ["gamma"]
    assert names(runs, "metrics.loss < -1e300") == ["delta"]
    assert names(runs, "metrics.loss = 1e999") == ["gamma"]
    assert names(runs, "metrics.loss = -1e999") == ["delta"]


def test_a_metric_absent_from_the_frame_matches_nothing(runs):
    assert names(runs, "metrics.never_logged != 0") == []


def test_a_time_attribute_compares_numerically(runs):
    assert names(runs, "start_time >= 3000") == ["gamma", "delta", "epsilon"]
    assert names(runs, "created < 2000") == ["alpha"]
    assert names(runs, "attributes.start_time != 1000") == ["beta", "gamma", "delta", "epsilon"]


def test_a_run_without_an_end_time_matches_no_end_time_comparison(runs):
    assert names(runs, "end_time > 0") == ["alpha", "gamma", "epsilon"]
    assert names(runs, "end_time != 0") == ["alpha", "gamma", "epsilon"]


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("= 'adam'", ["alpha"]),
        ("!= 'adam'", ["beta", "gamma", "epsilon"]),
        ("LIKE 'a%'", ["alpha", "epsilon"]),
        ("ILIKE 'a%'", ["alpha", "beta", "epsilon"]),
        ("IN ('sgd', 'Adam')", ["beta", "gamma"]),
        ("NOT IN ('sgd', 'Adam')", ["alpha", "epsilon"]),
        ("IS NULL", ["delta"]),
        ("IS NOT NULL", ["alpha", "beta", "gamma", "epsilon"]),
    ],
)
def test_params_compare_as_strings_with_every_comparator(runs, comparison, expected):
    assert names(runs, f"params.optimizer {comparison}") == expected


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("= 'vision'", ["alpha", "gamma"]),
        ("!= 'vision'", ["beta", "epsilon"]),
        ("= ''", ["epsilon"]),
        ("LIKE 'v%'", ["alpha", "gamma"]),
        ("ILIKE 'NLP'", ["beta"]),
        ("IN ('nlp', '')", ["beta", "epsilon"]),
        ("NOT IN ('nlp')", ["alpha", "gamma", "epsilon"]),
        ("IS NULL", ["delta"]),
        ("IS NOT NULL", ["alpha", "beta", "gamma", "epsilon"]),
    ],
)
def test_tags_compare_as_strings_with_every_comparator(runs, comparison, expected):
    assert names(runs, f"tags.team {comparison}") == expected


def test_string_equality_is_exact_and_case_sensitive(runs):
    assert names(runs, "params.optimizer = 'Adam'") == ["beta"]
    assert names(runs, "params.lr = '0.1'") == ["beta"]


def test_a_double_quoted_value_is_a_string(runs):
    assert names(runs, 'params.optimizer = "adam"') == ["alpha"]


def test_a_run_without_the_param_matches_neither_equal_nor_not_equal(runs):
    assert "delta" not in names(runs, "params.optimizer != 'adam'")
    assert "delta" not in names(runs, "params.optimizer NOT IN ('adam')")


def test_like_percent_matches_any_sequence(runs):
    assert names(runs, "params.optimizer LIKE '%a%'") == ["alpha", "beta", "epsilon"]
    assert names(runs, "params.optimizer LIKE '%'") == ["alpha", "beta", "gamma", "epsilon"]
    assert names(runs, "params.optimizer LIKE 'ad%m'") == ["alpha"]


def test_like_percent_matches_an_empty_sequence(runs):
    assert names(runs, "params.optimizer LIKE 'adam%'") == ["alpha"]
    assert names(runs, "tags.team LIKE '%'") == ["alpha", "beta", "gamma", "epsilon"]


def test_like_underscore_matches_exactly_one_character(runs):
    assert names(runs, "params.optimizer LIKE 's_d'") == ["gamma"]
    assert names(runs, "params.optimizer LIKE '_'") == []
    assert names(runs, "params.optimizer LIKE '____'") == ["alpha", "beta"]


def test_like_without_wildcards_is_equality(runs):
    assert names(runs, "params.optimizer LIKE 'adam'") == ["alpha"]


def test_like_is_case_sensitive(runs):
    assert names(runs, "params.optimizer LIKE 'A%'") == ["beta"]


def test_ilike_folds_case(runs):
    assert names(runs, "params.optimizer ILIKE 'ADAM'") == ["alpha", "beta"]
    assert names(runs, "user_id ILIKE 'ana'") == ["alpha", "gamma"]


def test_like_treats_regex_characters_literally(runs):
    assert names(runs, "params.optimizer LIKE 'a.b*c'") == ["epsilon"]
    assert names(runs, "params.optimizer LIKE 'a.b%'") == ["epsilon"]
    assert names(runs, "params.optimizer LIKE '.*'") == []
    assert names(runs, "params.optimizer LIKE '(a|s)%'") == []


def test_an_underscore_in_a_like_pattern_also_matches_a_literal_underscore(runs):
    assert names(runs, "params.`data.path` LIKE '/data/a_b'") == ["alpha"]
    assert names(runs, "params.`data.path` LIKE '/data/a_%'") == ["alpha", "gamma"]


def test_like_wildcards_cross_newlines(runs):
    assert names(runs, "tags.note LIKE 'line%two'") == ["gamma"]
    assert names(runs, "tags.note LIKE 'line one_line two'") == ["gamma"]


def test_is_null_on_a_key_absent_from_the_frame_matches_every_run(runs):
    assert names(runs, "tags.never_set IS NULL") == ALL
    assert names(runs, "tags.never_set IS NOT NULL") == []
    assert names(runs, "params.never_set = 'x'") == []


def test_in_on_run_id_selects_the_listed_runs(runs):
    filter_string = f"run_id IN ('{run_id(0)}', '{run_id(3)}', 'not-a-run')"
    assert names(runs, filter_string) == ["alpha", "delta"]


def test_not_in_on_run_id_excludes_the_listed_runs(runs):
    assert names(runs, f"run_id NOT IN ('{run_id(0)}', \"{run_id(3)}\",)") == [
        "beta",
        "gamma",
        "epsilon",
    ]


def test_a_single_element_in_list_needs_no_trailing_comma(runs):
    assert names(runs, f"run_id IN ('{run_id(1)}')") == ["beta"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("status = 'FINISHED'", ["alpha", "gamma"]),
        ("status != 'FINISHED'", ["beta", "delta", "epsilon"]),
        ("status LIKE '%ED'", ["alpha", "beta", "gamma", "epsilon"]),
        ("status IN ('RUNNING', 'KILLED')", ["delta", "epsilon"]),
        ("status = 'finished'", []),
        ("run_name = 'beta'", ["beta"]),
        ("attributes.`run name` LIKE '%lt%'", ["delta"]),
        ("user_id = 'bob'", ["beta", "delta"]),
        ("user_id NOT IN ('bob', 'cy')", ["alpha", "gamma"]),
        ("artifact_uri LIKE 'file:///tmp/artifacts/%a'", ["alpha", "beta", "gamma", "delta"]),
        ("artifact_uri ILIKE '%/GAMMA'", ["gamma"]),
    ],
)
def test_string_attributes_compare_as_strings(runs, filter_string, expected):
    assert names(runs, filter_string) == expected


# --------------------------------------------------------------------------- combining


def test_and_requires_every_comparison(runs):
    assert names(runs, "status = 'FINISHED' AND metrics.acc > 0.6") == ["alpha"]


def test_or_requires_any_comparison(runs):
    assert names(runs, "status = 'FAILED' OR status = 'KILLED'") == ["beta", "epsilon"]


def test_or_has_lower_precedence_than_and(runs):
    filter_string = "status = 'KILLED' OR status = 'FINISHED' AND metrics.acc < 0.6"
    assert names(runs, filter_string) == ["gamma", "epsilon"]


def test_parentheses_override_precedence(runs):
    filter_string = "(status = 'KILLED' OR status = 'FINISHED') AND metrics.acc < 0.6"
    assert names(runs, filter_string) == ["gamma"]


def test_nested_parentheses(runs):
    filter_string = (
        "((user_id = 'bob' and (metrics.loss < 0 or params.lr = '0.1'))) or (run_name = 'x')"
    )
    assert names(runs, filter_string) == ["beta", "delta"]


def test_filter_mask_is_a_boolean_series_aligned_with_the_frame_index(runs):
    frame = runs.set_axis([f"row{i}" for i in range(len(runs))])
    mask = filter_mask(parse_filter("user_id = 'bob'"), frame)
    assert mask.dtype == bool
    assert mask.index.equals(frame.index)
    assert mask.tolist() == [False, True, False, True, False]


def test_apply_filter_keeps_columns_and_index_labels(runs):
    frame = runs.set_axis([10, 20, 30, 40, 50])
    result = apply_filter(frame, "user_id = 'bob'")
    assert result.index.tolist() == [20, 40]
    assert list(result.columns) == list(frame.columns)


def test_filtering_an_empty_frame_gives_an_empty_frame():
    empty = make_frame(RUNS).iloc[0:0]
    assert apply_filter(empty, "metrics.loss > 0 or params.optimizer LIKE 'a%'").empty


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("filter_string", "position", "fragments"),
    [
        ("foo.x = 1", 0, ["unknown prefix 'foo'", "metrics, params, tags"]),
        ("bogus = 'x'", 0, ["unknown attribute 'bogus'", "run_id"]),
        ("experiment_id = '0'", 0, ["unknown attribute 'experiment_id'"]),
        ("params.p = adam", 11, ["quoted string value", "'adam'"]),
        ("tags.t = vision", 9, ["quoted string value", "'vision'"]),
        ("params.p = 1", 11, ["params are strings", "'1'"]),
        ("tags.t = 2.5", 9, ["tags are strings", "'2.5'"]),
        ("params.p = `x`", 11, ["backticks quote keys"]),
        ("params.p > 'x'", 9, ["comparator '>'", "param 'p'", "LIKE"]),
        ("tags.t <= 'x'", 7, ["comparator '<='", "tag 't'"]),
        ("metrics.m LIKE '1'", 10, ["comparator 'LIKE'", "metric 'm'", ">="]),
        ("metrics.m IS NULL", 10, ["comparator 'IS NULL'", "metric 'm'"]),
        ("metrics.m IN ('1')", 10, ["comparator 'IN'"]),
        ("status IS NULL", 7, ["comparator 'IS NULL'", "attribute 'status'"]),
        ("start_time LIKE '1%'", 11, ["comparator 'LIKE'", "attribute 'start_time'"]),
        ("metrics.m = 'a'", 12, ["expected a number", "'a'"]),
        ("start_time > 'yesterday'", 13, ["expected a number", "'start_time'"]),
        ("metrics.m = inf", 12, ["expected a number", "'inf'"]),
        ("metrics.m 1", 10, ["expected a comparator", "'1'"]),
        ("metrics.m", 9, ["expected a comparator", "end of the input"]),
        ("metrics.m == 1", 10, ["'=='", "use '='"]),
        ("metrics.m <> 1", 10, ["'<>'", "use '!='"]),
        ("metrics.m ! 1", 10, ["'!'"]),
        ("metrics.m > 1 foo", 14, ["expected AND, OR or the end", "'foo'"]),
        ("metrics.m > 1 metrics.n > 2", 14, ["expected AND, OR or the end"]),
        ("metrics.m > 1 AND", 17, ["expected a key", "end of the input"]),
        ("AND metrics.m > 1", 0, ["expected a key", "'AND'"]),
        ("metrics.m > 1 AND OR metrics.n > 1", 18, ["expected a key", "'OR'"]),
        ("params.p = 'abc", 11, ["unterminated", "'"]),
        ('params.p = "abc', 11, ["unterminated", '"']),
        ("params.`p = 'x'", 7, ["unterminated", "`"]),
        ("(metrics.m > 1", 14, ["expected ')'", "'(' at position 0"]),
        ("((metrics.m > 1)", 16, ["expected ')'", "'(' at position 0"]),
        ("metrics.m > 1)", 13, ["unexpected ')'"]),
        ("()", 1, ["expected a key", "')'"]),
        ("run_id IN ()", 11, ["empty IN list"]),
        ("params.p IN ('a', 1)", 18, ["params are strings"]),
        ("params.p IN ('a' 'b')", 17, ["expected ',' or ')'"]),
        ("params.p IN 'a'", 12, ["expected '('"]),
        ("params.p NOT LIKE 'a'", 13, ["expected IN after NOT"]),
        ("params.p IS 'a'", 12, ["expected NULL or NOT NULL"]),
        ("params.p IS NOT 'a'", 16, ["expected NULL after IS"]),
        ("'status' = 'x'", 0, ["expected a key", "'status'"]),
        ("metrics. > 1", 8, ["expected a key after 'metrics.'"]),
        ('metrics."" > 1', 0, ["empty key"]),
        ("params.a.`b` = 'x'", 0, ["quoted whole"]),
        ("metrics.m > 1.2.3", 12, ["malformed number '1.2.3'"]),
        ("metrics.m > 1e", 12, ["malformed number"]),
        ("metrics.m > 12abc", 12, ["malformed number '12abc'"]),
        ("metrics.m > 1 ; drop", 14, ["unexpected character ';'"]),
        ("metrics.m > 1 && metrics.n > 1", 14, ["unexpected character '&'"]),
    ],
)
def test_malformed_filters_name_the_token_position_and_expectation(
    filter_string, position, fragments
):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(filter_string)
    error = caught.value
    assert error.position == position
    assert f"position {position}" in str(error)
    for fragment in fragments:
        assert fragment in str(error)


def test_syntax_errors_are_invalid_input_errors():
    with pytest.raises(InvalidInputError):
        parse_filter("params.p > 'x'")
    assert issubclass(FilterSyntaxError, ValueError)


def test_a_non_string_filter_is_rejected():
    with pytest.raises(InvalidInputError, match="must be a string"):
        parse_filter(["metrics.m > 1"])  # type: ignore[arg-type]


def test_deep_nesting_is_rejected_rather_than_overflowing_the_stack():
    with pytest.raises(FilterSyntaxError, match="nested deeper"):
        parse_filter("(" * 5000 + "metrics.m > 1" + ")" * 5000)
    assert parse_filter("(" * 50 + "metrics.m > 1" + ")" * 50) == Comparison(
        Key("metric", "m"), ">", 1.0
    )


# --------------------------------------------------------------------------- properties

VOCABULARY = [
    "metrics.loss",
    "metric.acc",
    "params.optimizer",
    "tags.team",
    "tags.`a.b`",
    'metrics."val loss"',
    "run_id",
    "status",
    "start_time",
    "created",
    "end_time",
    "foo.bar",
    "bogus",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "LIKE",
    "ilike",
    "IN",
    "not",
    "IS",
    "NULL",
    "AND",
    "or",
    "(",
    ")",
    ",",
    "'adam'",
    '"vision"',
    "'a%'",
    "'_'",
    "`x`",
    "'",
    '"',
    "`",
    "1",
    "-2.5e3",
    ".5",
    "1e999",
    "abc",
    ".",
    "%",
    "\\",
    "''",
]


PROPERTY_FRAMES = (make_frame(RUNS, "object"), make_frame(RUNS, "str"))


def _evaluate_or_reject(filter_string: str) -> None:
    try:
        expr = parse_filter(filter_string)
    except InvalidInputError:
        return
    for frame in PROPERTY_FRAMES:
        mask = filter_mask(expr, frame)
        assert mask.dtype == bool
        assert len(mask) == len(frame)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
@example("metrics.m > \u00b2")
@example("metrics.m > 1\u00b2")
@example("metrics.m > \u0661")
def test_random_text_either_filters_or_raises_invalid_input(filter_string):
    _evaluate_or_reject(filter_string)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(VOCABULARY), st.sampled_from([" ", "", "  ", "\n"])),
        max_size=14,
    )
)
def test_token_soups_either_filter_or_raise_invalid_input(pieces):
    _evaluate_or_reject("".join(word + separator for word, separator in pieces))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["metrics.loss", "metrics.acc", "start_time", "end_time"]),
    st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**30), 10**30),
)
def test_any_numeric_comparison_is_evaluated(key, comparator, number):
    expr = parse_filter(f"{key} {comparator} {number!r}")
    for frame in PROPERTY_FRAMES:
        assert filter_mask(expr, frame).dtype == bool


# --------------------------------------------------------------------------- MLflow parity


def _parity_runs(count: int = 80) -> list[dict]:
    rng = random.Random(20240611)
    metric_values = [None, -INF, -1.0, 0.0, 0.25, 0.5, 1.0, 3.5, INF]
    strings = [None, "a", "ab", "Abc", "abc", "a_c", "x%y", "1.5", "vision", "nlp", ""]
    runs = []
    for index in range(count):
        run = {
            "run_id": f"{rng.getrandbits(128):032x}",
            "run_name": rng.choice(["run-1", "run-12", "Run-2", "other", "train run"]),
            "user_id": rng.choice(["ana", "bob", "ANA"]),
            "status": rng.choice(["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]),
            "start_time": rng.choice([1_000, 2_000, 2_500, 3_000, 4_000]) + index % 3,
            "end_time": rng.choice([None, 1_500, 3_500, 5_000]),
            "metrics": {},
            "params": {},
            "tags": {},
        }
        run["artifact_uri"] = f"file:///store/artifacts/{run['run_id']}"
        for key in ("m0", "m1", "val loss"):
            value = rng.choice(metric_values)
            if value is not None:
                run["metrics"][key] = value
        for kind, keys in (("params", ("p", "q", "data.path")), ("tags", ("t", "a-b/c"))):
            for key in keys:
                value = rng.choice(strings)
                if value is not None:
                    run[kind][key] = value
        if index % 4 == 0:
            run["tags"]["mlflow.source.type"] = "LOCAL"
        runs.append(run)
    return runs


def _as_mlflow_runs(runs: list[dict]) -> list:
    entities = pytest.importorskip("mlflow.entities")
    result = []
    for run in runs:
        info = entities.RunInfo(
            run_id=run["run_id"],
            experiment_id="0",
            user_id=run["user_id"],
            status=run["status"],
            start_time=run["start_time"],
            end_time=run["end_time"],
            lifecycle_stage="active",
            artifact_uri=run["artifact_uri"],
            run_name=run["run_name"],
        )
        data = entities.RunData(
            metrics=[entities.Metric(k, v, 0, 0) for k, v in run["metrics"].items()],
            params=[entities.Param(k, v) for k, v in run["params"].items()],
            tags=[entities.RunTag(k, v) for k, v in run["tags"].items()],
        )
        result.append(entities.Run(info, data))
    return result


def _as_frame(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for run in runs:
        row = {k: run[k] for k in ("run_id", "run_name", "user_id", "status", "artifact_uri")}
        row.update(
            experiment_id="0",
            start_time=run["start_time"],
            end_time=np.nan if run["end_time"] is None else float(run["end_time"]),
            lifecycle_stage="active",
        )
        for kind in ("metrics", "params", "tags"):
            row.update({f"{kind}.{k}": v for k, v in run[kind].items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    for column in df.columns:
        if column.startswith("metrics."):
            df[column] = df[column].astype("float64")
        elif column.startswith(("params.", "tags.")):
            df[column] = df[column].astype(object).where(df[column].notna(), None)
    return df


def _parity_filters(runs: list[dict]) -> list[str]:
    first, second, third = (run["run_id"] for run in runs[:3])
    return [
        "metrics.m0 > 0.5",
        "metrics.m0 >= 0.5",
        "metrics.m0 < 0",
        "metrics.m0 <= -1",
        "metrics.m0 = 1",
        "metrics.m0 != 1",
        "metric.m1 > -0.5",
        "metrics.m1 < 1e300",
        "metrics.m1 > 1e300",
        "metrics.`val loss` < 0.3",
        'metrics."val loss" >= 0.3',
        "metrics.m0 > 1e-3",
        "metrics.m0 < .5",
        "metrics.never != 0",
        "params.p = 'a'",
        "params.p != 'a'",
        'param.p = "ab"',
        "parameters.p = ''",
        "params.p LIKE 'a%'",
        "params.p LIKE '%c'",
        "params.p LIKE 'a_c'",
        "params.p like '_b%'",
        "params.p LIKE '%'",
        "params.p ILIKE 'abc'",
        "params.p ilike 'A%'",
        "params.p LIKE 'x%y'",
        "params.p IS NULL",
        "params.q IS NOT NULL",
        "params.`data.path` LIKE '%.%'",
        "tags.t = 'vision'",
        "tags.t != 'nlp'",
        "tag.`a-b/c` ILIKE 'ABC'",
        "tags.mlflow.source.type = 'LOCAL'",
        "tags.t IS NULL",
        "status = 'FINISHED'",
        "status != 'RUNNING'",
        "attributes.status LIKE '%ED'",
        "run_name ILIKE 'run-1%'",
        "attribute.run_name = 'train run'",
        "user_id = 'ana'",
        "attr.user_id != 'bob'",
        "artifact_uri LIKE 'file:///store/artifacts/a%'",
        f"run_id = '{first}'",
        f"run_id IN ('{first}', '{second}')",
        f"run_id NOT IN ('{third}')",
        "start_time > 2000",
        "created <= 2500",
        "end_time > 0",
        "end_time < 4000",
        "run.start_time >= 3000",
        "metrics.m0 > 0 and params.p LIKE 'a%'",
        "metrics.m0 > 0 AND metrics.m1 < 0.5 AND tags.t != 'nlp'",
        "status = 'FINISHED' and run_name LIKE 'run-1%' and user_id ILIKE 'ana'",
    ]


def test_filters_select_the_same_runs_as_mlflow():
    pytest.importorskip("mlflow")
    from mlflow.utils.search_utils import SearchUtils

    runs = _parity_runs()
    mlflow_runs = _as_mlflow_runs(runs)
    frame = _as_frame(runs)
    filters = _parity_filters(runs)
    assert len(filters) >= 40
    for filter_string in filters:
        expected = [run.info.run_id for run in SearchUtils.filter(mlflow_runs, filter_string)]
        actual = apply_filter(frame, filter_string)["run_id"].tolist()
        assert actual == expected, filter_string
        if filter_string != "metrics.never != 0":
            assert 0 < len(expected) < len(runs), f"{filter_string!r} does not discriminate"
