"""Registry tags after a pull: the remote's adopted, the local ones that clash moved.

Registry tags are immutable and a tag name can hold one object, so a name both sides created
differently cannot simply be fetched (``git fetch --tags`` refuses, and forcing it loses the
local one). The remote's tag keeps the name: it may already be in other clones. The local tag
moves: a version renumbered by the merge (``merge.Renumbered``) takes its registration, labels
and deregistration to the new number and fresh counters on the merge commit (which holds the
new ``versions/N.yaml``); a label assignment whose counter alone clashed takes the next counter
on the same commit. Moved tags keep their tagger, date and message, so the history reads as it
happened; a signature, which would no longer match, is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from gittrack.errors import ConflictError
from gittrack.gitflow.merge import Renumbered
from gittrack.registry.tag_names import (
    ParsedTag,
    TagKind,
    deregistration_tag,
    parse_tag,
    stage_tag,
    unassignment_tag,
    version_tag,
)
from gittrack.store.git import GitRepo

_LABEL_KINDS = (TagKind.ASSIGNMENT, TagKind.UNASSIGNMENT)


def tag_objects(repo: GitRepo, prefix: str = "refs/tags/") -> dict[str, str]:
    """Registry tags under ``prefix``: name -> tag object id."""
    out = repo.git_text("for-each-ref", "--format=%(refname) %(objectname)", prefix)
    tags = {}
    for line in out.splitlines():
        ref, _, sha = line.partition(" ")
        name = ref[len(prefix) :]
        if parse_tag(name) is not None:
            tags[name] = sha
    return tags


def taken_versions(names: Iterable[str]) -> dict[str, set[int]]:
    """Version numbers each model's tags use (deleted versions keep theirs)."""
    taken: dict[str, set[int]] = {}
    for name in names:
        parsed = parse_tag(name)
        if parsed is not None and parsed.version_number is not None:
            taken.setdefault(parsed.model, set()).add(parsed.version_number)
    return taken


class TagMerge:
    """Merges the remote's registry tags into the local ones, after the branch merged."""

    def __init__(self, repo: GitRepo, local: dict[str, str], remote: dict[str, str]) -> None:
        self.repo = repo
        self.local = local
        self.remote = remote
        self.names = set(local) | set(remote)
        self.moved: set[str] = set()
        self.messages: list[str] = []

    def move_renumbered(self, renumbered: Iterable[Renumbered], merge_commit: str) -> None:
        """Each renumbered version's local tags, re-created under its new number."""
        for moved in renumbered:
            old = self.local.get(version_tag(moved.model, moved.old))
            if old is None:
                continue
            registered_on = self._peeled(old)
            for name, sha in self._of_model(moved.model):
                if self._peeled(sha) == registered_on:
                    self._move(name, sha, parse_tag(name), moved.new, merge_commit)

    def recount_clashing_labels(self) -> None:
        """A label tag whose name the remote used for another assignment takes the next
        counter, on the commit it was on."""
        for name, sha in sorted(self.local.items()):
            theirs = self.remote.get(name)
            parsed = parse_tag(name)
            if theirs is None or theirs == sha or name in self.moved:
                continue
            if parsed is None or parsed.kind not in _LABEL_KINDS:
                continue
            self._move(name, sha, parsed, None, self._peeled(sha))

    def adopt_remote(self, remote_name: str) -> int:
        """Give every remote registry tag its local ref (the remote's wins a shared name)."""
        current_tags = tag_objects(self.repo)
        adopted = 0
        for name, sha in sorted(self.remote.items()):
            current = current_tags.get(name)
            if current == sha:
                continue
            try:
                self.repo.update_ref(
                    f"refs/tags/{name}", sha, current, f"gittrack: tag from {remote_name}"
                )
            except ConflictError:
                self.messages.append(f"tag {name} is being changed by another process; kept it")
                continue
            adopted += 1
        return adopted

    def _of_model(self, model: str) -> list[tuple[str, str]]:
        tags = [(n, s) for n, s in self.local.items() if _model_of(n) == model]
        return sorted(tags, key=lambda item: (parse_tag(item[0]).counter or 0, item[0]))  # type: ignore[union-attr]

    def _move(
        self, name: str, sha: str, parsed: ParsedTag | None, number: int | None, commit: str
    ) -> None:
        new_name = self._new_name(parsed, number) if parsed is not None else None
        if new_name is None:
            return
        self.names.add(new_name)
        self.moved.add(name)
        _copy_tag(self.repo, sha, new_name, commit)
        self.messages.append(f"local registry tag {name} is now {new_name}")
        if name not in self.remote:
            self.repo.git("update-ref", "-d", f"refs/tags/{name}", sha)

    def _new_name(self, parsed: ParsedTag, number: int | None) -> str | None:
        if parsed.kind in _LABEL_KINDS:
            counter = 1 + max(
                (p.counter or 0 for p in map(parse_tag, self.names) if p and p.model == parsed.model),
                default=0,
            )  # fmt: skip
            make = stage_tag if parsed.kind is TagKind.ASSIGNMENT else unassignment_tag
            return make(parsed.model, parsed.label or "", counter)
        if number is None:
            return None
        if parsed.kind is TagKind.REGISTRATION:
            return version_tag(parsed.model, number)
        if parsed.kind is TagKind.DEREGISTRATION:
            return deregistration_tag(parsed.model, number)
        return None

    def _peeled(self, tag_object: str) -> str:
        kind, body = self.repo.read_object(tag_object)
        if kind != "tag":
            return tag_object
        return body.split(b"\n", 1)[0].split(b" ", 1)[1].decode()


def _model_of(name: str) -> str | None:
    parsed = parse_tag(name)
    return parsed.model if parsed is not None else None


def _copy_tag(repo: GitRepo, source: str, name: str, commit: str) -> None:
    """A tag object like ``source`` (same tagger, date and message) named ``name`` on
    ``commit``."""
    _kind, body = repo.read_object(source)
    header, _, message = body.partition(b"\n\n")
    tagger = next(
        (line for line in header.split(b"\n") if line.startswith(b"tagger ")), b""
    ).decode()
    text = message.decode(errors="replace")
    cut = text.find("-----BEGIN ")
    if cut >= 0:
        text = text[:cut]
    new_body = f"object {commit}\ntype commit\ntag {name}\n{tagger}\n\n{text}"
    sha = repo.write_object("tag", new_body.encode())
    repo.update_ref(f"refs/tags/{name}", sha, None, f"gittrack: moved registry tag {name}")
