"""Sharing runs through a git remote: gittrack push, pull and sync on real clones (DESIGN §10)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import SRC, git, make_repo, run_script, tree_fingerprint
from .conftest import gittrack_cli as cli

LOG_AND_PROMOTE = """
import sys
import gittrack as mlflow
from gittrack import Client

mlflow.set_experiment("shared")
registered = None
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else {runs}):
    with mlflow.start_run() as run:
        mlflow.log_param("i", str(i))
        mlflow.log_metric("loss", 1.0 / (i + 1))
        if registered is None:
            mlflow.log_text("model", "model/MLmodel")
            registered = run.info.run_id
if {register}:
    mlflow.register_model(f"runs:/{{registered}}/model", "churn")
    Client().transition_model_version_stage("churn", 1, "Production")
"""

USER_REFS = (
    ".git/refs/tags/",  # the registry
    ".git/refs/remotes/origin/gittrack",
    ".git/refs/gittrack/",
    ".git/refs/notes/gittrack",
)


def user_state(repo: Path) -> dict[str, str]:
    """The user's work tree, index, HEAD, branches and stash (not gittrack's own refs)."""
    return {k: v for k, v in tree_fingerprint(repo).items() if not k.startswith(USER_REFS)}


def log_runs(clone: Path, runs: int, register: bool = True) -> None:
    result = run_script(LOG_AND_PROMOTE.format(runs=runs, register=register), clone)
    assert result.returncode == 0, result.stderr


def make_remote(tmp_path: Path, *, with_branch: bool = False) -> Path:
    """A bare remote holding one code commit (and the tracking branch when asked)."""
    source = make_repo(tmp_path / "origin-source")
    if with_branch:
        assert cli(source, "init").returncode == 0
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    return bare


def clone(url: str, path: Path) -> Path:
    git(path.parent, "clone", "-q", url, str(path))
    git(path, "config", "user.name", path.name)
    git(path, "config", "user.email", f"{path.name}@example.com")
    return path


def tracked_files(repo: Path, ref: str = "gittrack") -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()


def run_ids(repo: Path, ref: str = "gittrack") -> set[str]:
    return {p.split("/")[-2] for p in tracked_files(repo, ref) if p.endswith("/meta.yaml")}


def registry_tags(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname:strip=2) %(*objectname)", "refs/tags")
    return dict(line.split(" ") for line in out.splitlines())


def model_versions(repo: Path) -> list[tuple[str, str, str]]:
    code = (
        "from gittrack import Client\n"
        "c = Client()\n"
        "for v in sorted(c.search_model_versions(\"name='churn'\"), key=lambda v: int(v.version)):\n"
        "    print(v.version, v.current_stage, v.run_id)\n"
    )
    result = run_script(code, repo)
    assert result.returncode == 0, result.stderr
    return [tuple(line.split()) for line in result.stdout.splitlines()]


def two_clones_sync(tmp_path: Path, url: str, order: tuple[str, ...]) -> None:
    clones = {name: clone(url, tmp_path / name) for name in ("alice", "bob")}
    for path in clones.values():
        log_runs(path, 50)
    before = {name: user_state(path) for name, path in clones.items()}
    outputs = {}
    for name in order:
        result = cli(clones[name], "sync")
        assert result.returncode == 0, result.stderr
        outputs.setdefault(name, []).append(result.stdout)
    alice, bob = clones["alice"], clones["bob"]
    assert git(alice, "rev-parse", "gittrack") == git(bob, "rev-parse", "gittrack")
    assert len(run_ids(alice)) == 100
    counted = run_script(
        "import gittrack as m; print(len(m.search_runs(search_all_experiments=True)))", bob
    )
    assert counted.stdout.strip() == "100", counted.stderr
    experiments = [p for p in tracked_files(alice) if p.startswith(".tracking/experiments/")]
    assert len(experiments) == 2  # Default and "shared", one id for both clones
    assert registry_tags(alice) == registry_tags(bob)
    versions = model_versions(bob)
    assert [(v[0], v[1]) for v in versions] == [("1", "Production"), ("2", "Production")]
    assert model_versions(alice) == versions
    second = order[1]
    assert "version 1 is now version 2" in "".join(outputs[second])
    for name, path in clones.items():
        fsck = subprocess.run(
            ["git", "fsck", "--strict"], cwd=path, capture_output=True, text=True, check=False
        )
        assert fsck.returncode == 0, fsck.stderr
        assert user_state(path) == before[name]


@pytest.mark.slow
@pytest.mark.parametrize("order", [("alice", "bob", "alice"), ("bob", "alice", "bob")])
def test_two_clones_that_log_register_and_promote_offline_end_identical_after_sync(
    tmp_path: Path, order: tuple[str, ...]
) -> None:
    remote = make_remote(tmp_path)
    two_clones_sync(tmp_path, str(remote), order)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def git_daemon(base: Path):
    """``git daemon`` serving ``base`` on 127.0.0.1 with pushes enabled, stopped on exit."""
    port = _free_port()
    daemon = subprocess.Popen(
        [
            "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
            f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # `git daemon` runs git-daemon as a child: stop the group
    )  # fmt: skip
    try:
        url = f"git://127.0.0.1:{port}/remote.git"
        for _ in range(200):
            probe = subprocess.run(["git", "ls-remote", url], capture_output=True, check=False)
            if probe.returncode == 0:
                break
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()


@pytest.mark.slow
def test_two_clones_sync_through_a_git_daemon(tmp_path: Path) -> None:
    make_remote(tmp_path)
    with git_daemon(tmp_path) as url:
        two_clones_sync(tmp_path, url, ("bob", "alice", "bob"))


@pytest.mark.slow
def test_eight_clones_pushing_at_once_leave_every_run_on_the_remote(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, with_branch=True)
    clones = [clone(str(remote), tmp_path / f"c{i}") for i in range(8)]
    for path in clones:
        log_runs(path, 25, register=False)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    pushes = [
        subprocess.Popen(
            [sys.executable, "-m", "gittrack", "push"],
            cwd=path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for path in clones
    ]
    for proc in pushes:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(run_ids(remote)) == 200
    expected = set().union(*(run_ids(path) for path in clones))
    assert run_ids(remote) == expected


def test_a_clone_without_a_tracking_branch_starts_from_the_remotes(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, with_branch=True)
    first = clone(str(remote), tmp_path / "first")
    log_runs(first, 2, register=False)
    git(first, "push", "-q", "origin", "gittrack")
    second = clone(str(remote), tmp_path / "second")
    log_runs(second, 1, register=False)
    assert run_ids(first) <= run_ids(second)
    assert git(second, "merge-base", "--is-ancestor", "origin/gittrack", "gittrack") == ""
    result = cli(second, "push")
    assert result.returncode == 0, result.stderr
    assert len(run_ids(remote)) == 3


def test_a_plain_clone_after_a_push_sees_the_pushed_runs_in_python(tmp_path: Path) -> None:
    remote = make_remote(tmp_path)
    first = clone(str(remote), tmp_path / "first")
    log_runs(first, 3, register=False)
    git(first, "push", "-q", "origin", "gittrack")
    second = clone(str(remote), tmp_path / "second")
    result = run_script(
        "import gittrack as m; print(len(m.search_runs(search_all_experiments=True)))", second
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_pushing_to_a_remote_that_is_not_configured_is_a_one_line_error(repo: Path) -> None:
    log_runs(repo, 1, register=False)
    result = cli(repo, "push", "upstream")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "remote 'upstream' is not configured" in result.stderr


def test_a_remote_that_cannot_be_reached_is_a_one_line_error_and_keeps_the_runs(
    repo: Path,
) -> None:
    log_runs(repo, 1, register=False)
    tip = git(repo, "rev-parse", "gittrack")
    git(repo, "remote", "add", "origin", f"git://127.0.0.1:{_free_port()}/nothing.git")
    result = cli(repo, "sync")
    assert result.returncode == 7
    assert result.stderr.count("\n") == 1
    assert "cannot be reached" in result.stderr and "'origin'" in result.stderr
    assert git(repo, "rev-parse", "gittrack") == tip


def test_a_push_the_remote_refuses_is_a_one_line_error_and_keeps_the_runs(
    tmp_path: Path,
) -> None:
    remote = make_remote(tmp_path)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'refs/heads/gittrack is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    local = clone(str(remote), tmp_path / "local")
    log_runs(local, 2, register=False)
    tip = git(local, "rev-parse", "gittrack")
    result = cli(local, "push")
    assert result.returncode == 8, result.stderr
    assert result.stderr.count("\n") == 1
    assert "refused" in result.stderr and "kept locally" in result.stderr
    assert git(local, "rev-parse", "gittrack") == tip
    assert "gittrack" not in git(remote, "branch", "--list")


class _AuthRequired(BaseHTTPRequestHandler):
    """A git HTTP server that refuses every request without credentials."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_a_remote_that_refuses_the_credentials_is_a_one_line_error_and_keeps_the_runs(
    repo: Path,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthRequired)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        log_runs(repo, 1, register=False)
        tip = git(repo, "rev-parse", "gittrack")
        git(repo, "remote", "add", "origin", f"http://127.0.0.1:{server.server_port}/r.git")
        result = cli(repo, "push")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 8, result.stderr
    assert result.stderr.count("\n") == 1
    assert "authentication" in result.stderr and "'origin'" in result.stderr
    assert git(repo, "rev-parse", "gittrack") == tip


def test_notes_written_in_two_clones_are_merged_line_by_line(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, with_branch=True)
    clones = [clone(str(remote), tmp_path / name) for name in ("alice", "bob")]
    for path in clones:
        log_runs(path, 1, register=False)
        git(path, "notes", "--ref=gittrack", "add", "-m", f"run by {path.name}", "HEAD")
    for path in (*clones, clones[0]):
        result = cli(path, "sync")
        assert result.returncode == 0, result.stderr
    for path in clones:
        note = git(path, "notes", "--ref=gittrack", "show", "HEAD")
        assert note.splitlines() == ["run by alice", "run by bob"]
    assert git(remote, "rev-parse", "refs/notes/gittrack") == git(
        clones[0], "rev-parse", "refs/notes/gittrack"
    )


STAGE = """
from gittrack import Client
Client().transition_model_version_stage("churn", 1, "Staging")
"""


def tag_events(repo: Path) -> set[tuple[str, str]]:
    """Each registry tag as (tagger line, message): what a tag records, whatever its name."""
    events = set()
    for name in registry_tags(repo):
        body = git(repo, "cat-file", "-p", f"refs/tags/{name}")
        header, _, message = body.partition("\n\n")
        tagger = next(line for line in header.splitlines() if line.startswith("tagger "))
        events.add((tagger, message))
    return events


def test_labels_given_on_both_sides_with_the_same_counters_are_all_kept(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, with_branch=True)
    alice = clone(str(remote), tmp_path / "alice")
    log_runs(alice, 1)  # registers version 1 and moves it to Production
    assert cli(alice, "push").returncode == 0
    bob = clone(str(remote), tmp_path / "bob")
    assert cli(bob, "pull").returncode == 0
    for path in (alice, bob):
        result = run_script(STAGE, path)
        assert result.returncode == 0, result.stderr
    clashing = set(registry_tags(alice)) & set(registry_tags(bob))
    assert len(clashing) > len(registry_tags(remote))  # the same new names on both sides
    events = tag_events(alice) | tag_events(bob)
    for path in (alice, bob, alice):
        result = cli(path, "sync")
        assert result.returncode == 0, result.stderr
    assert registry_tags(alice) == registry_tags(bob)
    assert tag_events(bob) == events  # every assignment kept, under a free counter
    assert model_versions(bob)[0][:2] == ("1", "Staging")
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bob, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_pull_without_fetching_merges_what_a_plain_git_fetch_brought(tmp_path: Path) -> None:
    from gittrack.gitflow.sync import pull

    remote = make_remote(tmp_path, with_branch=True)
    alice, bob = (clone(str(remote), tmp_path / name) for name in ("alice", "bob"))
    log_runs(alice, 2, register=False)
    assert cli(alice, "push").returncode == 0
    log_runs(bob, 1, register=False)
    git(bob, "fetch", "-q", "origin")  # what the user's `git pull` does
    remote.rename(tmp_path / "gone.git")  # no network from here on
    report = pull(bob, fetch=False)
    assert report.merge is not None and report.merge.kind == "merged"
    assert len(run_ids(bob)) == 3
    assert git(bob, "rev-parse", "gittrack^2") == git(bob, "rev-parse", "origin/gittrack")
