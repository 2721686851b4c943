"""The registry at scale: tags read in process and incrementally, state replayed incrementally.

``TagStore`` reads the tag refs and tag objects itself and, between reads, only the refs that
changed; it must report exactly what ``git for-each-ref`` reports, whoever changed the tags
(gittrack, ``git tag``, ``git pack-refs``, a deletion). ``StateBuilder`` replays only the tags
added since its last state and must give the state a full replay gives. Registry writes spawn
no ``git tag`` and no ``git for-each-ref``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gittrack import Client
from gittrack.registry import tags_io
from gittrack.registry.state import StateBuilder, TagRecord, build_registry_state
from gittrack.registry.tags_io import TagStore
from gittrack.store.git import GitRepo

from .conftest import git
from .registry_support import (
    FOR_EACH_REF_FORMAT,
    for_each_ref_listing,
    registered,
    run_with_artifact,
    user_state,
)

SIGNATURE = (
    "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
)


def _for_each_ref(repo: Path, model: str | None = None) -> tags_io.TagListing:
    """What ``git for-each-ref`` reports: the reference the store must match."""
    patterns = ["refs/tags"] if model is None else [f"refs/tags/{model}@*", f"refs/tags/{model}#*"]
    return for_each_ref_listing(
        git(repo, "for-each-ref", f"--format={FOR_EACH_REF_FORMAT}", *patterns)
    )


def _same(ours: tags_io.TagListing, theirs: tags_io.TagListing) -> None:
    assert [r.name for r in ours.records] == [r.name for r in theirs.records]
    assert list(ours.records) == list(theirs.records)
    assert ours.signed == theirs.signed


def _mktag(repo: Path, name: str, target: str, message: str) -> None:
    """An annotated tag object written by git itself (``git mktag``), and its ref."""
    body = (
        f"object {target}\ntype commit\ntag {name}\n"
        f"tagger Ann Example <ann@example.com> 1700000000 +0100\n\n{message}"
    )
    sha = git(repo, "mktag", input=body.encode()).strip()
    git(repo, "update-ref", f"refs/tags/{name}", sha)


def test_tags_read_in_process_are_what_git_for_each_ref_reports(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.set_registered_model_alias("IrisRF", "champion", 2)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "plain-lightweight")
    git(repo, "tag", "-a", "-m", "release ünïcode\n\nbody line", "team/release-1")
    _mktag(repo, "signed@v1.0.0", head, "Registering\n" + SIGNATURE)
    _mktag(repo, "two-blocks", head, "text\n" + SIGNATURE + "more\n" + SIGNATURE)
    _mktag(repo, "no-message", head, "")
    store = TagStore(GitRepo(repo))
    _same(store.read(), _for_each_ref(repo))
    _same(store.read("IrisRF"), _for_each_ref(repo, "IrisRF"))
    assert store.read().signed == {"signed@v1.0.0", "two-blocks"}


def test_the_tag_store_follows_every_change_to_the_tag_refs(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF")
    store = TagStore(GitRepo(repo))
    _same(store.read(), _for_each_ref(repo))
    changes = [
        lambda: git(repo, "tag", "-a", "-m", "by hand", "IrisRF#Staging#7"),  # another writer
        lambda: git(repo, "pack-refs", "--all"),  # loose refs move into packed-refs
        lambda: git(repo, "tag", "-f", "-a", "-m", "moved", "IrisRF#Staging#7", "HEAD"),
        lambda: git(repo, "tag", "-d", "IrisRF#Staging#7"),  # a packed tag deleted
        lambda: client.create_model_version("IrisRF", run_with_artifact(client)),
        lambda: git(repo, "tag", "lightweight"),
    ]
    for change in changes:
        change()
        _same(store.read(), _for_each_ref(repo))
        _same(store.read("IrisRF"), _for_each_ref(repo, "IrisRF"))


def test_a_new_process_reuses_what_another_learnt_and_still_sees_new_tags(repo: Path) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    first = TagStore(GitRepo(repo))
    first.read()
    first.save()
    git(repo, "tag", "-a", "-m", "later", "IrisRF#Production#9")
    second = TagStore(GitRepo(repo))
    _same(second.read(), _for_each_ref(repo))
    _same(second.read("IrisRF"), _for_each_ref(repo, "IrisRF"))


def test_a_new_process_sees_loose_tags_moved_deleted_and_recreated_since_the_save(
    repo: Path,
) -> None:
    client = Client()
    registered(client, "IrisRF", versions=3)
    git(repo, "tag", "-a", "-m", "by hand", "IrisRF#Staging#7")
    first = TagStore(GitRepo(repo))
    first.read()
    first.save()
    git(repo, "tag", "-f", "-a", "-m", "moved", "IrisRF#Staging#7", "HEAD")
    git(repo, "tag", "-d", "IrisRF@v2.0.0")
    git(repo, "tag", "-a", "-m", "again", "IrisRF@v2.0.0", "HEAD")  # may reuse the inode
    git(repo, "tag", "-d", "IrisRF@v3.0.0")
    second = TagStore(GitRepo(repo))
    _same(second.read(), _for_each_ref(repo))
    _same(second.read("IrisRF"), _for_each_ref(repo, "IrisRF"))


def _rewrite_keeping_inode_and_time(
    repo: Path, tag: str, other: str
) -> tuple[Path, os.stat_result]:
    """Write ``other``'s object into ``tag``'s loose ref file in place, with its inode and
    modification time kept; returns the file and its stat from before."""
    ref = repo / ".git" / "refs" / "tags" / tag
    stamp = ref.stat()
    ref.write_text(git(repo, "rev-parse", f"refs/tags/{other}").strip() + "\n")
    os.utime(ref, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert ref.stat().st_ino == stamp.st_ino
    return ref, stamp


def test_a_new_process_does_not_read_again_the_loose_tag_refs_a_saved_cache_vouches_for(
    repo: Path,
) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    _age_tag_refs(repo, seconds=60)  # older than the racy window
    first = TagStore(GitRepo(repo))
    first.read()
    first.save()
    # Rewritten in place, with its inode and modification time kept: only a reader that
    # opens the file again sees the new object.
    ref, stamp = _rewrite_keeping_inode_and_time(repo, "IrisRF@v2.0.0", "IrisRF@v1.0.0")
    second = TagStore(GitRepo(repo))
    saved = {r.name: r.message for r in second.read().records}
    assert (
        saved["IrisRF@v2.0.0"] == {r.name: r.message for r in first.read().records}["IrisRF@v2.0.0"]
    )
    assert saved["IrisRF@v2.0.0"] != saved["IrisRF@v1.0.0"]
    os.utime(ref, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))  # the file changed: read again
    third = TagStore(GitRepo(repo))
    _same(third.read(), _for_each_ref(repo))


def test_a_loose_tag_ref_written_just_before_the_save_is_read_again_by_the_next_process(
    repo: Path,
) -> None:
    """Racy files: a ref changed within the file system's timestamp resolution of the save
    could be rewritten after it with the very same stamp, so the save does not vouch for it."""
    client = Client()
    registered(client, "IrisRF", versions=2)
    first = TagStore(GitRepo(repo))
    first.read()
    first.save()
    ref, stamp = _rewrite_keeping_inode_and_time(repo, "IrisRF@v2.0.0", "IrisRF@v1.0.0")
    _same(TagStore(GitRepo(repo)).read(), _for_each_ref(repo))


def _age_tag_refs(repo: Path, seconds: int) -> None:
    for ref in (repo / ".git" / "refs" / "tags").rglob("*"):
        if ref.is_file():
            stamp = ref.stat()
            os.utime(ref, ns=(stamp.st_atime_ns, stamp.st_mtime_ns - seconds * 10**9))


def test_many_loose_tags_are_packed_and_stay_readable(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tags_io, "LOOSE_TAGS_TO_PACK", 4)
    before = _user_refs_and_files(repo)
    client = Client()
    registered(client, "IrisRF", versions=5)
    packed = (repo / ".git" / "packed-refs").read_text()
    assert "refs/tags/IrisRF@v1.0.0" in packed
    assert [v.version for v in client.search_model_versions("name = 'IrisRF'")] == [
        "5",
        "4",
        "3",
        "2",
        "1",
    ]
    _same(TagStore(GitRepo(repo)).read(), _for_each_ref(repo))
    assert _user_refs_and_files(repo) == before
    assert all(" refs/tags/" in line for line in packed.splitlines()[1:] if line[0] != "^")


def test_tags_are_not_packed_when_packing_would_move_a_user_branch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tags_io, "LOOSE_TAGS_TO_PACK", 2)
    git(repo, "pack-refs", "--all")
    git(repo, "commit", "--allow-empty", "-q", "-m", "main moves: its loose file is newer")
    client = Client()
    registered(client, "IrisRF", versions=3)
    assert (repo / ".git" / "refs" / "tags" / "IrisRF@v3.0.0").exists()
    assert (
        git(repo, "rev-parse", "HEAD").strip()
        in (repo / ".git" / git(repo, "symbolic-ref", "HEAD").strip()).read_text()
    )
    _same(TagStore(GitRepo(repo)).read(), _for_each_ref(repo))


def _user_refs_and_files(repo: Path) -> dict[str, str]:
    """The user's state, with ``packed-refs`` compared by the refs it holds outside tags."""
    state = {k: v for k, v in user_state(repo).items() if k != ".git/packed-refs"}
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    state["refs"] = "\n".join(r for r in refs.splitlines() if "refs/heads/gittrack" not in r)
    return state


def test_registry_writes_spawn_no_git_tag_and_no_for_each_ref(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    registered(client, "IrisRF", versions=2)
    spawned: list[list[str]] = []
    real_popen = subprocess.Popen.__init__

    def watching(self, args, *rest, **kwargs):  # records, then runs git as asked
        spawned.append([str(a) for a in args] if not isinstance(args, str) else [args])
        real_popen(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", watching)
    client.create_model_version("IrisRF", "s3://bucket/model")
    client.transition_model_version_stage("IrisRF", 1, "Production", archive_existing_versions=True)
    client.transition_model_version_stage("IrisRF", 2, "Production", archive_existing_versions=True)
    client.set_registered_model_alias("IrisRF", "champion", 1)
    client.set_registered_model_alias("IrisRF", "champion", 2)
    git_commands = [a[a.index("--no-optional-locks") + 1] for a in spawned if "git" in a[0]]
    assert "tag" not in git_commands
    assert "for-each-ref" not in git_commands
    assert client.get_model_version("IrisRF", 2).current_stage == "Production"
    assert client.get_model_version("IrisRF", 1).current_stage == "Archived"


# --------------------------------------------------------------------------- incremental state

T0 = 1_700_000_000


def _record(name: str, commit: str, second: int) -> TagRecord:
    return TagRecord(name, commit, "Ann", "ann@example.com", T0 + second, "")


def _states_match(tags: list[TagRecord], builder: StateBuilder) -> None:
    ours = builder.build(tags)
    theirs = build_registry_state(tags)
    assert ours == theirs


def test_the_incremental_state_is_the_full_replay_after_each_new_tag() -> None:
    commits = [f"{n:040x}" for n in range(1, 6)]
    history = [
        _record("m@v1.0.0", commits[0], 0),
        _record("m@v2.0.0", commits[1], 1),
        _record("m#Staging#1", commits[0], 2),
        _record("m#champion#2", commits[0], 3),
        _record("m#champion#3", commits[1], 4),  # the alias moves
        _record("m#Staging!#4", commits[0], 5),
        _record("m#Production#5", commits[1], 6),
        _record("m@v1.0.0!", commits[0], 7),  # deregistered
        _record("m@v3.0.0", commits[2], 8),
        _record("other@v1.0.0", commits[3], 9),
        _record("m@deprecated", commits[2], 10),
    ]
    builder = StateBuilder()
    for end in range(1, len(history) + 1):
        _states_match(history[:end], builder)


def test_a_registration_on_a_commit_an_earlier_tag_named_replays_the_model_whole() -> None:
    commit = "d" * 40
    assignment_first = [_record("m#Staging#1", commit, 0)]  # names a commit not registered yet
    builder = StateBuilder()
    _states_match(assignment_first, builder)
    replay = builder._models["m"]
    later = [*assignment_first, _record("m@v1.0.0", commit, 1)]
    _states_match(later, builder)
    assert builder._models["m"] is not replay
    assert builder.build(later).models["m"].versions[1].stage == "Staging"


def test_a_tag_inserted_before_others_replays_the_model_whole() -> None:
    commits = [f"{n:040x}" for n in range(1, 4)]
    tags = [_record("m@v1.0.0", commits[0], 0), _record("m@v2.0.0", commits[1], 5)]
    builder = StateBuilder()
    _states_match(tags, builder)
    earlier = [*tags, _record("m#Production#1", commits[1], 3)]  # dated between the two
    _states_match(earlier, builder)
    removed = tags[:1]
    _states_match(removed, builder)


def test_new_tags_dated_after_the_others_are_replayed_on_top_without_a_full_replay() -> None:
    commits = [f"{n:040x}" for n in range(1, 4)]
    tags = [_record("m@v1.0.0", commits[0], 0), _record("m#Staging#1", commits[0], 1)]
    builder = StateBuilder()
    _states_match(tags, builder)
    replay = builder._models["m"]
    tags += [_record("m@v2.0.0", commits[1], 2), _record("m#Staging#2", commits[1], 3)]
    _states_match(tags, builder)
    assert builder._models["m"] is replay
    assert builder.build(tags).models["m"].versions[2].stage == "Staging"


def test_a_registration_sorting_before_a_same_second_assignment_is_inserted_in_place() -> None:
    commits = [f"{n:040x}" for n in range(1, 4)]
    tags = [
        _record("m@v1.0.0", commits[0], 0),
        _record("m#Production#1", commits[0], 5),
        _record("m#champion#2", commits[0], 5),
    ]
    builder = StateBuilder()
    _states_match(tags, builder)
    replay = builder._models["m"]
    tags.append(_record("m@v2.0.0", commits[1], 5))  # same second: sorts before the counters
    _states_match(tags, builder)
    assert builder._models["m"] is replay
    tags.append(_record("m#champion#3", commits[1], 6))
    _states_match(tags, builder)
    assert builder.build(tags).models["m"].aliases == {"champion": 2}


def test_several_registrations_of_one_second_inserted_at_once_give_the_full_replay() -> None:
    commits = [f"{n:040x}" for n in range(1, 12)]
    tags = [_record("m@v1.0.0", commits[0], 0), _record("m#Production#1", commits[0], 5)]
    builder = StateBuilder()
    _states_match(tags, builder)
    tags += [_record(f"m@v{n}.0.0", commits[n - 1], 5) for n in (9, 10, 2)]
    _states_match(tags, builder)
    assert [v.number for v in builder.build(tags).models["m"].versions.values()] == [1, 2, 9, 10]


def test_a_tag_made_again_with_another_date_gives_the_full_replay() -> None:
    commits = [f"{n:040x}" for n in range(1, 4)]
    tags = [
        _record("m@v1.0.0", commits[0], 0),
        _record("m@v2.0.0", commits[1], 1),
        _record("m#Production#1", commits[0], 2),
    ]
    builder = StateBuilder()
    _states_match(tags, builder)
    tags[2] = _record("m#Production#1", commits[1], 3)  # deleted and made on version 2
    _states_match(tags, builder)
    assert builder.build(tags).models["m"].versions[2].stage == "Production"


def test_a_tag_packed_between_the_scan_and_the_read_of_its_file_is_still_seen(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    registered(client, "IrisRF")
    store = TagStore(GitRepo(repo))
    store.read()
    git(repo, "tag", "-a", "-m", "by hand", "IrisRF#Staging#5")
    real_read = tags_io._loose_tag_ref
    packed: list[bool] = []

    def pack_first(path: str) -> str | None:  # git pack-refs runs after the scan, before the read
        if not packed:
            packed.append(True)
            git(repo, "pack-refs", "--all")
        return real_read(path)

    monkeypatch.setattr(tags_io, "_loose_tag_ref", pack_first)
    _same(store.read("IrisRF"), _for_each_ref(repo, "IrisRF"))
    assert packed
