"""The YAML emitter writes what PyYAML reads back unchanged, for any value gittrack stores."""

from __future__ import annotations

import math

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gittrack.store.codecs import dump_yaml, format_time, load_yaml, parse_time

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "yes",
            "No",
            "null",
            "~",
            "1.5",
            "1e3",
            "0x10",
            "2025-01-01",
            "a: b",
            "- x",
            "#c",
            "x #c",
            ".inf",
            "'q'",
            '"d"',
            "",
            " ",
            "\t",
            "a\nb",
            "ü",
        ]
    ),
)
keys = st.one_of(
    st.text(min_size=1, max_size=20),
    st.sampled_from(["yes", "on", "1", "a.b", "mlflow.runName", "n"]),
)
documents = st.dictionaries(
    keys,
    st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(keys, scalars, max_size=4)),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_dumped_yaml_reads_back_as_the_same_document(doc: dict) -> None:
    assert yaml.safe_load(dump_yaml(doc)) == doc


numbers = st.one_of(st.floats(allow_nan=False), st.integers(-(2**63), 2**63))
metric_keys = st.one_of(  # the characters keys may hold, and words YAML reads as others
    st.from_regex(r"[A-Za-z0-9_\-./ ]{1,20}", fullmatch=True),
    st.sampled_from(["yes", "on", "1", "0", "1.5", "null", "a b", "n"]),
)
summaries = st.dictionaries(
    metric_keys,
    st.fixed_dictionaries(
        {
            "value": st.one_of(numbers, st.sampled_from(["NaN", "Infinity", "-Infinity"])),
            "step": st.integers(-(2**63), 2**63),
            "timestamp": st.integers(0, 2**63),
            "min": numbers,
            "max": numbers,
            "count": st.integers(1, 2**31),
        }
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(summaries)
def test_metric_summaries_are_written_as_any_other_mapping(metrics: dict) -> None:
    """Summaries take a shortcut through the emitter: the text is the general path's."""
    doc = {"run_id": "x", "metrics": metrics}
    text = dump_yaml(doc)
    assert yaml.safe_load(text) == doc
    lines = [b"run_id: x", b"metrics:" if metrics else b"metrics: {}"]
    for key, entry in metrics.items():
        lines.append(b"  " + dump_yaml({key: None}).rstrip(b"\n").removesuffix(b" null"))
        lines += [b"    " + line for line in dump_yaml(entry).splitlines()]
    assert text == b"\n".join(lines) + b"\n"


def test_keys_and_values_ending_in_a_newline_are_quoted_and_read_back() -> None:
    doc = {"A\n": None, "k": "A\n", "nested": {"b\n": "c"}}
    text = dump_yaml(doc)
    assert b'"A\\n": null' in text and b'k: "A\\n"' in text
    assert yaml.safe_load(text) == doc


def test_special_floats_round_trip() -> None:
    doc = {"a": math.inf, "b": -math.inf, "c": 1e20, "d": 1e-7}
    back = load_yaml(dump_yaml(doc), "test")
    assert back == doc
    assert math.isnan(load_yaml(dump_yaml({"x": math.nan}), "t")["x"])


def test_simple_strings_are_written_plain_for_readable_diffs() -> None:
    text = dump_yaml({"run_name": "forest-100-5", "status": "FINISHED", "tags": {"phase": "opt"}})
    assert text == b"run_name: forest-100-5\nstatus: FINISHED\ntags:\n  phase: opt\n"


def test_times_round_trip_with_milliseconds() -> None:
    assert format_time(1_763_800_000_123) == "2025-11-22T08:26:40.123Z"
    assert parse_time(format_time(1_763_800_000_123)) == 1_763_800_000_123
