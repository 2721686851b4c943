"""The registry state kept once per process and saved for the next one (``shared_state``).

Whatever happened to the tags since the state was computed or saved (another process wrote a
version, ``git tag -d``, ``git fetch --tags``, ``git pack-refs``, a tag moved with
``git tag -f``), a listing must be the one a repository without any saved state gives: the
reference below lists a copy of the repository whose cache directory was deleted. And the
saved state must really be used: a new process takes it up and replays no tag.
"""

from __future__ import annotations

import json
import shutil
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from gittrack import Client
from gittrack.errors import CorruptDataWarning
from gittrack.store.branch import Blob

from .conftest import git, gittrack_cli, make_repo, run_script, tree_fingerprint
from .registry_support import registered

LIST_IN_NEW_PROCESS = """
import contextlib, io, json
import pytest

from gittrack import Client
from gittrack.errors import CorruptDataWarning
from gittrack.store.branch import Blob
from gittrack.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert main(["models", "list", "--json"]) == 0
shared = Client().registry.shared
print(json.dumps({"rows": json.loads(out.getvalue()), "restored": shared.restored,
                  "replayed": shared.builder.replayed}))
"""

REGISTER_IN_NEW_PROCESS = """
import pytest

from gittrack import Client
from gittrack.errors import CorruptDataWarning
from gittrack.store.branch import Blob
client = Client()
run = client.create_run("0")
client.log_text(run.info.run_id, "flavors: {}\\n", "model/MLmodel")
client.set_terminated(run.info.run_id)
client.create_model_version("IrisRF", f"runs:/{run.info.run_id}/model")
"""


def _registry(client: Client) -> None:
    """Two models with versions, stages and an alias: tags of every kind."""
    registered(client, "IrisRF", versions=3)
    registered(client, "wine", versions=2)
    client.transition_model_version_stage("IrisRF", 1, "Production")
    client.transition_model_version_stage("IrisRF", 2, "Staging")
    client.set_registered_model_alias("IrisRF", "champion", 3)
    client.transition_model_version_stage("wine", 2, "Production")


def _in_new_process(repo: Path) -> dict[str, Any]:
    proc = run_script(LIST_IN_NEW_PROCESS, repo)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _in_this_process(repo: Path) -> list[dict[str, Any]]:
    proc = gittrack_cli(repo, "models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _without_saved_state(repo: Path, scratch: Path) -> list[dict[str, Any]]:
    """The listing of a copy of ``repo`` without gittrack's cache: every tag replayed."""
    copy = scratch / f"reference-{len(list(scratch.glob('reference-*')))}"
    shutil.copytree(repo, copy, symlinks=True)
    shutil.rmtree(copy / ".git" / "gittrack" / "cache", ignore_errors=True)
    return _in_new_process(copy)["rows"]


def _saved_state_file(repo: Path) -> Path:
    return repo / ".git" / "gittrack" / "cache" / "registry-tags.json"


def _primed(repo: Path) -> Client:
    """A registry whose whole state a previous process saved (a process that finds a saved
    state saves again only after many changes: this one found none)."""
    client = Client()
    _registry(client)
    _saved_state_file(repo).unlink(missing_ok=True)
    _in_new_process(repo)
    assert _saved_state_file(repo).exists()
    return client


def test_a_new_process_takes_up_the_saved_state_and_replays_no_tag(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    second = _in_new_process(repo)
    assert second["restored"] is True
    assert second["replayed"] == 0
    assert second["rows"] == _without_saved_state(repo, tmp_path)
    assert [row["name"] for row in second["rows"]] == ["IrisRF", "wine"]


def test_without_a_saved_state_a_new_process_replays_every_tag(repo: Path) -> None:
    _primed(repo)
    _saved_state_file(repo).unlink()
    fresh = _in_new_process(repo)
    assert fresh["restored"] is False
    assert fresh["replayed"] > 0


def test_a_version_created_by_another_process_is_in_the_next_listing_of_both(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    assert [r["versions"] for r in _in_this_process(repo)] == [3, 2]
    proc = run_script(REGISTER_IN_NEW_PROCESS, repo, timeout=120)
    assert proc.returncode == 0, proc.stderr
    here = _in_this_process(repo)
    assert [r["versions"] for r in here] == [4, 2]
    reference = _without_saved_state(repo, tmp_path)
    assert here == reference
    later = _in_new_process(repo)
    assert later["rows"] == reference
    assert later["restored"] is True
    # At most the changed model, from where it stopped; none when this process saved the
    # state after the new version (when that tag's ref is old enough to be vouched for).
    assert later["replayed"] < 10


def test_a_deleted_tag_leaves_the_listing_of_this_process_and_of_the_next(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    _in_this_process(repo)
    [alias_tag] = git(repo, "tag", "-l", "IrisRF#champion#*").split()
    git(repo, "tag", "-d", alias_tag)
    here = _in_this_process(repo)
    assert here[0]["aliases"] == ""
    assert here == _without_saved_state(repo, tmp_path)
    assert _in_new_process(repo)["rows"] == here


def test_tags_brought_by_git_fetch_are_listed(repo: Path, tmp_path: Path) -> None:
    _primed(repo)
    _in_this_process(repo)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(other, "config", "user.name", "Other User")
    git(other, "config", "user.email", "other@example.com")
    git(other, "fetch", "-q", "origin", "gittrack:gittrack")
    proc = run_script(
        REGISTER_IN_NEW_PROCESS + "\nclient.create_registered_model('iris2')\n", other
    )
    assert proc.returncode == 0, proc.stderr
    git(repo, "fetch", "-q", "--tags", str(other))
    here = _in_this_process(repo)
    assert here == _without_saved_state(repo, tmp_path)
    assert _in_new_process(repo)["rows"] == here


def test_packing_the_tag_refs_changes_no_listing(repo: Path, tmp_path: Path) -> None:
    _primed(repo)
    before = _in_this_process(repo)
    git(repo, "pack-refs", "--all")
    assert _in_this_process(repo) == before
    fresh = _in_new_process(repo)
    assert fresh["rows"] == before == _without_saved_state(repo, tmp_path)
    assert fresh["replayed"] == 0  # the same tags, only stored elsewhere


def test_a_tag_moved_with_git_tag_f_right_after_the_save_is_seen(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    _in_this_process(repo)
    # Production moves from version 1 to version 2 within the second of the save.
    commit_of_v2 = git(repo, "rev-parse", "IrisRF@v2.0.0^{commit}").strip()
    [production] = git(repo, "tag", "-l", "IrisRF#Production#*").split()
    git(repo, "tag", "-f", "-a", "-m", "moved", production, commit_of_v2)
    here = _in_this_process(repo)
    assert here == _without_saved_state(repo, tmp_path)
    assert "Production: v1" not in here[0]["stages"]
    assert _in_new_process(repo)["rows"] == here


def test_a_corrupt_or_truncated_saved_state_is_ignored_and_written_again(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    saved = _saved_state_file(repo)
    whole = saved.read_bytes()
    reference = _without_saved_state(repo, tmp_path)
    for damaged in (whole[: len(whole) // 2], b"\x00\xff not json", b'{"format": 4, "tags": 7}'):
        saved.write_bytes(damaged)
        fresh = _in_new_process(repo)
        assert fresh["rows"] == reference
        assert fresh["restored"] is False
        assert json.loads(saved.read_bytes())["format"] == 4  # rebuilt for the next process
    assert _in_new_process(repo)["restored"] is True


def test_a_saved_state_whose_labels_name_a_version_it_does_not_describe_is_replayed(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    saved = _saved_state_file(repo)
    document = json.loads(saved.read_bytes())
    model = document["derived"]["IrisRF"]
    assert model["labels"]
    model["labels"][0][0] = 99  # a label held by a version the document does not list
    saved.write_text(json.dumps(document))
    fresh = _in_new_process(repo)
    assert fresh["rows"] == _without_saved_state(repo, tmp_path)


def test_a_saved_state_copied_from_another_repository_is_not_used(
    repo: Path, tmp_path: Path
) -> None:
    _primed(repo)
    other = make_repo(tmp_path / "elsewhere")
    proc = run_script(
        "from gittrack import Client\nc = Client()\nc.create_registered_model('IrisRF')\n"
        + REGISTER_IN_NEW_PROCESS,
        other,
    )
    assert proc.returncode == 0, proc.stderr
    _in_new_process(other)
    shutil.copyfile(_saved_state_file(other), _saved_state_file(repo))
    fresh = _in_new_process(repo)
    assert fresh["restored"] is False
    assert fresh["rows"] == _without_saved_state(repo, tmp_path)


def test_a_saved_state_that_cannot_be_written_costs_only_the_replay(
    repo: Path, tmp_path: Path
) -> None:
    client = Client()
    _registry(client)
    saved = _saved_state_file(repo)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.unlink(missing_ok=True)
    saved.mkdir()  # neither readable nor replaceable as a file
    fresh = _in_new_process(repo)
    assert fresh["restored"] is False
    assert fresh["rows"] == _without_saved_state(repo, tmp_path)


def test_clients_of_one_repository_share_the_state_and_replay_nothing_again(repo: Path) -> None:
    first = Client()
    _registry(first)
    first.search_registered_models()
    second = Client()
    assert second.registry.shared is first.registry.shared
    replayed = first.registry.shared.builder.replayed
    names = [m.name for m in second.search_registered_models()]
    assert names == ["IrisRF", "wine"]
    assert second.registry.shared.builder.replayed == replayed


def test_listings_from_threads_while_tags_are_written_end_in_the_full_listing(
    repo: Path, tmp_path: Path
) -> None:
    """The UI server lists from several threads. The tags change meanwhile through ``git tag``
    (gittrack's own ref writer recycles ref files, which a concurrent branch read can catch
    mid-way whatever the registry does, so it is left out here)."""
    client = Client()
    _registry(client)
    failures: list[str] = []

    def list_many() -> None:
        try:
            for _ in range(15):
                Client().search_registered_models()
                Client().get_registered_model("IrisRF")
        except BaseException:  # reported below, with its traceback
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=list_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    commits = [git(repo, "rev-parse", f"IrisRF@v{n}.0.0^{{commit}}").strip() for n in (1, 2, 3)]
    for counter in range(20, 32):
        label = f"IrisRF#alias{counter % 3}#{counter}"
        git(repo, "tag", "-a", "-m", "by hand", label, commits[counter % 3])
    for thread in threads:
        thread.join()
    assert not failures, "\n".join(failures)
    here = _in_this_process(repo)
    assert here[0]["aliases"] == "alias0: v1, alias1: v2, alias2: v3, champion: v3"
    assert here == _without_saved_state(repo, tmp_path)


def test_listing_and_saving_the_state_leave_the_user_repository_alone(repo: Path) -> None:
    client = Client()
    _registry(client)
    (repo / "notes.txt").write_text("uncommitted\n")
    before = tree_fingerprint(repo)
    _in_new_process(repo)
    _in_this_process(repo)
    _in_new_process(repo)
    assert tree_fingerprint(repo) == before


def test_an_unchanged_registry_gives_the_remembered_listing_until_a_tag_or_file_changes(
    repo: Path,
) -> None:
    client = Client()
    _registry(client)
    first = client.registered_model_listing()
    again = Client().registered_model_listing()
    assert [a is b for a, b in zip(first, again)] == [True, True]  # made once
    client.update_registered_model("wine", "red")  # the tracking branch moves
    described = client.registered_model_listing()
    assert described[1].description == "red"
    assert described[0] is not first[0]
    client.set_registered_model_alias("wine", "best", 1)  # a new tag
    assert client.registered_model_listing()[1].aliases == {"best": 1}
    with pytest.raises(TypeError):
        first[0].tags["x"] = "y"  # type: ignore[index]  # shared, hence read-only


def test_a_listing_that_left_out_an_unreadable_file_reports_it_every_time(repo: Path) -> None:
    client = Client()
    _registry(client)
    client.repository.branch.commit(
        lambda _snap: {".tracking/models/wine/model.yaml": Blob(b"name: [unclosed\n")},
        "Break the model file\n",
    )
    for _ in range(2):
        with pytest.warns(CorruptDataWarning, match="wine"):
            names = [s.name for s in client.registered_model_listing()]
        assert names == ["IrisRF"]


def test_a_ref_file_with_the_inode_of_the_one_read_before_is_read_again(
    repo: Path, tmp_path: Path
) -> None:
    client = Client()
    _registry(client)
    label = repo / ".git" / "refs" / "tags" / "IrisRF#Production#1"
    assert label.is_file()  # loose, as gittrack writes a few tags
    before = [row["stages"] for row in _in_this_process(repo) if row["name"] == "IrisRF"]
    # The label moved to version 3's commit in a file with the same inode: what a tag
    # deleted and made again gets when the file system hands it the freed inode (ext4
    # does), made certain here by writing the new value into the old file.
    version_3 = git(repo, "rev-parse", "IrisRF@v3.0.0^{commit}").strip()
    body = (
        f"object {version_3}\ntype commit\ntag IrisRF#Production#1\n"
        "tagger Someone <someone@example.com> 1700000000 +0000\n\nProduction by hand\n"
    )
    moved = git(repo, "hash-object", "-w", "-t", "tag", "--stdin", input=body.encode()).strip()
    inode = label.stat().st_ino
    with open(label, "r+b") as ref_file:
        ref_file.write(f"{moved}\n".encode())
    git(repo, "tag", "-a", "-m", "another tag", "unrelated", "HEAD")  # the directory changes
    assert label.stat().st_ino == inode
    after = _in_this_process(repo)
    assert after == _without_saved_state(repo, tmp_path / "fresh")
    stages = next(r["stages"] for r in after if r["name"] == "IrisRF")
    assert "Production: v3" in stages and [stages] != before
