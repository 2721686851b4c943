"""Helpers shared by the registry tests: runs with a model artifact, config edits, tags."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gittrack import Client
from gittrack.registry.state import TagRecord
from gittrack.registry.tags_io import TagListing
from gittrack.store import layout
from gittrack.store.branch import Blob
from gittrack.store.codecs import dump_yaml

from .conftest import git, tree_fingerprint


def run_with_artifact(client: Client, path: str = "model") -> str:
    """A finished run holding a (stand-in) model directory; returns ``runs:/<id>/<path>``."""
    run = client.create_run("0")
    client.log_text(run.info.run_id, "flavors: {}\n", f"{path}/MLmodel")
    client.set_terminated(run.info.run_id)
    return f"runs:/{run.info.run_id}/{path}"


def registered(client: Client, name: str, versions: int = 1) -> list[str]:
    """Create model ``name`` with ``versions`` versions; returns their sources."""
    client.create_registered_model(name)
    sources = []
    for _ in range(versions):
        source = run_with_artifact(client)
        client.create_model_version(name, source)
        sources.append(source)
    return sources


def set_config(client: Client, **sections: Any) -> None:
    """Merge ``sections`` (e.g. ``registry=...``, ``notifications=...``) into config.yaml."""
    repository = client.repository
    repository.init()
    config = {**repository.config(), **sections}
    repository.branch.commit(
        lambda _snap: {layout.CONFIG_PATH: Blob(dump_yaml(config))}, "Configure the registry\n"
    )


def tag_names(repo: Path) -> list[str]:
    return git(repo, "tag", "-l").split()


def user_state(repo: Path) -> dict[str, str]:
    """What the user owns in the repository (work tree, index, HEAD, branches, stash)."""
    state = tree_fingerprint(repo)
    return {k: v for k, v in state.items() if not k.startswith(".git/refs/tags/")}


FOR_EACH_REF_FIELD, FOR_EACH_REF_RECORD = "\x1f", "\x1e"
FOR_EACH_REF_FORMAT = (
    "%1f".join(
        [
            "%(refname:strip=2)",
            "%(objecttype)",
            "%(objectname)",
            "%(*objectname)",
            "%(taggername)",
            "%(taggeremail:trim)",
            "%(taggerdate:unix)",
            "%(contents:signature)",
            "%(contents)",
        ]
    )
    + "%1e"
)
"""``git for-each-ref --format`` of the tags as git reads them: the reference the registry's
own tag reader is compared with."""


def for_each_ref_listing(output: str) -> TagListing:
    """The tags ``git for-each-ref --format=FOR_EACH_REF_FORMAT`` printed, as records."""
    records: list[TagRecord] = []
    signed: set[str] = set()
    for chunk in output.split(FOR_EACH_REF_RECORD):
        chunk = chunk.lstrip("\n")
        if not chunk:
            continue
        name, kind, target, peeled, who, email, date, signature, contents = chunk.split(
            FOR_EACH_REF_FIELD, 8
        )
        if kind != "tag":
            records.append(TagRecord(name, target, "", "", 0, annotated=False))
            continue
        message = contents[: len(contents) - len(signature)] if signature else contents
        stamp = datetime.fromtimestamp(int(date or 0), tz=timezone.utc)
        records.append(TagRecord(name, peeled or target, who, email, stamp, message))
        if signature:
            signed.add(name)
    return TagListing(tuple(records), frozenset(signed))
