"""Push, pull and sync of the tracking branch, registry tags and notes with a git remote.

``pull`` fetches the remote's branch into ``refs/remotes/<remote>/<branch>`` (as git does) and
its tags and notes into a private namespace (``refs/gittrack/remotes/<remote>/``), so a tag
of the same name on both sides is never clobbered by the fetch. It then merges: the branch on
trees (``merge``), the registry tags (a local version whose number the remote already took
moves to the merged number with its labels; the old local tags go), and the notes with git's
``cat_sort_uniq``. ``push`` pulls first, then pushes the branch (never forced), the registry tags
the remote lacks and the notes; when the remote moved in between, it pulls and tries again.
The Git LFS content of large artifacts goes first, through ``git lfs push`` (DESIGN §10).

Every failure is one ``GittrackError`` line naming the remote and what to do; local refs move
only by compare-and-swap to commits that contain what was there, so nothing is lost locally.
These functions are what the ``pre-push`` and ``post-merge`` hooks call.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field

from gittrack.errors import (
    ConflictError,
    GittrackError,
    NotFoundError,
    PolicyError,
    RepositoryError,
)
from gittrack.gitflow.merge import MergeOutcome, Renumbered, merge_commits
from gittrack.gitflow.registry_tags import TagMerge, tag_objects, taken_versions
from gittrack.registry.tag_names import parse_tag
from gittrack.store import lfs
from gittrack.store.git import GitRepo
from gittrack.tracking.repository import TrackingRepository, open_repository

Target = TrackingRepository | str | os.PathLike[str]

NOTES_REF = "refs/notes/gittrack"
PUSH_ATTEMPTS = 30
_RETRYABLE_PUSH = ("fetch first", "non-fast-forward", "stale info", "already exists", "atomic")
_AUTH_FAILURE = re.compile(
    r"authentication failed|permission denied|could not read username|access denied"
    r"|\b40[13]\b"
)
_UNREACHABLE = (
    "could not resolve",
    "connection refused",
    "unable to connect",
    "network is unreachable",
    "timed out",
    "could not read from remote",
    "does not appear to be a git repository",
    "unable to access",
    "connection reset",
)
_RETRYABLE_REMOTE = ("failed to lock", "cannot lock", "failed to update ref", "incorrect old value")


@dataclass
class SyncReport:
    """What a pull or push did, in words a user can read."""

    remote: str
    merge: MergeOutcome | None = None
    renumbered: list[Renumbered] = field(default_factory=list)
    tags_fetched: int = 0
    pushed: bool = False
    attempts: int = 0
    messages: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What to tell the user, each thing once (a push that retried merged again)."""
        return list(dict.fromkeys([*self.messages, *(r.describe() for r in self.renumbered)]))


@dataclass(frozen=True)
class _Fetched:
    branch: str | None
    tags: dict[str, str]  # registry tag name -> tag object id
    notes: str | None


# --------------------------------------------------------------------------- remotes
def resolve_remote(repo: GitRepo, remote: str | None) -> str:
    """The remote to use: the one named, else ``origin``, else the only one configured."""
    import git as gitpython  # GitPython reads the remotes from the config; imported on use

    names = [r.name for r in gitpython.Repo(repo.git_dir).remotes]
    if remote is not None:
        if remote not in names:
            known = ", ".join(names) or "none configured"
            raise NotFoundError(
                f"remote {remote!r} is not configured in {repo.path} (remotes: {known}); "
                f"add it with `git remote add {remote} URL`"
            )
        return remote
    if "origin" in names or len(names) == 1:
        return "origin" if "origin" in names else names[0]
    if not names:
        raise NotFoundError(
            f"{repo.path} has no git remote to share runs with: add one with "
            "`git remote add origin URL`"
        )
    raise NotFoundError(
        f"{repo.path} has several remotes ({', '.join(names)}) and none is 'origin': "
        "name the one to use"
    )


def _remote_error(remote: str, action: str, stderr: str) -> GittrackError:
    """One line that says why talking to the remote failed; local data is untouched."""
    text = " ".join(stderr.split())
    lower = text.lower()
    kept = "nothing was changed locally"
    if _AUTH_FAILURE.search(lower):
        return PolicyError(
            f"{action} {remote!r} failed: authentication was refused ({text[:200]}); "
            f"check your credentials for the remote; {kept}"
        )
    if any(s in lower for s in _UNREACHABLE):
        return RepositoryError(
            f"{action} {remote!r} failed: the remote cannot be reached ({text[:200]}); "
            f"check the network and the remote's URL; {kept}"
        )
    return RepositoryError(f"{action} {remote!r} failed: {text[:300]}; {kept}")


def _ls_remote(repo: GitRepo, remote: str, branch: str) -> dict[str, str]:
    proc = repo.git(
        "ls-remote", remote, f"refs/heads/{branch}", NOTES_REF, "refs/tags/*", check=False
    )
    if proc.returncode != 0:
        raise _remote_error(remote, "reading", proc.stderr.decode(errors="replace"))
    refs = {}
    for line in proc.stdout.decode().splitlines():
        sha, _, ref = line.partition("\t")
        refs[ref] = sha
    return refs


def _fetch(repo: GitRepo, remote: str, branch: str) -> _Fetched:
    """Fetch the branch, the registry tags and the notes the remote has."""
    advertised = _ls_remote(repo, remote, branch)
    private = f"refs/gittrack/remotes/{remote}"
    specs = []
    if f"refs/heads/{branch}" in advertised:
        specs.append(f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    if NOTES_REF in advertised:
        specs.append(f"+{NOTES_REF}:{private}/notes")
    tags = {
        ref[len("refs/tags/") :]: sha
        for ref, sha in advertised.items()
        if ref.startswith("refs/tags/") and not ref.endswith("^{}")
        and parse_tag(ref[len("refs/tags/") :]) is not None
    }  # fmt: skip
    if tags:
        specs.append(f"+refs/tags/*:{private}/tags/*")
    if specs:
        proc = repo.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *specs, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise _remote_error(remote, "fetching from", proc.stderr.decode(errors="replace"))
    return _Fetched(
        advertised.get(f"refs/heads/{branch}"),
        tags,
        advertised.get(NOTES_REF),
    )


def _already_fetched(repo: GitRepo, remote: str, branch: str) -> _Fetched:
    """What earlier fetches left: the remote-tracking branch, and the tags and notes the
    last ``pull`` or ``push`` fetched into gittrack's namespace."""
    private = f"refs/gittrack/remotes/{remote}"
    return _Fetched(
        repo.read_ref(f"refs/remotes/{remote}/{branch}"),
        tag_objects(repo, f"{private}/tags/"),
        repo.read_ref(f"{private}/notes"),
    )


# --------------------------------------------------------------------------- pull
def _tracking(target: Target) -> TrackingRepository:
    """A tracking repository from itself or a path (hooks pass the repository's path)."""
    return target if isinstance(target, TrackingRepository) else open_repository(str(target))


def pull(target: Target, remote: str | None = None, *, fetch: bool = True) -> SyncReport:
    """Fetch the remote's tracking branch, registry tags and notes and merge them locally.

    :param target: the tracking repository, or a path inside it.
    :param remote: a configured git remote (default ``origin``, or the only one).
    :param fetch: False merges what was already fetched (``refs/remotes/<remote>/<branch>``,
        as a plain ``git fetch`` or ``git pull`` leaves it) without reaching the remote: what
        the post-merge hook wants after the user's ``git pull``.
    :raises NotFoundError: no such remote. :raises RepositoryError: the remote cannot be
        reached. :raises PolicyError: authentication was refused.
    """
    tracking = _tracking(target)
    repo = tracking.repo
    remote = resolve_remote(repo, remote)
    if fetch:
        fetched = _fetch(repo, remote, tracking.branch_name)
    else:
        fetched = _already_fetched(repo, remote, tracking.branch_name)
    report = SyncReport(remote)
    _merge_into_local(tracking, remote, fetched, report)
    _merge_notes(repo, remote, fetched.notes)
    return report


def _merge_into_local(
    tracking: TrackingRepository, remote: str, fetched: _Fetched, report: SyncReport
) -> None:
    """Merge the fetched branch into the local one, then the registry tags."""
    tags = TagMerge(tracking.repo, tag_objects(tracking.repo), fetched.tags)
    if fetched.branch is not None:
        outcome = _merge_branch(tracking, remote, fetched.branch, tags.names)
        report.merge = outcome
        report.renumbered += outcome.renumbered  # a push may merge more than once
        report.messages += outcome.reports
        if outcome.kind != "up-to-date":
            report.messages.append(f"{outcome.kind} {tracking.branch.ref} with {remote}")
        tags.move_renumbered(outcome.renumbered, outcome.tip)
    tags.recount_clashing_labels()
    report.tags_fetched = tags.adopt_remote(remote)
    report.messages += tags.messages


def _merge_branch(
    tracking: TrackingRepository, remote: str, theirs: str, tag_names: set[str]
) -> MergeOutcome:
    """Merge ``theirs`` and swap the local ref; rebuilt when a local run lands meanwhile."""
    repo, branch = tracking.repo, tracking.branch
    message = f"Merge {remote}/{tracking.branch_name} into {tracking.branch_name}"
    taken = taken_versions(tag_names)
    for _attempt in range(branch.MAX_ATTEMPTS):
        local = branch.tip()
        if local is None:
            outcome = MergeOutcome("fast-forward", theirs)
        else:
            outcome = merge_commits(repo, local, theirs, message, taken)
        if outcome.tip == local:
            return outcome
        try:
            repo.update_ref(branch.ref, outcome.tip, local, f"gittrack: pull {remote}")
            return outcome
        except ConflictError:  # RefMovedError included
            time.sleep(random.uniform(0.001, 0.02))
    raise RepositoryError(f"{branch.ref} kept moving while merging {remote}: try again")


def _merge_notes(repo: GitRepo, remote: str, advertised: str | None) -> None:
    """Merge the remote's notes with git's ``cat_sort_uniq`` (union of lines)."""
    if advertised is None:
        return
    theirs = f"refs/gittrack/remotes/{remote}/notes"
    local = repo.read_ref(NOTES_REF)
    if local is None:
        repo.update_ref(NOTES_REF, repo.read_ref(theirs) or advertised, None, "gittrack: notes")
        return
    repo.git("notes", "--ref=gittrack", "merge", "--quiet", "-s", "cat_sort_uniq", theirs)


# --------------------------------------------------------------------------- push
def push(target: Target, remote: str | None = None) -> SyncReport:
    """Share the tracking branch, registry tags and notes: pull, push, and again if the remote
    moved meanwhile (never a forced push: the remote's runs are merged, not replaced).

    :param target: the tracking repository, or a path inside it.
    :param remote: a configured git remote (default ``origin``, or the only one).
    :raises PolicyError: the remote refused the push (protected branch, server hook) or the
        credentials. :raises RepositoryError: the remote cannot be reached.
        :raises ConflictError: the remote kept moving; nothing local is lost in any case.
    """
    tracking = _tracking(target)
    repo = tracking.repo
    remote = resolve_remote(repo, remote)
    report = SyncReport(remote)
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        report.attempts = attempt
        fetched = _fetch(repo, remote, tracking.branch_name)
        _merge_into_local(tracking, remote, fetched, report)
        _merge_notes(repo, remote, fetched.notes)
        specs = _push_specs(tracking, fetched)
        if not specs:
            return report
        if f"{tracking.branch.ref}:{tracking.branch.ref}" in specs:
            _push_lfs_objects(tracking, remote, report)
        # --no-verify: this push runs inside the user's own `git push` when called by the
        # pre-push hook, which must not call itself again.
        proc = repo.git(
            "push", "--porcelain", "--atomic", "--no-verify", remote, *specs, check=False
        )
        if proc.returncode == 0:
            report.pushed = True
            return report
        output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if not _retryable(output):
            raise _push_error(remote, output)
        time.sleep(random.uniform(0.01, 0.05 * min(attempt, 10)))
    raise ConflictError(
        f"pushing to {remote!r} failed {PUSH_ATTEMPTS} times: the remote kept moving; "
        "your runs are kept locally: run `gittrack push` again"
    )


def _push_lfs_objects(tracking: TrackingRepository, remote: str, report: SyncReport) -> None:
    """Push the LFS content of the branch before the pointers that name it (as git-lfs's
    own pre-push hook does), when the repository has LFS objects. Without git-lfs, or when
    the remote takes no LFS content, the runs are still pushed (one large file is never a
    reason to share no run) and the user is told how to send the content."""
    repo = tracking.repo
    if not lfs.has_objects(repo.common_dir):
        return
    push_command = f"git lfs push {remote} {tracking.branch_name}"
    if repo.git("lfs", "version", check=False).returncode != 0:
        report.messages.append(
            f"large artifacts are stored with Git LFS in {repo.common_dir / 'lfs'} but "
            f"git-lfs is not installed, so their content was not pushed to {remote!r}: "
            f"install git-lfs, then run `{push_command}`"
        )
        return
    proc = repo.git("lfs", "push", remote, tracking.branch.ref, check=False)
    if proc.returncode != 0:  # e.g. a remote without an LFS server: the runs still go
        text = " ".join(proc.stderr.decode(errors="replace").split())[:300]
        report.messages.append(
            f"the Git LFS content of large artifacts could not be pushed to {remote!r} "
            f"({text}); it is kept locally: retry with `{push_command}`"
        )


def _push_specs(tracking: TrackingRepository, fetched: _Fetched) -> list[str]:
    repo, ref = tracking.repo, tracking.branch.ref
    specs = []
    tip = repo.read_ref(ref)
    if tip is not None and tip != fetched.branch:
        specs.append(f"{ref}:{ref}")
    for name, sha in sorted(tag_objects(repo).items()):
        if fetched.tags.get(name) != sha:
            specs.append(f"refs/tags/{name}:refs/tags/{name}")
    notes = repo.read_ref(NOTES_REF)
    if notes is not None and notes != fetched.notes:
        specs.append(f"{NOTES_REF}:{NOTES_REF}")
    return specs


def _retryable(output: str) -> bool:
    rejected = [line for line in output.splitlines() if line.startswith("!")]
    if not rejected:
        return False
    lower = [line.lower() for line in rejected]
    return all(
        any(s in line for s in _RETRYABLE_PUSH)
        or ("remote rejected" in line and any(s in line for s in _RETRYABLE_REMOTE))
        for line in lower
    )


def _push_error(remote: str, output: str) -> GittrackError:
    for line in output.splitlines():
        if line.startswith("!") and "remote rejected" in line:
            ref = line.split("\t")[1].split(":")[-1] if "\t" in line else "?"
            reason = line.rsplit("(", 1)[-1].rstrip(")") if "(" in line else line
            return PolicyError(
                f"the remote {remote!r} refused {ref} ({reason}), e.g. a protected branch or "
                "a server hook; your runs are kept locally"
            )
    return _remote_error(remote, "pushing to", output)


def sync(target: Target, remote: str | None = None) -> SyncReport:
    """Pull then push: afterwards the local and the remote branch are the same."""
    return push(target, remote)
