"""The tag store's numbered changes, and what is kept up to date from them.

``TagJournal`` numbers every change a ``TagStore`` makes to what it knows; a listing names the
change it reflects. The registry state (``StateBuilder``), the next version number and
counter, and the date of the next tag (``tag_writer``) are kept per model and brought up to
date with the tags added since, so a write on a model with thousands of tags costs its new
tags. Each must give what a computation from every tag gives, whoever changed the tags
(gittrack, ``git tag``, ``git tag -d``, ``git tag -f``, ``git pack-refs``, another process).
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gittrack import Client
from gittrack.errors import ConflictError, CorruptDataError, CorruptDataWarning
from gittrack.registry import metadata, tag_writer
from gittrack.registry.state import (
    StateBuilder,
    TagPosition,
    TagRecord,
    build_registry_state,
    next_assignment_counter,
    next_version_number,
)
from gittrack.registry.tag_names import TagKind, parse_tag
from gittrack.registry.tags_io import TagJournal, TagListing, TagStore
from gittrack.registry.time_travel import tag_order_key
from gittrack.store.branch import Blob
from gittrack.store.git import GitRepo

from .conftest import git
from .registry_support import registered, run_with_artifact, set_config

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _record(name: str, second: int = 0, commit: str = "a" * 40) -> TagRecord:
    return TagRecord(name, commit, "Ann", "ann@example.com", EPOCH + timedelta(seconds=second))


# ----------------------------------------------------------------------------- the journal


def test_the_journal_gives_the_tags_of_one_model_added_and_removed_between_two_changes() -> None:
    journal = TagJournal()
    one, two, other = _record("m@v1.0.0"), _record("m@v2.0.0"), _record("n@v1.0.0")
    journal.record({"m": ([one], []), "n": ([other], [])})
    journal.record({"m": ([two], [one])})
    assert journal.changes("m", 0, 1) == ((one,), ())
    assert journal.changes("m", 0, 2) == ((one, two), (one,))
    assert journal.changes("m", 1, 2) == ((two,), (one,))
    assert journal.changes("n", 1, 2) == ((), ())
    assert journal.changes("m", 2, 2) == ((), ())


def test_a_listing_older_than_what_the_asker_knows_is_unchanged_only_if_its_model_is() -> None:
    journal = TagJournal()
    journal.record({"m": ([_record("m@v1.0.0")], [])})
    journal.record({"n": ([_record("n@v1.0.0")], [])})
    assert journal.changes("m", 2, 1) == ((), ())  # nothing of m changed in between
    assert journal.changes("n", 2, 1) is None  # n did: the older listing is not the same
    assert journal.changes("m", 1, 0) is None


def test_changes_the_journal_forgot_have_no_answer() -> None:
    journal = TagJournal(keep=3)
    for n in range(1, 6):
        journal.record({"m": ([_record(f"m@v{n}.0.0")], [])})
    assert journal.changes("m", 0, 5) is None
    assert journal.changes("m", 1, 5) is None
    assert [r.name for r in journal.changes("m", 2, 5).added] == [
        "m@v3.0.0",
        "m@v4.0.0",
        "m@v5.0.0",
    ]


def _names(listing: TagListing) -> dict[str, TagRecord]:
    return {r.name: r for r in listing.records}


def _check_changes(before: TagListing, after: TagListing, model: str) -> None:
    """The journal's changes between two listings of ``model`` are their difference."""
    assert before.position is not None and after.position is not None
    changes = after.position.feed.changes(
        model, before.position.generation, after.position.generation
    )
    assert changes is not None
    old, new = _names(before), _names(after)
    gone = {n for n, r in old.items() if new.get(n) is not r}
    came = {n for n, r in new.items() if old.get(n) is not r}
    assert {r.name for r in changes.removed} >= gone
    assert {r.name for r in changes.added} >= came
    # Applying the changes to the earlier listing gives the later one.
    rebuilt = dict(old)
    for record in changes.removed:
        if rebuilt.get(record.name) is record:
            del rebuilt[record.name]
    for record in changes.added:
        rebuilt[record.name] = record
    assert rebuilt == new


# ----------------------------------------------------------------------------- against full reads


def _last_second_by_hand(records: list[TagRecord]) -> tuple[int, tuple, tuple | None] | None:
    dated = [r for r in records if r.annotated and parse_tag(r.name) is not None]
    if not dated:
        return None
    second = max(int(r.date.timestamp()) for r in dated)
    keys = [
        (tag_order_key(p.kind, p.counter), p.kind)
        for r in dated
        if int(r.date.timestamp()) == second and (p := parse_tag(r.name)) is not None
    ]
    ending = [k for k, kind in keys if kind in (TagKind.DEREGISTRATION, TagKind.DEPRECATION)]
    return second, max(k for k, _ in keys), max(ending) if ending else None


def _everything_matches(
    client: Client, store: TagStore, model: str, before: TagListing
) -> TagListing:
    listing = store.read(model)
    _check_changes(before, listing, model)
    records = list(listing.records)
    assert tag_writer.next_version_number(listing, model) == next_version_number(records, model)
    assert tag_writer.next_assignment_counter(listing, model) == next_assignment_counter(
        records, model
    )
    assert tag_writer._last_second(listing, model) == _last_second_by_hand(records)
    view = client.registry.view(model=model)
    assert view.state == build_registry_state(view.listing.records, view.stages)
    everything = store.read()
    assert client.registry.view().state == build_registry_state(everything.records, view.stages)
    return listing


def _model_with_versions(repo: Path, versions: int) -> tuple[Client, TagStore, TagListing, str]:
    """Model IrisRF with ``versions`` versions: the client, its tag store, the model's
    listing, and version 1's commit."""
    client = Client()
    registered(client, "IrisRF", versions=versions)
    store = client.registry.tags
    head = git(repo, "rev-parse", "IrisRF@v1.0.0^{commit}").strip()
    return client, store, store.read("IrisRF"), head


def test_what_is_kept_from_the_tags_matches_a_full_read_after_every_kind_of_change(
    repo: Path,
) -> None:
    client, store, listing, head = _model_with_versions(repo, 3)
    second = git(repo, "rev-parse", "IrisRF@v2.0.0^{commit}").strip()
    rng = random.Random(7)

    def labels() -> list[str]:
        return [r.name for r in store.read("IrisRF").records if "#" in r.name] or ["none"]

    changes = [
        lambda: client.create_model_version("IrisRF", run_with_artifact(client)),
        lambda: client.transition_model_version_stage(
            "IrisRF", rng.randint(1, 3), rng.choice(["Staging", "Production"]), True
        ),
        lambda: client.set_registered_model_alias("IrisRF", "champion", rng.randint(1, 3)),
        lambda: git(
            repo, "tag", "-a", "-m", "by hand", f"IrisRF#Staging#{rng.randint(50, 60)}", head
        ),
        # a label moved to another version's commit, or deleted (an earlier tag changes)
        lambda: git(repo, "tag", "-f", "-a", "-m", "moved", rng.choice(labels()), second),
        lambda: git(repo, "tag", "-d", rng.choice(labels())),
        lambda: git(repo, "pack-refs", "--all"),
        lambda: git(repo, "tag", "IrisRF#lightweight#70", head),  # lightweight: counted, not dated
        lambda: TagStore(GitRepo(repo)).create(  # another store (another process)
            f"IrisRF#Production#{rng.randint(80, 90)}", head, "other\n", when=2_000_000_000
        ),
        lambda: client.delete_registered_model_alias("IrisRF", "champion"),
    ]
    for step in range(40):
        change = changes[step % len(changes)] if step < len(changes) else rng.choice(changes)
        try:
            change()
        except AssertionError as exc:  # git refused (a tag that exists, or is gone)
            assert "already exists" in str(exc) or "not found" in str(exc)
        except ConflictError:  # the store refused a name another change took
            pass
        listing = _everything_matches(client, store, "IrisRF", listing)


def test_registry_writes_on_a_big_model_replay_and_read_only_the_new_tags(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    source = run_with_artifact(client)
    for _ in range(30):
        client.create_model_version("IrisRF", source)
    client.transition_model_version_stage("IrisRF", 1, "Production", True)
    client.set_registered_model_alias("IrisRF", "champion", 1)

    def no_full_pass(*_args: object) -> None:
        raise AssertionError("a registry write went through every tag of the model")

    monkeypatch.setattr(StateBuilder, "_grouped", no_full_pass)
    monkeypatch.setattr(tag_writer._maxima, "_compute", no_full_pass)
    monkeypatch.setattr(tag_writer._last_second, "_compute", no_full_pass)
    monkeypatch.setattr(metadata, "version_numbers", no_full_pass)
    for turn in range(6):
        client.create_model_version("IrisRF", source)
        client.transition_model_version_stage("IrisRF", 2 - turn % 2, "Production", True)
        client.set_registered_model_alias("IrisRF", "champion", 2 - turn % 2)
    version = client.get_model_version("IrisRF", 2 - 5 % 2)
    assert version.current_stage == "Production"
    assert version.aliases == ["champion"]
    assert int(client.create_model_version("IrisRF", source).version) == 2 + 30 + 6 + 1


def test_the_next_version_skips_a_version_file_whose_tag_was_never_made(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    # A version file committed by a writer killed before its tag: its number stays taken.
    repository = client.repository
    doc = {
        "name": "IrisRF",
        "version": 7,
        "source": "s3://bucket/model",
        "run_id": None,
        "user": "test@example.com",
        "description": None,
        "creation_time": "2026-01-01T00:00:00.000Z",
        "last_update_time": "2026-01-01T00:00:00.000Z",
        "tags": {},
    }
    repository.branch.commit(
        lambda _snap: {metadata.version_path("IrisRF", 7): Blob(metadata.encode_version(doc))},
        "reserve 7",
    )
    assert client.create_model_version("IrisRF", "s3://bucket/model").version == "8"
    assert client.create_model_version("IrisRF", "s3://bucket/model").version == "9"


# ----------------------------------------------------------------------------- tag dates


def _tag_time_by_hand(records: list[TagRecord], model: str, new_tag: str, now: int) -> int:
    """The rule of ``tag_writer.tag_time``, over every tag."""
    new = parse_tag(new_tag)
    assert new is not None
    mine = tag_order_key(new.kind, new.counter)
    dated = [r for r in records if r.annotated and (p := parse_tag(r.name)) and p.model == model]
    when = max([now, *(int(r.date.timestamp()) for r in dated)])
    same = [parse_tag(r.name) for r in dated if int(r.date.timestamp()) == when]
    endings = (TagKind.DEREGISTRATION, TagKind.DEPRECATION)
    if new.kind is TagKind.DEPRECATION and same:
        return when + 1
    for other in same:
        assert other is not None
        key = tag_order_key(other.kind, other.counter)
        if key > mine and (new.kind in endings or other.kind in endings):
            return when + 1
    return when


@pytest.mark.parametrize("seed", range(20))
def test_the_date_of_a_new_tag_follows_the_rule_over_every_tag(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    journal = TagJournal()
    names = [
        "m@v{n}.0.0",
        "m@v{n}.0.0!",
        "m#Staging#{n}",
        "m#Production!#{n}",
        "m@deprecated",
        "m@deprecated#{n}",
        "m#champion#{n}",
    ]
    records: list[TagRecord] = []
    now = int(EPOCH.timestamp()) + 5
    monkeypatch.setattr(tag_writer.time, "time", lambda: float(now))
    for step in range(30):
        name = rng.choice(names).format(n=step + 1)
        if any(r.name == name for r in records):
            continue
        added = _record(name, rng.randint(0, 8))
        records.append(added)
        records.sort(key=lambda r: r.name)
        journal.record({"m": ([added], [])})
        listing = TagListing(
            tuple(records), frozenset(), TagPosition(journal, journal.generation, "m")
        )
        for candidate in (
            "m@v99.0.0",
            "m@v99.0.0!",
            "m#Staging#99",
            "m@deprecated#99",
            "m@deprecated",
        ):
            expected = _tag_time_by_hand(records, "m", candidate, now)
            assert tag_writer.tag_time(listing, "m", candidate) == expected, (records, candidate)


# ----------------------------------------------------------------------------- failures


def _signing_client(repo: Path, tmp_path: Path) -> Client:
    """A client of ``repo``, set up to sign tags with a new SSH key, and model IrisRF v1."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(key))
    client = Client()
    registered(client, "IrisRF")
    return client


def test_a_signed_tag_written_by_git_is_known_to_the_rest_of_the_operation(
    repo: Path, tmp_path: Path
) -> None:
    client = _signing_client(repo, tmp_path)
    stages = ["None", "Staging", "Production", "Archived"]
    set_config(client, registry={"stages": stages, "policy": {"Production": {"signed": True}}})
    client.transition_model_version_stage("IrisRF", 1, "Staging")
    moved = client.transition_model_version_stage("IrisRF", 1, "Production")
    assert moved.current_stage == "Production"
    counters = [t.rsplit("#", 1)[1] for t in git(repo, "tag", "-l").split() if "#" in t]
    assert sorted(counters) == sorted(set(counters))  # each counted tag has its own counter
    assert client.get_model_version("IrisRF", 1).current_stage == "Production"


def test_values_kept_from_the_journal_can_be_asked_for_while_another_thread_changes_it() -> None:
    journal = TagJournal()
    journal.record({"m": ([_record("m#Staging#1")], [])})
    old = TagListing((_record("m#Staging#1"),), frozenset(), TagPosition(journal, 1, "m"))
    filler = _record("n@v1.0.0")
    for _ in range(2000):
        journal.record({"n": ([filler], [])})
    new = TagListing(old.records, frozenset(), TagPosition(journal, journal.generation, "m"))
    stop = threading.Event()

    def change() -> None:
        while not stop.is_set():
            journal.record({"n": ([filler], [])})

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=change)
    thread.start()
    try:
        for turn in range(4000):
            assert tag_writer.next_assignment_counter(new if turn % 2 else old, "m") == 2
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_tags_that_give_no_state_fail_every_time_not_only_the_first() -> None:
    commit = "c" * 40  # two versions registered on one commit, then a stage on it
    tags = (
        _record("m@v1.0.0", 0, commit),
        _record("m@v2.0.0", 1, commit),
        _record("m#Production#1", 2, commit),
    )
    with pytest.raises(CorruptDataError):
        build_registry_state(tags)
    builder = StateBuilder()
    for _ in range(3):
        with pytest.raises(CorruptDataError):
            builder.build(tags)
    journal = TagJournal()
    journal.record({"m": (list(tags), [])})
    position = TagPosition(journal, journal.generation, "m")
    for _ in range(3):
        with pytest.raises(CorruptDataError):
            builder.build(tags, position=position)


def _crafted_tag(repo: Path, name: str, target: str, tagger_date: str) -> None:
    """A tag object git accepts (``hash-object`` checks nothing) with any tagger date."""
    body = (
        f"object {target}\ntype commit\ntag {name}\n"
        f"tagger X <x@example.com> {tagger_date} +0000\n\ncrafted\n"
    )
    sha = git(repo, "hash-object", "-t", "tag", "-w", "--stdin", input=body.encode()).strip()
    git(repo, "update-ref", f"refs/tags/{name}", sha)


def test_an_unreadable_tag_is_reported_kept_by_name_only_and_its_counter_not_given_again(
    repo: Path,
) -> None:
    client, store, first, head = _model_with_versions(repo, 2)
    git(repo, "tag", "-a", "-m", "by hand", "IrisRF#Staging#50", head)
    _crafted_tag(repo, "IrisRF#Staging#60", head, "300000000000")  # year 11476
    git(repo, "update-ref", "refs/tags/IrisRF#Staging#70", head)
    tags = repo / ".git" / "refs" / "tags"
    (tags / "IrisRF#Staging#70").write_text("1" * 40 + "\n")  # a missing object
    (tags / "IrisRF#Staging#80").write_bytes(b"\xff\xfe\n")  # a broken ref: git hides it
    time.sleep(0.05)  # no longer "racy": the next look trusts the stamps it reads
    with pytest.warns(CorruptDataWarning) as warned:
        listing = store.read("IrisRF")
    said = " ".join(str(w.message) for w in warned)
    assert all(f"IrisRF#Staging#{n}" in said for n in (60, 70, 80))
    records = {r.name: r for r in listing.records}
    assert records["IrisRF#Staging#50"].annotated
    assert not records["IrisRF#Staging#60"].annotated  # its name only
    assert not records["IrisRF#Staging#70"].annotated
    assert not records["IrisRF#Staging#80"].annotated  # a broken ref: its name only too
    _check_changes(first, listing, "IrisRF")
    assert tag_writer.next_assignment_counter(listing, "IrisRF") == 81
    assert next_assignment_counter(list(listing.records), "IrisRF") == 81
    view = client.registry.view(model="IrisRF")
    assert view.state == build_registry_state(view.listing.records, view.stages)
    assert view.state.models["IrisRF"].versions[1].stage == "Staging"
    # The registry still works, around the unreadable tags, without taking their names.
    client.transition_model_version_stage("IrisRF", 2, "Production")
    assert client.get_model_version("IrisRF", 2).current_stage == "Production"
    assert "IrisRF#Production#81" in git(repo, "tag", "-l")
    # The next process reads them again (they are not saved as read).
    store.save()
    again = TagStore(GitRepo(repo))
    with pytest.warns(CorruptDataWarning) as warned_again:
        again.read("IrisRF")
    assert "IrisRF#Staging#60" in " ".join(str(w.message) for w in warned_again)


def test_a_signed_tag_packed_before_it_is_read_back_is_still_known(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _signing_client(repo, tmp_path)
    store = client.registry.tags
    store.read()
    sign = store._create_signed

    def sign_then_pack(*args: object) -> None:
        sign(*args)
        git(repo, "pack-refs", "--all")  # another process packs the refs meanwhile

    monkeypatch.setattr(store, "_create_signed", sign_then_pack)
    head = git(repo, "rev-parse", "IrisRF@v1.0.0^{commit}").strip()
    record = store.create("IrisRF#Staging#1", head, "signed\n", when=1_800_000_000, sign=True)
    assert record.commit == head
    listing = store.read("IrisRF", refresh=False)
    assert "IrisRF#Staging#1" in listing.signed
    assert tag_writer.next_assignment_counter(listing, "IrisRF") == 2


def test_a_known_tag_whose_ref_moves_to_a_missing_object_is_not_saved_as_read(
    repo: Path,
) -> None:
    client, store, _, _ = _model_with_versions(repo, 2)
    ref = repo / ".git" / "refs" / "tags" / "IrisRF@v2.0.0"
    if not ref.exists():
        git(repo, "update-ref", "refs/tags/IrisRF@v2.0.0", git(repo, "rev-parse", "IrisRF@v2.0.0"))
    ref.write_text("1" * 40 + "\n")  # git tag -f onto an object that is not here
    time.sleep(0.05)
    with pytest.warns(CorruptDataWarning, match="IrisRF@v2.0.0"):
        listing = store.read("IrisRF")
    assert not {r.name: r for r in listing.records}["IrisRF@v2.0.0"].annotated
    store.save()
    with pytest.warns(CorruptDataWarning, match="IrisRF@v2.0.0"):  # the next process looks again
        TagStore(GitRepo(repo)).read("IrisRF")


@pytest.mark.parametrize(
    ("content", "read_as_git_reads_it"),
    [
        ("{sha} trailing text\n", True),
        ("{sha}\n\nmore lines\n", True),
        ("{upper}\n", True),
        ("{sha}\n" + "x" * 300 + "\n", True),
        ("ref: refs/tags/IrisRF@v1.0.0\n", True),
        (" {sha}\n", False),
        ("{sha}x\n", False),
        ("\x00\x00\x00\n", False),
        ("\xff\xfe\n", False),
    ],
    ids=[
        "trailing-text",
        "more-lines",
        "upper-case",
        "long-second-line",
        "symbolic",
        "leading-space",
        "glued-text",
        "nul-bytes",
        "not-utf8",
    ],
)
def test_loose_tag_refs_are_read_as_git_reads_them_and_a_broken_one_keeps_its_name(
    repo: Path, content: str, read_as_git_reads_it: bool
) -> None:
    client, store, _, _ = _model_with_versions(repo, 1)
    sha = git(repo, "rev-parse", "IrisRF@v1.0.0").strip()
    path = repo / ".git" / "refs" / "tags" / "IrisRF#Staging#7"
    path.write_bytes(content.format(sha=sha, upper=sha.upper()).encode("latin-1"))
    time.sleep(0.05)
    listed = git(repo, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags")
    assert ("IrisRF#Staging#7" in listed.split()) is read_as_git_reads_it
    if read_as_git_reads_it:
        record = {r.name: r for r in store.read("IrisRF").records}["IrisRF#Staging#7"]
        assert record.annotated
    else:
        with pytest.warns(CorruptDataWarning, match="broken ref"):
            listing = store.read("IrisRF")
        assert not {r.name: r for r in listing.records}["IrisRF#Staging#7"].annotated
        # Its counter is not given again: the next stage tag takes the one after it.
        client.transition_model_version_stage("IrisRF", 1, "Production")
        assert "IrisRF#Production#8" in git(repo, "tag", "-l").split()


def test_a_tag_name_that_is_not_utf8_in_packed_refs_stops_nothing(repo: Path) -> None:
    client, store, _, _ = _model_with_versions(repo, 1)
    subprocess.run(["git", "tag", b"caf\xe9"], cwd=repo, check=True)
    git(repo, "pack-refs", "--all")
    store.read()
    client.transition_model_version_stage("IrisRF", 1, "Production")
    assert client.get_model_version("IrisRF", 1).current_stage == "Production"
