"""Per-commit summaries in ``refs/notes/gittrack`` (DESIGN §2, §5, §10).

A note on a code commit lists the runs made on it, one line per run, sorted by run id, so that
``git log --notes=gittrack`` shows them next to the commit. One line per run (no header) is what
makes git's ``cat_sort_uniq`` merge strategy right for these notes (``pull`` merges them with
``git notes merge -s cat_sort_uniq``): merging two clones' notes is the sorted union of their
lines, and the same runs give the same note in every clone.

Notes are written in process, like the tracking branch: blobs, the notes tree along the changed
paths, a commit whose parent is the previous notes commit, and a compare-and-swap of the ref.
Git lays notes out flat (``<sha>``) or fanned out (``ab/cdef…``) depending on their number, and
reads both; an existing note is replaced at the path where it already is, a new one is written
flat.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gittrack.errors import ConflictError, RepositoryError
from gittrack.store.branch import Blob, Change, apply_changes
from gittrack.store.codecs import format_number
from gittrack.store.git import GitRepo

NOTES_REF = "refs/notes/gittrack"
MAX_METRICS = 8
_ATTEMPTS = 50


@dataclass(frozen=True)
class RunSummary:
    """What a note says about one run."""

    run_id: str
    experiment_id: str
    run_name: str
    status: str
    metrics: Mapping[str, float]
    start_time: int = 0  # milliseconds; orders a commit's runs, not part of the note
    parent_run_id: str | None = None  # top-level runs stand for a commit in diff

    def line(self) -> str:
        """``run <id> <status> <experiment>/<name> key=value …`` with the first metrics by key."""
        shown = sorted(self.metrics.items())[:MAX_METRICS]
        values = " ".join(f"{key}={format_number(value)}" for key, value in shown)
        name = " ".join(self.run_name.split())  # one line, whatever the name holds
        return f"run {self.run_id} {self.status} {self.experiment_id}/{name} {values}".rstrip()


def note_text(runs: Iterable[RunSummary]) -> str:
    """The note of a commit that has these runs ("" when there are none)."""
    lines = sorted({run.line() for run in runs})
    return "".join(f"{line}\n" for line in lines)


def _note_paths(repo: GitRepo, tree: str, prefix: str = "") -> dict[str, str]:
    """annotated object id -> path of its note, through any fanout."""
    found: dict[str, str] = {}
    width = len(repo.null_sha)
    for entry in repo.read_tree(tree):
        name = prefix + entry.name
        if entry.is_tree and len(name) < width:
            for sha, path in _note_paths(repo, entry.sha, name).items():
                found[sha] = f"{entry.name}/{path}"
        elif not entry.is_tree and len(name) == width:
            found[name] = entry.name
    return found


class Notes:
    """``refs/notes/gittrack`` of one repository."""

    def __init__(self, repo: GitRepo, ref: str = NOTES_REF) -> None:
        self.repo = repo
        self.ref = ref

    def tip(self) -> str | None:
        return self.repo.read_ref(self.ref)

    def read_all(self, tip: str | None = None) -> dict[str, str]:
        """Every note: annotated commit -> text."""
        tip = tip or self.tip()
        if tip is None:
            return {}
        tree = self.repo.commit_tree_info(tip)[0]
        paths = _note_paths(self.repo, tree)
        shas = sorted(paths)
        blobs = [self._blob_at(tree, paths[sha]) for sha in shas]
        return {
            sha: body.decode(errors="replace")
            for sha, (_kind, body) in zip(shas, self.repo.read_objects(blobs))
        }

    def _blob_at(self, tree: str, path: str, missing_ok: bool = False) -> str | None:
        current: str | None = tree
        parts = path.split("/")
        for index, part in enumerate(parts):
            entry = self.repo.tree_entry(current, part) if current else None
            if entry is None or entry.is_tree != (index < len(parts) - 1):
                if missing_ok:
                    return None
                raise RepositoryError(f"note {path} is missing from {self.ref}")
            current = entry.sha
        return current

    def write(
        self,
        texts: Mapping[str, str],
        message: str = "Notes added by gittrack",
        attempts: int = _ATTEMPTS,
    ) -> bool:
        """Set the notes of the given commits ("" removes a note); one notes commit for all.

        Returns False when every note already said that (nothing is written then). Another
        writer moving or holding the ref is waited for ``attempts`` times, then ConflictError
        is raised and nothing is changed."""
        for attempt in range(attempts):
            tip = self.tip()
            tree = self.repo.commit_tree_info(tip)[0] if tip else None
            changes = self._changes(tree, texts)
            if not changes:
                return False
            new_tree = apply_changes(self.repo, tree, changes) or self.repo.write_tree([])
            if new_tree == tree:
                return False
            commit = self.repo.write_commit(new_tree, [tip] if tip else [], f"{message}\n")
            try:
                self.repo.update_ref(self.ref, commit, tip, f"gittrack: {message}")
                return True
            except ConflictError:
                time.sleep(random.uniform(0.001, 0.005 * (attempt + 1)))
        raise ConflictError(f"{self.ref} is busy (moving or locked): gave up writing notes")

    def _changes(self, tree: str | None, texts: Mapping[str, str]) -> dict[tuple[str, ...], Change]:
        existing = _note_paths(self.repo, tree) if tree else {}
        changes: dict[tuple[str, ...], Change] = {}
        for commit, text in texts.items():
            path = existing.get(commit)
            if path is None and not text:
                continue
            parts = tuple((path or commit).split("/"))
            if not text:
                changes[parts] = None
            elif path is None or self._text_at(tree, path) != text:
                changes[parts] = Blob(text.encode())
        return changes

    def _text_at(self, tree: str | None, path: str) -> str | None:
        sha = self._blob_at(tree, path, missing_ok=True) if tree else None
        return None if sha is None else self.repo.read_blob(sha).decode(errors="replace")
