"""Run directories on the tracking branch: all of them at one tree, or those two trees differ in.

Runs live at ``.tracking/runs/<id[0:2]>/<id[2:4]>/<run_id>/``. Two trees are compared level by
level, reading only the subtrees whose ids differ, so a branch tip that gained three runs costs
a handful of tree reads whatever the number of runs. Each level is read in one batch.
A listing is a comparison with nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from gittrack.store import layout
from gittrack.store.git import GitRepo
from gittrack.store.trees import TreeEntry

_SHARD_LEVELS = 2
_BATCH = 20_000
_SHARD_DIRS = 256 * 256


@dataclass
class RunDirChanges:
    """Run directories added or changed (run id -> tree id), and run ids that are gone.

    ``not_directories`` names the run ids that became a file where their directory belongs
    (a hostile or broken tree): they are no runs, but the index reports them."""

    changed: dict[str, str] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    not_directories: set[str] = field(default_factory=set)


def runs_tree(repo: GitRepo, root_tree: str | None) -> str | None:
    """The id of the ``.tracking/runs`` tree under a root tree, or None when there is none."""
    current = root_tree
    for name in layout.RUNS_DIR.split("/"):
        if current is None:
            return None
        current = _child_tree(repo.read_tree(current), name)
    return current


def _child_tree(entries: list[TreeEntry], name: str) -> str | None:
    for entry in entries:
        if entry.name == name:
            return entry.sha if entry.is_tree else None
    return None


def estimated_runs(repo: GitRepo, tree: str | None) -> float:
    """About how many runs a ``.tracking/runs`` tree holds, from its first two levels alone
    (257 tree reads at most): run ids are random, so ``d`` of the 65,536 second-level shard
    directories in use mean about ``-65,536 * ln(1 - d / 65,536)`` runs.

    Args:
        repo: the repository.
        tree: the ``.tracking/runs`` tree (None: no runs).

    Returns:
        The estimate (infinite when every shard directory is in use).
    """
    if tree is None:
        return 0.0
    shards = [e.sha for e in repo.read_tree(tree) if e.is_tree and len(e.name) == 2]
    used = sum(
        sum(1 for e in entries if e.is_tree and len(e.name) == 2)
        for entries in _read_trees(repo, set(shards)).values()
    )
    if used >= _SHARD_DIRS:
        return math.inf
    return -_SHARD_DIRS * math.log1p(-used / _SHARD_DIRS)


def diff_run_dirs(
    repo: GitRepo,
    old: str | None,
    new: str | None,
    shards: Callable[[str], bool] | None = None,
) -> RunDirChanges:
    """Run directories that differ between two ``.tracking/runs`` trees (None: no runs).

    Args:
        repo: the repository both trees are in.
        old: the tree before (None: no runs, so every run directory of ``new`` is listed).
        new: the tree after.
        shards: when given, only the first-level shard directories (``id[0:2]``) it accepts
            are compared (the share of a listing one process does).

    Returns:
        The changes.
    """
    changes = RunDirChanges()
    pairs: list[tuple[str | None, str | None, str]] = [] if old == new else [(old, new, "")]
    for level in range(_SHARD_LEVELS + 1):
        if not pairs:
            break
        trees = _read_trees(repo, {sha for o, n, _ in pairs for sha in (o, n) if sha})
        next_pairs: list[tuple[str | None, str | None, str]] = []
        for old_sha, new_sha, prefix in pairs:
            old_entries = {e.name: e for e in trees[old_sha]} if old_sha else {}
            new_entries = {e.name: e for e in trees[new_sha]} if new_sha else {}
            for name in old_entries.keys() | new_entries.keys():
                before, after = old_entries.get(name), new_entries.get(name)
                before_sha = before.sha if before is not None and before.is_tree else None
                after_sha = after.sha if after is not None and after.is_tree else None
                if (
                    level == _SHARD_LEVELS
                    and after is not None
                    and not after.is_tree
                    and (before is None or before.sha != after.sha)
                    and layout.is_run_id(name)
                    and name.startswith(prefix)
                ):
                    changes.not_directories.add(name)
                if before_sha == after_sha:
                    continue
                if level < _SHARD_LEVELS:
                    if len(name) == 2 and (level or shards is None or shards(name)):
                        next_pairs.append((before_sha, after_sha, prefix + name))
                elif layout.is_run_id(name) and name.startswith(prefix):
                    if after_sha is not None:
                        changes.changed[name] = after_sha
                    else:
                        changes.removed.add(name)
        pairs = next_pairs
    return changes


def _read_trees(repo: GitRepo, shas: set[str]) -> dict[str, list[TreeEntry]]:
    ordered = sorted(shas)
    found: dict[str, list[TreeEntry]] = {}
    for start in range(0, len(ordered), _BATCH):
        chunk = ordered[start : start + _BATCH]
        found.update(zip(chunk, repo.read_trees(chunk)))
    return found
