"""The registry API on ``Client``: models, versions, stages, aliases, on git tags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import ConflictError, InvalidInputError, NotFoundError

from .conftest import SRC, git
from .hostile_branch import put_file
from .registry_support import registered, run_with_artifact, tag_names, user_state


@pytest.fixture
def client(repo: Path) -> Client:
    return Client()


# --------------------------------------------------------------------------- models


def test_a_model_file_changed_on_the_branch_by_another_writer_is_read_anew(
    repo: Path, client: Client
) -> None:
    client.create_registered_model("churn", description="first try")
    assert client.get_registered_model("churn").description == "first try"
    path = ".tracking/models/churn/model.yaml"
    doc = yaml.safe_load(git(repo, "show", f"gittrack:{path}"))
    doc["description"] = "edited elsewhere"
    put_file(repo, path, yaml.safe_dump(doc, sort_keys=False).encode())

    assert client.get_registered_model("churn").description == "edited elsewhere"
    client.create_model_version("churn", "s3://bucket/model")
    assert client.get_registered_model("churn").description == "edited elsewhere"


def test_a_registered_model_has_its_metadata_file_on_the_tracking_branch(
    repo: Path, client: Client
) -> None:
    client.create_registered_model("churn", tags={"team": "risk"}, description="first try")
    doc = yaml.safe_load(git(repo, "show", "gittrack:.tracking/models/churn/model.yaml"))
    assert doc["name"] == "churn"
    assert doc["description"] == "first try"
    assert doc["tags"] == {"team": "risk"}
    model = client.get_registered_model("churn")
    assert (model.name, model.description, model.tags) == ("churn", "first try", {"team": "risk"})
    assert model.latest_versions == []


def test_creating_a_model_twice_is_a_conflict(client: Client) -> None:
    client.create_registered_model("churn")
    with pytest.raises(ConflictError, match="already exists"):
        client.create_registered_model("churn")


def test_a_model_name_git_cannot_store_is_rejected(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="Invalid model name"):
        client.create_registered_model("bad name!")


def test_create_model_version_of_an_unknown_model_says_to_create_it_first(
    client: Client,
) -> None:
    source = run_with_artifact(client)
    with pytest.raises(NotFoundError, match=r"create_registered_model\('IrisRF'\) first"):
        client.create_model_version("IrisRF", source)


def test_register_model_creates_the_name_when_needed(repo: Path) -> None:
    source = run_with_artifact(Client())
    version = mlflow.register_model(source, "IrisRF")
    again = mlflow.register_model(source, "IrisRF")
    assert (version.version, again.version) == ("1", "2")
    assert Client().get_registered_model("IrisRF").name == "IrisRF"


def test_update_and_tag_a_registered_model(client: Client) -> None:
    client.create_registered_model("churn")
    client.update_registered_model("churn", description="gradient boosting")
    client.set_registered_model_tag("churn", "owner", "ann")
    client.set_registered_model_tag("churn", "team", "risk")
    client.delete_registered_model_tag("churn", "team")
    model = client.get_registered_model("churn")
    assert model.description == "gradient boosting"
    assert model.tags == {"owner": "ann"}


def test_search_registered_models_filters_by_name_and_tag(client: Client) -> None:
    for name, team in (("iris-rf", "a"), ("iris-lr", "b"), ("churn", "a")):
        client.create_registered_model(name, tags={"team": team})
    names = lambda models: [m.name for m in models]  # noqa: E731
    assert names(client.search_registered_models()) == ["churn", "iris-lr", "iris-rf"]
    assert names(client.search_registered_models("name LIKE 'iris%'")) == ["iris-lr", "iris-rf"]
    assert names(client.search_registered_models("tags.team = 'a'")) == ["churn", "iris-rf"]
    assert names(client.search_registered_models("name ILIKE 'IRIS-R%' AND tags.team = 'a'")) == [
        "iris-rf"
    ]
    page = client.search_registered_models(max_results=2)
    assert names(page) == ["churn", "iris-lr"] and page.token is not None
    rest = client.search_registered_models(max_results=2, page_token=page.token)
    assert names(rest) == ["iris-rf"] and rest.token is None


def test_a_bad_filter_names_the_problem(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="unknown field 'colour'"):
        client.search_registered_models("colour = 'red'")


def test_deleting_a_model_deregisters_its_versions_and_tags_it_deprecated(
    repo: Path, client: Client
) -> None:
    registered(client, "churn", versions=2)
    client.delete_registered_model("churn")
    assert {"churn@v1.0.0!", "churn@v2.0.0!", "churn@deprecated"} <= set(tag_names(repo))
    with pytest.raises(NotFoundError):
        client.get_registered_model("churn")
    assert client.search_registered_models() == []
    assert "churn" not in git(repo, "ls-tree", "-r", "--name-only", "gittrack")


def test_a_deleted_model_can_be_created_again_and_numbers_continue(client: Client) -> None:
    registered(client, "churn", versions=2)
    client.delete_registered_model("churn")
    client.create_registered_model("churn")
    version = client.create_model_version("churn", run_with_artifact(client))
    assert version.version == "3"
    assert [v.version for v in client.search_model_versions("name = 'churn'")] == ["3"]
    client.delete_registered_model("churn")
    assert client.search_registered_models() == []


def test_renaming_a_model_keeps_version_numbers_stages_and_aliases(
    repo: Path, client: Client
) -> None:
    registered(client, "old", versions=2)
    client.transition_model_version_stage("old", 1, "Production")
    client.set_registered_model_alias("old", "champion", 2)
    renamed = client.rename_registered_model("old", "new")
    assert renamed.name == "new"
    versions = {v.version: v for v in client.search_model_versions("name = 'new'")}
    assert versions["1"].current_stage == "Production"
    assert versions["2"].aliases == ["champion"]
    with pytest.raises(NotFoundError):
        client.get_registered_model("old")
    assert {"new@v1.0.0", "new@v2.0.0", "old@deprecated"} <= set(tag_names(repo))


# --------------------------------------------------------------------------- versions


def test_versions_are_numbered_and_tagged_on_the_commit_holding_their_file(
    repo: Path, client: Client
) -> None:
    sources = registered(client, "IrisRF", versions=3)
    assert [t for t in tag_names(repo) if t.startswith("IrisRF@")] == [
        "IrisRF@v1.0.0",
        "IrisRF@v2.0.0",
        "IrisRF@v3.0.0",
    ]
    for number, source in enumerate(sources, start=1):
        text = git(
            repo, "show", f"IrisRF@v{number}.0.0:.tracking/models/IrisRF/versions/{number}.yaml"
        )
        doc = yaml.safe_load(text)
        assert (doc["version"], doc["source"]) == (number, source)
        assert git(repo, "cat-file", "-t", f"IrisRF@v{number}.0.0") == "tag\n"
        message = git(repo, "tag", "-l", "--format=%(contents)", f"IrisRF@v{number}.0.0")
        assert yaml.safe_load(message)["source"] == source


def test_a_version_records_source_run_user_and_description(client: Client) -> None:
    client.create_registered_model("IrisRF")
    source = run_with_artifact(client)
    created = client.create_model_version(
        "IrisRF", source, tags={"data": "v1.2"}, description="baseline"
    )
    got = client.get_model_version("IrisRF", "1")
    assert got.version == created.version == "1"
    assert got.source == source
    assert got.run_id == source.split("/")[1]
    assert got.user_id == "test@example.com"
    assert got.description == "baseline"
    assert got.tags == {"data": "v1.2"}
    assert got.current_stage == "None"
    assert client.get_model_version_download_uri("IrisRF", 1) == source


def test_a_source_run_that_does_not_exist_is_refused(client: Client) -> None:
    client.create_registered_model("IrisRF")
    with pytest.raises(NotFoundError, match="does not exist"):
        client.create_model_version("IrisRF", f"runs:/{'a' * 32}/model")
    source = run_with_artifact(client)
    with pytest.raises(NotFoundError, match="no artifact 'nope'"):
        client.create_model_version("IrisRF", source.rsplit("/", 1)[0] + "/nope")


def test_update_and_tag_a_version(client: Client) -> None:
    registered(client, "IrisRF")
    client.update_model_version("IrisRF", 1, description="accuracy 0.93")
    client.set_model_version_tag("IrisRF", "1", "validated", "yes")
    client.set_model_version_tag("IrisRF", 1, "temp", "x")
    client.delete_model_version_tag("IrisRF", 1, "temp")
    version = client.get_model_version("IrisRF", 1)
    assert version.description == "accuracy 0.93"
    assert version.tags == {"validated": "yes"}


def test_a_deleted_version_is_gone_and_its_number_is_not_reused(repo: Path, client: Client) -> None:
    registered(client, "IrisRF", versions=2)
    client.delete_model_version("IrisRF", 2)
    assert "IrisRF@v2.0.0!" in tag_names(repo)
    with pytest.raises(NotFoundError, match="version 2 does not exist"):
        client.get_model_version("IrisRF", 2)
    assert client.create_model_version("IrisRF", run_with_artifact(client)).version == "3"


def test_search_model_versions_by_name_and_run(client: Client) -> None:
    sources = registered(client, "a", versions=2) + registered(client, "b")
    # MLflow's default order: the most recently updated version first
    assert [(v.name, v.version) for v in client.search_model_versions()] == [
        ("b", "1"),
        ("a", "2"),
        ("a", "1"),
    ]
    run_id = sources[0].split("/")[1]
    found = client.search_model_versions(f"run_id = '{run_id}'")
    assert [(v.name, v.version) for v in found] == [("a", "1")]
    ordered = client.search_model_versions("name = 'a'", order_by=["version_number ASC"])
    assert [v.version for v in ordered] == ["1", "2"]


def test_two_processes_registering_at_once_get_distinct_numbers(repo: Path) -> None:
    client = Client()
    client.create_registered_model("IrisRF")
    sources = [run_with_artifact(client) for _ in range(2)]
    script = (
        "import sys, gittrack\n"
        "c = gittrack.Client()\n"
        "print(','.join(c.create_model_version('IrisRF', sys.argv[1]).version for _ in range(4)))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, source],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in sources
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    numbers = [int(n) for out, _ in outputs for n in out.strip().split(",")]
    assert sorted(numbers) == list(range(1, 9))
    versions = Client().search_model_versions("name = 'IrisRF'")
    assert sorted(int(v.version) for v in versions) == list(range(1, 9))
    by_number = {int(v.version): v.source for v in versions}
    for out, source in zip([o for o, _ in outputs], sources):
        assert all(by_number[int(n)] == source for n in out.strip().split(","))


# --------------------------------------------------------------------------- stages


def test_a_move_unassigns_the_old_stage_and_assigns_the_new_one(repo: Path, client: Client) -> None:
    registered(client, "IrisRF")
    client.transition_model_version_stage(name="IrisRF", version=1, stage="Staging")
    moved = client.transition_model_version_stage(name="IrisRF", version=1, stage="production")
    assert moved.current_stage == "Production"
    assert [t for t in tag_names(repo) if "#" in t] == [
        "IrisRF#Production#2",
        "IrisRF#Staging!#3",
        "IrisRF#Staging#1",
    ]
    assert git(repo, "rev-parse", "IrisRF#Production#2^{commit}") == git(
        repo, "rev-parse", "IrisRF@v1.0.0^{commit}"
    )


def test_an_unknown_stage_lists_the_configured_ones(client: Client) -> None:
    registered(client, "IrisRF")
    with pytest.raises(InvalidInputError, match="None, Staging, Production, Archived"):
        client.transition_model_version_stage("IrisRF", 1, "Prod")


def test_production_is_exclusive_so_the_previous_holder_is_archived(client: Client) -> None:
    registered(client, "IrisRF", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.transition_model_version_stage("IrisRF", 2, "Production")
    stages = {v.version: v.current_stage for v in client.search_model_versions()}
    assert stages == {"1": "Archived", "2": "Production"}


def test_archive_existing_versions_archives_the_other_staging_versions(client: Client) -> None:
    registered(client, "IrisRF", versions=3)
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 2, "Staging")
    client.transition_model_version_stage("IrisRF", 3, "Staging", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions()}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Staging"}


def test_get_latest_versions_gives_the_highest_version_per_stage(client: Client) -> None:
    registered(client, "IrisRF", versions=4)
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.transition_model_version_stage("IrisRF", 2, "Staging")
    client.transition_model_version_stage("IrisRF", 3, "Production")
    latest = client.get_latest_versions("IrisRF")
    assert [(v.current_stage, v.version) for v in latest] == [
        ("None", "4"),
        ("Staging", "2"),
        ("Production", "3"),
    ]
    assert [v.version for v in client.get_latest_versions("IrisRF", ["Staging"])] == ["2"]
    model = client.get_registered_model("IrisRF")
    assert [v.version for v in model.latest_versions] == ["4", "2", "3"]


# --------------------------------------------------------------------------- aliases


def test_an_alias_belongs_to_the_version_that_got_it_last(repo: Path, client: Client) -> None:
    registered(client, "IrisRF", versions=2)
    client.set_registered_model_alias("IrisRF", "champion", 1)
    client.set_registered_model_alias("IrisRF", "champion", 2)
    assert client.get_model_version_by_alias("IrisRF", "champion").version == "2"
    assert client.get_model_version("IrisRF", 1).aliases == []
    assert client.get_registered_model("IrisRF").aliases == {"champion": "2"}
    client.delete_registered_model_alias("IrisRF", "champion")
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        client.get_model_version_by_alias("IrisRF", "champion")
    assert "IrisRF#champion!#3" in tag_names(repo)


def test_a_stage_name_or_reserved_word_is_not_an_alias(client: Client) -> None:
    registered(client, "IrisRF")
    with pytest.raises(InvalidInputError, match="is a stage"):
        client.set_registered_model_alias("IrisRF", "production", 1)
    with pytest.raises(InvalidInputError, match="reserved"):
        client.set_registered_model_alias("IrisRF", "latest", 1)


# --------------------------------------------------------------------------- history


def test_history_lists_every_event_with_who_when_and_message(client: Client) -> None:
    registered(client, "IrisRF", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.set_registered_model_alias("IrisRF", "champion", 2)
    client.delete_model_version("IrisRF", 2)
    events = client.get_registry_history("IrisRF")
    assert [(e.kind.value, e.version, e.label) for e in events] == [
        ("registered", 1, None),
        ("registered", 2, None),
        ("stage", 1, "Production"),
        ("alias", 2, "champion"),
        ("deregistered", 2, None),
    ]
    assert {e.email for e in events} == {"test@example.com"}
    assert "Assign Production to IrisRF version 1" in events[2].message


def test_the_registry_can_be_read_as_it_was_at_a_tag(client: Client) -> None:
    registered(client, "IrisRF", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    client.update_model_version("IrisRF", 1, description="later description")
    client.transition_model_version_stage("IrisRF", 1, "Production")
    then = client.get_model_version("IrisRF", 1, at="IrisRF#Staging#1")
    assert then.current_stage == "Staging"
    assert client.get_model_version("IrisRF", 1).current_stage == "Production"
    before = client.search_model_versions(at="IrisRF@v1.0.0")
    assert [v.version for v in before] == ["1"]
    with pytest.raises(NotFoundError):
        client.get_registered_model("IrisRF", at="2001-01-01")


def test_registry_operations_leave_the_users_repository_alone(repo: Path) -> None:
    (repo / "train.py").write_text("print('edited')\n")
    (repo / "notes.txt").write_text("untracked\n")
    git(repo, "stash", "list")
    before = user_state(repo)
    client = Client()
    registered(client, "IrisRF", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.set_registered_model_alias("IrisRF", "champion", 2)
    client.update_model_version("IrisRF", 2, description="x")
    client.delete_model_version("IrisRF", 2)
    client.rename_registered_model("IrisRF", "Iris")
    client.delete_registered_model("Iris")
    assert user_state(repo) == before


def test_a_registry_made_with_plain_git_tags_is_read(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "-m", "by hand", "churn@v1.0.0", head)
    git(repo, "tag", "-a", "-m", "promote", "churn#Production#1", head)
    client = Client()
    version = client.get_model_version("churn", 1)
    assert (version.current_stage, version.description) == ("Production", "by hand")
    client.update_registered_model("churn", description="now with metadata")
    assert client.get_registered_model("churn").description == "now with metadata"


def test_tags_made_moved_or_packed_outside_gittrack_are_seen_at_once(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    assert [m.name for m in client.search_registered_models()] == ["IrisRF"]  # fills the cache
    commit = git(repo, "rev-parse", "IrisRF@v1.0.0^{commit}").strip()
    git(repo, "tag", "-a", "-m", "by hand", "churn@v1.0.0", commit)
    assert [m.name for m in client.search_registered_models()] == ["IrisRF", "churn"]
    git(repo, "pack-refs", "--all")
    git(repo, "tag", "-a", "-m", "by hand", "IrisRF#Staging#9", commit)
    assert client.get_model_version("IrisRF", 1).current_stage == "Staging"
    git(repo, "tag", "-d", "churn@v1.0.0")
    assert [m.name for m in client.search_registered_models()] == ["IrisRF"]
    assert [m.name for m in Client().search_registered_models()] == ["IrisRF"]


def test_moving_a_version_to_none_unassigns_its_stage(repo: Path, client: Client) -> None:
    registered(client, "IrisRF")
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    assert client.transition_model_version_stage("IrisRF", 1, "None").current_stage == "None"
    assert [t for t in tag_names(repo) if "#" in t] == ["IrisRF#Staging!#2", "IrisRF#Staging#1"]


@pytest.mark.parametrize("token", ["abc", "-5", "1e3", "٣", "9" * 40])
def test_a_registry_page_token_that_no_search_returned_is_refused_as_invalid_input(
    repo: Path, token: str
) -> None:
    client = Client()
    registered(client, "IrisRF")
    with pytest.raises(InvalidInputError, match="page token"):
        client.search_registered_models(page_token=token)
    with pytest.raises(InvalidInputError, match="page token"):
        client.search_model_versions("name='IrisRF'", page_token=token)


@pytest.mark.parametrize("selector", ["²", "9" * 5000])
def test_a_models_uri_whose_version_int_cannot_read_is_refused_as_invalid_input(
    repo: Path, selector: str
) -> None:
    client = Client()
    registered(client, "IrisRF")
    with pytest.raises(InvalidInputError):
        mlflow.pyfunc.load_model(f"models:/IrisRF/{selector}")


def test_a_fetched_version_file_named_with_a_digit_int_cannot_read_does_not_stop_registering(
    repo: Path,
) -> None:
    client = Client()
    registered(client, "IrisRF")
    put_file(repo, ".tracking/models/IrisRF/versions/².yaml", b"source: x\n")

    version = client.create_model_version("IrisRF", run_with_artifact(client))

    assert version.version == "2"


@pytest.mark.parametrize("max_results", [0, -1, 1.5, True])
def test_a_page_size_mlflow_refuses_is_refused_by_the_client_searches(
    repo: Path, max_results
) -> None:
    client = Client()
    registered(client, "IrisRF")
    searches = [
        lambda: client.search_experiments(max_results=max_results),
        lambda: client.search_model_versions("name='IrisRF'", max_results=max_results),
        lambda: client.search_runs(["0"], max_results=max_results),
    ]
    if not isinstance(max_results, int) or max_results is True:
        searches.append(lambda: client.search_registered_models(max_results=max_results))
    for search in searches:
        with pytest.raises(InvalidInputError, match="max_results .* must be a positive integer"):
            search()


@pytest.mark.parametrize("max_results", [0, -1])
def test_a_page_size_of_zero_or_less_gives_no_registered_models_as_in_mlflow(
    repo: Path, max_results: int
) -> None:
    client = Client()
    registered(client, "IrisRF")
    assert client.search_registered_models(max_results=max_results) == []
