"""Notifications of registry events: webhooks and local commands, from ``config.yaml``.

::

    notifications:
      timeout: 5                       # seconds per receiver (default 5)
      version_registered:
        urls: ["https://ci.example.com/hooks/registry"]
      stage_changed:
        urls: ["http://127.0.0.1:9000/deploy"]
        commands: ["python scripts/deploy.py"]
      alias_moved:
        commands: ["./notify-team.sh"]

Each URL receives the event as a JSON POST; each command runs (split like a shell would, but
without a shell) in the repository with the JSON on stdin. Receivers are called after the
registry change is written, all at once, each bounded by the timeout: a failing or slow
receiver is reported on stderr and never undoes the change.

``config.yaml`` travels with ``git pull``, so whatever it names acts only where the local git
config opts in, which a pull cannot change. Commands run after
``git config gittrack.notifyCommands true``. URLs are called after
``git config gittrack.notifyUrls true`` (every URL), or when listed one by one with
``git config --add gittrack.notifyUrl <url>``: a webhook sends the repository path, the run
id and the user's email, and must not go to an address that merely arrived with a pull.
Receivers without opt-in are reported as skipped, once per event, with how to enable them.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS = ("version_registered", "stage_changed", "alias_moved")
DEFAULT_TIMEOUT = 5.0
COMMANDS_OPT_IN = "gittrack.notifyCommands"
URLS_OPT_IN = "gittrack.notifyUrls"
URL_OPT_IN = "gittrack.notifyUrl"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Delivery:
    """The outcome of one receiver: ``error`` is None when it accepted the event."""

    event: str
    target: str
    error: str | None = None


class Notifier:
    """Sends registry events to the receivers configured for them."""

    def __init__(
        self,
        config: Mapping[str, Any],
        cwd: Path,
        local_config: Callable[[str, bool], list[str]],
        report: Callable[[str], None] | None = None,
    ) -> None:
        """``local_config(key, as_bool)`` gives every value of ``key`` in the local git
        config (booleans normalized to ``true``/``false``): the opt-ins live there."""
        self.config = dict(config or {})
        self.cwd = cwd
        self._local_config = local_config
        self._report = report or _print_to_stderr
        self.timeout = float(self.config.get("timeout", DEFAULT_TIMEOUT))

    def receivers(self, event: str) -> tuple[list[str], list[str]]:
        spec = self.config.get(event) or {}
        return [str(u) for u in spec.get("urls") or ()], [
            str(c) for c in spec.get("commands") or ()
        ]

    def send(self, event: str, payload: Mapping[str, Any]) -> list[Delivery]:
        """Deliver ``payload`` to every receiver of ``event`` the local git config allows;
        failures are reported one by one, skipped receivers once with how to enable them."""
        urls, commands = self.receivers(event)
        if not urls and not commands:
            return []
        body = json.dumps({"event": event, **payload}, sort_keys=True, default=str).encode()
        urls, skipped_urls = self._opted_in_urls(urls)
        if commands and not self._is_on(COMMANDS_OPT_IN):
            commands, skipped_commands = [], commands
        else:
            skipped_commands = []
        jobs: list[tuple[str, Callable[[], str | None]]] = [
            (url, lambda url=url: _post(url, body, self.timeout)) for url in urls
        ]
        jobs += [
            (command, lambda c=command: _run(c, body, self.cwd, self.timeout))
            for command in commands
        ]
        return self._skipped(event, skipped_urls, skipped_commands) + self._deliver(event, jobs)

    def _skipped(self, event: str, urls: list[str], commands: list[str]) -> list[Delivery]:
        """The receivers not opted in, reported once per kind with how to enable them."""
        results = []
        for skipped, reason, kind in (
            (urls, _URLS_SKIPPED, "webhook URL"),
            (commands, _COMMANDS_SKIPPED, "command"),
        ):
            if skipped:
                results += [Delivery(event, target, f"skipped: {reason}") for target in skipped]
                self._report(
                    f"gittrack: notification {event}: skipped {len(skipped)} {kind}(s) from "
                    f"config.yaml ({', '.join(skipped)}): {reason}"
                )
        return results

    def _deliver(
        self, event: str, jobs: list[tuple[str, Callable[[], str | None]]]
    ) -> list[Delivery]:
        """Run the jobs all at once; each failure is reported and never raised."""
        if not jobs:
            return []
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            futures = [(target, pool.submit(job)) for target, job in jobs]
            sent = [Delivery(event, target, future.result()) for target, future in futures]
        for delivery in sent:
            if delivery.error is not None:
                self._report(
                    f"gittrack: notification {event} to {delivery.target} failed: "
                    f"{delivery.error} (the registry change itself is kept)"
                )
        return sent

    def _is_on(self, key: str) -> bool:
        """Whether the local git config sets the boolean ``key`` (its last value wins)."""
        return self._local_config(key, True)[-1:] == ["true"]

    def _opted_in_urls(self, urls: list[str]) -> tuple[list[str], list[str]]:
        """(URLs the local git config allows, URLs it does not)."""
        if not urls or self._is_on(URLS_OPT_IN):
            return urls, []
        listed = set(self._local_config(URL_OPT_IN, False))
        return [u for u in urls if u in listed], [u for u in urls if u not in listed]


_URLS_SKIPPED = (
    f"webhooks from config.yaml are called only after `git config {URLS_OPT_IN} true`, or "
    f"`git config --add {URL_OPT_IN} <url>` for each URL, in this repository"
)
_COMMANDS_SKIPPED = (
    f"commands from config.yaml run only after `git config {COMMANDS_OPT_IN} true` in this "
    "repository"
)


def _post(url: str, body: bytes, timeout: float) -> str | None:
    # Imported here: the HTTP stack costs more to import than most registry operations take.
    import urllib.error
    import urllib.parse
    import urllib.request

    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url!r}"
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "gittrack"},
    )
    # A proxy from the environment must not intercept webhooks to this machine.
    host = urllib.parse.urlsplit(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"no answer within {timeout:g} s"
        return str(reason)
    return None


def _run(command: str, body: bytes, cwd: Path, timeout: float) -> str | None:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"cannot parse the command: {exc}"
    if not argv:
        return "empty command"
    try:
        proc = subprocess.run(
            argv, input=body, cwd=cwd, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:g} s"
    except OSError as exc:
        return str(exc)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"exit code {proc.returncode}" + (f": {detail[-1]}" if detail else "")
    return None


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)
