"""Push, pull and sync of the tracking branch, registry tags and notes with a git remote.

``pull`` fetches the remote's branch into ``refs/remotes/<remote>/<branch>`` (as git does) and
its tags and notes into a private namespace (``refs/gittrack/remotes/<remote>/``), so a tag
of the same name on both sides is never clobbered by the fetch. It then merges: the branch on
trees (``merge``), the registry tags (a local version whose number the remote already took
moves to the merged number with its labels; the old local tags go), and the notes with git's
``cat_sort_uniq``. ``push`` pulls first, then pushes the branch (never forced), the registry tags
the remote lacks and the notes; when the remote moved in between, it pulls and tries again.

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
from gittrack.registry.tag_names import (
    ParsedTag,
    TagKind,
    parse_tag,
    stage_tag,
    unassignment_tag,
    version_tag,
)
from gittrack.store.git import GitRepo, RefMovedError
from gittrack.tracking.repository import TrackingRepository, open_repository

Target = TrackingRepository | str | os.PathLike[str]

NOTES_REF = "refs/notes/gittrack"
PUSH_ATTEMPTS = 30
_RETRYABLE_PUSH = ("fetch first", "non-fast-forward", "stale info", "already exists", "atomic")
_AUTH_FAILURE = re.compile(
    r"authentication failed|permission denied|could not read username|access denied"
    r"|\b40[13]\b"
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
        out = list(self.messages)
        out += [r.describe() for r in self.renumbered]
        return out


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
    if any(s in lower for s in ("could not resolve", "connection refused", "unable to connect", "network is unreachable", "timed out", "could not read from remote", "does not appear to be a git repository", "unable to access", "connection reset")):  # fmt: skip
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


# --------------------------------------------------------------------------- pull
def _tracking(target: Target) -> TrackingRepository:
    """A tracking repository from itself or a path (hooks pass the repository's path)."""
    return target if isinstance(target, TrackingRepository) else open_repository(str(target))


def pull(target: Target, remote: str | None = None) -> SyncReport:
    """Fetch the remote's tracking branch, registry tags and notes and merge them locally.

    :param target: the tracking repository, or a path inside it.
    :param remote: a configured git remote (default ``origin``, or the only one).
    :raises NotFoundError: no such remote. :raises RepositoryError: the remote cannot be
        reached. :raises PolicyError: authentication was refused.
    """
    tracking = _tracking(target)
    repo = tracking.repo
    remote = resolve_remote(repo, remote)
    fetched = _fetch(repo, remote, tracking.branch_name)
    report = SyncReport(remote)
    _merge_into_local(tracking, remote, fetched, report)
    _merge_notes(repo, remote, fetched.notes)
    return report


def _merge_into_local(
    tracking: TrackingRepository, remote: str, fetched: _Fetched, report: SyncReport
) -> None:
    repo, branch = tracking.repo, tracking.branch
    local_tags = _tag_objects(repo, "refs/tags/")
    if fetched.branch is not None:
        taken = _taken_versions({**local_tags, **fetched.tags})
        for _attempt in range(branch.MAX_ATTEMPTS):
            local = branch.tip()
            if local is None:
                outcome = MergeOutcome("fast-forward", fetched.branch)
            else:
                outcome = merge_commits(
                    repo, local, fetched.branch,
                    f"Merge {remote}/{tracking.branch_name} into {tracking.branch_name}", taken,
                )  # fmt: skip
            if outcome.tip == local:
                break
            try:
                repo.update_ref(branch.ref, outcome.tip, local, f"gittrack: pull {remote}")
                break
            except (RefMovedError, ConflictError):
                time.sleep(random.uniform(0.001, 0.02))
                continue
        else:
            raise RepositoryError(f"{branch.ref} kept moving while merging {remote}: try again")
        report.merge = outcome
        report.renumbered = outcome.renumbered
        report.messages += outcome.reports
        if outcome.kind != "up-to-date":
            report.messages.append(f"{outcome.kind} {branch.ref} with {remote}")
        _move_renumbered_tags(repo, outcome, local_tags, fetched.tags)
    report.tags_fetched = _adopt_remote_tags(repo, remote, fetched.tags, report)


def _tag_objects(repo: GitRepo, prefix: str) -> dict[str, str]:
    """Registry tags under ``prefix``: name -> tag object id."""
    out = repo.git_text("for-each-ref", "--format=%(refname) %(objectname)", prefix)
    tags = {}
    for line in out.splitlines():
        ref, _, sha = line.partition(" ")
        name = ref[len(prefix) :]
        if parse_tag(name) is not None:
            tags[name] = sha
    return tags


def _taken_versions(tags: dict[str, str]) -> dict[str, set[int]]:
    taken: dict[str, set[int]] = {}
    for name in tags:
        parsed = parse_tag(name)
        if parsed is not None and parsed.version_number is not None:
            taken.setdefault(parsed.model, set()).add(parsed.version_number)
    return taken


def _move_renumbered_tags(
    repo: GitRepo, outcome: MergeOutcome, local: dict[str, str], remote: dict[str, str]
) -> None:
    """Re-create the tags of each renumbered local version on the merge commit, under the new
    number and fresh counters, with their tagger and message; the clashing local tags go."""
    names = set(local) | set(remote)
    for moved in outcome.renumbered:
        old_tag = version_tag(moved.model, moved.old)
        if old_tag not in local:
            continue
        registered_on = _peeled(repo, local[old_tag])
        for name, sha in sorted(local.items(), key=lambda item: _counter_order(item[0])):
            parsed = parse_tag(name)
            if parsed is None or parsed.model != moved.model:
                continue
            if _peeled(repo, sha) != registered_on:
                continue
            new_name = _renamed(parsed, moved.new, names)
            if new_name is None:
                continue
            names.add(new_name)
            _copy_tag(repo, sha, new_name, outcome.tip)
            if name not in remote:
                repo.git("update-ref", "-d", f"refs/tags/{name}", sha)


def _counter_order(name: str) -> tuple[int, str]:
    parsed = parse_tag(name)
    return (parsed.counter or 0) if parsed else 0, name


def _renamed(parsed: ParsedTag, number: int, taken: set[str]) -> str | None:
    """The name a tag of a renumbered version takes (None: a tag that does not move)."""
    if parsed.kind is TagKind.REGISTRATION:
        return version_tag(parsed.model, number)
    if parsed.kind in (TagKind.ASSIGNMENT, TagKind.UNASSIGNMENT):
        counter = 1 + max(
            (p.counter or 0 for p in map(parse_tag, taken) if p and p.model == parsed.model),
            default=0,
        )
        make = stage_tag if parsed.kind is TagKind.ASSIGNMENT else unassignment_tag
        return make(parsed.model, parsed.label, counter)
    if parsed.kind is TagKind.DEREGISTRATION:
        return version_tag(parsed.model, number) + "!"
    return None


def _peeled(repo: GitRepo, tag_object: str) -> str:
    kind, body = repo.read_object(tag_object)
    if kind != "tag":
        return tag_object
    return body.split(b"\n", 1)[0].split(b" ", 1)[1].decode()


def _copy_tag(repo: GitRepo, source: str, name: str, commit: str) -> None:
    """A tag object like ``source`` (same tagger, date and message) named ``name`` on
    ``commit``; a signature, which would no longer match, is dropped."""
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
    repo.update_ref(f"refs/tags/{name}", sha, None, f"gittrack: renumbered tag {name}")


def _adopt_remote_tags(
    repo: GitRepo, remote: str, remote_tags: dict[str, str], report: SyncReport
) -> int:
    """Give every remote registry tag its local ref; the remote's wins a name both have."""
    local = _tag_objects(repo, "refs/tags/")
    adopted = 0
    for name, sha in sorted(remote_tags.items()):
        current = local.get(name)
        if current == sha:
            continue
        try:
            repo.update_ref(f"refs/tags/{name}", sha, current, f"gittrack: tag from {remote}")
        except ConflictError:
            report.messages.append(f"tag {name} is being changed by another process; kept it")
            continue
        adopted += 1
    return adopted


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


def _push_specs(tracking: TrackingRepository, fetched: _Fetched) -> list[str]:
    repo, ref = tracking.repo, tracking.branch.ref
    specs = []
    tip = repo.read_ref(ref)
    if tip is not None and tip != fetched.branch:
        specs.append(f"{ref}:{ref}")
    for name, sha in sorted(_tag_objects(repo, "refs/tags/").items()):
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
