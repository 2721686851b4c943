"""Every field is checked, within MLflow's limits, when it is set, before anything is written.

A value that passes these checks can always be committed, read back and pushed: it never
reaches ``end_run``'s schema check, ``git fsck`` or a reader as something they refuse.
"""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import gittrack as mlflow
from gittrack import Client
from gittrack.entities import Metric, Param, RunStatus, RunTag
from gittrack.errors import ConflictError, CorruptDataError, InvalidInputError

from .conftest import git, run_script
from .conftest import gittrack_cli as _gittrack_cli

NAME_LIMIT = 8000  # MLflow's limit for a tag value, so for the mlflow.runName tag


def _live_run_ids(repo: Path) -> list[str]:
    live = repo / ".git" / "gittrack" / "live"
    if not live.is_dir():
        return []
    return sorted(p.name for p in live.iterdir() if re.fullmatch(r"[0-9a-f]{32}", p.name))


def _tip(repo: Path) -> str:
    return git(repo, "rev-parse", "refs/heads/gittrack").strip()


def _fsck(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )


def _started(client: Client) -> str:
    return client.create_run("0").info.run_id


# ------------------------------------------------------------------ run names (item 1)
def test_run_names_up_to_mlflows_limit_are_committed_from_every_entry_point(repo: Path) -> None:
    client = Client()
    names = {}
    with mlflow.start_run(run_name="a" * 300) as run:
        names[run.info.run_id] = "a" * 300
    with mlflow.start_run(tags={"mlflow.runName": "b" * NAME_LIMIT}) as run:
        names[run.info.run_id] = "b" * NAME_LIMIT
    with mlflow.start_run() as run:
        mlflow.set_tag("mlflow.runName", "c" * 251)
        names[run.info.run_id] = "c" * 251
    run_id = _started(client)
    client.update_run(run_id, name="d" * 4000)
    client.set_terminated(run_id)
    names[run_id] = "d" * 4000
    client.update_run(run_id, name="e" * 300)  # a committed run is renamed too
    names[run_id] = "e" * 300

    assert _live_run_ids(repo) == []
    for run_id, name in names.items():
        run = client.get_run(run_id)
        assert run.info.status == RunStatus.FINISHED
        assert run.info.run_name == name
        assert run.data.tags["mlflow.runName"] == name
    listed = run_script("import gittrack; print(len(gittrack.search_runs()))", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == str(len(names))
    assert _fsck(repo).returncode == 0


@pytest.mark.parametrize(
    "how", ["start_run", "start_run tags", "create_run", "set_tag", "set_tags", "update_run"]
)
def test_a_run_name_over_8000_characters_is_rejected_when_it_is_set(repo: Path, how: str) -> None:
    client = Client()
    client.init()
    name = "n" * (NAME_LIMIT + 1)
    existing = _started(client) if how in ("set_tag", "set_tags", "update_run") else None
    tip, live = _tip(repo), _live_run_ids(repo)
    with pytest.raises(InvalidInputError, match="run name .* 8001 characters; at most 8000"):
        if how == "start_run":
            mlflow.start_run(run_name=name)
        elif how == "start_run tags":
            mlflow.start_run(tags={"mlflow.runName": name})
        elif how == "create_run":
            client.create_run("0", run_name=name)
        elif how == "set_tag":
            client.set_tag(existing, "mlflow.runName", name)
        elif how == "set_tags":
            mlflow.start_run(run_id=existing)
            mlflow.set_tags({"other": "x", "mlflow.runName": name})
        else:
            client.update_run(existing, name=name)
    assert (_tip(repo), _live_run_ids(repo)) == (tip, live)
    if existing:
        mlflow.end_run()
        client.set_terminated(existing)
        assert client.get_run(existing).info.status == RunStatus.FINISHED
        assert "other" not in client.get_run(existing).data.tags


def test_run_name_limits_are_mlflows(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential: a real MLflow store takes the same names gittrack takes."""
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    ml = pytest.importorskip("mlflow.tracking").MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    ours = Client()

    def outcome(client, name: str) -> str:
        run_id = client.create_run("0").info.run_id
        try:
            client.set_tag(run_id, "mlflow.runName", name)
        except Exception as exc:  # noqa: BLE001 - comparing which names each refuses
            client.set_terminated(run_id)
            return f"refused {'length' if 'exceeds' in str(exc) or '8000' in str(exc) else exc}"
        client.set_terminated(run_id)
        return client.get_run(run_id).info.run_name

    for name in ("r" * 250, "r" * 251, "r" * 300, "r" * NAME_LIMIT, "r" * (NAME_LIMIT + 1)):
        assert outcome(ours, name) == outcome(ml, name), len(name)
    long_start = ml.create_run("0", run_name="s" * 300)
    assert len(ml.get_run(long_start.info.run_id).info.run_name) == 300
    with mlflow.start_run(run_name="s" * 300) as run:
        pass
    assert Client().get_run(run.info.run_id).info.run_name == "s" * 300


KEYS = [
    "café",
    "a:b",
    "日本語",
    "ключ",
    "a-b_c.d/e f:g",
    "٣²",
    "a;b",
    "a*b",
    "a\nb",
    "a\tb",
    "nul\x00",
    "a//b",
    "../x",
    "x/",
    "/x",
    "x/./y",
    ".",
    "a..b",
    ".hidden",
    "a" * 250,
    "a" * 251,
    "é" * 250,
    "a\\b",
    "a,b",
    "a=b",
    "a`b",
    "a@b",
]


def test_param_metric_and_tag_keys_follow_mlflows_rules(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential: DESIGN §3 takes MLflow's key rules exactly, non-ASCII letters and ':'
    included (its POSIX rule), plus no control characters (which MLflow refuses too)."""
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    ml = pytest.importorskip("mlflow.tracking").MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    ours = Client()
    ml_run, our_run = ml.create_run("0").info.run_id, _started(ours)

    def accepted(client, run_id: str, kind: str, key: str) -> bool:
        try:
            if kind == "param":
                client.log_param(run_id, key, "v")
            elif kind == "metric":
                client.log_metric(run_id, key, 1.0, step=0)
            else:
                client.set_tag(run_id, key, "v")
        except Exception:  # noqa: BLE001 - comparing which keys each refuses
            return False
        return True

    differences = [
        (kind, key)
        for kind in ("param", "metric", "tag")
        for key in KEYS
        if accepted(ml, ml_run, kind, key) != accepted(ours, our_run, kind, key)
    ]
    assert differences == []
    ours.set_terminated(our_run)
    stored = ours.get_run(our_run)
    assert stored.data.params["café"] == "v" and stored.data.tags["a:b"] == "v"
    assert set(stored.data.metrics) >= {"日本語", "ключ", "a-b_c.d/e f:g"}
    assert [m.value for m in ours.get_metric_history(our_run, "a:b")] == [1.0]


# --------------------------------------------------------------- run times (item 2)
@pytest.mark.parametrize("end_time", [-(10**15), -1, 10**20, 2**63, 253_402_300_800_000, "x"])
def test_an_end_time_out_of_range_is_rejected_and_the_run_still_ends(
    repo: Path, end_time: object
) -> None:
    client = Client()
    run_id = _started(client)
    lock = repo / ".git" / "gittrack" / "live" / run_id / "lock"
    lock_before = lock.read_bytes()
    with pytest.raises(InvalidInputError, match="end_time"):
        client.set_terminated(run_id, end_time=end_time)  # type: ignore[arg-type]
    assert lock.read_bytes() == lock_before
    client.set_terminated(run_id, "FAILED")
    assert client.get_run(run_id).info.status == RunStatus.FAILED
    assert _live_run_ids(repo) == []


def test_a_process_that_passed_a_bad_end_time_leaves_a_usable_repository(repo: Path) -> None:
    script = (
        "import gittrack.errors\n"
        "from gittrack import Client\n"
        "run_id = Client().create_run('0').info.run_id\n"
        "try:\n"
        "    Client().set_terminated(run_id, end_time=-10**15)\n"
        "except gittrack.errors.InvalidInputError:\n"
        "    print(run_id)\n"
    )
    done = run_script(script, cwd=repo)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    after = run_script(
        "from gittrack import Client\n"
        "client = Client()\n"
        "client.create_experiment('a write')  # the first write recovers the orphan\n"
        f"print(client.get_run('{run_id}').info.status)\n",
        cwd=repo,
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == RunStatus.KILLED
    recover = _gittrack_cli(repo, "recover")
    assert recover.returncode == 0, recover.stderr
    assert _live_run_ids(repo) == []


@pytest.mark.parametrize("start_time", [10**20, -1, -(10**15), float("nan"), "soon", 2**64])
def test_a_start_time_out_of_range_is_rejected_before_the_run_is_staged(
    repo: Path, start_time: object
) -> None:
    client = Client()
    client.init()
    tip = _tip(repo)
    with pytest.raises(InvalidInputError, match="start_time"):
        client.create_run("0", start_time=start_time)  # type: ignore[arg-type]
    assert (_tip(repo), _live_run_ids(repo)) == (tip, [])


def test_start_and_end_times_at_the_ends_of_the_range_are_kept(repo: Path) -> None:
    client = Client()
    run = client.create_run("0", start_time=0)
    client.set_terminated(run.info.run_id, end_time=253_402_300_799_999)
    stored = client.get_run(run.info.run_id).info
    assert (stored.start_time, stored.end_time) == (0, 253_402_300_799_999)
    run = client.create_run("0", start_time=0)
    client.set_terminated(run.info.run_id, end_time=0)
    stored = client.get_run(run.info.run_id).info
    assert (stored.start_time, stored.end_time) == (0, 0)


def test_a_user_name_that_is_not_utf8_is_stored_with_replacement_characters(repo: Path) -> None:
    done = run_script(
        "import gittrack as mlflow\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_param('a', 1)\n"
        "print(ascii(mlflow.get_run(run.info.run_id).info.user_id))\n",
        cwd=repo,
        env={"LOGNAME": "us\udcffer"},  # the byte 0xff, as Python passes it on
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ascii("us\ufffder")


# ----------------------------------------------- control characters in names (item 9)
UNSAFE = ["nul\x00byte", "esc\x1b[31mred", "new\nline", "tab\tbed", "del\x7f", "c1\x85", "\ud800"]


@pytest.mark.parametrize("name", UNSAFE, ids=repr)
def test_control_characters_in_run_and_experiment_names_are_rejected(repo: Path, name: str) -> None:
    client = Client()
    client.init()
    run_id = _started(client)
    tip = _tip(repo)
    attempts = [
        lambda: client.create_experiment(name),
        lambda: client.rename_experiment("0", name),
        lambda: mlflow.set_experiment(name),
        lambda: client.create_run("0", run_name=name),
        lambda: client.set_tag(run_id, "mlflow.runName", name),
        lambda: client.update_run(run_id, name=name),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInputError, match="not allowed in names"):
            attempt()
    assert (_tip(repo), _live_run_ids(repo)) == (tip, [run_id])
    client.set_terminated(run_id)
    assert _fsck(repo).returncode == 0


def test_commit_messages_stay_valid_for_git_fsck_whatever_the_stored_name(repo: Path) -> None:
    """A name written before names were checked (here: by hand) is escaped in the message."""
    client = Client()
    run_id = _started(client)
    meta = repo / ".git" / "gittrack" / "live" / run_id / "meta.yaml"
    text = meta.read_text()
    name = client.get_run(run_id).info.run_name
    evil = '"evil\\0name\\nRun-Id: 0123456789abcdef0123456789abcdef\\e"'
    meta.write_text(text.replace(f"run_name: {name}", f"run_name: {evil}", 1))
    client.set_terminated(run_id)

    fsck = _fsck(repo)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    server = repo.parent / "server.git"
    git(repo.parent, "init", "-q", "--bare", str(server))
    git(server, "config", "receive.fsckObjects", "true")
    git(repo, "push", "-q", str(server), "gittrack")  # a checking server takes it
    message = git(repo, "log", "-1", "--format=%B", "gittrack")
    assert message.splitlines()[0].startswith("Run evil\\x00name\\nRun-Id: 0123")
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Run-Id,valueonly)", "gittrack")
    assert trailers.split() == [run_id]
    assert (
        client.get_run(run_id).info.run_name
        == "evil\x00name\nRun-Id: " + "0123456789abcdef" * 2 + "\x1b"
    )


# ------------------------------------------- numbers, text and artifact names (item 14)
@pytest.mark.parametrize(
    ("step", "timestamp"),
    [(2**63, None), (-(2**63) - 1, None), (0, 2**63), (0, -1), (10**30, None)],
)
@pytest.mark.parametrize("how", ["log_metric", "log_metrics", "log_batch", "client"])
def test_steps_and_timestamps_outside_64_bits_are_rejected(
    repo: Path, step: int, timestamp: int | None, how: str
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("ok", 1.0)
        with pytest.raises(InvalidInputError, match="step|timestamp"):
            if how == "log_metric":
                mlflow.log_metric("m", 1.0, step=step, timestamp=timestamp)
            elif how == "log_metrics":
                mlflow.log_metrics({"m": 1.0}, step=step, timestamp=timestamp)
            elif how == "log_batch":
                Client().log_batch(run.info.run_id, [Metric("m", 1.0, timestamp, step)])
            else:
                Client().log_metric(run.info.run_id, "m", 1.0, timestamp=timestamp, step=step)
        assert Client().get_metric_history(run.info.run_id, "m") == []
    assert [m.value for m in Client().get_metric_history(run.info.run_id, "ok")] == [1.0]


def test_steps_and_timestamps_at_the_ends_of_64_bits_read_back_exactly(repo: Path) -> None:
    top, bottom = 2**63 - 1, -(2**63)
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0, step=top, timestamp=top)
        mlflow.log_metric("m", 2.0, step=bottom, timestamp=0)
        live = Client().get_metric_history(run.info.run_id, "m")
    committed = Client().get_metric_history(run.info.run_id, "m")
    assert live == committed
    assert [(m.step, m.timestamp) for m in committed] == [(top, top), (bottom, 0)]


def test_a_stored_step_outside_64_bits_is_reported_as_corrupt_data_naming_the_file(
    repo: Path,
) -> None:
    """Written before steps were checked (here: by hand); the run stays readable otherwise."""
    started = run_script(
        "from gittrack import Client\n"
        "client = Client()\n"
        "run_id = client.create_run('0').info.run_id\n"
        "client.log_metric(run_id, 'm', 1.0, step=1, timestamp=5)\n"
        "print(run_id)\n",
        cwd=repo,
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    metrics = repo / ".git" / "gittrack" / "live" / run_id / "metrics.jsonl"
    with metrics.open("ab") as out:
        out.write(b'{"key": "m", "value": 2.0, "step": 9223372036854775808, "timestamp": 6}\n')
    client = Client()  # recovers the run: its points are kept as they are
    with pytest.raises(CorruptDataError, match=r"metrics.jsonl: point 2 has step 92233"):
        client.get_metric_history(run_id, "m")
    with pytest.raises(CorruptDataError, match=r"metrics.jsonl: point 2"):
        client.get_metric_history_frame([run_id])
    assert client.get_run(run_id).data.metrics == {"m": 2.0}


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), Decimal("sNaN"), Fraction(10**400, 3)],
    ids=["10**400", "-10**400", "sNaN", "fraction"],
)
def test_metric_values_a_float_cannot_hold_are_rejected(repo: Path, value: object) -> None:
    with mlflow.start_run() as run:
        for log in (
            lambda: mlflow.log_metric("m", value),
            lambda: mlflow.log_metrics({"m": value}),
            lambda: Client().log_batch(run.info.run_id, [Metric("m", value, 1, 0)]),
        ):
            with pytest.raises(InvalidInputError, match="metric 'm' got value"):
                log()
    assert Client().get_run(run.info.run_id).data.metrics == {}


def test_values_with_lone_surrogates_are_rejected(repo: Path) -> None:
    client = Client()
    client.init()
    run_id = _started(client)
    for attempt in (
        lambda: client.log_param(run_id, "p", "bad\udcff"),
        lambda: client.set_tag(run_id, "t", "\ud800"),
        lambda: client.set_experiment_tag("0", "t", "x\udfff"),
        lambda: client.create_experiment("e", tags={"t": "\ud800"}),
    ):
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            attempt()
    client.set_terminated(run_id)
    run = client.get_run(run_id)
    assert "p" not in run.data.params and "t" not in run.data.tags


@pytest.mark.parametrize(
    ("artifact_file", "rule"),
    [
        ("a" * 300 + ".txt", "at most 255"),
        ("dir/" + "é" * 128 + ".txt", "at most 255"),
        ("/".join(["d" * 200] * 6) + "/f.txt", "at most 1024"),
        ("nul\x00.txt", "not allowed"),
        ("line\nbreak.txt", "not allowed"),
        ("half\ud800.txt", "not allowed"),
    ],
    ids=["300 chars", "256 bytes", "1206 bytes", "NUL", "newline", "surrogate"],
)
def test_artifact_names_a_file_system_cannot_hold_are_rejected(
    repo: Path, artifact_file: str, rule: str
) -> None:
    with mlflow.start_run() as run:
        for log in (
            lambda: mlflow.log_text("hello", artifact_file),
            lambda: mlflow.log_dict({"a": 1}, artifact_file),
        ):
            with pytest.raises(InvalidInputError, match=rule):
                log()
    assert Client().list_artifacts(run.info.run_id) == []
    assert Client().get_run(run.info.run_id).info.status == RunStatus.FINISHED


@pytest.mark.parametrize(
    "artifact_file", [".git/config", "sub/.GIT/hooks/x", "GIT~1/x", ".git. /x", ".g\u200cit/x"]
)
def test_artifacts_git_reads_as_dot_git_are_rejected_and_fsck_stays_clean(
    repo: Path, artifact_file: str
) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError, match="hasDotgit"):
            mlflow.log_text("x", artifact_file)
        mlflow.log_text("x", "fine.txt")
    assert [f.path for f in Client().list_artifacts(run.info.run_id)] == ["fine.txt"]
    fsck = _fsck(repo)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_an_artifact_where_a_file_or_directory_already_is_is_a_conflict(
    repo: Path, tmp_path: Path
) -> None:
    local = tmp_path / "data.txt"
    local.write_text("data")
    with mlflow.start_run() as run:
        mlflow.log_text("file", "a")
        mlflow.log_text("nested", "d/b.txt")
        with pytest.raises(ConflictError, match="already an artifact file"):
            mlflow.log_artifact(str(local), "a")
        with pytest.raises(ConflictError, match="already a directory"):
            mlflow.log_text("x", "d")
    listed = sorted(f.path for f in Client().list_artifacts(run.info.run_id))
    assert listed == ["a", "d"]


@pytest.mark.parametrize("bad", [[1], {"k": 1}, object()], ids=["list", "dict", "object"])
def test_keys_that_are_not_strings_are_rejected_by_every_logging_call(
    repo: Path, bad: object
) -> None:
    client = Client()
    run_id = _started(client)
    for attempt in (
        lambda: client.log_metric(run_id, bad, 1.0),  # type: ignore[arg-type]
        lambda: client.log_param(run_id, bad, "x"),  # type: ignore[arg-type]
        lambda: client.set_tag(run_id, bad, "x"),  # type: ignore[arg-type]
        lambda: client.delete_tag(run_id, bad),  # type: ignore[arg-type]
        lambda: client.log_batch(run_id, [Metric(bad, 1.0, 1, 0)]),  # type: ignore[arg-type]
        lambda: client.log_batch(run_id, params=[Param(bad, "1")]),  # type: ignore[arg-type]
        lambda: client.log_batch(run_id, tags=[RunTag(bad, "1")]),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInputError, match="must be a string"):
            attempt()
    client.set_terminated(run_id)


def test_log_text_and_log_dict_refuse_what_they_cannot_write(repo: Path) -> None:
    with mlflow.start_run() as run:
        for attempt in (
            lambda: mlflow.log_text(b"bytes", "a.txt"),  # type: ignore[arg-type]
            lambda: mlflow.log_text("half \ud800", "a.txt"),
            lambda: mlflow.log_dict({"a": object()}, "d.json"),
            lambda: mlflow.log_dict({"a": object()}, "d.yaml"),
            lambda: mlflow.log_dict({"a": "\ud800"}, "d.yaml"),
            lambda: mlflow.log_dict({"a": 1}, None),  # type: ignore[arg-type]
        ):
            with pytest.raises(InvalidInputError):
                attempt()
    assert Client().list_artifacts(run.info.run_id) == []


def test_registering_a_300_character_model_name_fails_in_one_line_before_any_commit(
    repo: Path,
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("flavor: none\n", "model/MLmodel")
    tip = _tip(repo)
    done = _gittrack_cli(repo, "models", "register", f"runs:/{run.info.run_id}/model", "m" * 300)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "300 characters; at most 160" in done.stderr
    assert _tip(repo) == tip
    assert git(repo, "tag", "--list") == ""


def test_the_longest_model_name_and_label_make_valid_tags(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("flavor: none\n", "model/MLmodel")
    client = Client()
    name, alias = "m" * 160, "a" * 64
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model")
    client.set_registered_model_alias(name, alias, version.version)
    client.delete_registered_model_alias(name, alias)
    client.transition_model_version_stage(name, version.version, "Production")
    assert len(client.get_registry_history(name)) == 4
    with pytest.raises(InvalidInputError, match="at most 160"):
        client.create_registered_model("m" * 161)
    with pytest.raises(InvalidInputError, match="at most 64"):
        client.set_registered_model_alias(name, "a" * 65, version.version)
    assert _fsck(repo).returncode == 0


def test_registry_text_with_lone_surrogates_is_rejected_before_any_commit(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("flavor: none\n", "model/MLmodel")
    client = Client()
    client.create_registered_model("kept")
    client.create_model_version("kept", f"runs:/{run.info.run_id}/model")
    tip = _tip(repo)
    for attempt in (
        lambda: client.create_registered_model("new", description="x\ud800"),
        lambda: client.update_registered_model("kept", description="\udc80"),
        lambda: client.create_model_version("kept", "/tmp/model\ud800"),
        lambda: client.create_model_version(
            "kept", f"runs:/{run.info.run_id}/model", description="\ud800"
        ),
        lambda: client.update_model_version("kept", 1, description="\udfff"),
    ):
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            attempt()
    assert _tip(repo) == tip
    assert [v.version for v in client.search_model_versions("name = 'kept'")] == ["1"]


# ------------------------------------------------------ log_batch all or nothing (item 15)
@pytest.mark.parametrize(
    "bad",
    [
        {"metrics": [Metric("m", "not a number", 1, 0)]},  # type: ignore[arg-type]
        {"metrics": [Metric("m", 1.0, 1, 2**63)]},
        {"metrics": [Metric("bad*key", 1.0, 1, 0)]},
        {"tags": [RunTag("t2", "\ud800")]},
        {"tags": [RunTag("mlflow.runName", "x" * (NAME_LIMIT + 1))]},
        {"params": [Param("p2/../p", "1")]},
        {"params": [Param("p2", "1"), Param("p2", "2")]},
    ],
    ids=["value", "step", "key", "tag", "run name", "param", "duplicate param"],
)
def test_a_batch_with_one_rejected_item_writes_nothing(repo: Path, bad: dict) -> None:
    batch = {
        "metrics": [Metric("good", 1.0, 1, 0)],
        "params": [Param("p", "1")],
        "tags": [RunTag("t", "v")],
    }
    for kind, items in bad.items():
        batch[kind] = batch[kind] + items
    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError):
            Client().log_batch(run.info.run_id, **batch)
    stored = Client().get_run(run.info.run_id)
    assert stored.data.metrics == {}
    assert "p" not in stored.data.params and "p2" not in stored.data.params
    assert "t" not in stored.data.tags


def test_a_batch_changing_a_logged_param_writes_nothing(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
        with pytest.raises(ConflictError, match="param 'p'"):
            Client().log_batch(
                run.info.run_id,
                metrics=[Metric("m", 1.0, 1, 0)],
                params=[Param("q", "new"), Param("p", "2")],
                tags=[RunTag("t", "v")],
            )
    stored = Client().get_run(run.info.run_id)
    assert stored.data.params == {"p": "1"}
    assert stored.data.metrics == {}
    assert "t" not in stored.data.tags


def test_update_run_refuses_a_status_mlflow_does_not_know_before_renaming_the_run(
    repo: Path,
) -> None:
    client = Client()
    run_id = client.create_run("0", run_name="before").info.run_id

    with pytest.raises(InvalidInputError, match="'DONE' is not one of RUNNING"):
        client.update_run(run_id, status="DONE", name="after")

    run = client.get_run(run_id)
    assert (run.info.run_name, run.info.status) == ("before", RunStatus.RUNNING)
    client.update_run(run_id, status="FINISHED", name="after")
    run = client.get_run(run_id)
    assert (run.info.run_name, run.info.status) == ("after", RunStatus.FINISHED)


@pytest.mark.parametrize(
    "bad_name", ["esc\x1bname.txt", "new\nline.txt"], ids=["escape", "newline"]
)
def test_log_artifacts_refuses_a_directory_with_one_bad_name_before_copying_any_file(
    repo: Path, tmp_path: Path, bad_name: str
) -> None:
    source = tmp_path / "outputs"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("first")
    (source / "sub" / "b.txt").write_text("second")
    (source / "sub" / bad_name).write_text("refused")

    with mlflow.start_run() as run:
        with pytest.raises(InvalidInputError, match="artifact"):
            mlflow.log_artifacts(str(source), "out")
        assert Client().list_artifacts(run.info.run_id) == []

    assert Client().list_artifacts(run.info.run_id) == []


HUGE = 10**5000  # Python refuses to spell an int of more than 4300 digits (ValueError)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, r: c.log_param(r, "p", HUGE),
        lambda c, r: c.set_tag(r, "t", HUGE),
        lambda c, r: c.set_tag(r, "mlflow.runName", HUGE),
        lambda c, r: c.log_batch(r, params=[Param("a", "1"), Param("b", HUGE)]),
        lambda c, r: c.log_metric(r, "m", HUGE),
        lambda c, r: c.log_metric(r, "m", 1.0, step=HUGE),
        lambda c, r: c.log_metric(r, "m", 1.0, timestamp=HUGE),
        lambda c, r: c.set_terminated(r, end_time=HUGE),
        lambda c, r: c.set_experiment_tag("0", "k", HUGE),
        lambda c, r: c.create_registered_model("huge", tags={"k": HUGE}),
    ],
    ids=[
        "param",
        "tag",
        "run name",
        "batch",
        "metric value",
        "step",
        "timestamp",
        "end time",
        "experiment tag",
        "model tag",
    ],
)
def test_an_integer_too_long_to_print_is_refused_as_invalid_input_before_anything_is_written(
    repo: Path, call
) -> None:
    client = Client()
    run_id = _started(client)
    tip = _tip(repo)

    with pytest.raises(InvalidInputError, match="an integer of 16610 bits"):
        call(client, run_id)

    run = client.get_run(run_id)
    assert (run.data.params, run.data.metrics, run.info.status) == ({}, {}, RunStatus.RUNNING)
    assert _tip(repo) == tip
