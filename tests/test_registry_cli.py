"""``gittrack models ...``: the command line mirrors the registry API."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from gittrack import Client
from gittrack.cli.main import main

from .conftest import git
from .registry_support import registered, run_with_artifact


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_register_transition_alias_and_list(repo: Path, capsys) -> None:
    source = run_with_artifact(Client())
    code, out, _ = run_cli(capsys, "models", "register", source, "IrisRF", "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    run_cli(capsys, "models", "register", source, "IrisRF", "--description", "second")
    assert run_cli(capsys, "models", "transition", "IrisRF", "1", "Production")[0] == 0
    assert run_cli(capsys, "models", "alias", "IrisRF", "champion", "2")[0] == 0

    code, out, _ = run_cli(capsys, "models", "list", "--json")
    [row] = json.loads(out)
    assert row["name"] == "IrisRF"
    assert (row["versions"], row["latest"]) == (2, "v2")
    assert row["stages"] == "Production: v1"
    assert row["aliases"] == "champion: v2"

    code, out, _ = run_cli(capsys, "models", "list")
    assert "IrisRF" in out and "Production: v1" in out


def test_show_lists_the_versions(repo: Path, capsys) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    client.update_registered_model("IrisRF", description="iris classifier")
    client.transition_model_version_stage("IrisRF", 2, "Staging")

    code, out, _ = run_cli(capsys, "models", "show", "IrisRF", "--json")
    shown = json.loads(out)
    assert shown["description"] == "iris classifier"
    assert [(v["version"], v["stage"]) for v in shown["versions"]] == [
        (2, "Staging"),
        (1, "None"),
    ]
    code, out, _ = run_cli(capsys, "models", "show", "IrisRF", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["version"] for r in rows] == ["2", "1"]
    code, out, _ = run_cli(capsys, "models", "show", "IrisRF")
    assert "iris classifier" in out and "Staging" in out


def test_history_shows_who_did_what_and_why(repo: Path, capsys) -> None:
    client = Client()
    registered(client, "IrisRF")
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.set_registered_model_alias("IrisRF", "champion", 1)

    code, out, _ = run_cli(capsys, "models", "history", "IrisRF", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["event"], r["label"]) for r in rows] == [
        ("registered", ""),
        ("stage", "Staging"),
        ("stage", "Production"),
        ("unassigned", "Staging"),
        ("alias", "champion"),
    ]
    assert {r["who"] for r in rows} == {"Test User <test@example.com>"}
    assert rows[2]["message"] == "Assign Production to IrisRF version 1"


def test_show_at_a_revision_or_date_shows_the_registry_as_it_was(repo: Path, capsys) -> None:
    client = Client()
    registered(client, "IrisRF")
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    time.sleep(1.1)  # tag dates have whole seconds
    between = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    time.sleep(1.1)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.update_model_version("IrisRF", 1, description="promoted")  # a tracking commit

    def stage_at(at: str) -> str:
        code, out, err = run_cli(capsys, "models", "show", "IrisRF", "--at", at, "--json")
        assert code == 0, err
        return json.loads(out)["versions"][0]["stage"]

    assert stage_at(between) == "Staging"
    assert stage_at("IrisRF#Staging#1") == "Staging"
    assert stage_at("IrisRF#Production#2") == "Production"
    assert stage_at("gittrack") == "Production"
    code, out, err = run_cli(capsys, "models", "show", "IrisRF", "--at", "no such thing at all")
    assert code == 2 and "neither a git revision nor a date" in err


def test_errors_are_one_line_with_an_exit_code(repo: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "models", "show", "nope")
    assert code == 3
    assert err.strip() == "gittrack: error: Registered model 'nope' does not exist"
    code, _, err = run_cli(capsys, "models", "register", "runs:/" + "a" * 32 + "/m", "X")
    assert code == 3 and "does not exist" in err


def test_the_repo_option_points_at_another_repository(repo: Path, tmp_path, capsys) -> None:
    registered(Client(), "IrisRF")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, _ = run_cli(capsys, "-C", str(repo), "models", "list", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["IrisRF"]
    assert git(repo, "status", "--porcelain") == ""


def test_listing_agrees_with_the_model_and_version_searches(repo: Path, capsys) -> None:
    client = Client()
    registered(client, "alpha", versions=3)
    registered(client, "beta", versions=2)
    client.delete_model_version("alpha", 3)  # a deleted version is neither counted nor latest
    client.transition_model_version_stage("beta", 1, "Production")
    client.set_registered_model_alias("beta", "champion", 2)

    listing = client.registered_model_listing()
    models = client.search_registered_models(max_results=None)
    assert [s.name for s in listing] == [m.name for m in models]
    for summary, model in zip(listing, models):
        assert summary.creation_timestamp == model.creation_timestamp
        assert summary.last_updated_timestamp == model.last_updated_timestamp
        assert summary.description == model.description
        assert dict(summary.tags) == model.tags
        assert {a: str(n) for a, n in summary.aliases.items()} == model.aliases
        assert list(summary.latest_stages) == [
            (v.current_stage, int(v.version)) for v in model.latest_versions
        ]
        found = client.search_model_versions(f"name = '{model.name}'", max_results=None)
        assert list(summary.versions) == sorted(int(v.version) for v in found)
    assert [(s.name, s.versions) for s in client.registered_model_listing("name = 'beta'")] == [
        ("beta", (1, 2))
    ]

    code, out, _ = run_cli(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert (rows["alpha"]["versions"], rows["alpha"]["latest"]) == (2, "v2")
    assert (rows["beta"]["stages"], rows["beta"]["aliases"]) == ("Production: v1", "champion: v2")
