"""Reading and writing the registry's git tags.

All tags are read with one ``git for-each-ref refs/tags`` call, and kept in
``$GIT_DIR/gittrack/cache/registry-tags.json`` until a tag ref changes (derived data: deleting
the file loses nothing). A tag is created as an annotated tag object followed by a ref update
that succeeds only if the tag does not exist yet, so two writers racing for one name cannot
both win: the loser gets ``ConflictError`` and picks the next number or counter. Signed tags,
which need the user's signing setup, are made with ``git tag -s`` and fail the same way when
the name is taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gittrack.errors import ConflictError, RepositoryError
from gittrack.registry.state import TagRecord
from gittrack.registry.tag_names import (
    NAMESPACE_SEPARATOR,
    NAMESPACE_SEPARATOR_IN_TAG,
    parse_tag,
    validate_model_name,
)
from gittrack.store.files import replace_file
from gittrack.store.git import GitRepo

_CACHE_FORMAT = 1
_FIELD = "\x1f"
_RECORD = "\x1e"
_FORMAT = (
    "%1f".join(
        [
            "%(refname:strip=2)",
            "%(objecttype)",
            "%(objectname)",
            "%(*objectname)",
            "%(taggername)",
            "%(taggeremail:trim)",
            "%(taggerdate:unix)",
            "%(contents:signature)",
            "%(contents)",
        ]
    )
    + "%1e"
)


@dataclass(frozen=True)
class TagListing:
    """Every tag of the repository, and which annotated tags carry a signature."""

    records: tuple[TagRecord, ...]
    signed: frozenset[str]

    def until(self, cutoff: datetime) -> TagListing:
        """The tags that existed at ``cutoff`` (by tagger date; lightweight tags are kept)."""
        kept = tuple(r for r in self.records if not r.annotated or r.date <= cutoff)
        return TagListing(kept, self.signed & {r.name for r in kept})

    def names(self) -> list[str]:
        return [r.name for r in self.records]

    def of_model(self, model: str) -> TagListing:
        """Only the registry tags of ``model``."""
        kept = []
        for record in self.records:
            parsed = parse_tag(record.name)
            if parsed is not None and parsed.model == model:
                kept.append(record)
        return TagListing(tuple(kept), self.signed & {r.name for r in kept})


class TagStore:
    """The tags of one repository."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._memo: tuple[str, TagListing] | None = None

    def read(self, model: str | None = None) -> TagListing:
        """All tags (or only the registry tags of ``model``).

        From the tag cache when no tag ref changed since it was written, else with one
        ``git for-each-ref`` (all tags refresh the cache; one model's are read on their own).
        """
        stamp = self._refs_stamp()
        cached = self._cached(stamp)
        if cached is not None:
            return cached if model is None else cached.of_model(model)
        if model is not None:
            in_tag = validate_model_name(model).replace(
                NAMESPACE_SEPARATOR, NAMESPACE_SEPARATOR_IN_TAG
            )
            return self._for_each_ref(f"refs/tags/{in_tag}@*", f"refs/tags/{in_tag}#*")
        listing = self._for_each_ref("refs/tags")
        self._store(stamp, listing)
        return listing

    def _for_each_ref(self, *patterns: str) -> TagListing:
        output = self.repo.git("for-each-ref", f"--format={_FORMAT}", *patterns).stdout
        records: list[TagRecord] = []
        signed: set[str] = set()
        for chunk in output.decode("utf-8", errors="replace").split(_RECORD):
            chunk = chunk.lstrip("\n")
            if not chunk:
                continue
            record, has_signature = _parse_record(chunk)
            records.append(record)
            if has_signature:
                signed.add(record.name)
        return TagListing(tuple(records), frozenset(signed))

    # ------------------------------------------------------------------ cache
    @property
    def _cache_file(self) -> Path:
        return self.repo.gittrack_dir / "cache" / "registry-tags.json"

    def _refs_stamp(self) -> str | None:
        """A digest that changes whenever a tag ref is added, moved or removed, or refs are
        packed: the name, inode, size and mtime of every loose tag ref (git rewrites a ref by
        renaming a new file over it, so its inode changes) and of ``packed-refs``.
        Repositories with another ref storage are not cached.
        """
        common = self.repo.common_dir
        tags_dir = common / "refs" / "tags"
        if (common / "reftable").exists() or not tags_dir.is_dir():
            return None
        digest = hashlib.sha1()
        try:
            packed = os.stat(common / "packed-refs")
            digest.update(
                f"packed {packed.st_ino} {packed.st_size} {packed.st_mtime_ns}\n".encode()
            )
        except FileNotFoundError:
            digest.update(b"packed -\n")
        pending = [str(tags_dir)]
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                        continue
                    info = entry.stat(follow_symlinks=False)
                    line = f"{entry.path} {info.st_ino} {info.st_size} {info.st_mtime_ns}\n"
                    digest.update(line.encode(errors="surrogateescape"))
        return digest.hexdigest()

    def _cached(self, stamp: str | None) -> TagListing | None:
        if stamp is None:
            return None
        if self._memo is not None and self._memo[0] == stamp:
            return self._memo[1]
        try:
            document = json.loads(self._cache_file.read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if document.get("format") != _CACHE_FORMAT or document.get("stamp") != stamp:
            return None
        records = tuple(
            TagRecord(name, commit, who, email, date, message, annotated)
            for name, commit, who, email, date, message, annotated in document["records"]
        )
        listing = TagListing(records, frozenset(document["signed"]))
        self._memo = (stamp, listing)
        return listing

    def _store(self, stamp: str | None, listing: TagListing) -> None:
        if stamp is None:
            return
        self._memo = (stamp, listing)
        document = {
            "format": _CACHE_FORMAT,
            "stamp": stamp,
            "signed": sorted(listing.signed),
            "records": [
                [r.name, r.commit, r.tagger_name, r.tagger_email, r.date.timestamp(), r.message,
                 r.annotated]
                for r in listing.records
            ],
        }  # fmt: skip
        with contextlib.suppress(OSError):  # derived data: a full disk costs a re-read only
            replace_file(self._cache_file, json.dumps(document).encode())

    # ------------------------------------------------------------------ writing
    def create(
        self, name: str, commit: str, message: str, *, when: int, sign: bool = False
    ) -> TagRecord:
        """Create the annotated tag ``name`` on ``commit``; ``ConflictError`` if it exists."""
        if not message.endswith("\n"):
            message += "\n"
        if sign:
            self._create_signed(name, commit, message, when)
        else:
            ident = self.repo.identity()
            body = (
                f"object {commit}\ntype commit\ntag {name}\n"
                f"tagger {ident.signature(when)}\n\n{message}"
            )
            sha = self.repo.write_object("tag", body.encode())
            self.repo.update_ref(f"refs/tags/{name}", sha, None, f"gittrack: tag {name}")
        ident = self.repo.identity()
        return TagRecord(name, commit, ident.name, ident.email, when, message)

    def _create_signed(self, name: str, commit: str, message: str, when: int) -> None:
        try:
            self.repo.git(
                "tag",
                "-s",
                "--cleanup=verbatim",
                "-F",
                "-",
                name,
                commit,
                input=message.encode(),
                env={"GIT_COMMITTER_DATE": f"{when} +0000"},
            )
        except RepositoryError as exc:
            if "already exists" in exc.message:
                raise ConflictError(f"tag {name} already exists") from exc
            raise RepositoryError(
                f"cannot create the signed tag {name}: {exc.message}. The registry policy "
                "requires signed tags: configure signing (git config user.signingkey, and "
                "gpg.format ssh for an SSH key) in this repository"
            ) from exc


def _parse_record(chunk: str) -> tuple[TagRecord, bool]:
    name, kind, target, peeled, who, email, date, signature, contents = chunk.split(_FIELD, 8)
    if kind != "tag":
        return TagRecord(name, target, "", "", 0, annotated=False), False
    message = contents[: len(contents) - len(signature)] if signature else contents
    stamp = datetime.fromtimestamp(int(date or 0), tz=timezone.utc)
    return TagRecord(name, peeled or target, who, email, stamp, message), bool(signature)
