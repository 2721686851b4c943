"""``gittrack models list|show|history|register|transition|alias|verify``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from gittrack.cli.main import add_format_options
from gittrack.cli.output import emit, visible
from gittrack.client import Client
from gittrack.entities import ModelVersion, RegisteredModel, RegisteredModelSummary
from gittrack.errors import ConflictError, InvalidInputError
from gittrack.store.codecs import format_time

AT_HELP = "show the registry as it was at a git revision (tag, commit) or date (2024-05-01)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="the model registry (git tags)")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="list registered models")
    listing.add_argument("--at", help=AT_HELP)
    listing.add_argument("--filter", default=None, help="e.g. \"name LIKE 'iris%%'\"")
    add_format_options(listing)
    listing.set_defaults(handler=list_models)

    show = actions.add_parser("show", help="show a model and its versions")
    show.add_argument("name")
    show.add_argument("--at", help=AT_HELP)
    add_format_options(show)
    show.set_defaults(handler=show_model)

    history = actions.add_parser("history", help="every registry event of a model: who, when, why")
    history.add_argument("name")
    add_format_options(history)
    history.set_defaults(handler=model_history)

    reg = actions.add_parser("register", help="register a model (e.g. runs:/<run_id>/model)")
    reg.add_argument("source", help="runs:/<run_id>/<path>, models:/<name>/<version> or a path")
    reg.add_argument("name")
    reg.add_argument("--description", default=None)
    reg.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    add_format_options(reg)
    reg.set_defaults(handler=register_version)

    move = actions.add_parser("transition", help="move a version to a stage")
    move.add_argument("name")
    move.add_argument("version")
    move.add_argument("stage")
    move.add_argument(
        "--archive-existing",
        action="store_true",
        help="archive the other versions in that stage",
    )
    add_format_options(move)
    move.set_defaults(handler=transition)

    alias = actions.add_parser("alias", help="point an alias at a version (or --delete it)")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.add_argument("--delete", action="store_true", help="remove the alias")
    alias.set_defaults(handler=set_alias)

    verify = actions.add_parser(
        "verify", help="check every registry tag against the policy (exit 1 on violations)"
    )
    add_format_options(verify)
    verify.set_defaults(handler=verify_policy)


# ------------------------------------------------------------------------------ rows


def _version_row(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": int(version.version),
        "stage": version.current_stage,
        "aliases": ", ".join(version.aliases),
        "run_id": version.run_id,
        "source": version.source,
        "created": format_time(version.creation_timestamp),
        "user": version.user_id,
        "description": version.description,
    }


def _model_row(model: RegisteredModelSummary) -> dict:
    """A listing row of a model."""
    stages = ", ".join(f"{stage}: v{n}" for stage, n in model.latest_stages if stage != "None")
    return {
        "name": model.name,
        "latest": f"v{max(model.versions)}" if model.versions else "",
        "versions": len(model.versions),
        "stages": stages,
        "aliases": ", ".join(f"{a}: v{n}" for a, n in model.aliases.items()),
        "description": model.description,
        "updated": format_time(model.last_updated_timestamp),
    }


def _summary_of(model: RegisteredModel, numbers: list[int]) -> RegisteredModelSummary:
    """The listing's summary of a model read as an entity, with its active version numbers."""
    return RegisteredModelSummary(
        name=model.name,
        creation_timestamp=model.creation_timestamp,
        last_updated_timestamp=model.last_updated_timestamp,
        description=model.description,
        tags=model.tags,
        latest_stages=tuple((v.current_stage, int(v.version)) for v in model.latest_versions),
        aliases={alias: int(n) for alias, n in model.aliases.items()},
        versions=tuple(numbers),
    )


# ------------------------------------------------------------------------------ handlers


def list_models(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    listing = client.registered_model_listing(args.filter, at=args.at)
    rows = [_model_row(m) for m in listing]
    columns = ["name", "versions", "latest", "stages", "aliases", "description", "updated"]
    emit(rows, columns, args.format)
    return 0


def show_model(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    model = client.get_registered_model(args.name, at=args.at)
    versions = client.search_model_versions(
        f"name = '{_quote(args.name)}'", max_results=None, at=args.at
    )
    rows = [_version_row(v) for v in versions]
    summary = _summary_of(model, [int(v.version) for v in versions])
    if args.format == "json":
        record = {**_model_row(summary), "tags": model.tags, "versions": rows}
        emit(record, fmt="json")
        return 0
    if args.format == "table":
        header = _model_row(summary)
        emit({k: header[k] for k in ("name", "description", "stages", "aliases", "updated")})
        if model.tags:
            tags = ", ".join(f"{k}={v}" for k, v in model.tags.items())
            print("tags".ljust(11) + visible(tags))
        print()
    emit(rows, list(_version_row_columns()), args.format)
    return 0


def _version_row_columns() -> tuple[str, ...]:
    return ("version", "stage", "aliases", "run_id", "source", "created", "user", "description")


def model_history(args: argparse.Namespace) -> int:
    events = Client(args.repo).get_registry_history(args.name)
    rows = [
        {
            "when": e.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "who": f"{e.who} <{e.email}>" if e.email else e.who,
            "event": e.kind.value,
            "version": e.version,
            "label": e.label,
            "tag": e.tag,
            "message": e.message.strip() if args.format == "json" else _first_line(e.message),
        }
        for e in events
    ]
    emit(rows, ["when", "who", "event", "version", "label", "tag", "message"], args.format)
    return 0


def register_version(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    tags = dict(_key_value(t) for t in args.tag)
    with contextlib.suppress(ConflictError):
        client.create_registered_model(args.name)
    version = client.create_model_version(
        args.name, args.source, tags=tags, description=args.description
    )
    emit(_version_row(version), fmt=args.format)
    return 0


def transition(args: argparse.Namespace) -> int:
    version = Client(args.repo).transition_model_version_stage(
        args.name, args.version, args.stage, archive_existing_versions=args.archive_existing
    )
    emit(_version_row(version), fmt=args.format)
    return 0


def set_alias(args: argparse.Namespace) -> int:
    client = Client(args.repo)
    if args.delete:
        client.delete_registered_model_alias(args.name, args.alias)
        print(visible(f"removed alias {args.alias!r} of {args.name}"))
        return 0
    if args.version is None:
        print("gittrack: error: give the VERSION the alias points at, or --delete", file=sys.stderr)
        return 2
    client.set_registered_model_alias(args.name, args.alias, args.version)
    print(visible(f"{args.name}@{args.alias} -> version {args.version}"))
    return 0


def verify_policy(args: argparse.Namespace) -> int:
    violations = Client(args.repo).verify_registry()
    rows = [
        {"tag": v.tag, "model": v.model, "label": v.label, "rule": v.rule, "problem": v.message}
        for v in violations
    ]
    if args.format != "table":
        emit(rows, ["tag", "model", "label", "rule", "problem"], args.format)
    elif not rows:
        print("registry OK: no tag breaks the policy")
    else:
        # One whole line per violation: CI logs show the full reason, no column is cut.
        for row in rows:
            print(visible(f"{row['tag']}: {row['problem']} [{row['rule']}]"))
        print(f"{len(rows)} registry tag problem(s) found")
    return 1 if rows else 0


# ------------------------------------------------------------------------------ helpers


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidInputError(f"--tag {text!r} must be KEY=VALUE")
    return key, value
