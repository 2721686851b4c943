"""The fast readers of meta.yaml/params.yaml and metrics.jsonl agree with the general parsers."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gittrack.errors import CorruptDataError
from gittrack.store.codecs import dump_yaml, load_yaml, metric_line, parse_metric_lines
from gittrack.store.fast_metrics import read_metric_columns
from gittrack.store.fast_yaml import _Unsupported, load_yaml_fast, parse_subset


def pyyaml_dump(doc: object) -> bytes:
    return yaml.dump(
        doc, Dumper=yaml.SafeDumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    ).encode()


def same(a: object, b: object) -> bool:
    """Equality where NaN equals NaN and types matter (1 is not 1.0, True is not 1)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    return a == b


texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(list(" :#'\"-?!&*|>%@`[]{},\\\n\t~")),
    max_size=12,
)
scalars = (
    texts
    | st.sampled_from(
        [
            "yes",
            "No",
            "on",
            "null",
            "~",
            "1_000",
            "0o17",
            "017",
            "0x1f",
            "1e5",
            "1.5",
            "-.5",
            ".inf",
            "NaN",
            "-Infinity",
            "2026-01-01",
            "1:20",
            "<<",
            "=",
        ]
    )
    | st.integers()
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.none()
)
documents = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda inner: st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
).filter(lambda d: isinstance(d, dict))


@settings(max_examples=400, deadline=None)
@given(documents)
@example({"a": {"b": {}, "c": [], "d": ["x", "1"]}, "e": None})
@example({"k": "it's", "q": 'say "hi"', "t": "2026-11-23T10:51:33.769Z"})
def test_the_subset_reader_returns_what_pyyaml_returns_or_declines(doc: dict) -> None:
    for dumped in (dump_yaml(doc), pyyaml_dump(doc)):
        expected = yaml.load(dumped, Loader=yaml.SafeLoader)
        try:
            found = parse_subset(dumped)
        except _Unsupported:
            found = expected
        assert same(found, expected), dumped
        assert same(load_yaml_fast(dumped, "doc.yaml"), expected)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1 # comment\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: |\n  two\n  lines\n",
        "a: 'unclosed\n  quote'\n",
        "a: plain\n  continued\n",
        "? long key\n: value\n",
        "a:\n\tb: 1\n",
        "a: 1\na: 2\n",
        "- top\n- level\n",
        'a: "\\x41"\n',
        "a: 017\n",
        "a: 1_000\n",
        "a: .inf\n",
        "a: 2026-01-01\n",
        "",
        # implicit keys longer than YAML allows (1024 characters up to the ':')
        "k" * 1025 + ": 1\n",
        "a:\n  " + "k" * 1025 + ": null\n",
        '"' + "k" * 1023 + '": 1\n',
    ],
)
def test_yaml_outside_the_subset_is_handed_to_libyaml(text: str) -> None:
    with pytest.raises(_Unsupported):
        parse_subset(text.encode())
    try:
        expected = load_yaml(text.encode(), "doc.yaml")
    except CorruptDataError:
        with pytest.raises(CorruptDataError):
            load_yaml_fast(text.encode(), "doc.yaml")
        return
    assert same(load_yaml_fast(text.encode(), "doc.yaml"), expected)


def test_invalid_yaml_is_reported_with_the_file_name() -> None:
    with pytest.raises(CorruptDataError, match="runs/x/meta.yaml"):
        load_yaml_fast(b"a: [unclosed\n", "runs/x/meta.yaml")


# ------------------------------------------------------------------ metrics.jsonl


def lines(points: list[tuple[str, float, int, int]]) -> bytes:
    import json

    return b"".join(metric_line(json.dumps(k), v, s, t) for k, v, s, t in points)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=8),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(2**40), 2**40),
            st.integers(0, 2**45),
        ),
        max_size=20,
    )
)
def test_metric_columns_match_the_line_parser(points) -> None:
    data = lines(points)
    expected, problem = parse_metric_lines(data, "m.jsonl")
    found = read_metric_columns(data, "m.jsonl")
    assert found.keys == [p[0] for p in expected]
    assert found.steps.tolist() == [p[2] for p in expected]
    assert found.timestamps.tolist() == [p[3] for p in expected]
    assert all(same(a, p[1]) for a, p in zip(found.values.tolist(), expected))
    assert found.problem is problem is None


def test_a_torn_last_line_is_skipped_and_reported() -> None:
    data = lines([("loss", 0.5, 0, 1), ("loss", 0.4, 1, 2)]) + b'{"key": "loss", "va'
    found = read_metric_columns(data, "m.jsonl")
    assert found.values.tolist() == [0.5, 0.4]
    assert "incomplete" in (found.problem or "")


def test_lines_in_another_spelling_are_read_by_the_general_parser() -> None:
    data = b'{"value": 1.5, "key": "a", "timestamp": 3, "step": 2}\n{"key":"b","value":"NaN","step":0,"timestamp":4}\n'
    found = read_metric_columns(data, "m.jsonl")
    assert found.keys == ["a", "b"]
    assert found.values[0] == 1.5 and math.isnan(found.values[1])
    assert found.steps.tolist() == [2, 0]


def test_a_broken_line_in_the_middle_is_skipped_and_reported() -> None:
    data = lines([("a", 1.0, 0, 1)]) + b"not json\n" + lines([("a", 2.0, 1, 2)])
    found = read_metric_columns(data, "m.jsonl")
    assert found.values.tolist() == [1.0, 2.0]
    assert found.problem == "m.jsonl: line 2 is not a metric point and was skipped (8 bytes)"


def test_a_partial_line_joined_to_the_next_point_gives_that_point_back() -> None:
    data = (
        lines([("a", 1.0, 0, 1)])
        + b'{"key": "a", "value": 2.0, "st'
        + lines([("a", 3.0, 2, 3), ("a", 4.0, 3, 4)])
        + b'{"key": "a"'
    )
    found = read_metric_columns(data, "m.jsonl")
    assert found.steps.tolist() == [0, 2, 3]
    assert found.problem == (
        "m.jsonl: line 2 is incomplete and was skipped (30 bytes); "
        "line 4 is incomplete and was skipped (11 bytes)"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from(
                [
                    b'{"key": "a", "value": 1.0, "step": 0, "timestamp": 1}',
                    b'{"key": "a", "value": "NaN", "st',
                    b'{"key": 1, "value": 1, "step": Infinity, "timestamp": 1}',
                    b"[" * 5000,
                    b"\xff\xfe",
                ]
            ),
        ),
        max_size=8,
    )
)
def test_any_bytes_give_the_points_and_name_what_was_skipped(parts) -> None:
    data = b"\n".join(parts)
    points, problem = parse_metric_lines(data, "m.jsonl")
    found = read_metric_columns(data, "m.jsonl")
    assert found.keys == [p[0] for p in points]
    assert found.steps.tolist() == [p[2] for p in points]
    assert problem is None or problem.startswith("m.jsonl: line ")
