"""Every reader of stored data, fed any bytes, gives a result or a ``GittrackError``.

What arrives with a pull is not necessarily what gittrack wrote. Each reader (meta, params,
metrics lines, experiments, config, model versions, registry tags and their messages) is fed
random bytes, random YAML documents and valid documents with one field replaced by anything;
it must return or raise a ``GittrackError``, never another exception.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gittrack.errors import GittrackError
from gittrack.query.run_rows import FrameBuilder
from gittrack.registry.metadata import decode
from gittrack.registry.state import TagRecord, build_registry_state, parse_registration_message
from gittrack.registry.tag_names import parse_tag
from gittrack.store.codecs import load_yaml, parse_metric_lines
from gittrack.store.fast_metrics import read_metric_columns
from gittrack.store.fast_yaml import load_yaml_fast
from gittrack.store.schemas import check_stored
from gittrack.tracking.experiments import ExperimentStore

FUZZ = settings(
    # A longer campaign: GITTRACK_FUZZ_EXAMPLES=5000 pytest tests/test_reader_fuzz.py
    max_examples=int(os.environ.get("GITTRACK_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RUN_ID = "0123456789abcdef0123456789abcdef"
WHERE = f".tracking/runs/01/23/{RUN_ID}"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.dates(),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "2026-13-45T25:61:61.000Z", "0"]),
)
keys = st.one_of(st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)

VALID_META = {
    "format": 1,
    "run_id": RUN_ID,
    "run_name": "r",
    "experiment_id": "0",
    "status": "FINISHED",
    "lifecycle": "active",
    "start_time": "2026-01-01T00:00:00.000Z",
    "end_time": "2026-01-01T00:00:01.000Z",
    "parent_run_id": None,
    "user": "u",
    "tags": {"mlflow.runName": "r"},
    "source": {
        "commit": "a" * 40,
        "branch": "main",
        "dirty": False,
        "snapshot": None,
        "untracked_skipped": [],
        "entry_point": "train.py",
    },
    "metrics": {
        "loss": {"value": 0.5, "step": 0, "timestamp": 1, "min": 0.5, "max": 0.5, "count": 1}
    },
}
VALID_PARAMS = {"lr": "0.1"}
VALID_EXPERIMENT = {
    "name": "e",
    "experiment_id": "0123456789abcdef",
    "lifecycle": "active",
    "creation_time": "2026-01-01T00:00:00.000Z",
    "last_update_time": "2026-01-01T00:00:00.000Z",
    "tags": {},
}
VALID_CONFIG = {
    "format": 1,
    "source": {"capture": "snapshot", "untracked_size_cap": 1_000_000},
    "registry": {"stages": ["None", "Staging"], "policy": {}},
    "notifications": {},
}
VALID_VERSION = {"name": "m", "version": 1, "source": f"runs:/{RUN_ID}/model", "run_id": RUN_ID}
VALID_MODEL = {"name": "m", "description": None, "tags": {}}


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.extend(_paths(value, (*prefix, key)))
    return found


def _dump(doc: Any) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode()
    except (yaml.YAMLError, UnicodeEncodeError):
        return b"{}"


def documents(valid: dict) -> st.SearchStrategy[bytes]:
    """Random bytes, random YAML documents, and ``valid`` with one field replaced by anything
    (the field deleted when the replacement is the deletion marker)."""

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        doc = copy.deepcopy(valid)
        path = draw(st.sampled_from(_paths(valid)))
        if not path:
            return _dump(draw(values))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(values)
        else:
            del parent[path[-1]]
        return _dump(doc)

    return st.one_of(st.binary(max_size=200), values.map(_dump), mutated())


def returns_or_raises_gittrack_error(read: Callable[[], Any]) -> None:
    with contextlib.suppress(GittrackError):
        read()


def _read_meta(data: bytes) -> None:
    for load in (load_yaml, load_yaml_fast):
        try:
            meta = load(data, f"{WHERE}/meta.yaml")
        except GittrackError:
            continue
        builder = FrameBuilder()
        if builder.try_add(RUN_ID, lambda m=meta: (m, {}, None, WHERE)):
            frame = builder.frame()
            assert len(frame) + len(builder.skipped) == 1
            json.dumps(list(frame.columns))
        returns_or_raises_gittrack_error(lambda m=meta: check_stored(m, "meta", "meta.yaml"))


@FUZZ
@given(documents(VALID_META))
@example(_dump({k: v for k, v in VALID_META.items() if k != "end_time"}))
@example(_dump({**VALID_META, "status": []}))
@example(_dump({**VALID_META, "tags": {0: "x", "": "y"}}))
def test_any_meta_yaml_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    _read_meta(data)


@FUZZ
@given(documents(VALID_PARAMS))
def test_any_params_yaml_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    meta = yaml.safe_dump(VALID_META).encode()
    for load in (load_yaml, load_yaml_fast):
        try:
            params = load(data, f"{WHERE}/params.yaml")
        except GittrackError:
            continue
        builder = FrameBuilder()
        builder.try_add(RUN_ID, lambda p=params: (load_yaml(meta, "m"), p, None, WHERE))
        builder.frame()
        returns_or_raises_gittrack_error(lambda p=params: check_stored(p, "params", "p.yaml"))


metric_lines = st.lists(
    st.one_of(
        st.binary(max_size=60),
        st.fixed_dictionaries(
            {"key": values, "value": values, "step": values, "timestamp": values}
        ).map(lambda d: json.dumps(d, default=str).encode()),
        st.builds(
            lambda v, s, t: json.dumps(
                {"key": "k", "value": v, "step": s, "timestamp": t}
            ).encode(),
            st.one_of(st.floats(), st.sampled_from(["NaN", "Infinity", "x"])),
            st.integers(-(2**70), 2**70),
            st.one_of(st.integers(-(2**70), 2**70), st.floats()),
        ),
    ),
    max_size=5,
).map(lambda lines: b"\n".join(lines) + b"\n")


@FUZZ
@given(st.one_of(metric_lines, st.binary(max_size=200)))
@example(b'{"key": "k", "value": 0.0, "step": 9223372036854775808, "timestamp": 0}\n')
@example(b'{"key": "k", "value": 0.0, "step": 0, "timestamp": 9.3e+18}\n')
@example(b'{"key": "k", "value": 0.0, "step": 0, "timestamp": Infinity}\n{"key": "k"}\n')
def test_any_metrics_jsonl_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    returns_or_raises_gittrack_error(lambda: parse_metric_lines(data, "metrics.jsonl"))
    returns_or_raises_gittrack_error(lambda: read_metric_columns(data, "metrics.jsonl"))


@FUZZ
@given(documents(VALID_EXPERIMENT))
def test_any_experiment_file_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    store = ExperimentStore(None, "runs:")  # type: ignore[arg-type]
    where = f".tracking/experiments/{VALID_EXPERIMENT['experiment_id']}.yaml"
    returns_or_raises_gittrack_error(lambda: store._from_document(load_yaml(data, where), where))


@FUZZ
@given(documents(VALID_CONFIG))
@example(b"registry:\n  policy:\n    '': false\n    0: false\n")
def test_any_config_yaml_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    def read() -> None:
        check_stored(load_yaml(data, "config.yaml"), "config", "config.yaml")

    returns_or_raises_gittrack_error(read)


@FUZZ
@given(st.one_of(documents(VALID_VERSION), documents(VALID_MODEL)))
def test_any_model_or_version_file_is_read_or_rejected_with_a_gittrack_error(data: bytes) -> None:
    returns_or_raises_gittrack_error(lambda: decode(data, ".tracking/models/m/versions/1.yaml"))
    returns_or_raises_gittrack_error(lambda: decode(data, ".tracking/models/m/model.yaml"))


tag_names = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda m, s, n: f"{m}{s}{n}",
        st.sampled_from(["m", "model", "a/b", "m:x"]),
        st.sampled_from(["@v", "@", "#", "#Production#", "@deprecated", "#x#", "@v1.0.0!"]),
        st.one_of(st.integers(-5, 2**70).map(str), st.text(max_size=6)),
    ),
)
messages = st.one_of(st.text(max_size=80), values.map(lambda v: _dump(v).decode()))


@FUZZ
@given(st.lists(st.tuples(tag_names, messages, st.integers(0, 2**34)), max_size=6))
def test_any_registry_tags_and_messages_give_a_state_or_a_gittrack_error(
    tags: list[tuple[str, str, int]],
) -> None:
    records = []
    for name, message, when in tags:
        returns_or_raises_gittrack_error(lambda n=name: parse_tag(n))
        returns_or_raises_gittrack_error(lambda m=message, n=name: parse_registration_message(m, n))
        records.append(TagRecord(name, "c" * 40, "who", "w@x", when, message))
    returns_or_raises_gittrack_error(lambda: build_registry_state(records))


def test_the_document_strategies_produce_valid_documents_too() -> None:
    """The fuzzing starts from valid documents: each template passes its own reader."""
    check_stored(VALID_META, "meta", "meta.yaml")
    check_stored(VALID_PARAMS, "params", "params.yaml")
    check_stored(VALID_EXPERIMENT, "experiment", "e.yaml")
    check_stored(VALID_CONFIG, "config", "config.yaml")
    decode(_dump(VALID_VERSION), ".tracking/models/m/versions/1.yaml")
    decode(_dump(VALID_MODEL), ".tracking/models/m/model.yaml")
    builder = FrameBuilder()
    assert builder.try_add(RUN_ID, lambda: (VALID_META, VALID_PARAMS, None, WHERE))
    assert len(builder.frame()) == 1
