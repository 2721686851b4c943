"""Merge of tracking branches on trees (DESIGN §10): field rules and the merge's properties."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gittrack.gitflow.merge import merge_commits
from gittrack.store.branch import Blob, BranchSnapshot, apply_changes
from gittrack.store.codecs import dump_yaml
from gittrack.store.git import GitRepo

from .conftest import make_repo

EXPERIMENT = ".tracking/experiments/{}.yaml"
RUN = ".tracking/runs/{}/{}/{}/{}"
VERSION = ".tracking/models/churn/versions/{}.yaml"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    return GitRepo(make_repo(tmp_path_factory.mktemp("merge") / "project"))


def run_path(run_id: str, name: str) -> str:
    return RUN.format(run_id[:2], run_id[2:4], run_id, name)


def meta(run_id: str, status: str = "FINISHED", tags: dict | None = None, end: int = 1) -> dict:
    return {
        "format": 1,
        "run_id": run_id,
        "run_name": f"run-{run_id[:4]}",
        "experiment_id": "0",
        "status": status,
        "lifecycle": "active",
        "start_time": "2026-01-01T00:00:00.000Z",
        "end_time": None if status == "RUNNING" else f"2026-01-01T00:00:{end:02d}.000Z",
        "parent_run_id": None,
        "user": "test",
        "tags": dict(tags or {}),
        "metrics": {},
    }


def experiment(created: str, updated: str, tags: dict | None = None, name: str = "exp") -> dict:
    return {
        "name": name,
        "experiment_id": "e1",
        "lifecycle": "active",
        "creation_time": created,
        "last_update_time": updated,
        "tags": dict(tags or {}),
    }


def version(number: int, run_id: str, created: str) -> dict:
    return {
        "name": "churn",
        "version": number,
        "source": f"runs:/{run_id}/model",
        "run_id": run_id,
        "user": "test",
        "description": None,
        "creation_time": created,
        "last_update_time": created,
        "tags": {},
    }


def metric_lines(*points: tuple[str, float, int, int]) -> bytes:
    return b"".join(
        f'{{"key": "{k}", "value": {v}, "step": {s}, "timestamp": {t}}}\n'.encode()
        for k, v, s, t in points
    )


def commit(repo: GitRepo, files: dict[str, bytes], parents: tuple[str, ...] = ()) -> str:
    changes = {tuple(path.split("/")): Blob(data) for path, data in files.items()}
    tree = apply_changes(repo, None, changes) or repo.write_tree([])
    return repo.write_commit(tree, parents, "test\n")


def files_of(repo: GitRepo, commit_id: str) -> dict[str, bytes]:
    snap = BranchSnapshot(repo, commit_id)
    return {f".tracking/{rel}": repo.read_blob(entry.sha) for rel, entry in snap.walk(".tracking")}


def diverge(
    repo: GitRepo, base: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes]
) -> tuple[str, str]:
    root = commit(repo, base)
    return commit(repo, {**base, **ours}, (root,)), commit(repo, {**base, **theirs}, (root,))


def merged_files(repo: GitRepo, ours: str, theirs: str):
    outcome = merge_commits(repo, ours, theirs, "merge\n")
    assert outcome.kind == "merged"
    return outcome, files_of(repo, outcome.tip)


# ----------------------------------------------------------------------------- field rules


def test_a_run_tagged_on_both_sides_keeps_every_tag_and_the_terminal_status(repo: GitRepo) -> None:
    rid = "ab" * 16
    base = {run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "RUNNING", {"a": "0"}))}
    ours, theirs = diverge(
        repo,
        base,
        {run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "RUNNING", {"a": "0", "mine": "1"}))},
        {run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "FINISHED", {"theirs": "2"}))},
    )
    for first, second in ((ours, theirs), (theirs, ours)):
        _outcome, files = merged_files(repo, first, second)
        doc = yaml.safe_load(files[run_path(rid, "meta.yaml")])
        assert doc["tags"] == {"mine": "1", "theirs": "2"}  # "a" was deleted on one side
        assert doc["status"] == "FINISHED" and doc["end_time"] is not None


def test_metrics_logged_on_both_sides_are_unioned_in_time_order_and_summarized_again(
    repo: GitRepo,
) -> None:
    rid = "cd" * 16
    common = ("loss", 1.0, 0, 1000)
    base = {
        run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "RUNNING")),
        run_path(rid, "metrics.jsonl"): metric_lines(common),
    }
    ours, theirs = diverge(
        repo,
        base,
        {
            run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "RUNNING", {"x": "1"})),
            run_path(rid, "metrics.jsonl"): metric_lines(common, ("loss", 0.2, 2, 3000)),
        },
        {
            run_path(rid, "meta.yaml"): dump_yaml(meta(rid, "RUNNING", {"y": "1"})),
            run_path(rid, "metrics.jsonl"): metric_lines(common, ("loss", 0.5, 1, 2000)),
        },
    )
    _outcome, files = merged_files(repo, ours, theirs)
    assert files[run_path(rid, "metrics.jsonl")] == metric_lines(
        common, ("loss", 0.5, 1, 2000), ("loss", 0.2, 2, 3000)
    )
    summary = yaml.safe_load(files[run_path(rid, "meta.yaml")])["metrics"]["loss"]
    assert (summary["value"], summary["min"], summary["max"], summary["count"]) == (
        0.2, 0.2, 1.0, 3,
    )  # fmt: skip


def test_an_experiment_created_on_both_sides_keeps_the_earlier_creation_and_the_later_rename(
    repo: GitRepo,
) -> None:
    ours, theirs = diverge(
        repo,
        {},
        {EXPERIMENT.format("e1"): dump_yaml(
            experiment("2026-01-01T00:00:05.000Z", "2026-01-01T00:00:09.000Z", {"a": "1"}, "late")
        )},
        {EXPERIMENT.format("e1"): dump_yaml(
            experiment("2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z", {"b": "2"}, "early")
        )},
    )  # fmt: skip
    _outcome, files = merged_files(repo, theirs, ours)
    doc = yaml.safe_load(files[EXPERIMENT.format("e1")])
    assert doc["creation_time"] == "2026-01-01T00:00:01.000Z"
    assert doc["last_update_time"] == "2026-01-01T00:00:09.000Z"
    assert doc["name"] == "late"
    assert doc["tags"] == {"a": "1", "b": "2"}


def test_a_param_logged_with_two_values_keeps_the_earlier_and_is_reported(repo: GitRepo) -> None:
    rid = "ef" * 16
    path = run_path(rid, "params.yaml")
    ours, theirs = diverge(
        repo, {path: dump_yaml({"a": "1"})},
        {path: dump_yaml({"a": "1", "lr": "0.1"})}, {path: dump_yaml({"a": "1", "lr": "0.2", "b": "3"})},
    )  # fmt: skip
    outcome, files = merged_files(repo, ours, theirs)
    merged = yaml.safe_load(files[path])
    assert merged["a"] == "1" and merged["b"] == "3" and merged["lr"] in ("0.1", "0.2")
    assert any("'lr'" in line for line in outcome.reports)


def test_a_version_number_registered_on_both_sides_moves_the_local_one(repo: GitRepo) -> None:
    ours, theirs = diverge(
        repo,
        {},
        {VERSION.format(1): dump_yaml(version(1, "1" * 32, "2026-01-01T00:00:01.000Z"))},
        {VERSION.format(1): dump_yaml(version(1, "2" * 32, "2026-01-01T00:00:02.000Z"))},
    )
    outcome, files = merged_files(repo, ours, theirs)
    assert [(r.model, r.old, r.new) for r in outcome.renumbered] == [("churn", 1, 2)]
    assert yaml.safe_load(files[VERSION.format(1)])["run_id"] == "2" * 32  # the remote's
    moved = yaml.safe_load(files[VERSION.format(2)])
    assert moved["run_id"] == "1" * 32 and moved["version"] == 2


def test_merging_a_tip_already_contained_changes_nothing(repo: GitRepo) -> None:
    ours, theirs = diverge(repo, {}, {"a": b"1"}, {"b": b"2"})
    outcome, _files = merged_files(repo, ours, theirs)
    assert merge_commits(repo, outcome.tip, theirs, "m").kind == "up-to-date"
    assert merge_commits(repo, outcome.tip, ours, "m").kind == "up-to-date"
    assert merge_commits(repo, ours, outcome.tip, "m").kind == "fast-forward"


# ----------------------------------------------------------------------------- properties

RUN_IDS = [f"{i:02x}" * 16 for i in range(1, 9)]
TAG_KEYS = st.sampled_from(["k1", "k2", "k3"])
TAG_VALUES = st.sampled_from(["a", "b", "c"])


@st.composite
def side_changes(draw: st.DrawFn, base_runs: list[str], prefix: str) -> dict[str, bytes]:
    """One clone's work after the common base: new runs, tags on shared runs, metrics,
    experiment tags and model versions."""
    files: dict[str, bytes] = {}
    for n in range(draw(st.integers(0, 3))):
        rid = f"{prefix}{n:x}".ljust(32, "0")
        files[run_path(rid, "meta.yaml")] = dump_yaml(meta(rid, tags={"by": prefix}))
        files[run_path(rid, "params.yaml")] = dump_yaml({"n": str(n)})
    for rid in draw(st.lists(st.sampled_from(base_runs), unique=True)) if base_runs else []:
        tags = draw(st.dictionaries(TAG_KEYS, TAG_VALUES, max_size=3))
        status = draw(st.sampled_from(["RUNNING", "FINISHED", "KILLED"]))
        files[run_path(rid, "meta.yaml")] = dump_yaml(
            meta(rid, status, tags, draw(st.integers(1, 9)))
        )
        points = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), max_size=3))
        files[run_path(rid, "metrics.jsonl")] = metric_lines(
            ("m", 0.0, 0, 1), *(("m", float(v), s, 1000 * s + v) for s, v in points)
        )
    if draw(st.booleans()):
        tags = draw(st.dictionaries(TAG_KEYS, TAG_VALUES, max_size=3))
        when = f"2026-01-01T00:00:0{draw(st.integers(1, 9))}.000Z"
        files[EXPERIMENT.format("e1")] = dump_yaml(
            experiment("2026-01-01T00:00:00.000Z", when, tags)
        )
    for n in range(1, draw(st.integers(0, 2)) + 1):
        files[VERSION.format(n)] = dump_yaml(
            version(n, f"{prefix}{n:x}".ljust(32, "0"), f"t{prefix}{n}")
        )
    return files


@st.composite
def diverged_pairs(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
    base_runs = draw(st.lists(st.sampled_from(RUN_IDS), unique=True, max_size=4))
    base = {
        EXPERIMENT.format("e1"): dump_yaml(
            experiment("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", {"k1": "a"})
        )
    }
    for rid in base_runs:
        base[run_path(rid, "meta.yaml")] = dump_yaml(meta(rid, "RUNNING", {"k1": "a"}))
        base[run_path(rid, "metrics.jsonl")] = metric_lines(("m", 0.0, 0, 1))
    return base, draw(side_changes(base_runs, "a")), draw(side_changes(base_runs, "b"))


def content(files: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
    """What a user reads: every file, with model versions compared without their number
    (which one is renumbered depends on which side had pushed: DESIGN §10)."""
    versions = sorted(
        dump_yaml({k: v for k, v in yaml.safe_load(data).items() if k != "version"}).decode()
        for path, data in files.items()
        if "/versions/" in path
    )
    return {p: d for p, d in files.items() if "/versions/" not in p}, versions


def runs_in(files: dict[str, bytes]) -> set[str]:
    return {p.split("/")[-2] for p in files if p.endswith("/meta.yaml")}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pair=diverged_pairs())
def test_merging_diverged_branches_is_commutative_loses_no_run_and_is_idempotent(
    repo: GitRepo, pair: tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]
) -> None:
    base, ours_changes, theirs_changes = pair
    ours, theirs = diverge(repo, base, ours_changes, theirs_changes)
    one = merge_commits(repo, ours, theirs, "merge\n")
    other = merge_commits(repo, theirs, ours, "merge\n")
    one_files, other_files = files_of(repo, one.tip), files_of(repo, other.tip)
    assert content(one_files) == content(other_files)
    assert runs_in(one_files) == runs_in(files_of(repo, ours)) | runs_in(files_of(repo, theirs))
    registered = [p for side in (ours_changes, theirs_changes) for p in side if "/versions/" in p]
    assert len(content(one_files)[1]) == len(registered)  # no version is dropped
    for tip in (one.tip, other.tip):
        assert merge_commits(repo, tip, theirs, "again\n").kind == "up-to-date"
        assert merge_commits(repo, tip, ours, "again\n").kind == "up-to-date"


def test_a_file_that_cannot_be_parsed_is_kept_from_one_side_and_reported(repo: GitRepo) -> None:
    rid = "12" * 16
    good, other = run_path(rid, "meta.yaml"), run_path("34" * 16, "params.yaml")
    ours, theirs = diverge(
        repo,
        {good: dump_yaml(meta(rid, tags={"a": "1"})), other: dump_yaml({"p": "1"})},
        {good: b"tags: [unclosed\n", other: dump_yaml({"p": "1", "q": "2"})},
        {good: dump_yaml(meta(rid, tags={"b": "2"})), other: dump_yaml({"p": "1", "r": "3"})},
    )
    outcome, files = merged_files(repo, ours, theirs)
    assert files[good] in (b"tags: [unclosed\n", dump_yaml(meta(rid, tags={"b": "2"})))
    assert any(good in line and "not valid YAML" in line for line in outcome.reports)
    assert yaml.safe_load(files[other]) == {"p": "1", "q": "2", "r": "3"}
