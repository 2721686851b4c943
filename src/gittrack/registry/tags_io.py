"""Reading and writing the registry's git tags.

All tags are read with one ``git for-each-ref refs/tags`` call. A tag is created as an
annotated tag object followed by a ref update that succeeds only if the tag does not exist
yet, so two writers racing for one name cannot both win: the loser gets ``ConflictError`` and
picks the next number or counter. Signed tags, which need the user's signing setup, are made
with ``git tag -s`` and fail the same way when the name is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from gittrack.errors import ConflictError, RepositoryError
from gittrack.registry.state import TagRecord
from gittrack.registry.tag_names import (
    NAMESPACE_SEPARATOR,
    NAMESPACE_SEPARATOR_IN_TAG,
    validate_model_name,
)
from gittrack.store.git import GitRepo

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


class TagStore:
    """The tags of one repository."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo

    def read(self, model: str | None = None) -> TagListing:
        """All tags (or only the registry tags of ``model``), with one ``git for-each-ref``."""
        patterns = ["refs/tags"]
        if model is not None:
            in_tag = validate_model_name(model).replace(
                NAMESPACE_SEPARATOR, NAMESPACE_SEPARATOR_IN_TAG
            )
            patterns = [f"refs/tags/{in_tag}@*", f"refs/tags/{in_tag}#*"]
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
