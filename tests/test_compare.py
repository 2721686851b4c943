"""compare_runs, metric histories and search_experiments on real repositories."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

import gittrack
from gittrack import Client
from gittrack.entities import Metric
from gittrack.errors import InvalidInputError, NotFoundError


def two_runs(client: Client) -> tuple[str, str]:
    ids = []
    for name, lr, acc in (("left", "0.1", 0.8), ("right", "0.2", 0.8)):
        run = client.create_run("0", run_name=name, tags={"team": "vision"})
        client.log_param(run.info.run_id, "lr", lr)
        client.log_param(run.info.run_id, "depth", "3")
        client.log_metric(run.info.run_id, "acc", acc)
        client.log_metric(run.info.run_id, "loss", math.nan if name == "left" else 0.2)
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids[0], ids[1]


# ------------------------------------------------------------------ compare


def test_compare_puts_runs_side_by_side_and_marks_differences(repo: Path) -> None:
    left, right = two_runs(Client())
    frame = gittrack.compare_runs([left, right])
    assert list(frame.columns) == [left, right, "differs"]
    assert frame.loc["params.lr", left] == "0.1"
    assert frame.loc["params.lr", right] == "0.2"
    assert frame.loc["params.lr", "differs"]
    assert not frame.loc["params.depth", "differs"]
    assert not frame.loc["metrics.acc", "differs"]
    assert frame.loc["metrics.loss", "differs"]  # NaN against 0.2
    assert frame.loc["run_name", "differs"]
    assert not frame.loc["tags.team", "differs"]
    fields = list(frame.index)
    assert fields.index("metrics.acc") < fields.index("params.depth") < fields.index("tags.team")


def test_compare_diff_only_keeps_the_rows_that_differ(repo: Path) -> None:
    left, right = two_runs(Client())
    frame = Client().compare_runs([left, right], diff_only=True)
    assert frame["differs"].all()
    assert "params.lr" in frame.index
    assert "params.depth" not in frame.index


def test_a_key_only_one_run_has_differs(repo: Path) -> None:
    client = Client()
    left, right = two_runs(client)
    client.set_tag(right, "extra", "x")
    frame = client.compare_runs([left, right])
    assert frame.loc["tags.extra", left] is None
    assert frame.loc["tags.extra", "differs"]


def test_nan_equals_nan_in_comparisons(repo: Path) -> None:
    client = Client()
    left, right = two_runs(client)
    third = client.create_run("0", run_name="third").info.run_id
    client.log_metric(third, "loss", math.nan)
    client.set_terminated(third)
    frame = client.compare_runs([left, third])
    assert not frame.loc["metrics.loss", "differs"]


def test_compare_rejects_no_runs_duplicates_and_unknown_ids(repo: Path) -> None:
    left, _ = two_runs(Client())
    with pytest.raises(InvalidInputError):
        gittrack.compare_runs([])
    with pytest.raises(InvalidInputError):
        gittrack.compare_runs([left, left])
    with pytest.raises(NotFoundError):
        gittrack.compare_runs([left, "0" * 32])


# ------------------------------------------------------------------ metric history


def test_get_metric_history_returns_every_point_in_order(repo: Path) -> None:
    with gittrack.start_run() as run:
        for step in range(5):
            gittrack.log_metric("loss", 1.0 / (step + 1), step=step)
        gittrack.log_metric("acc", 0.5)
        gittrack.log_metric("loss", math.inf, step=5)
    history = Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4, 5]
    assert history[1] == Metric("loss", 0.5, history[1].timestamp, 1)
    assert history[-1].value == math.inf
    assert all(isinstance(m.timestamp, int) for m in history)


def test_get_metric_history_of_a_live_run(repo: Path) -> None:
    with gittrack.start_run() as run:
        gittrack.log_metric("loss", 0.3, step=1)
        assert [m.value for m in Client().get_metric_history(run.info.run_id, "loss")] == [0.3]


def test_get_metric_history_of_an_unknown_run_is_not_found(repo: Path) -> None:
    Client().init()
    with pytest.raises(NotFoundError):
        Client().get_metric_history("f" * 32, "loss")


def test_the_history_frame_is_long_format_over_several_runs(repo: Path) -> None:
    ids = []
    for offset in (0, 10):
        with gittrack.start_run() as run:
            for step in range(3):
                gittrack.log_metrics({"loss": offset + step, "acc": step / 10}, step=step)
        ids.append(run.info.run_id)
    frame = Client().get_metric_history_frame(ids)
    assert list(frame.columns) == ["run_id", "key", "step", "timestamp", "value"]
    assert len(frame) == 12
    assert frame["run_id"].tolist()[:6] == [ids[0]] * 6
    loss = Client().get_metric_history_frame(ids, keys="loss")
    assert loss["value"].tolist() == [0, 1, 2, 10, 11, 12]
    assert loss["step"].dtype == "int64"
    wide = loss.pivot(index="step", columns="run_id", values="value")
    assert wide.shape == (3, 2)


def test_an_empty_history_frame_has_the_columns(repo: Path) -> None:
    frame = Client().get_metric_history_frame([])
    assert list(frame.columns) == ["run_id", "key", "step", "timestamp", "value"]
    assert frame.empty


def test_the_history_frame_reads_many_runs_in_batches(repo: Path, monkeypatch) -> None:
    from gittrack.query import history

    monkeypatch.setattr(history, "_BATCH_FROM", 2)
    ids = []
    for value in (1.0, 2.0, 3.0):
        with gittrack.start_run() as run:
            gittrack.log_metric("loss", value)
        ids.append(run.info.run_id)
    with gittrack.start_run() as live:
        gittrack.log_metric("loss", 4.0)
        frame = Client().get_metric_history_frame([*ids, live.info.run_id])
    assert frame["value"].tolist() == [1.0, 2.0, 3.0, 4.0]


# ------------------------------------------------------------------ experiments


@pytest.fixture
def experiments(repo: Path) -> Client:
    client = Client()
    client.init()
    for name, tags in (("alpha", {"team": "x"}), ("beta", {}), ("Gamma", {"team": "y"})):
        time.sleep(0.003)  # distinct creation times, in milliseconds
        client.create_experiment(name, tags=tags)
    return client


def names(found) -> list[str]:
    return [e.name for e in found]


def test_experiments_are_newest_first_by_default(experiments: Client) -> None:
    assert names(experiments.search_experiments()) == ["Gamma", "beta", "alpha", "Default"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'beta'", ["beta"]),
        ("name != 'beta'", ["Gamma", "alpha", "Default"]),
        ("name LIKE 'a%'", ["alpha"]),
        ("attribute.name ILIKE 'g%'", ["Gamma"]),
        ("tags.team = 'x'", ["alpha"]),
        ("tags.team LIKE '%'", ["Gamma", "alpha"]),
        ("tags.team IS NULL", ["beta", "Default"]),
        ("tags.team IS NOT NULL", ["Gamma", "alpha"]),
        ("creation_time > 0 and name LIKE '%a'", ["Gamma", "beta", "alpha"]),
        ("name = 'beta' OR tags.team = 'y'", ["Gamma", "beta"]),
        ("name IN ('alpha', 'Default')", ["alpha", "Default"]),
        ("experiment_id = '0'", ["Default"]),
    ],
)
def test_experiment_filters(experiments: Client, filter_string, expected) -> None:
    assert names(experiments.search_experiments(filter_string=filter_string)) == expected


def test_experiment_order_by(experiments: Client) -> None:
    assert names(experiments.search_experiments(order_by=["name"])) == [
        "Default",
        "Gamma",
        "alpha",
        "beta",
    ]
    assert names(experiments.search_experiments(order_by=["creation_time ASC"]))[-1] == "Gamma"


@pytest.mark.parametrize(
    "bad",
    ["metrics.x > 1", "name > 'a'", "creation_time = 'x'", "colour = 'red'", "name = 'a' junk"],
)
def test_bad_experiment_filters_are_rejected(experiments: Client, bad: str) -> None:
    with pytest.raises(InvalidInputError):
        experiments.search_experiments(filter_string=bad)


def test_experiments_cannot_be_ordered_by_tags(experiments: Client) -> None:
    with pytest.raises(InvalidInputError, match="attributes only"):
        experiments.search_experiments(order_by=["tags.team"])


def test_search_experiments_is_reachable_from_the_module(experiments: Client) -> None:
    found = gittrack.search_experiments(filter_string="name = 'alpha'")
    assert names(found) == ["alpha"]
    assert isinstance(pd.DataFrame({"n": names(found)}), pd.DataFrame)
