"""The canonical row reader (``query/canonical_rows.py``) gives the general reader's rows.

The reader exists for speed only: every row it returns must be the row that PyYAML and
``FrameBuilder.add`` give for the same documents, and a document it cannot read that way must
be declined. Runs gittrack writes itself must all take it (else the index build silently
falls back to the slow path).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gittrack as mlflow
from gittrack.entities import LifecycleStage, RunStatus
from gittrack.errors import CorruptDataError, CorruptDataWarning
from gittrack.query import index as index_module
from gittrack.query.canonical_rows import read_row
from gittrack.query.index import RunIndex
from gittrack.query.run_rows import FrameBuilder, RunRow
from gittrack.query.run_tree import estimated_runs, runs_tree
from gittrack.store.codecs import dump_yaml
from gittrack.store.run_documents import encode_summaries, meta_for_disk
from gittrack.tracking.repository import forget_repositories, open_repository

from .hostile_branch import commit_on_branch, put_file

RUN_ID = "0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------ runs gittrack writes
@pytest.fixture
def varied(repo: Path, tmp_path: Path) -> tuple[Path, set[str]]:
    """Runs of many shapes; returns the repository and the ids of the runs with datasets."""
    mlflow.set_experiment("shapes")
    with mlflow.start_run(run_name="parent", description="two\nlines") as parent:
        mlflow.log_params({"alpha": 0.5, "flag": True, "name": "élan: 1", "empty": "", "e": "1e3"})
        mlflow.set_tags({"team": "ml", "note": "quote ' and \" # inside", "yes": "on", "ü": "ö"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("nan", math.nan)
        mlflow.log_metric("inf", math.inf)
        mlflow.log_metric("minus inf", -math.inf)
        mlflow.log_metric("big", 1e20)
        mlflow.log_metric("tiny", -1e-300)
        mlflow.log_metric("négatif", -0.0)
        with mlflow.start_run(run_name="child: 1", nested=True):
            mlflow.log_metric("acc", 0.9)
    with mlflow.start_run(run_name="yes"):
        mlflow.log_param("k" * 250, "v" * 500)
    mlflow.start_run(run_name="failed #1")
    mlflow.end_run("FAILED")
    with mlflow.start_run(run_name="empty"):
        pass
    with mlflow.start_run(run_name="with data") as with_data:
        dataset = mlflow.data.from_numpy(np.arange(6.0).reshape(3, 2), source="d.npy", name="d")
        mlflow.log_input(dataset, context="training")
    external = mlflow.create_experiment("external", artifact_location=str(tmp_path / "store"))
    with mlflow.start_run(experiment_id=external, run_name="outside"):
        mlflow.log_metric("m", 1.0)
    with mlflow.start_run(experiment_id=external, run_name="outside, no metrics"):
        mlflow.set_tag("t", "v")
    assert parent.info.run_id
    forget_repositories()
    return repo, {with_data.info.run_id}


def _run_dir(run_id: str) -> str:
    return f".tracking/runs/{run_id[:2]}/{run_id[2:4]}/{run_id}"


def _cold_index(repo: Path) -> RunIndex:
    """An index of the repository with nothing in memory or on disk."""
    shutil.rmtree(repo / ".git" / "gittrack" / "cache", ignore_errors=True)
    forget_repositories()
    return RunIndex(open_repository(str(repo)))


def _cold_frame(repo: Path) -> pd.DataFrame:
    return _cold_index(repo).committed()


def test_the_canonical_reader_builds_the_frame_the_general_reader_builds(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    fast = _cold_frame(repo)
    monkeypatch.setattr(index_module, "read_row", lambda *args: None)
    general = _cold_frame(repo)
    assert len(fast) == 8
    assert list(fast.columns) == list(general.columns)
    assert list(fast.dtypes) == list(general.dtypes)
    pd.testing.assert_frame_equal(fast, general, check_exact=True)
    for column in fast.columns:
        assert [type(v) for v in fast[column]] == [type(v) for v in general[column]], column


def test_each_text_column_has_the_type_pandas_infers_from_its_cells(
    varied: tuple[Path, set[str]],
) -> None:
    repo, _ = varied
    frame = _cold_frame(repo)
    texts = [c for c in frame.columns if frame[c].dtype == object or frame[c].dtype == "str"]
    assert "params.name" in texts and "_inputs" in texts
    for column in texts:
        cells = np.empty(len(frame), dtype=object)
        cells[:] = [None if pd.isna(v) else v for v in frame[column]]
        inferred = pd.DataFrame({column: cells})[column]
        assert frame[column].dtype == inferred.dtype, column
        pd.testing.assert_series_equal(frame[column], inferred, check_exact=True)


def _checked_row(run_id: str, params: dict) -> RunRow:
    return RunRow(
        run_id, "0", "r", "u", "FINISHED", "file:///a", "active", None, "{}", None, None,
        "2024-01-01T00:00:00.000Z", None, {}, params, {},
    )  # fmt: skip


def test_cells_that_are_not_strings_are_left_for_pandas_to_infer_across_joined_batches() -> None:
    first, second = FrameBuilder(), FrameBuilder()
    first.add_row(_checked_row("a" * 32, {"n": 1, "s": "x"}), "runs/a")
    second.add_row(_checked_row("b" * 32, {"n": 2}), "runs/b")
    first.extend(second.batch())
    frame = first.frame()
    expected = pd.DataFrame(
        {
            "n": np.array([1, 2], dtype=object),
            "s": np.array(["x", None], dtype=object),
            "parent": np.array([None, None], dtype=object),
        }
    )
    for column, name in (("params.n", "n"), ("params.s", "s"), ("parent_run_id", "parent")):
        pd.testing.assert_series_equal(
            frame[column], expected[name], check_names=False, check_exact=True
        )


def test_every_run_gittrack_writes_without_datasets_takes_the_canonical_reader(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, with_datasets = varied
    general: list[str] = []
    real_add = FrameBuilder.add

    def counting_add(self, meta, params, summaries, where, run_id=None):
        general.append(run_id)
        return real_add(self, meta, params, summaries, where, run_id)

    monkeypatch.setattr(FrameBuilder, "add", counting_add)
    assert len(_cold_frame(repo)) == 8
    assert set(general) == with_datasets  # dataset inputs are left to the general reader


# ------------------------------------------------------------------ two processes
def _with_corrupt_runs(repo: Path) -> None:
    """One run whose meta.yaml is not YAML, one without meta.yaml (in either half of ids)."""
    ids = sorted(_cold_frame(repo)["run_id"])
    put_file(repo, _run_dir(ids[0]) + "/meta.yaml", b"run_id: [unclosed\n")
    commit_on_branch(repo, {_run_dir(ids[-1]) + "/meta.yaml": None})


def test_runs_read_by_two_processes_give_the_frame_and_skipped_runs_of_one(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    _with_corrupt_runs(repo)
    alone = _cold_index(repo)
    with pytest.warns(CorruptDataWarning):
        one = alone.frame()
    assert alone.last_refresh.processes == 1
    monkeypatch.setattr(index_module, "PARALLEL_MIN", 2)
    shared = _cold_index(repo)
    with pytest.warns(CorruptDataWarning):
        two = shared.frame()
    assert shared.last_refresh.processes == 2
    assert len(two) == 6
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert list(shared._current.skipped.items()) == list(alone._current.skipped.items())
    assert len(alone._current.skipped) == 2


def test_when_the_child_process_cannot_start_this_process_reads_every_run(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    one = _cold_index(repo).committed()
    monkeypatch.setattr(index_module, "PARALLEL_MIN", 2)

    def refuse(self) -> None:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refuse)
    index = _cold_index(repo)
    pd.testing.assert_frame_equal(index.committed(), one, check_exact=True)
    assert index.last_refresh.processes == 1


def test_when_the_child_process_fails_this_process_reads_its_half(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    one = _cold_index(repo).committed()
    monkeypatch.setattr(index_module, "PARALLEL_MIN", 2)

    def die(*args: object) -> None:
        os._exit(3)  # as a child killed by the system would end

    monkeypatch.setattr(index_module, "_read_in_child", die)
    index = _cold_index(repo)
    pd.testing.assert_frame_equal(index.committed(), one, check_exact=True)
    assert index.last_refresh.processes == 1


def test_a_first_build_by_two_processes_lists_each_half_of_the_shards_in_its_own_process(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    ids = sorted(_cold_frame(repo)["run_id"])
    planted = ["0" * 32, "f" * 32]  # files where a run directory belongs, one in each half
    for run_id in planted:
        put_file(repo, _run_dir(run_id), b"not a directory")
    alone = _cold_index(repo)
    with pytest.warns(CorruptDataWarning):
        one = alone.frame()
    listed_by: dict[int, list[str]] = {}
    real_diff = index_module.diff_run_dirs

    def recording_diff(repo_, old, new, shards=None):  # noqa: ANN001, ANN202
        changes = real_diff(repo_, old, new, shards)
        listed_by.setdefault(os.getpid(), []).extend(changes.changed)
        return changes

    monkeypatch.setattr(index_module, "diff_run_dirs", recording_diff)
    monkeypatch.setattr(index_module, "PARALLEL_MIN", 2)
    shared = _cold_index(repo)
    with pytest.warns(CorruptDataWarning):
        two = shared.frame()
    assert (shared.last_refresh.processes, shared.last_refresh.rows_read) == (2, len(ids))
    assert sorted(listed_by[os.getpid()]) == [i for i in ids if i >= "80"]  # the child: the rest
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert shared._current.skipped == alone._current.skipped
    assert set(planted) <= set(shared._current.skipped)


def test_runs_changed_by_a_pull_are_read_by_two_processes_as_by_one(
    varied: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = varied
    alone, shared = _cold_index(repo), _cold_index(repo)
    alone.committed()
    shared.committed()
    for run in mlflow.search_runs(output_format="list", search_all_experiments=True):
        mlflow.MlflowClient().set_tag(run.info.run_id, "pulled", "yes")
    one = alone.committed()
    monkeypatch.setattr(index_module, "PARALLEL_MIN", 2)
    two = shared.committed()
    assert (alone.last_refresh.mode, alone.last_refresh.processes) == ("incremental", 1)
    assert (shared.last_refresh.mode, shared.last_refresh.processes) == ("incremental", 2)
    assert shared.last_refresh.rows_read == len(one) == 8
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_the_runs_of_a_tree_are_estimated_from_its_shard_directories(
    varied: tuple[Path, set[str]],
) -> None:
    repo, _ = varied
    repository = open_repository(str(repo))
    tree = runs_tree(repository.repo, repository.repo.commit_tree_info(repository.branch.tip())[0])
    shard_dirs = len({run_id[:4] for run_id in _cold_frame(repo)["run_id"]})
    assert shard_dirs <= estimated_runs(repository.repo, tree) < shard_dirs + 0.01
    assert estimated_runs(repository.repo, None) == 0


# ------------------------------------------------------------------ any document
def _general_row(meta: bytes, params: bytes) -> RunRow | None:
    """The row PyYAML and ``FrameBuilder.add`` give, None when they report the run."""
    builder = FrameBuilder()
    try:
        meta_doc = yaml.safe_load(meta)
        params_doc = yaml.safe_load(params) if params else {}
        builder.add(meta_doc, params_doc, None, "runs/x", RUN_ID)
    except (CorruptDataError, yaml.YAMLError):
        return None
    return builder._rows[0]


def _agrees(meta: bytes, params: bytes) -> RunRow | None:
    fast = read_row(RUN_ID, meta, params)
    if fast is not None:
        # repr tells 1 from 1.0 and -0.0 from 0.0, and NaN equals NaN there
        assert repr(fast) == repr(_general_row(meta, params)), meta
    return fast


texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(list(" :#'\"-?!&*|>%@`[]{},\\\n\t~._/")),
    max_size=10,
) | st.sampled_from(
    ["yes", "No", "ON", "off", "null", "Null", "~", "y", "True", "1_000", "0x10", "017",
     "1e3", "1.5", ".inf", "NaN", "-Infinity", "2026-01-01", "1:20", "<<", "=", "a b", "k" * 1100]
)  # fmt: skip
plain_texts = st.from_regex(r"[A-Za-z_][A-Za-z0-9_ .\-/]{0,12}", fullmatch=True)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e20, 1e-7, 0.1, 123456789.125, 1e16, 1e-4]
)
summaries = st.fixed_dictionaries(
    {
        "value": numbers,
        "step": st.integers(-3, 10**12),
        "timestamp": st.integers(0, 2**53),
        "min": numbers,
        "max": numbers,
        "count": st.integers(1, 10**6),
    }
).map(lambda s: {k: s[k] for k in ("value", "step", "timestamp", "min", "max", "count")})
times = st.sampled_from(["2025-06-15T16:16:15.066Z", "2025-13-45T25:61:61.000Z"])
metas = st.fixed_dictionaries(
    {
        "format": st.just(1),
        "run_id": st.just(RUN_ID),
        "run_name": texts | plain_texts,
        "experiment_id": st.sampled_from(["0", "1b32c28cb38c0548", "exp"]),
        "status": st.sampled_from(RunStatus.ALL),
        "lifecycle": st.sampled_from((LifecycleStage.ACTIVE, LifecycleStage.DELETED)),
        "start_time": times,
        "end_time": st.none() | times,
        "parent_run_id": st.none() | st.just("f" * 32),
        "user": texts | plain_texts,
        "tags": st.dictionaries(texts | plain_texts, texts | plain_texts, max_size=4),
        "source": st.sampled_from(
            [
                None,
                {},
                {
                    "commit": None,
                    "branch": None,
                    "dirty": False,
                    "snapshot": None,
                    "untracked_skipped": [],
                    "entry_point": None,
                },
                {
                    "commit": "a" * 40,
                    "branch": "main",
                    "dirty": True,
                    "snapshot": "b" * 40,
                    "untracked_skipped": ["big.bin"],
                    "entry_point": "train.py",
                },
            ]
        ),  # fmt: skip
        "metrics": st.dictionaries(texts | plain_texts, summaries, max_size=3),
    },
    optional={"artifact_uri": st.just("s3://bucket/x/artifacts") | texts, "description": texts},
)
params_docs = st.dictionaries(texts | plain_texts, texts | plain_texts, max_size=4)


def _documents(meta: dict, params: dict) -> tuple[bytes, bytes]:
    meta = {**meta, "metrics": encode_summaries(meta["metrics"])}
    if meta["source"] is None:
        del meta["source"]
    return dump_yaml(meta_for_disk(meta)), dump_yaml(params) if params else b""


@settings(max_examples=300, deadline=None)
@given(metas, params_docs)
def test_a_document_gittrack_writes_is_read_as_pyyaml_reads_it_or_declined(
    meta: dict, params: dict
) -> None:
    _agrees(*_documents(meta, params))


# Strings gittrack writes without escapes (plain, or double-quoted as JSON spells them).
unescaped = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc", "Cn", "Zl", "Zp"), blacklist_characters='"\\\ufeff'
    ),
    max_size=10,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(unescaped, max_size=4),
    st.dictionaries(unescaped, unescaped, max_size=4),
    st.lists(summaries, max_size=3),
    st.sampled_from(RunStatus.ALL),
)
def test_a_document_without_escapes_is_accepted(
    tag_values: list[str], params: dict, metric_summaries: list[dict], status: str
) -> None:
    meta = {
        "format": 1, "run_id": RUN_ID, "run_name": "run", "experiment_id": "0",
        "status": status, "lifecycle": "active", "start_time": "2025-06-15T16:16:15.066Z",
        "end_time": None, "parent_run_id": None, "user": "someone",
        "tags": {f"t{i}": v for i, v in enumerate(tag_values)}, "source": None,
        "metrics": {f"m{i}": s for i, s in enumerate(metric_summaries)},
    }  # fmt: skip
    assert _agrees(*_documents(meta, params)) is not None


FRAGMENTS = [
    "# comment", " # comment", "&a x", "*a", "!!str 1", "|", ">", "[1]", "{}", "{a: 1}", "~",
    "yes", "on", "Off", "NULL", "Null", "1e3", "0x10", "0o7", "017", "1_000", "+1", "-0", "0.10",
    "1.0e+20", "1e+20", ".nan", ".NaN", "nan", "inf", "-.inf", "Infinity", '"NaN"', "'x'",
    "'it''s'", '"a\\tb"', '"\\u00e9"', "\t", "a: b", "a:b", "- item", "? k", "=", "<<", "é",
    "x" * 1100, "2026-01-01", "12:30", '"', "'", "---", "...", "%YAML 1.1", "\u2028", "\x85",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes]:
    meta_bytes, params_bytes = _documents(draw(metas), draw(params_docs))
    which = draw(st.sampled_from(["meta", "params"])) if params_bytes else "meta"
    lines = (meta_bytes if which == "meta" else params_bytes).decode().split("\n")[:-1]
    at = draw(st.integers(0, len(lines) - 1))
    fragment = draw(st.sampled_from(FRAGMENTS) | texts)
    line = lines[at]
    head, separator, _ = line.partition(": ")
    indent = " " * (len(line) - len(line.lstrip(" ")))
    operation = draw(st.integers(0, 6))
    if operation == 0:
        lines[at] = f"{head}: {fragment}" if separator else f"{line} {fragment}"
    elif operation == 1:
        lines.insert(at + 1, f"{indent}{fragment}")
    elif operation == 2:
        lines.insert(at + 1, line)  # a key twice
    elif operation == 3:
        lines[at] = line + fragment
    elif operation == 4:
        lines[at] = f"{indent}{fragment}: {line.partition(': ')[2]}"
    elif operation == 5:
        lines[at] = draw(st.sampled_from(["\t", "   ", " ", ""])) + line
    else:
        del lines[at]
    text = ("\n".join(lines) + "\n").encode()
    return (text, params_bytes) if which == "meta" else (meta_bytes, text)


@settings(max_examples=600, deadline=None)
@given(mutated())
@example((b"format: 1\nrun_id: " + RUN_ID.encode() + b"\n", b""))
def test_a_mutated_document_is_read_as_pyyaml_reads_it_or_declined(
    documents: tuple[bytes, bytes],
) -> None:
    _agrees(*documents)


def test_a_run_id_that_is_not_its_directorys_is_declined() -> None:
    meta, params = _documents(
        {
            "format": 1,
            "run_id": RUN_ID,
            "run_name": "r",
            "experiment_id": "0",
            "status": "FINISHED",
            "lifecycle": "active",
            "start_time": "2025-06-15T16:16:15.066Z",
            "end_time": None,
            "parent_run_id": None,
            "user": "u",
            "tags": {},
            "source": None,
            "metrics": {
                "m": {"value": 1.0, "step": 0, "timestamp": 1, "min": 1.0, "max": 1.0, "count": 1}
            },
        },  # fmt: skip
        {"p": "1"},
    )
    assert read_row(RUN_ID, meta, params) is not None
    assert read_row("f" * 32, meta, params) is None
