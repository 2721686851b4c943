"""The store's one cache helper, and the repository caches built on it stay within bounds."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gittrack.store import commits, objects, trees
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.git import GitRepo
from gittrack.store.trees import TreeEntry

from .conftest import git, make_repo


def test_a_full_cache_forgets_the_least_recently_used_entry() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_a_cached_none_is_told_apart_from_a_missing_key() -> None:
    cache: BoundedCache[str, int | None] = BoundedCache(4)
    missing = object()
    cache.put("absent entry", None)
    assert cache.get("absent entry", missing) is None
    assert cache.get("never asked", missing) is missing


def test_adding_many_keys_keeps_only_the_newest_within_the_bound() -> None:
    cache: BoundedCache[int, bool] = BoundedCache(3)
    cache.add_all(range(10), True)
    assert len(cache) == 3
    assert [key in cache for key in range(10)] == [False] * 7 + [True] * 3


def test_a_weighed_cache_bounds_the_sum_of_its_weights() -> None:
    cache: BoundedCache[str, list[int]] = BoundedCache(10, weigh=len)
    cache.put("six", [0] * 6)
    cache.put("three", [0] * 3)
    assert cache.size == 9
    cache.put("four", [0] * 4)  # 13 > 10: the least recently used ("six") goes
    assert "six" not in cache
    assert cache.size == 7
    cache.put("three", [0] * 1)  # replacing an entry replaces its weight
    assert cache.size == 5


def test_a_value_larger_than_the_whole_cache_is_not_kept() -> None:
    cache: BoundedCache[str, list[int]] = BoundedCache(10, weigh=len)
    cache.put("small", [0])
    cache.put("huge", [0] * 11)
    assert "huge" not in cache
    assert cache.size == 0


def test_pop_and_clear_forget_entries() -> None:
    cache: BoundedCache[str, int] = BoundedCache(3)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    assert cache.size == 1
    cache.clear()
    assert len(cache) == 0
    assert cache.size == 0


def test_a_cache_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="max_size must be at least 1, not 0"):
        BoundedCache(0)


def test_threads_sharing_a_cache_never_push_it_past_its_bound() -> None:
    cache: BoundedCache[tuple[int, int], int] = BoundedCache(50)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(5_000):
                cache.put((thread, i), i)
                cache.get((thread, i - 1))
                cache.pop((thread, i - 7))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50


@pytest.fixture
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> int:
    """Repository caches of three entries each, so a test can overflow them."""
    for module, name in (
        (trees, "MAX_CACHED_TREE_ENTRIES"),
        (trees, "MAX_CACHED_LOOKUPS"),
        (commits, "MAX_CACHED_COMMITS"),
        (objects, "MAX_KNOWN_OBJECTS"),
    ):
        monkeypatch.setattr(module, name, 3)
    return 3


def _blob_tree(repo: GitRepo, index: int) -> str:
    blob = repo.write_object("blob", f"content {index}\n".encode())
    return repo.write_tree([TreeEntry("100644", f"file{index}.txt", blob)])


def test_the_repository_caches_stay_within_their_bounds_and_answer_as_git_does(
    tmp_path: Path, small_bounds: int
) -> None:
    path = make_repo(tmp_path / "repo")
    repo = GitRepo(path)
    try:
        tree_ids = [_blob_tree(repo, i) for i in range(10)]
        commit_ids = [repo.write_commit(tree, [], f"commit {i}") for i, tree in enumerate(tree_ids)]
        for tree in tree_ids:
            repo.read_tree(tree)
            repo.tree_entry(tree, "file0.txt")
        for commit in commit_ids:
            assert repo.has_object(commit)
        caches = [
            repo.trees._tree_cache,
            repo.trees._tree_parts,
            repo.trees._entries,
            repo.commits._commit_cache,
            repo.objects._known_objects,
        ]
        assert [cache.size <= small_bounds for cache in caches] == [True] * len(caches)
        assert [len(cache) > 0 for cache in caches] == [True] * len(caches)
        # Forgotten answers are read again from git, and agree with it.
        for i, (tree, commit) in enumerate(zip(tree_ids, commit_ids)):
            entry = repo.tree_entry(tree, f"file{i}.txt")
            assert entry is not None
            assert git(path, "rev-parse", f"{tree}:file{i}.txt").strip() == entry.sha
            assert repo.commit_tree_info(commit) == (tree, [])
            assert git(path, "rev-parse", f"{commit}^{{tree}}").strip() == tree
    finally:
        repo.close()
