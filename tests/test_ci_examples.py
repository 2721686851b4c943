"""The CI files: ``action.yml`` (composite action), ``examples/ci/github-actions.yml`` and
``examples/ci/gitlab-ci.yml``. They parse, call only commands that exist, and the action's
shell steps run here on a fixture repository against a local stand-in for GitHub's API."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from gittrack.cli.main import build_parser
from gittrack.tracking.repository import forget_repositories

from .conftest import SRC, git, make_repo
from .test_diff import commit, log_run

ROOT = SRC.parent
ACTION = ROOT / "action.yml"
GITHUB_WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB_CI = ROOT / "examples" / "ci" / "gitlab-ci.yml"
POSTER = ROOT / "examples" / "ci" / "post_comment.py"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------ a stand-in for the API
def page(path: str) -> int:
    """The ``page`` a list request asks for (the API's default: 1)."""
    return int(parse_qs(urlsplit(path).query).get("page", ["1"])[0])


class FakeGitHub:
    """Issue comments of one pull request, as GitHub's REST API serves them; every request
    is recorded as (method, path, body)."""

    def __init__(self) -> None:
        self.comments: list[dict] = [{"id": 1, "body": "LGTM"}]
        self.requests: list[tuple[str, str, dict | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, doc: object) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict | None:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _handle(self) -> None:
                body = self._body()
                fake.requests.append((self.command, self.path, body))
                if self.headers.get("Authorization") != "Bearer t0ken":
                    return self._reply(401, {"message": "Bad credentials"})
                path = self.path.split("?")[0]
                if self.command == "GET" and path == "/repos/o/r/issues/7/comments":
                    return self._reply(200, fake.comments if page(self.path) == 1 else [])
                if self.command == "POST" and path == "/repos/o/r/issues/7/comments":
                    made = {"id": 100 + len(fake.comments), "body": body["body"]}
                    fake.comments.append(made)
                    return self._reply(201, made)
                match = re.fullmatch(r"/repos/o/r/issues/comments/(\d+)", path)
                if self.command == "PATCH" and match:
                    for comment in fake.comments:
                        if comment["id"] == int(match.group(1)):
                            comment["body"] = body["body"]
                            return self._reply(200, comment)
                return self._reply(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ running the action
def pull_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """An ``origin`` with runs on main's tip and on a pull request's head, and the CI
    checkout of that pull request (a clone, detached at its head, without a local
    tracking branch)."""
    origin = make_repo(tmp_path / "origin")
    monkeypatch.chdir(origin)
    base = commit(origin, "model")
    log_run("iris", {"accuracy": 0.9, "loss": 0.3}, {"trees": "10"})
    git(origin, "checkout", "-q", "-b", "feature")
    head = commit(origin, "model", "print('model')\nprint('more trees')\n")
    log_run("iris", {"accuracy": 0.8, "loss": 0.25}, {"trees": "50"})
    git(origin, "checkout", "-q", "main")
    forget_repositories()
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", "--no-checkout", str(origin), str(checkout))
    git(checkout, "checkout", "-q", "--detach", head)
    monkeypatch.chdir(tmp_path)
    return {"origin": origin, "checkout": checkout, "base": base, "head": head}


def run_action(
    checkout: Path, head: str, api: str, tmp_path: Path, inputs: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run every step of action.yml with bash, as a runner would (``bash --noprofile --norc
    -eo pipefail``), with the ``${{ }}`` values of a pull_request event; stops at a failure."""
    action = load(ACTION)
    given = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    given.update({"install": "false", **(inputs or {})})
    context = {
        "github.action_path": str(ROOT),
        "github.base_ref": "main",
        "github.token": "t0ken",
        "github.event.pull_request.head.sha": head,
        "github.event.pull_request.number": "7",
    }
    context.update({f"inputs.{name}": resolve(v, context) for name, v in given.items()})
    runner = tmp_path / "runner"
    runner.mkdir(exist_ok=True)
    base_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(SRC),
        "GITHUB_API_URL": api,
        "GITHUB_REPOSITORY": "o/r",
        "RUNNER_TEMP": str(runner),
        "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
    }
    results = []
    for number, step in enumerate(action["runs"]["steps"]):
        output = runner / f"output-{number}"
        output.write_text("")
        env = {key: resolve(str(value), context) for key, value in step.get("env", {}).items()}
        script = runner / f"step-{number}.sh"
        script.write_text(step["run"])
        assert step["shell"] == "bash"
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=checkout,
            env={**base_env, **env, "GITHUB_OUTPUT": str(output)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        results.append(proc)
        for line in output.read_text().splitlines():
            key, _, value = line.partition("=")
            context[f"steps.{step.get('id')}.outputs.{key}"] = value
        if proc.returncode != 0:
            break
    return results


def resolve(text: str, context: dict[str, str]) -> str:
    """``${{ name }}`` replaced by its value; an expression the test does not know fails."""

    def value(match: re.Match) -> str:
        assert match.group(1) in context, f"unknown expression {match.group(0)}"
        return context[match.group(1)]

    return EXPRESSION.sub(value, text)


def test_the_workflow_files_and_the_action_are_valid_yaml_of_their_kind() -> None:
    action, workflow, gitlab = load(ACTION), load(GITHUB_WORKFLOW), load(GITLAB_CI)

    assert action["runs"]["using"] == "composite"
    assert all(step["shell"] == "bash" and "run" in step for step in action["runs"]["steps"])
    steps = workflow["jobs"]["gittrack-diff"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert steps[-1]["uses"].endswith("/gittrack@v0")
    assert set(steps[-1]["with"]) <= set(action["inputs"])
    assert workflow["permissions"]["pull-requests"] == "write"
    assert isinstance(gitlab["gittrack-diff"]["script"], list)


def test_the_action_passes_every_value_through_env_never_into_a_script() -> None:
    for step in load(ACTION)["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]


def test_the_gitlab_job_calls_only_gittrack_commands_and_options_that_exist() -> None:
    script = load(GITLAB_CI)["gittrack-diff"]["script"]
    calls = [line for line in script if re.search(r"(^|\s)gittrack diff", line)]

    assert len(calls) == 1
    words = shlex.split(calls[0].split(">")[0])
    args = words[words.index("gittrack") + 1 :]
    parsed = build_parser().parse_args([w if "$" not in w else "REV" for w in args])
    assert (parsed.command, parsed.format, parsed.fail_on, parsed.nearest) == (
        "diff",
        "md",
        "budgets",
        True,
    )
    assert any("post_comment.py gitlab gittrack-diff.md" in line for line in script)


def test_the_actions_steps_produce_the_markdown_and_keep_one_comment_across_pushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = pull_request(tmp_path, monkeypatch)
    with FakeGitHub() as api:
        first = run_action(made["checkout"], made["head"], api.url, tmp_path)
        second = run_action(made["checkout"], made["head"], api.url, tmp_path)

    assert [proc.returncode for proc in first] == [0] * 5, first[-1].stderr
    assert [proc.returncode for proc in second] == [0] * 5
    markdown = (tmp_path / "runner" / "gittrack-diff.md").read_text()
    assert markdown.startswith(f"## gittrack diff {made['base'][:7]}...{made['head'][:7]}\n")
    assert "| accuracy | 0.9 | 0.8 | ↓ -0.1 | -11.11% |" in markdown
    assert "| trees | 10 | 50 |" in markdown
    assert "created 101" in first[3].stdout and "updated 101" in second[3].stdout
    writes = [(method, path) for method, path, _ in api.requests if method != "GET"]
    assert writes == [
        ("POST", "/repos/o/r/issues/7/comments"),
        ("PATCH", "/repos/o/r/issues/comments/101"),
    ]
    assert api.comments == [{"id": 1, "body": "LGTM"}, {"id": 101, "body": markdown}]
    assert (tmp_path / "runner" / "summary.md").read_text() == markdown * 2


def test_the_action_fails_on_a_broken_budget_after_posting_the_marked_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = pull_request(tmp_path, monkeypatch)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  accuracy: {goal: maximize, max_decrease: 0.05}\n")

    with FakeGitHub() as api:
        steps = run_action(
            made["checkout"],
            made["head"],
            api.url,
            tmp_path,
            {"extra-args": f"--budgets {budgets}"},
        )

    assert [proc.returncode for proc in steps] == [0, 0, 0, 0, 1]
    assert "budget broken: iris: accuracy: max_decrease 0.05 broken (0.1)" in steps[2].stderr
    body = api.comments[-1]["body"]
    assert "| ❌ accuracy | 0.9 | 0.8 | ↓ -0.1 worse | -11.11% |" in body
    assert "**Budgets broken: 1**" in body


def test_an_error_of_the_diff_is_posted_as_the_comment_and_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = pull_request(tmp_path, monkeypatch)

    with FakeGitHub() as api:
        steps = run_action(
            made["checkout"], made["head"], api.url, tmp_path, {"base": "no-such-rev"}
        )

    assert steps[-1].returncode == 3 and len(steps) == 5  # NotFoundError's exit status
    body = api.comments[-1]["body"]
    assert body.startswith("## gittrack diff\n\ngittrack diff could not compare the runs:")
    assert "'no-such-rev'" in body


class FakeGitLab:
    """Notes of one merge request (project 42, MR 3), as GitLab's REST API serves them."""

    def __init__(self) -> None:
        self.notes: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                fake.requests.append((self.command, self.path.split("?")[0]))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                assert self.headers.get("PRIVATE-TOKEN") == "gl-token"
                if self.command == "POST":
                    fake.notes.append({"id": 5 + len(fake.notes), "body": body["body"]})
                    reply: object = fake.notes[-1]
                elif self.command == "PUT":
                    note_id = int(self.path.rsplit("/", 1)[1])
                    (reply,) = [note for note in fake.notes if note["id"] == note_id]
                    reply["body"] = body["body"]
                else:
                    reply = fake.notes if page(self.path) == 1 else []
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"
        self.env = {
            "CI_API_V4_URL": self.url,
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "3",
            "GITLAB_TOKEN": "gl-token",
        }

    def __enter__(self) -> FakeGitLab:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_comment_poster_updates_a_gitlab_merge_request_note_too(tmp_path: Path) -> None:
    table = tmp_path / "gittrack-diff.md"
    outputs = []
    with FakeGitLab() as api:
        for text in ("## gittrack diff a...b\n\nfirst\n", "## gittrack diff a...c\n\nsecond\n"):
            table.write_text(text)
            proc = subprocess.run(
                [sys.executable, str(POSTER), "gitlab", str(table)],
                env={**os.environ, **api.env},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            outputs.append(proc.stdout.strip())

    assert outputs == ["created 5", "updated 5"]
    assert api.notes == [{"id": 5, "body": "## gittrack diff a...c\n\nsecond\n"}]
    assert [call for call in api.requests if call[0] != "GET"] == [
        ("POST", "/api/v4/projects/42/merge_requests/3/notes"),
        ("PUT", "/api/v4/projects/42/merge_requests/3/notes/5"),
    ]


def test_the_gitlab_jobs_script_runs_on_a_merge_request_and_posts_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's script lines, run in one bash as GitLab's runner does, after its two
    installation lines (pip and the download of post_comment.py) are done here instead."""
    made = pull_request(tmp_path, monkeypatch)
    checkout = made["checkout"]
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "gittrack").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gittrack "$@"\n')
    (shims / "gittrack").chmod(0o755)
    (shims / "python").symlink_to(sys.executable)
    (checkout / "post_comment.py").write_bytes(POSTER.read_bytes())
    job = load(GITLAB_CI)["gittrack-diff"]
    lines = [
        line
        for line in job["script"]
        if not line.startswith("python -m pip") and "urlretrieve" not in line
    ]
    assert len(lines) == len(job["script"]) - 2

    with FakeGitLab() as api:
        env = {
            **os.environ,
            **job["variables"],
            **api.env,
            "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(SRC),
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_COMMIT_SHA": str(made["head"]),
        }
        runs = [
            subprocess.run(
                ["bash", "-eo", "pipefail", "-c", "\n".join(lines)],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            for _ in range(2)
        ]

    assert [proc.returncode for proc in runs] == [0, 0], runs[0].stderr
    markdown = (checkout / "gittrack-diff.md").read_text()
    assert "| accuracy | 0.9 | 0.8 | ↓ -0.1 | -11.11% |" in markdown
    assert api.notes == [{"id": 5, "body": markdown}]
    assert "created 5" in runs[0].stdout and "updated 5" in runs[1].stdout
