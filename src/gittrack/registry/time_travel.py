"""``--at REV|DATE``: the moment the registry is shown as of.

A moment is a cutoff time (tags dated later did not exist yet) and the tracking-branch commit
that was the tip then (its metadata files were current). ``REV`` is anything git resolves to a
commit: a registry tag (the moment it was made), a tracking-branch commit, a code commit; a
``DATE`` is ISO-8601 (``2024-05-01``, ``2024-05-01T12:00:00Z``) or anything git's date parser
reads (``"2 days ago"``). A date without a zone is local time, as in git.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from gittrack.errors import InvalidInputError
from gittrack.registry.state import TagRecord
from gittrack.registry.tag_names import TagKind, parse_tag
from gittrack.registry.tags_io import TagListing
from gittrack.store import layout
from gittrack.store.branch import BranchSnapshot
from gittrack.store.git import GitRepo


@dataclass(frozen=True)
class Moment:
    """A cutoff time and the tracking-branch commit current then (None: before the branch).

    ``tag`` is set when the moment is a registry tag: tags of its model made in the same
    second count only up to that tag, in the registry's event order.
    """

    cutoff: datetime
    commit: str | None
    tag: str | None = None

    def tags_then(self, listing: TagListing) -> TagListing:
        """The tags that existed at this moment."""
        kept = listing.until(self.cutoff)
        marker = parse_tag(self.tag) if self.tag else None
        if marker is None:
            return kept
        limit = tag_order_key(marker.kind, marker.counter)
        second = int(self.cutoff.timestamp())

        def existed(record: TagRecord) -> bool:
            parsed = parse_tag(record.name)
            if parsed is None or parsed.model != marker.model or not record.annotated:
                return True
            if int(record.date.timestamp()) != second or record.name == self.tag:
                return True
            return tag_order_key(parsed.kind, parsed.counter) < limit

        records = tuple(r for r in kept.records if existed(r))
        return TagListing(records, kept.signed & {r.name for r in records})


_ENDING_KINDS = (TagKind.DEREGISTRATION, TagKind.DEPRECATION)
_PRIORITY = {
    TagKind.REGISTRATION: 0,
    TagKind.ASSIGNMENT: 1,
    TagKind.UNASSIGNMENT: 2,
    TagKind.DEREGISTRATION: 3,
    TagKind.DEPRECATION: 4,
}


def tag_order_key(kind: TagKind, counter: int | None) -> tuple[float, int]:
    """Where a tag sorts among its model's tags of the same second (``registry.state``'s
    rule: by counter; uncounted registrations and assignments first, endings last)."""
    if counter is not None:
        return (float(counter), _PRIORITY[kind])
    return (math.inf if kind in _ENDING_KINDS else 0.0, _PRIORITY[kind])


def resolve_moment(repo: GitRepo, branch_ref: str, at: str | datetime, tags: TagListing) -> Moment:
    """The moment ``at`` names (see the module docstring)."""
    revision = None
    tag = None
    if isinstance(at, datetime):
        cutoff = at
    else:
        cutoff, revision = _cutoff(repo, at.strip(), tags)
        if revision is None and any(r.name == at.strip() and r.annotated for r in tags.records):
            tag = at.strip()
    if cutoff.tzinfo is None:
        cutoff = cutoff.astimezone()
    if revision is not None and _on_branch(repo, revision, branch_ref):
        return Moment(cutoff, revision, tag)
    epoch = int(cutoff.timestamp())
    found = repo.git(
        "rev-list", "-1", "--first-parent", f"--before={epoch}", branch_ref, "--", check=False
    )
    commit = found.stdout.decode().strip() or None if found.returncode == 0 else None
    return Moment(cutoff, commit, tag)


def _cutoff(repo: GitRepo, text: str, tags: TagListing) -> tuple[datetime, str | None]:
    """The cutoff time, and the commit when ``text`` names one."""
    if not text:
        raise InvalidInputError("--at needs a revision or a date")
    for record in tags.records:
        if record.name == text and record.annotated:
            return record.date, None
    if not _looks_like_date(text):
        commit = repo.rev_parse(text)
        if commit is not None:
            stamp = repo.git_text("show", "-s", "--format=%ct", commit).strip()
            return datetime.fromtimestamp(int(stamp), tz=timezone.utc), commit
    parsed = _iso_date(text)
    if parsed is not None:
        return parsed, None
    return _git_date(repo, text), None


def _on_branch(repo: GitRepo, commit: str, branch_ref: str) -> bool:
    """A tracking-branch commit: it holds ``.tracking/`` and the branch reaches it.

    (Code commits are reachable too, as second parents of run commits, but hold no
    ``.tracking/``.)
    """
    if BranchSnapshot(repo, commit).entry(layout.TRACKING_ROOT) is None:
        return False
    return repo.git("merge-base", "--is-ancestor", commit, branch_ref, check=False).returncode == 0


def _looks_like_date(text: str) -> bool:
    return re.match(r"^\d{4}-\d{2}-\d{2}", text) is not None


def _iso_date(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.astimezone()


def _git_date(repo: GitRepo, text: str) -> datetime:
    """Git's own date parser (``2 weeks ago``, ``yesterday``); it reads garbage as 'now'."""
    output = repo.git_text("rev-parse", f"--since={text}").strip()
    match = re.fullmatch(r"--max-age=(\d+)", output)
    now = time.time()
    if match is None or (abs(int(match.group(1)) - now) < 2 and text.lower() != "now"):
        raise InvalidInputError(
            f"--at {text!r} is neither a git revision nor a date (e.g. 2024-05-01, "
            "2024-05-01T12:00:00Z, '2 days ago', a tag or a commit)"
        )
    return datetime.fromtimestamp(int(match.group(1)), tz=timezone.utc)
