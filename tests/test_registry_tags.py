"""Specification of the registry's tag names and of the state computed from the tags."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from gittrack.errors import CorruptDataError, InvalidInputError, NotFoundError
from gittrack.registry.state import (
    EventKind,
    RegistrationMessage,
    TagRecord,
    build_registry_state,
    format_registration_message,
    model_history,
    next_assignment_counter,
    next_version_number,
    parse_registration_message,
)
from gittrack.registry.tag_names import (
    ParsedTag,
    TagKind,
    deprecation_tag,
    deregistration_tag,
    is_registry_tag,
    parse_tag,
    stage_tag,
    unassignment_tag,
    validate_label,
    validate_model_name,
    version_tag,
)
from gittrack.registry.tag_writer import tag_time
from gittrack.registry.tags_io import TagListing

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
COMMIT_C = "c" * 40


def tag(
    name: str,
    commit: str,
    second: int,
    *,
    who: str = "Ann",
    message: str = "",
    annotated: bool = True,
) -> TagRecord:
    return TagRecord(
        name=name,
        commit=commit,
        tagger_name=who,
        tagger_email=f"{who.lower()}@example.org",
        date=T0 + timedelta(seconds=second),
        message=message,
        annotated=annotated,
    )


def two_versions(model: str = "churn") -> list[TagRecord]:
    return [
        tag(version_tag(model, 1), COMMIT_A, 0),
        tag(version_tag(model, 2), COMMIT_B, 1),
    ]


# ----------------------------------------------------------------------------- tag names


@pytest.mark.parametrize("model", ["churn", "a", "9", "my_model-2", "team/churn", "nlp/v2:bert"])
@pytest.mark.parametrize("number", [1, 7, 123])
def test_version_tags_round_trip(model: str, number: int) -> None:
    registered = parse_tag(version_tag(model, number))
    deregistered = parse_tag(deregistration_tag(model, number))

    assert registered == ParsedTag(
        version_tag(model, number),
        TagKind.REGISTRATION,
        model,
        version=f"v{number}.0.0",
        version_number=number,
    )
    assert deregistered is not None
    assert deregistered.kind is TagKind.DEREGISTRATION
    assert (deregistered.model, deregistered.version_number) == (model, number)


@pytest.mark.parametrize("model", ["churn", "team/churn", "a.b/c_d-e:m"])
@pytest.mark.parametrize("label", ["Production", "None", "champion", "eu/prod", "x"])
def test_stage_tags_round_trip(model: str, label: str) -> None:
    assigned = parse_tag(stage_tag(model, label, 12))
    unassigned = parse_tag(unassignment_tag(model, label, 13))

    assert assigned == ParsedTag(
        stage_tag(model, label, 12), TagKind.ASSIGNMENT, model, label=label, counter=12
    )
    assert unassigned == ParsedTag(
        unassignment_tag(model, label, 13), TagKind.UNASSIGNMENT, model, label=label, counter=13
    )


def test_tag_names_have_the_documented_shape() -> None:
    assert version_tag("churn", 3) == "churn@v3.0.0"
    assert deregistration_tag("churn", 3) == "churn@v3.0.0!"
    assert stage_tag("churn", "Production", 4) == "churn#Production#4"
    assert unassignment_tag("churn", "Production", 5) == "churn#Production!#5"
    assert deprecation_tag("churn") == "churn@deprecated"
    assert deprecation_tag("churn", 9) == "churn@deprecated#9"


def test_a_namespace_colon_is_written_as_equals_in_tags() -> None:
    assert version_tag("nlp/models:bert", 1) == "nlp/models=bert@v1.0.0"
    assert stage_tag("nlp/models:bert", "prod", 2) == "nlp/models=bert#prod#2"

    parsed = parse_tag("nlp/models=bert#prod#2")

    assert parsed is not None and parsed.model == "nlp/models:bert"


def test_deprecation_tags_round_trip() -> None:
    plain = parse_tag(deprecation_tag("churn"))
    counted = parse_tag(deprecation_tag("churn", 4))

    assert plain == ParsedTag("churn@deprecated", TagKind.DEPRECATION, "churn")
    assert counted == ParsedTag("churn@deprecated#4", TagKind.DEPRECATION, "churn", counter=4)


@pytest.mark.parametrize(
    ("name", "kind", "version", "number", "label", "counter"),
    [
        ("m@v1.2.3", TagKind.REGISTRATION, "v1.2.3", None, None, None),
        ("m@v2.0.0-rc.1+build.5", TagKind.REGISTRATION, "v2.0.0-rc.1+build.5", None, None, None),
        ("m@v0.0.0", TagKind.REGISTRATION, "v0.0.0", None, None, None),
        ("m@v1.0.0#3", TagKind.REGISTRATION, "v1.0.0", 1, None, 3),
        ("m@v1.0.0!#7", TagKind.DEREGISTRATION, "v1.0.0", 1, None, 7),
        ("m#prod", TagKind.ASSIGNMENT, None, None, "prod", None),
        ("m#prod!", TagKind.UNASSIGNMENT, None, None, "prod", None),
        ("m#prod#03", TagKind.ASSIGNMENT, None, None, "prod", 3),
    ],
)
def test_the_rest_of_gtos_grammar_is_read(
    name: str,
    kind: TagKind,
    version: str | None,
    number: int | None,
    label: str | None,
    counter: int | None,
) -> None:
    assert parse_tag(name) == ParsedTag(name, kind, "m", version, number, label, counter)


@pytest.mark.parametrize(
    "name",
    [
        "v1.0.0",
        "release-2024",
        "m",
        "m@created",
        "m@latest",
        "m@V1.0.0",
        "m@v1.0",
        "m@v01.0.0",
        "m##1",
        "m#Production#1!",
        "m#-prod#1",
        "-m@v1.0.0",
        "m-@v1.0.0",
        "a:b@v1.0.0",
        "a=b=c@v1.0.0",
        "m@v1.0.0\n",
        "m#prod#x",
    ],
)
def test_tags_outside_the_grammar_are_not_registry_tags(name: str) -> None:
    assert parse_tag(name) is None
    assert not is_registry_tag(name)


@pytest.mark.parametrize(
    "name", ["a", "9", "churn", "my_model-2", "Team/Churn_v2", "nlp/models:bert", "a.b/c_d-e:m"]
)
def test_valid_model_names_are_accepted(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "non-empty"),
        ("-churn", "start and end with a letter or digit"),
        ("churn_", "start and end with a letter or digit"),
        ("churn/", "start and end with a letter or digit"),
        ("my model", "only letters, digits"),
        ("churn.v2", "only letters, digits"),
        ("churn@v1", "only letters, digits"),
        ("churn#1", "only letters, digits"),
        ("a=b", "only letters, digits"),
        ("a:b:c", "at most one ':'"),
        (":churn", "namespace"),
        ("nlp models:bert", "namespace"),
        ("team//churn", "empty path segment"),
        ("/nlp:bert", "empty path segment"),
        ("nlp/..:bert", "'..'"),
        (".hidden:bert", "starting with '.'"),
        ("nlp/x.lock/y:bert", "'.lock'"),
    ],
)
def test_invalid_model_names_are_rejected_naming_the_name_and_the_rule(
    name: str, rule: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_model_name(name)

    assert repr(name) in str(caught.value)
    assert rule in str(caught.value)


def test_tag_builders_validate_the_model_name() -> None:
    with pytest.raises(InvalidInputError, match="'bad name'"):
        version_tag("bad name", 1)


@pytest.mark.parametrize("label", ["", "prod env", "-prod", "prod:eu", "prod!", "a//b"])
def test_invalid_labels_are_rejected(label: str) -> None:
    with pytest.raises(InvalidInputError, match="stage or alias"):
        validate_label(label)
    with pytest.raises(InvalidInputError):
        stage_tag("churn", label, 1)


@pytest.mark.parametrize("bad", [0, -1, True, 1.0, "1"])
def test_version_numbers_and_counters_start_at_1(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="starting at 1"):
        version_tag("churn", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="starting at 1"):
        stage_tag("churn", "prod", bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- state


def test_versions_are_integers_per_model() -> None:
    tags = [*two_versions("churn"), tag(version_tag("fraud", 1), COMMIT_C, 2)]

    state = build_registry_state(tags)

    assert sorted(state.models) == ["churn", "fraud"]
    assert list(state.model("churn").versions) == [1, 2]
    assert list(state.model("fraud").versions) == [1]
    version = state.model("churn").version(2)
    assert (version.commit, version.tag, version.semver) == (COMMIT_B, "churn@v2.0.0", "v2.0.0")
    assert (version.who, version.email, version.when) == (
        "Ann",
        "ann@example.org",
        T0 + timedelta(seconds=1),
    )


def test_a_version_without_assignments_has_no_stage() -> None:
    version = build_registry_state(two_versions()).model("churn").version(1)

    assert version.stage is None
    assert version.current_stage == "None"
    assert version.aliases == ()


def test_a_versions_stage_is_its_latest_stage_assignment() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Staging", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "Production", 2), COMMIT_A, 11, who="Bob", message="passed QA"),
        tag(stage_tag("churn", "Staging", 3), COMMIT_B, 12),
    ]

    model = build_registry_state(tags).model("churn")

    assert model.version(1).stage == "Production"
    assert model.version(2).stage == "Staging"
    assignment = model.version(1).stage_assignment
    assert assignment is not None
    assert (assignment.tag, assignment.who, assignment.message) == (
        "churn#Production#2",
        "Bob",
        "passed QA",
    )
    assert [v.number for v in model.versions_in_stage("Staging")] == [2]
    assert model.latest_version("Production") is model.version(1)


def test_several_versions_may_share_a_stage() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "Production", 2), COMMIT_B, 11),
    ]

    model = build_registry_state(tags).model("churn")

    assert [v.number for v in model.versions_in_stage("Production")] == [1, 2]
    assert model.latest_version("Production") is model.version(2)


def test_assigning_the_none_stage_is_mlflows_no_stage() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "None", 2), COMMIT_A, 11),
    ]

    version = build_registry_state(tags).model("churn").version(1)

    assert version.stage == "None"
    assert version.current_stage == "None"


def test_an_assignment_refers_to_the_version_registered_on_the_same_commit() -> None:
    tags = [
        tag(version_tag("churn", 1), COMMIT_A, 0),
        tag(version_tag("churn", 2), COMMIT_B, 1),
        tag(version_tag("fraud", 1), COMMIT_B, 1),
        tag(stage_tag("churn", "Production", 1), COMMIT_B, 5),
    ]

    state = build_registry_state(tags)

    assert state.model("churn").version(2).stage == "Production"
    assert state.model("churn").version(1).stage is None
    assert state.model("fraud").version(1).stage is None


def test_an_assignment_tagged_before_the_registration_still_resolves_by_commit() -> None:
    tags = [
        tag(stage_tag("churn", "Staging", 1), COMMIT_A, 0),
        tag(version_tag("churn", 1), COMMIT_A, 5),
    ]

    assert build_registry_state(tags).model("churn").version(1).stage == "Staging"


def test_an_assignment_on_a_commit_without_a_registration_changes_nothing() -> None:
    tags = [*two_versions(), tag(stage_tag("churn", "Production", 1), COMMIT_C, 5)]

    model = build_registry_state(tags).model("churn")

    assert [v.stage for v in model.versions.values()] == [None, None]


def test_an_assignment_on_a_commit_with_several_versions_is_corrupt() -> None:
    tags = [
        tag(version_tag("churn", 1), COMMIT_A, 0),
        tag(version_tag("churn", 2), COMMIT_A, 1),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 2),
    ]

    with pytest.raises(CorruptDataError, match="churn#Production#1") as caught:
        build_registry_state(tags)
    assert "v1.0.0, v2.0.0" in str(caught.value)


def test_alias_moves_to_the_version_that_got_it_last() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "champion", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "challenger", 2), COMMIT_B, 11),
        tag(stage_tag("churn", "champion", 3), COMMIT_B, 12),
    ]

    model = build_registry_state(tags).model("churn")

    assert model.version(1).aliases == ()
    assert model.version(2).aliases == ("challenger", "champion")
    assert model.aliases == {"champion": 2, "challenger": 2}
    assert model.alias_version("champion") is model.version(2)
    assert model.alias_version("nobody") is None


def test_an_alias_does_not_change_the_stage() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "champion", 2), COMMIT_A, 11),
    ]

    version = build_registry_state(tags).model("churn").version(1)

    assert (version.stage, version.aliases) == ("Production", ("champion",))


def test_the_configured_stages_decide_what_is_a_stage_and_what_an_alias() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "prod", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "Production", 2), COMMIT_A, 11),
    ]

    state = build_registry_state(tags, stages=("dev", "prod"))
    version = state.model("churn").version(1)

    assert state.stages == ("dev", "prod")
    assert (version.stage, version.aliases) == ("prod", ("Production",))


def test_invalid_configured_stages_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="'my stage'"):
        build_registry_state([], stages=("dev", "my stage"))
    with pytest.raises(InvalidInputError, match="sequence of names"):
        build_registry_state([], stages="Production")


def test_unassigning_the_latest_stage_falls_back_to_the_previous_one() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Staging", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "Production", 2), COMMIT_A, 11),
        tag(unassignment_tag("churn", "Production", 3), COMMIT_A, 12),
    ]

    assert build_registry_state(tags).model("churn").version(1).stage == "Staging"


def test_unassigning_the_only_stage_leaves_no_stage() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 10),
        tag(unassignment_tag("churn", "Production", 2), COMMIT_A, 11),
    ]

    assert build_registry_state(tags).model("churn").version(1).current_stage == "None"


def test_a_stage_assigned_again_after_unassignment_counts_again() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 10),
        tag(unassignment_tag("churn", "Production", 2), COMMIT_A, 11),
        tag(stage_tag("churn", "Production", 3), COMMIT_A, 12),
    ]

    assert build_registry_state(tags).model("churn").version(1).stage == "Production"


def test_unassigning_an_alias_from_its_holder_leaves_it_with_no_version() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "champion", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "champion", 2), COMMIT_B, 11),
        tag(unassignment_tag("churn", "champion", 3), COMMIT_B, 12),
    ]

    model = build_registry_state(tags).model("churn")

    assert model.aliases == {}


def test_unassigning_an_alias_from_a_version_that_lost_it_changes_nothing() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "champion", 1), COMMIT_A, 10),
        tag(stage_tag("churn", "champion", 2), COMMIT_B, 11),
        tag(unassignment_tag("churn", "champion", 3), COMMIT_A, 12),
    ]

    assert build_registry_state(tags).model("churn").aliases == {"champion": 2}


def test_a_deregistered_version_is_marked_and_holds_no_stage_or_alias() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_B, 10),
        tag(stage_tag("churn", "champion", 2), COMMIT_B, 11),
        tag(deregistration_tag("churn", 2), COMMIT_B, 12),
    ]

    model = build_registry_state(tags).model("churn")

    assert model.version(2).deregistered
    assert (model.version(2).stage, model.version(2).aliases) == (None, ())
    assert model.aliases == {}
    assert [v.number for v in model.active_versions()] == [1]
    assert model.latest_version() is model.version(1)


def test_assignments_to_a_deregistered_version_are_ignored() -> None:
    tags = [
        *two_versions(),
        tag(deregistration_tag("churn", 2), COMMIT_B, 10),
        tag(stage_tag("churn", "Production", 1), COMMIT_B, 11),
    ]

    assert build_registry_state(tags).model("churn").version(2).stage is None


def test_a_deregistration_counts_only_on_the_registration_commit() -> None:
    tags = [*two_versions(), tag(deregistration_tag("churn", 2), COMMIT_C, 10)]

    assert not build_registry_state(tags).model("churn").version(2).deregistered


def test_a_deprecated_model_is_marked() -> None:
    tags = [*two_versions(), tag(deprecation_tag("churn"), COMMIT_B, 10)]
    tags.append(tag(version_tag("fraud", 1), COMMIT_C, 11))

    state = build_registry_state(tags)

    assert state.model("churn").deprecated
    assert list(state.model("churn").versions) == [1, 2]
    assert [m.name for m in state.active_models()] == ["fraud"]


def test_a_registration_after_deprecation_makes_the_model_active_again() -> None:
    tags = [
        tag(version_tag("churn", 1), COMMIT_A, 0),
        tag(deprecation_tag("churn"), COMMIT_A, 1),
        tag(version_tag("churn", 2), COMMIT_B, 2),
    ]

    assert not build_registry_state(tags).model("churn").deprecated


def test_assignments_in_the_same_second_are_ordered_by_counter() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "champion", 10), COMMIT_A, 5),
        tag(stage_tag("churn", "champion", 9), COMMIT_B, 5),
        tag(stage_tag("churn", "Staging", 12), COMMIT_A, 5),
        tag(stage_tag("churn", "Production", 11), COMMIT_A, 5),
    ]

    model = build_registry_state(tags).model("churn")

    assert model.aliases == {"champion": 1}
    assert model.version(1).stage == "Staging"


def test_a_later_date_wins_over_a_higher_counter() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "champion", 2), COMMIT_A, 5),
        tag(stage_tag("churn", "champion", 1), COMMIT_B, 6),
    ]

    assert build_registry_state(tags).model("churn").aliases == {"champion": 2}


def test_a_deprecation_in_the_same_second_as_assignments_comes_after_them() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 5),
        tag(deprecation_tag("churn"), COMMIT_A, 5),
    ]

    assert build_registry_state(tags).model("churn").deprecated


def test_lightweight_and_foreign_tags_are_ignored() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 5, annotated=False),
        tag(version_tag("ghost", 1), COMMIT_C, 6, annotated=False),
        tag("v1.0.0", COMMIT_C, 7),
        tag("release/2024-05", COMMIT_C, 8),
    ]

    state = build_registry_state(tags)

    assert list(state.models) == ["churn"]
    assert state.model("churn").version(1).stage is None


def test_versions_outside_gittracks_numbering_are_left_out_of_the_state() -> None:
    tags = [tag(version_tag("churn", 1), COMMIT_A, 0), tag("churn@v1.1.0", COMMIT_B, 1)]

    assert list(build_registry_state(tags).model("churn").versions) == [1]


def test_namespaced_models_are_keyed_by_their_name_with_the_colon() -> None:
    tags = [tag("nlp/models=bert@v1.0.0", COMMIT_A, 0)]

    assert list(build_registry_state(tags).models) == ["nlp/models:bert"]


def test_unknown_models_and_versions_raise_not_found() -> None:
    state = build_registry_state(two_versions())

    with pytest.raises(NotFoundError, match="'fraud'"):
        state.model("fraud")
    with pytest.raises(NotFoundError, match=r"no version 3; versions: \[1, 2\]"):
        state.model("churn").version(3)


def test_tag_dates_may_be_epoch_seconds_but_not_naive() -> None:
    record = TagRecord("churn@v1.0.0", COMMIT_A, "Ann", "ann@example.org", 1714564800)  # type: ignore[arg-type]

    assert record.date == T0
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        TagRecord("churn@v1.0.0", COMMIT_A, "Ann", "a@b", datetime(2024, 5, 1))


def test_tag_dates_in_other_timezones_compare_by_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    tags = [
        *two_versions(),
        # 13:00:10+02:00 is 11:00:10 UTC, before the other assignment at 12:00:05 UTC.
        TagRecord(
            stage_tag("churn", "champion", 1), COMMIT_A, "Ann", "a@b",
            datetime(2024, 5, 1, 13, 0, 10, tzinfo=plus_two),
        ),
        tag(stage_tag("churn", "champion", 2), COMMIT_B, 5),
    ]  # fmt: skip

    assert build_registry_state(tags).model("churn").aliases == {"champion": 2}


# ----------------------------------------------------------------------------- history


def test_history_lists_a_models_events_in_time_order_with_who_when_and_why() -> None:
    tags = [
        tag(deprecation_tag("churn"), COMMIT_B, 50, who="Cy", message="replaced"),
        tag(unassignment_tag("churn", "champion", 4), COMMIT_A, 40),
        tag(stage_tag("churn", "champion", 3), COMMIT_A, 30),
        tag(deregistration_tag("churn", 2), COMMIT_B, 35, who="Cy"),
        tag(stage_tag("churn", "Production", 2), COMMIT_A, 20, who="Bob", message="QA ok"),
        tag(version_tag("churn", 2), COMMIT_B, 1),
        tag(version_tag("churn", 1), COMMIT_A, 0, message="run_id: abc\n"),
        tag(version_tag("fraud", 1), COMMIT_C, 2),
    ]

    history = model_history(tags, "churn")

    assert [(e.kind, e.version, e.label, e.who) for e in history] == [
        (EventKind.REGISTERED, 1, None, "Ann"),
        (EventKind.REGISTERED, 2, None, "Ann"),
        (EventKind.STAGE, 1, "Production", "Bob"),
        (EventKind.ALIAS, 1, "champion", "Ann"),
        (EventKind.DEREGISTERED, 2, None, "Cy"),
        (EventKind.UNASSIGNED, 1, "champion", "Ann"),
        (EventKind.DEPRECATED, None, None, "Cy"),
    ]
    assert [e.when for e in history] == sorted(e.when for e in history)
    assert history[2].message == "QA ok"
    assert history[2].tag == "churn#Production#2"
    assert history[0].commit == COMMIT_A
    assert history[0].email == "ann@example.org"


def test_history_in_the_same_second_follows_the_counter() -> None:
    tags = [
        tag(stage_tag("churn", "Staging", 2), COMMIT_A, 5),
        tag(stage_tag("churn", "Production", 1), COMMIT_A, 5),
        tag(version_tag("churn", 1), COMMIT_A, 5),
    ]

    assert [e.tag for e in model_history(tags, "churn")] == [
        "churn@v1.0.0",
        "churn#Production#1",
        "churn#Staging#2",
    ]


def test_history_of_an_assignment_without_a_registered_commit_has_no_version() -> None:
    tags = [tag(stage_tag("churn", "Staging", 1), COMMIT_C, 0)]

    [event] = model_history(tags, "churn")

    assert (event.kind, event.version, event.label) == (EventKind.STAGE, None, "Staging")


def test_history_of_an_unknown_model_is_empty() -> None:
    assert model_history(two_versions(), "fraud") == []


# ----------------------------------------------------------------------------- counters


def test_the_first_assignment_counter_and_version_number_are_1() -> None:
    assert next_assignment_counter([], "churn") == 1
    assert next_version_number([], "churn") == 1


def test_the_assignment_counter_follows_the_highest_counter_of_any_tag_of_the_model() -> None:
    tags = [
        *two_versions(),
        tag(stage_tag("churn", "Staging", 3), COMMIT_A, 5),
        tag("churn@deprecated#7", COMMIT_A, 6, annotated=False),
        tag(stage_tag("fraud", "Staging", 40), COMMIT_C, 7),
    ]

    assert next_assignment_counter(tags, "churn") == 8
    assert next_assignment_counter([t.name for t in tags], "fraud") == 41


def test_version_numbers_are_never_reused() -> None:
    tags = [
        *two_versions(),
        tag(deregistration_tag("churn", 2), COMMIT_B, 5),
        tag(version_tag("fraud", 9), COMMIT_C, 6),
    ]

    assert next_version_number(tags, "churn") == 3
    assert next_version_number(["churn@v1.0.0", "churn@v3.4.1-rc.1"], "churn") == 4


def test_counters_and_numbers_follow_the_tags_given_when_the_highest_tag_is_gone() -> None:
    names = ["churn@v1.0.0", "churn@v2.0.0", stage_tag("churn", "Staging", 4)]

    assert (next_version_number(names, "churn"), next_assignment_counter(names, "churn")) == (3, 5)
    grown = [*names, "churn@v7.0.0", stage_tag("churn", "Production", 9)]
    assert (next_version_number(grown, "churn"), next_assignment_counter(grown, "churn")) == (8, 10)
    assert (next_version_number(names, "churn"), next_assignment_counter(names, "churn")) == (3, 5)
    assert next_version_number(names[:1], "churn") == 2
    assert next_assignment_counter(names[:1], "churn") == 1


def test_a_tag_is_dated_by_the_latest_tag_of_its_model_in_the_listing_given() -> None:
    future = int(time.time()) + 100_000
    registered = TagRecord(version_tag("churn", 1), COMMIT_A, "Ann", "a@x", future)
    deregistered = TagRecord(deregistration_tag("churn", 1), COMMIT_A, "Ann", "a@x", future + 5)
    later = TagRecord(deregistration_tag("churn", 1), COMMIT_A, "Ann", "a@x", future + 50)
    other_model = TagRecord(version_tag("fraud", 1), COMMIT_B, "Ann", "a@x", future + 500)
    new = version_tag("churn", 2)

    def when(*records: TagRecord) -> int:
        return tag_time(TagListing(records, frozenset()), "churn", new)

    assert when(registered) == future
    # A registration in the second of a deregistration would sort before it: a second later.
    assert when(registered, deregistered, other_model) == future + 6
    assert when(registered) == future  # the deregistration is gone again
    assert when(registered, later) == future + 51  # the same tag, made again later
    assert when(registered, deregistered) == future + 6


# ----------------------------------------------------------------------------- messages


def test_registration_messages_round_trip() -> None:
    text = format_registration_message(
        source="runs:/0123abcd/model",
        run_id="0123abcd",
        user="ann",
        description="Gradient boosting.\nTrained on 2024-Q1: café data.\n# not a comment",
    )

    parsed = parse_registration_message(text, "churn@v1.0.0")

    assert parsed == RegistrationMessage(
        source="runs:/0123abcd/model",
        run_id="0123abcd",
        user="ann",
        description="Gradient boosting.\nTrained on 2024-Q1: café data.\n# not a comment",
    )
    assert not any(line.startswith("#") for line in text.splitlines())


def test_a_version_parses_its_registration_message() -> None:
    message = format_registration_message(source="runs:/r1/model", run_id="r1", user="ann")
    tags = [tag(version_tag("churn", 1), COMMIT_A, 0, message=message)]

    info = build_registry_state(tags).model("churn").version(1).registration_info()

    assert (info.source, info.run_id, info.user, info.description) == (
        "runs:/r1/model",
        "r1",
        "ann",
        None,
    )


def test_an_empty_message_is_an_empty_record_and_plain_text_is_the_description() -> None:
    assert parse_registration_message("", "m@v1.0.0") == RegistrationMessage()
    assert parse_registration_message(
        "Registering artifact m version v1.0.0\n", "m@v1.0.0"
    ) == RegistrationMessage(description="Registering artifact m version v1.0.0")


def test_unknown_keys_of_a_registration_message_are_kept() -> None:
    parsed = parse_registration_message("run_id: r1\nflavor: sklearn\n", "m@v1.0.0")

    assert parsed.run_id == "r1"
    assert parsed.extra == {"flavor": "sklearn"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("run_id: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("run_id: 42\n", "field 'run_id'"),
    ],
)
def test_a_bad_registration_message_is_corrupt_data_naming_the_tag(text: str, problem: str) -> None:
    with pytest.raises(CorruptDataError, match=problem) as caught:
        parse_registration_message(text, "churn@v3.0.0")

    assert "'churn@v3.0.0'" in str(caught.value)
