"""Registry policy (who may assign, exclusive stages, signed tags), verify, and notifications."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gittrack import Client
from gittrack.cli.main import main
from gittrack.errors import CorruptDataError, PolicyError
from gittrack.tracking.repository import forget_repositories

from .conftest import git
from .registry_support import registered, set_config, tag_names

STAGES = ["None", "Staging", "Production", "Archived"]


def as_user(repo: Path, email: str) -> Client:
    """A client acting as ``email`` (the repository's own git config, not the global one)."""
    git(repo, "config", "user.email", email)
    forget_repositories()
    return Client()


def hand_made_tag(repo: Path, name: str, target: str, email: str) -> None:
    env = {**os.environ, "GIT_COMMITTER_NAME": "Mallory", "GIT_COMMITTER_EMAIL": email}
    subprocess.run(
        ["git", "tag", "-a", "-m", "by hand", name, target], cwd=repo, env=env, check=True
    )


# --------------------------------------------------------------------------- when acting


def test_a_user_not_allowed_to_promote_gets_an_error_and_no_tag(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(
        client, registry={"stages": STAGES, "policy": {"Production": {"allow": ["lead@corp.org"]}}}
    )
    tags_before = tag_names(repo)
    tip_before = git(repo, "rev-parse", "gittrack")

    with pytest.raises(PolicyError, match=r"test@example.com may not assign 'Production'"):
        client.transition_model_version_stage("IrisRF", 1, "Production")

    assert tag_names(repo) == tags_before
    assert git(repo, "rev-parse", "gittrack") == tip_before
    assert client.get_model_version("IrisRF", 1).current_stage == "None"
    lead = as_user(repo, "lead@corp.org")
    assert lead.transition_model_version_stage("IrisRF", 1, "Production").current_stage == (
        "Production"
    )


def test_allow_patterns_match_git_user_emails(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(
        client, registry={"stages": STAGES, "policy": {"Staging": {"allow": ["*@example.com"]}}}
    )
    assert client.transition_model_version_stage("IrisRF", 1, "Staging").current_stage == "Staging"
    outsider = as_user(repo, "eve@elsewhere.net")
    with pytest.raises(PolicyError, match="may not remove 'Staging'"):
        outsider.transition_model_version_stage("IrisRF", 1, "Archived")


def test_an_alias_can_be_restricted_too(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(client, registry={"stages": STAGES, "policy": {"champion": {"allow": ["a@b.c"]}}})
    with pytest.raises(PolicyError, match="may not assign 'champion'"):
        client.set_registered_model_alias("IrisRF", "champion", 1)


def test_a_stage_configured_exclusive_archives_the_previous_holder(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    set_config(
        client,
        registry={
            "stages": STAGES,
            "policy": {"Staging": {"exclusive": True}, "Production": {"exclusive": False}},
        },
    )
    for number in (1, 2):
        client.transition_model_version_stage("IrisRF", number, "Staging")
    for number in (1, 2):
        client.transition_model_version_stage("IrisRF", number, "Production")
    stages = {v.version: v.current_stage for v in client.search_model_versions()}
    assert stages == {"1": "Production", "2": "Production"}
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 2, "Staging")
    stages = {v.version: v.current_stage for v in client.search_model_versions()}
    assert stages == {"1": "Archived", "2": "Staging"}


def test_signed_tags_are_made_when_the_policy_requires_them(repo: Path, tmp_path: Path) -> None:
    key = tmp_path / "key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
    )  # fmt: skip
    client = Client()
    registered(client, "IrisRF")
    set_config(client, registry={"stages": STAGES, "policy": {"Production": {"signed": True}}})
    with pytest.raises(Exception, match="signed tag"):
        client.transition_model_version_stage("IrisRF", 1, "Production")
    assert not [t for t in tag_names(repo) if "#" in t]

    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(key))
    client.transition_model_version_stage("IrisRF", 1, "Production")

    assert "SSH SIGNATURE" in git(repo, "cat-file", "-p", "IrisRF#Production#1")
    assert client.verify_registry() == []


def test_a_policy_the_schema_rejects_is_reported_with_its_field(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(client, registry={"stages": STAGES, "policy": {"Production": {"alow": ["x"]}}})
    forget_repositories()
    with pytest.raises(CorruptDataError, match="registry.policy.Production"):
        Client().transition_model_version_stage("IrisRF", 1, "Production")


# --------------------------------------------------------------------------- verify


def test_verify_reports_a_hand_made_violating_tag(repo: Path, capsys) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    set_config(
        client, registry={"stages": STAGES, "policy": {"Production": {"allow": ["*@corp.org"]}}}
    )
    as_user(repo, "lead@corp.org").transition_model_version_stage("IrisRF", 1, "Production")
    assert main(["models", "verify"]) == 0
    assert "no tag breaks the policy" in capsys.readouterr().out

    hand_made_tag(repo, "IrisRF#Production#7", "IrisRF@v2.0.0^{commit}", "mallory@evil.test")
    git(repo, "tag", "IrisRF#Staging#8", "IrisRF@v2.0.0^{commit}")  # lightweight

    assert main(["models", "verify", "--json"]) == 1
    found = {(v["tag"], v["rule"]) for v in json.loads(capsys.readouterr().out)}
    assert found == {
        ("IrisRF#Production#7", "allow"),
        ("IrisRF#Production#7", "exclusive"),
        ("IrisRF#Staging#8", "annotated"),
    }
    assert main(["models", "verify"]) == 1
    assert "mallory@evil.test" in capsys.readouterr().out


# --------------------------------------------------------------------------- notifications


class Receiver:
    """A webhook receiver on 127.0.0.1 that records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((self.path, body))
                if self.path == "/slow":
                    time.sleep(1.5)
                status = 500 if self.path == "/broken" else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self, path: str) -> list[dict]:
        return [body for got, body in self.received if got == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_webhooks_receive_registrations_stage_changes_and_alias_moves(
    repo: Path, receiver: Receiver
) -> None:
    git(repo, "config", "gittrack.notifyUrls", "true")
    client = Client()
    client.create_registered_model("IrisRF")
    set_config(
        client,
        notifications={
            "version_registered": {"urls": [f"{receiver.url}/registered"]},
            "stage_changed": {"urls": [f"{receiver.url}/stage"]},
            "alias_moved": {"urls": [f"{receiver.url}/alias"]},
        },
    )
    registered_sources = [client.create_model_version("IrisRF", s) for s in _sources(client, 2)]
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.transition_model_version_stage("IrisRF", 2, "Production")
    client.set_registered_model_alias("IrisRF", "champion", 2)

    [first, second] = receiver.events("/registered")
    assert (first["event"], first["model"], first["version"]) == ("version_registered", "IrisRF", 1)
    assert second["source"] == registered_sources[1].source
    assert first["user"] == "test@example.com"
    changes = [(e["version"], e["previous_stage"], e["stage"]) for e in receiver.events("/stage")]
    assert changes == [
        (1, "None", "Production"),
        (2, "None", "Production"),
        (1, "Production", "Archived"),
    ]
    [alias] = receiver.events("/alias")
    assert (alias["alias"], alias["version"], alias["previous_version"]) == ("champion", 2, None)


def test_a_slow_or_failing_receiver_is_reported_and_the_change_is_kept(
    repo: Path, receiver: Receiver, capsys
) -> None:
    git(repo, "config", "gittrack.notifyUrls", "true")
    client = Client()
    registered(client, "IrisRF")
    set_config(
        client,
        notifications={
            "timeout": 0.3,
            "stage_changed": {
                "urls": [f"{receiver.url}/slow", f"{receiver.url}/broken", f"{receiver.url}/ok"]
            },
        },
    )
    started = time.monotonic()
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    assert time.monotonic() - started < 1.4

    err = capsys.readouterr().err
    assert f"{receiver.url}/slow failed: no answer within 0.3 s" in err
    assert f"{receiver.url}/broken failed: HTTP 500" in err
    assert "/ok" not in err
    assert client.get_model_version("IrisRF", 1).current_stage == "Staging"
    assert len(receiver.events("/ok")) == 1


def test_commands_get_the_payload_on_stdin_once_the_repository_opts_in(
    repo: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "payload.json"
    script = tmp_path / "save.py"
    script.write_text(f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())\n")
    client = Client()
    client.create_registered_model("IrisRF")
    set_config(
        client,
        notifications={"version_registered": {"commands": [f"{sys.executable} {script}"]}},
    )
    client.create_model_version("IrisRF", _sources(client, 1)[0])
    assert not out.exists()
    assert "gittrack.notifyCommands" in capsys.readouterr().err

    git(repo, "config", "gittrack.notifyCommands", "true")
    client.create_model_version("IrisRF", _sources(client, 1)[0])
    assert json.loads(out.read_text())["version"] == 2


def test_webhook_urls_from_config_yaml_are_not_called_without_a_local_opt_in(
    repo: Path, receiver: Receiver, capsys
) -> None:
    client = Client()
    registered(client, "IrisRF")
    pulled_url = f"{receiver.url}/pulled"
    set_config(client, notifications={"stage_changed": {"urls": [pulled_url]}})

    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 1, "Production")

    assert receiver.received == []
    assert client.get_model_version("IrisRF", 1).current_stage == "Production"
    err = capsys.readouterr().err.splitlines()
    skipped = [line for line in err if pulled_url in line]
    assert len(skipped) == 2  # one line per event, not one per URL and failure
    assert "skipped 1 webhook URL(s)" in skipped[0]
    assert "git config gittrack.notifyUrls true" in skipped[0]
    assert "gittrack.notifyUrl <url>" in skipped[0]


def test_a_webhook_url_listed_in_local_git_config_is_called_and_the_others_are_not(
    repo: Path, receiver: Receiver, capsys
) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(
        client,
        notifications={
            "stage_changed": {"urls": [f"{receiver.url}/allowed", f"{receiver.url}/other"]}
        },
    )
    git(repo, "config", "--add", "gittrack.notifyUrl", f"{receiver.url}/allowed")
    git(repo, "config", "--add", "gittrack.notifyUrl", "https://example.invalid/also-allowed")

    client.transition_model_version_stage("IrisRF", 1, "Staging")

    assert [path for path, _body in receiver.received] == ["/allowed"]
    err = capsys.readouterr().err
    assert f"{receiver.url}/other" in err and f"{receiver.url}/allowed" not in err


def test_turning_the_url_opt_in_off_again_stops_the_calls(
    repo: Path, receiver: Receiver, capsys
) -> None:
    client = Client()
    registered(client, "IrisRF")
    set_config(client, notifications={"stage_changed": {"urls": [f"{receiver.url}/hook"]}})
    git(repo, "config", "gittrack.notifyUrls", "yes")
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    git(repo, "config", "gittrack.notifyUrls", "false")
    client.transition_model_version_stage("IrisRF", 1, "Production")

    assert [body["stage"] for body in receiver.events("/hook")] == ["Staging"]


def _sources(client: Client, count: int) -> list[str]:
    from .registry_support import run_with_artifact

    return [run_with_artifact(client) for _ in range(count)]
