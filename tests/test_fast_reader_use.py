"""The hand-written fast readers are used on the documents they are for.

``store/fast_yaml.py`` and ``store/fast_metrics.py`` exist only for speed: each hands what it
cannot read to the general parser, so a reader that always declined would leave every result
right and every other test green while the index build and metric reads fell back to the slow
path. These tests fail in that case: the general parsers must not be reached at all while
gittrack reads documents it wrote itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.query import history
from gittrack.store import codecs, fast_metrics
from gittrack.tracking.repository import forget_repositories

from .conftest import git


@pytest.fixture
def logged(repo: Path) -> tuple[Path, list[str]]:
    """Runs with the shapes gittrack writes: tags, params, non-ASCII text, NaN and infinite
    metric values, nested runs, a description and an ended status."""
    ids = []
    mlflow.set_experiment("fast readers")
    with mlflow.start_run(run_name="parent", description="two\nlines") as parent:
        mlflow.log_params({"alpha": 0.5, "name": "élan: 1", "empty": ""})
        mlflow.set_tags({"team": "ml", "note": "quote ' and \" inside", "count": "3"})
        for step in range(50):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("nan", math.nan)
        mlflow.log_metric("inf", math.inf)
        mlflow.log_metric("neg", -1e-300)
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.9)
            ids.append(child.info.run_id)
        ids.append(parent.info.run_id)
    run = mlflow.start_run(run_name="failed")
    mlflow.log_param("p", 1)
    mlflow.end_run("FAILED")
    ids.append(run.info.run_id)
    forget_repositories()
    return repo, ids


class _Counter:
    def __init__(self, real):
        self.real = real
        self.calls: list[str] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(repr(args[:2])[:120])
        return self.real(*args, **kwargs)


def test_an_index_build_reads_every_run_document_with_the_subset_yaml_reader(
    logged: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, ids = logged
    general = _Counter(yaml.load)
    monkeypatch.setattr(yaml, "load", general)
    found = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert {r.info.run_id for r in found} >= set(ids)
    assert general.calls == []  # every meta.yaml and params.yaml went through the fast reader


def test_the_subset_reader_accepts_every_yaml_file_gittrack_committed(
    logged: tuple[Path, list[str]],
) -> None:
    from gittrack.store.fast_yaml import parse_subset

    repo, _ = logged
    names = git(repo, "ls-tree", "-r", "--name-only", "gittrack").split()
    documents = [n for n in names if n.endswith(".yaml")]
    assert any(n.endswith("meta.yaml") for n in documents)
    for name in documents:
        data = git(repo, "show", f"gittrack:{name}").encode()
        assert parse_subset(data) == codecs.load_yaml(data, name), name


def test_metric_histories_are_read_by_the_fast_metric_reader(
    logged: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, ids = logged
    general = _Counter(codecs.parse_metric_lines)
    monkeypatch.setattr(fast_metrics, "parse_metric_lines", general)
    monkeypatch.setattr(codecs, "parse_metric_lines", general)
    monkeypatch.setattr(history, "read_metric_columns", fast_metrics.read_metric_columns)
    client = Client(str(repo))
    parent = ids[1]
    steps = [m.step for m in client.get_metric_history(parent, "loss")]
    assert steps == list(range(50))
    assert math.isnan(client.get_metric_history(parent, "nan")[0].value)
    assert client.get_metric_history(parent, "inf")[0].value == math.inf
    assert general.calls == []  # the canonical lines matched the fast expression


def test_every_line_gittrack_writes_matches_the_fast_metric_expression() -> None:
    values = [0.0, -0.0, 1.5, -1e-300, 1e300, 123456789.125, math.nan, math.inf, -math.inf]
    keys = ["loss", "val/acc", "é:1", "a b", 'quote"d', "back\\slash"]
    data = b"".join(
        codecs.metric_line(json.dumps(key), value, step, 1763800000123 + step)
        for step, (key, value) in enumerate((k, v) for k in keys for v in values)
    )
    lines = data.count(b"\n")
    assert len(fast_metrics._LINE.findall(data)) == lines == len(keys) * len(values)
