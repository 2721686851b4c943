"""Merge of two tracking tips on trees, in process, with no work tree (DESIGN §10).

Runs live in distinct directories, so most of a merge is a union of shards: a subtree that only
one side changed is taken by id without being read. Only a file both sides changed since the
merge base is read, and merged by the rule of its kind (``file_rules``). The result depends on
the two tips only ("later" is decided by recorded times, then the tips' commit dates, then
their ids), so every clone computes the same tree.

A model version number registered on both sides (``versions/N.yaml`` absent from the base,
different on each side) cannot be merged: registry tags are immutable, so the remote's version
keeps N and the local one moves to the next free number. The caller moves its tags
(``sync``); this module reports each move as a :class:`Renumbered`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gittrack.errors import CorruptDataError
from gittrack.gitflow import file_rules
from gittrack.gitflow.file_rules import VERSION_FILE, Side
from gittrack.store import layout
from gittrack.store.branch import BLOB_MODE, TREE_MODE, Blob, apply_changes
from gittrack.store.codecs import dump_yaml, load_yaml
from gittrack.store.git import GitRepo
from gittrack.store.trees import TreeEntry

_RUN_DIR = re.compile(rf"^{re.escape(layout.RUNS_DIR)}/[^/]+/[^/]+/{layout.RUN_ID.pattern}$")
META, METRICS = "meta.yaml", "metrics.jsonl"


@dataclass(frozen=True)
class Renumbered:
    """A local model version that moved to a free number because the remote took its own."""

    model: str
    old: int
    new: int

    def describe(self) -> str:
        return (
            f"model {self.model!r}: your version {self.old} is now version {self.new} "
            f"(the remote already had a version {self.old})"
        )


@dataclass
class TreeMerge:
    """The merged tree, the versions renumbered, and what else the user should know."""

    tree: str
    renumbered: list[Renumbered] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


@dataclass
class MergeOutcome:
    """What a merge of ``theirs`` into ``ours`` did: ``up-to-date``, ``fast-forward`` or
    ``merged`` (a new commit), and the resulting tip."""

    kind: str
    tip: str
    renumbered: list[Renumbered] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


Entry = TreeEntry | None


class _TreeMerger:
    """One three-way merge of trees: entries taken by id where one side changed, rules
    applied where both did; collects the version numbers registered on both sides."""

    def __init__(self, repo: GitRepo, later_is_theirs: bool) -> None:
        self.repo = repo
        self.later_is_theirs = later_is_theirs
        self.reports: list[str] = []
        self.both_registered: list[tuple[str, int, str]] = []  # model, number, our blob

    def merge(self, path: str, base: Entry, ours: Entry, theirs: Entry) -> Entry:
        if _same(ours, theirs) or _same(base, theirs):
            return ours
        if _same(base, ours):
            return theirs
        if ours is None or theirs is None:
            return ours or theirs  # changed on one side, deleted on the other: nothing is lost
        if ours.is_tree and theirs.is_tree:
            return self.merge_dir(path, base if base and base.is_tree else None, ours, theirs)
        if ours.is_tree or theirs.is_tree:
            self.reports.append(f"{path} is a file on one side and a folder on the other")
            return theirs if self.later_is_theirs else ours
        return self.merge_file(path, base, ours, theirs)

    def merge_dir(self, path: str, base: Entry, ours: TreeEntry, theirs: TreeEntry) -> Entry:
        children = [_by_name(self.repo, e) for e in (base, ours, theirs)]
        names = sorted(set().union(*children))
        merged: dict[str, TreeEntry] = {}
        for name in names:
            b, o, t = (c.get(name) for c in children)
            entry = self.merge(f"{path}/{name}" if path else name, b, o, t)
            if entry is not None:
                merged[name] = TreeEntry(entry.mode, name, entry.sha)
        if _RUN_DIR.match(path) and _changed_on_both(children, (META, METRICS)):
            merged = self._resummarize_run(path, children, merged)
        if not merged:
            return None
        return TreeEntry(TREE_MODE, ours.name, self.repo.write_tree(merged.values()))

    def merge_file(self, path: str, base: Entry, ours: TreeEntry, theirs: TreeEntry) -> Entry:
        version = VERSION_FILE.match(path)
        read = self.repo.read_blob
        base_data = read(base.sha) if base is not None and not base.is_tree else None
        o_data, t_data = read(ours.sha), read(theirs.sha)
        sides = Side(o_data, not self.later_is_theirs), Side(t_data, self.later_is_theirs)
        try:
            if version and base_data is None and not _same_version(o_data, t_data, path):
                self.both_registered.append((version["model"], int(version["number"]), ours.sha))
                return theirs
            result = file_rules.rule_for(path)(base_data, *sides, path)
        except CorruptDataError as exc:  # one bad file does not stop the merge
            result = file_rules.keep_one_side(base_data, *sides, path, prefer_ours=False)
            result.reports.insert(0, f"{exc.message}; not merged by its rule")
        self.reports.extend(result.reports)
        return TreeEntry(ours.mode, ours.name, self.repo.write_object("blob", result.data))

    def _resummarize_run(
        self, path: str, children: list[dict[str, TreeEntry]], merged: dict[str, TreeEntry]
    ) -> dict[str, TreeEntry]:
        """Both sides changed the run's meta or metrics: merge meta with the merged metrics."""
        base, ours, theirs = (c.get(META) for c in children)
        metrics = merged.get(METRICS)
        if ours is None or theirs is None:
            return merged
        read = self.repo.read_blob
        try:
            result = file_rules.merge_run_meta(
                read(base.sha) if base else None,
                Side(read(ours.sha), not self.later_is_theirs),
                Side(read(theirs.sha), self.later_is_theirs),
                f"{path}/{META}",
                read(metrics.sha) if metrics else None,
            )
        except CorruptDataError:
            return merged  # reported when the file itself was merged
        sha = self.repo.write_object("blob", result.data)
        return {**merged, META: TreeEntry(BLOB_MODE, META, sha)}


def merge_trees(
    repo: GitRepo,
    base: str | None,
    ours: str,
    theirs: str,
    later_is_theirs: bool,
    taken_versions: Mapping[str, Iterable[int]] | None = None,
) -> TreeMerge:
    """Merge tree ``theirs`` into ``ours`` (``base``: their common ancestor's tree, None for
    unrelated histories). ``taken_versions``: numbers per model that are in use elsewhere
    (registry tags of deleted versions) and must not be given to a renumbered version."""
    merger = _TreeMerger(repo, later_is_theirs)
    root = merger.merge(
        "",
        TreeEntry(TREE_MODE, "", base) if base else None,
        TreeEntry(TREE_MODE, "", ours),
        TreeEntry(TREE_MODE, "", theirs),
    )
    tree = root.sha if root is not None else repo.write_tree([])
    renumbered, tree = _renumber(repo, tree, merger.both_registered, taken_versions or {})
    return TreeMerge(tree, renumbered, merger.reports)


def _renumber(
    repo: GitRepo,
    tree: str,
    clashes: list[tuple[str, int, str]],
    taken: Mapping[str, Iterable[int]],
) -> tuple[list[Renumbered], str]:
    """Give each local version that clashed the next free number of its model."""
    if not clashes:
        return [], tree
    moved: list[Renumbered] = []
    changes: dict[tuple[str, ...], Blob] = {}
    for model, old, blob in sorted(clashes):
        in_use = set(_version_numbers(repo, tree, model)) | set(taken.get(model, ()))
        in_use |= {m.new for m in moved if m.model == model}
        new = max(in_use, default=0) + 1
        doc = load_yaml(repo.read_blob(blob), f"models/{model}/versions/{old}.yaml") or {}
        doc["version"] = new
        changes[(*layout.MODELS_DIR.split("/"), *model.split("/"), "versions", f"{new}.yaml")] = (
            Blob(dump_yaml(doc))
        )
        moved.append(Renumbered(model, old, new))
    return moved, apply_changes(repo, tree, changes) or tree


def _version_numbers(repo: GitRepo, tree: str, model: str) -> list[int]:
    current: str | None = tree
    for part in (*layout.MODELS_DIR.split("/"), *model.split("/"), "versions"):
        entry = repo.tree_entry(current, part) if current else None
        current = entry.sha if entry is not None and entry.is_tree else None
    if current is None:
        return []
    return [int(e.name[:-5]) for e in repo.read_tree(current) if e.name[:-5].isdigit()]


def _same(a: Entry, b: Entry) -> bool:
    if a is None or b is None:
        return a is b
    return a.sha == b.sha and a.mode == b.mode


def _by_name(repo: GitRepo, entry: Entry) -> dict[str, TreeEntry]:
    if entry is None or not entry.is_tree:
        return {}
    return {e.name: e for e in repo.read_tree(entry.sha)}


def _changed_on_both(children: list[dict[str, TreeEntry]], names: tuple[str, ...]) -> bool:
    base, ours, theirs = children
    return any(
        not _same(ours.get(n), base.get(n)) and not _same(theirs.get(n), base.get(n))
        and not _same(ours.get(n), theirs.get(n))
        for n in names
    )  # fmt: skip


def _same_version(ours: bytes, theirs: bytes, where: str) -> bool:
    """One version registered once and then edited on both sides (same run, source and
    creation time), rather than two registrations that took the same number."""
    o, t = file_rules.load_mapping(ours, where), file_rules.load_mapping(theirs, where)
    keys = ("run_id", "source", "creation_time")
    return all(o.get(k) == t.get(k) for k in keys)


def _commit_order(repo: GitRepo, commit: str) -> tuple[int, str]:
    """(committer time, id): how the two tips are ordered when nothing else decides."""
    _kind, body = repo.read_object(commit)
    for line in body.split(b"\n"):
        if line.startswith(b"committer "):
            return int(line.rsplit(b" ", 2)[1]), commit
        if not line:
            break
    return 0, commit


def merge_base(repo: GitRepo, ours: str, theirs: str) -> str | None:
    """The best common ancestor of two commits (None: unrelated histories)."""
    proc = repo.git("merge-base", ours, theirs, check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def merge_commits(
    repo: GitRepo,
    ours: str,
    theirs: str,
    message: str,
    taken_versions: Mapping[str, Iterable[int]] | None = None,
) -> MergeOutcome:
    """Merge commit ``theirs`` into ``ours``: nothing when it is already contained, a
    fast-forward when ``ours`` is behind, else a merge commit with parents (ours, theirs).
    The commit is written but no ref moves: the caller swaps its ref."""
    if ours == theirs:
        return MergeOutcome("up-to-date", ours)
    base = merge_base(repo, ours, theirs)
    if base == theirs:
        return MergeOutcome("up-to-date", ours)
    if base == ours:
        return MergeOutcome("fast-forward", theirs)
    later_is_theirs = _commit_order(repo, theirs) > _commit_order(repo, ours)
    trees = [repo.commit_tree_info(c)[0] if c else None for c in (base, ours, theirs)]
    with repo.collected_objects() as objects:  # one pack for the merge, not loose objects
        result = merge_trees(repo, trees[0], trees[1], trees[2], later_is_theirs, taken_versions)
        body = message.rstrip("\n") + "\n"
        if result.renumbered:
            body += "\n" + "".join(f"Renumbered: {r.describe()}\n" for r in result.renumbered)
        commit = repo.write_commit(result.tree, (ours, theirs), body)
        objects.write()
    return MergeOutcome("merged", commit, result.renumbered, result.reports)
