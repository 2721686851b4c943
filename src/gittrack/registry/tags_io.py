"""Reading and writing the registry's git tags, in process (DESIGN §6).

The tags are known from the tag refs (loose files under ``refs/tags`` and ``packed-refs``) and
the annotated tag objects they name, read by the store's object reader; between two reads
only the refs that changed are looked at again (``TagStore``), and each change to the tags
known is numbered (``TagJournal``), so that what is computed from the tags is brought up to
date with the tags added since. A tag is created as an
annotated tag object written by the store's object writer, then a ref update through the
store's ref writer (git's lock protocol) that succeeds only if the tag does not exist yet,
so two writers racing for one name cannot both win: the loser gets ``ConflictError`` and
picks the next number or counter. Signed tags, which need the user's signing setup, are made
with ``git tag -s`` and fail the same way when the name is taken. When many loose tag refs
pile up, ``git pack-refs`` moves them into ``packed-refs`` (as ``git gc`` would), which keeps
each read's directory scan short at any number of tags.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import os
import re
import stat
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from gittrack.errors import ConflictError, GittrackError, RepositoryError, warn_skipped
from gittrack.registry.state import TagChanges, TagPosition, TagRecord
from gittrack.registry.tag_names import (
    parse_tag,
    validate_model_name,
)
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.files import replace_file
from gittrack.store.git import GitRepo, reftable_message

_CACHE_FORMAT = 4
_SAVE_AFTER = 64  # tag refs read again before what is known is saved for the next process
_RACY_SECONDS = 2  # a ref file changed this recently may change again within its mtime tick
_TICK_NS = 20_000_000  # more than the coarse clock that stamps files (a jiffy: 4-10 ms)
_FULL_LOOK_NS = 1_000_000_000  # how often a changed tag directory's every file is stat'ed
LOOSE_TAGS_TO_PACK = 256  # loose tag refs above which a write packs them
JOURNAL_ENTRIES = 4096  # changes (one model's tags in one refresh) a store's journal keeps
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SIGNATURE_STARTS = (
    b"-----BEGIN PGP SIGNATURE-----",
    b"-----BEGIN PGP MESSAGE-----",
    b"-----BEGIN SSH SIGNATURE-----",
    b"-----BEGIN SIGNED MESSAGE-----",
)


@dataclass(frozen=True)
class TagListing:
    """Every tag of the repository, and which annotated tags carry a signature.

    A store's listing also says where it stands in the store's changes (``position``); a
    listing derived from it (``until``, ``of_model``) has none.
    """

    records: tuple[TagRecord, ...]
    signed: frozenset[str]
    position: TagPosition | None = field(default=None, compare=False, repr=False)

    def until(self, cutoff: datetime) -> TagListing:
        """The tags that existed at ``cutoff`` (by tagger date; lightweight tags are kept)."""
        kept = tuple(r for r in self.records if not r.annotated or r.date <= cutoff)
        return TagListing(kept, self.signed & {r.name for r in kept})

    def names(self) -> list[str]:
        """The name of every tag, in the listing's order."""
        return list(map(attrgetter("name"), self.records))

    def of_model(self, model: str) -> TagListing:
        """Only the registry tags of ``model``."""
        kept = []
        for record in self.records:
            parsed = parse_tag(record.name)
            if parsed is not None and parsed.model == model:
                kept.append(record)
        return TagListing(tuple(kept), self.signed & {r.name for r in kept})


_UNCHANGED = TagChanges((), ())


class TagJournal:
    """The numbered changes of one store's tags: for each change (a refresh that found tags
    moved, or a tag the store wrote), the tags of each model it added and removed (a changed
    tag is removed and added). A store's listing names the change it reflects
    (``TagPosition``), so whoever keeps something computed from one listing can bring it up
    to date with the changes up to a later one (``changes``) instead of comparing every tag.
    The last ``keep`` entries are kept; older ones are forgotten, and a question reaching
    back to them has no answer (the asker reads every tag then).
    """

    def __init__(self, keep: int = JOURNAL_ENTRIES) -> None:
        self.generation = 0  # the number of the last change
        self._lock = threading.Lock()  # a question may come from another thread than a change
        self._keep = keep
        self._entries: deque[tuple[int, str | None, tuple[TagRecord, ...], tuple[TagRecord, ...]]]
        self._entries = deque()
        self._forgotten = 0  # entries of this change and earlier may be forgotten

    def record(self, changes: Mapping[str | None, tuple[list[TagRecord], list[TagRecord]]]) -> None:
        """Number one change: the tags added and removed, by model (None: tags of no model)."""
        with self._lock:
            generation = self.generation + 1
            for model, (added, removed) in changes.items():
                self._entries.append((generation, model, tuple(added), tuple(removed)))
            while len(self._entries) > self._keep:
                self._forgotten = self._entries.popleft()[0]
            self.generation = generation

    def changes(self, model: str, since: int, until: int) -> TagChanges | None:
        """The tags of ``model`` added and removed after change ``since`` up to change
        ``until``. With ``since`` after ``until`` (a listing older than what the asker
        knows), empty when nothing of ``model`` changed in between; None when it did, or
        when the journal forgot some of those changes."""
        low, high = min(since, until), max(since, until)
        added: list[TagRecord] = []
        removed: list[TagRecord] = []
        with self._lock:
            if low < self._forgotten:
                return None
            for generation, owner, plus, minus in reversed(self._entries):
                if generation <= low:
                    break
                if owner == model and generation <= high:
                    added.extend(reversed(plus))
                    removed.extend(minus)
        if since > until:
            return _UNCHANGED if not added and not removed else None
        added.reverse()
        return TagChanges(tuple(added), tuple(removed))


class TagStore:
    """The tags of one repository, kept up to date from the tag refs that changed.

    The store remembers every tag it read (name, the object its ref holds, the record and
    whether it is signed) and, at each read, looks only at what moved: the loose tag refs
    (``_LooseScan``: nothing but the directories' times while no directory changed), and
    ``packed-refs`` when that file changed. A ref whose file is the same (same inode and
    modification time: git and gittrack replace a ref by renaming a new file over it, and
    a reused inode comes with a new time) is not read again; a tag object already seen is
    not parsed again. What it learnt is kept in
    ``$GIT_DIR/gittrack/cache/registry-tags.json`` (derived data) for the next process.

    The saved file may also carry a document derived from the tags (``derived``: the registry
    state, so that another process does not replay every tag); a new store hands it back once
    with the tags it was saved with (``take_saved``).

    One store may serve several threads: ``lock`` (reentrant) is held by each read and
    write, and by a caller that must see the tags and act on them as one step.
    """

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.lock = threading.RLock()
        self._loaded = False
        self._loose: dict[str, tuple[int, int]] = {}  # loose ref -> (inode, mtime) last read
        self._packed_source: dict[str, str] | None = None  # packed refs seen at that look
        self._packed: dict[str, str] = {}  # packed tag -> object
        self._tags: dict[str, _Tag] = {}  # every tag now
        self._by_model: dict[str, set[str]] = {}  # registry model -> its tag names
        self._listing: TagListing | None = None
        self._model_listings: dict[str, TagListing] = {}  # until a tag of the model changes
        self._ordered: dict[str, _ModelTags] = {}  # the tags of each model read, by name
        self.unsaved = 0  # tag refs read again since the last save
        # The owner's document derived from the tags, given which records are current; with
        # one, the owner saves (``save``), else every read that looked at many refs does.
        self.derived: Callable[[Callable[[TagRecord], bool]], Any] | None = None
        self._saved: tuple[Any, dict[str, TagRecord]] | None = None
        self.journal = TagJournal()
        self._unreadable: set[str] = set()  # tags known by name only (``_read_tags``)
        self._empty: BoundedCache[str, TagListing] = BoundedCache(256)  # models without tags
        # Tags added and removed, by model, since the journal's last change.
        self._pending: dict[str | None, tuple[list[TagRecord], list[TagRecord]]] = {}

    @property
    def known(self) -> int:
        """How many tags the store knows (as of its last read)."""
        return len(self._tags)

    def read(self, model: str | None = None, refresh: bool = True) -> TagListing:
        """All tags (or only the registry tags of ``model``), sorted by name.

        Args:
            model: only the registry tags of this model.
            refresh: False: the tags as the store last read them, with its own writes since,
                for a caller that read them moments ago in the same operation (the refs are
                not looked at; the store's first read looks at them anyway).

        Raises:
            InvalidInputError: ``model`` is not a valid model name.
        """
        if model is not None:
            validate_model_name(model)
        with self.lock:
            return self._read(model, refresh)

    def _read(self, model: str | None, refresh: bool = True) -> TagListing:
        if refresh or not self._loaded:  # the store's first read looks at the refs anyway
            self._refresh()
        if self.derived is None and self.unsaved >= _SAVE_AFTER:
            self.save()
        if model is None:
            if self._listing is None:
                self._listing = _listing_of(
                    map(self._tags.__getitem__, sorted(self._tags)),
                    TagPosition(self.journal, self.journal.generation),
                )
            return self._listing
        listing = self._model_listings.get(model)
        if listing is None and not self._by_model.get(model):
            # A model without tags (a name asked for, say): its empty listing is kept in a
            # bounded cache until the model gets a tag.
            listing = self._empty.get(model)
            if listing is None:
                position = TagPosition(self.journal, self.journal.generation, model)
                listing = TagListing((), frozenset(), position)
                self._empty.put(model, listing)
            return listing
        if listing is None:
            ordered = self._ordered.get(model)
            if ordered is None:
                names = self._by_model.get(model, ())
                ordered = self._ordered[model] = _ModelTags(
                    map(self._tags.__getitem__, sorted(names))
                )
            listing = self._model_listings[model] = TagListing(
                tuple(ordered.records),
                frozenset(ordered.signed),
                TagPosition(self.journal, self.journal.generation, model),
            )
        return listing

    # ------------------------------------------------------------------ refreshing
    @functools.cached_property
    def _loose_scan(self) -> _LooseScan:
        return _LooseScan(self._tags_dir)

    @functools.cached_property
    def _tags_dir(self) -> str:
        return f"{self.repo.common_dir}/refs/tags"

    def _refresh(self) -> None:
        """Bring the known tags up to date.

        Raises:
            RepositoryError: the refs are no longer files (converted to reftable since the
                repository was opened; ``GitRepo`` refuses such a repository).
        """
        if (self.repo.common_dir / "reftable").is_dir():
            raise RepositoryError(reftable_message(str(self.repo.common_dir)))
        if not self._loaded:
            self._load_saved()
        loose = self._loose_scan.scan()
        packed_source = self.repo.packed_ref_map()
        before = (self._loose, self._packed)
        changed: set[str] = set()
        if packed_source is not self._packed_source:
            packed = {
                ref[len("refs/tags/") :]: sha
                for ref, sha in packed_source.items()
                if ref.startswith("refs/tags/")
            }
            changed.update(n for n in packed.keys() ^ self._packed.keys())
            changed.update(
                n for n in packed.keys() & self._packed.keys() if packed[n] != self._packed[n]
            )
            self._packed, self._packed_source = packed, packed_source
        if loose is not self._loose:
            changed.update(n for n in loose.keys() ^ self._loose.keys())
            changed.update(
                n for n in loose.keys() & self._loose.keys() if loose[n] != self._loose[n]
            )
            # A file stamped within a clock tick of the previous look may have been replaced
            # since by one with the same inode and time: such files are read again. (At the
            # first look, the stamps are a saved file's, which vouches for none that recent.)
            if self._loose_scan.previous_look_ns:
                recent = self._loose_scan.previous_look_ns - _TICK_NS
                changed.update(n for n, (_, mtime) in loose.items() if mtime >= recent)
        self._loose = loose
        if changed:
            try:
                self._apply(changed)
            except BaseException:
                # Nothing of this look was taken: the next look compares the refs with what
                # is known again (and reads ``packed-refs`` again).
                self._loose, self._packed = before
                self._packed_source = None
                raise

    def _apply(self, changed: set[str]) -> None:
        """Re-read the tags whose refs changed (objects not seen before are parsed)."""
        shas: dict[str, str] = {}
        gone = []
        for name in changed:
            sha = None
            if name in self._loose:
                line = _loose_tag_ref(f"{self._tags_dir}/{name}")
                if line is None:  # gone since the scan: packed meanwhile, or deleted
                    sha = self._packed_now(name)
                else:
                    sha = self._object_of(line)
                    if sha is None:  # git reports it and lists no tag for it
                        warn_skipped(f"tag {name}: its ref file holds no object id (a broken ref)")
                        sha = _BROKEN
            sha = sha or self._packed.get(name)
            if sha is None:
                if name in self._tags:
                    gone.append(name)
            elif name not in self._tags or self._tags[name].sha != sha:
                shas[name] = sha
        if not shas and not gone:
            return  # refs read again that still hold what was known: the listing stands
        self.unsaved += len(shas) + len(gone)
        fresh, unreadable = self._read_tags(shas)
        try:
            for name in gone:
                self._forget(name)
            for name, tag in fresh.items():
                self._forget(name)
                self._remember(tag)
            self._unreadable |= unreadable
        finally:
            self._publish()

    def _object_of(self, line: str) -> str | None:
        """The object id a loose ref's first line names, as git reads it (trailing text
        after whitespace is allowed, either case of hex), or that of the ref a ``ref:``
        line names; None for anything else (a broken ref)."""
        if line.startswith("ref: "):
            return self.repo.read_ref(line[5:].strip())
        width = 64 if self.repo.object_format == "sha256" else 40
        if len(line) < width or (len(line) > width and not line[width].isspace()):
            return None
        sha = line[:width].lower()
        return sha if _is_object_id(sha) else None

    def _read_tags(self, shas: dict[str, str]) -> tuple[dict[str, _Tag], set[str]]:
        """The tags whose refs hold ``shas`` (name -> object), read from their objects, and
        the names of those that could not be read.

        A tag whose object is missing or unreadable (a damaged repository, a crafted date),
        or whose ref is broken (``_BROKEN``), is reported and kept as its name only, like a
        lightweight tag: it gives no registry event, and its number or counter is not given
        to a new tag. It is read again when its ref changes, and by the next process (it is
        not saved).
        """
        tags: dict[str, _Tag] = {}
        unreadable = {name for name, sha in shas.items() if sha == _BROKEN}
        for name in unreadable:
            tags[name] = _name_only(name, _BROKEN, "")
        order = sorted(name for name in shas if name not in unreadable)
        try:
            objects: list[tuple[str, bytes] | None] = list(
                self.repo.read_objects([shas[n] for n in order])
            )
        except (GittrackError, OSError, ValueError, zlib.error):
            objects = []  # one of them cannot be read: each is read alone
            for name in order:
                try:
                    objects.append(self.repo.read_objects([shas[name]])[0])
                except (GittrackError, OSError, ValueError, zlib.error) as exc:
                    warn_skipped(f"tag {name}: its object {shas[name]} cannot be read ({exc})")
                    objects.append(None)
        for name, found in zip(order, objects):
            if found is not None:
                try:
                    tags[name] = _tag_of(name, shas[name], *found)
                    continue
                except (GittrackError, OverflowError, OSError, ValueError) as exc:
                    warn_skipped(f"tag {name}: its tag object {shas[name]} is not readable ({exc})")
            unreadable.add(name)
            tags[name] = _name_only(name, shas[name], shas[name])
        return tags, unreadable

    def _packed_now(self, name: str) -> str | None:
        """The object of tag ``name`` in ``packed-refs`` as the file is now: its loose file
        went between the scan and the read, and ``git pack-refs`` writes ``packed-refs``
        before it removes the loose files it packed. The next read compares every packed
        entry again."""
        self._packed_source = None
        return self.repo.packed_ref_map().get(f"refs/tags/{name}")

    def _remember(self, tag: _Tag) -> None:
        self._tags[tag.record.name] = tag
        parsed = parse_tag(tag.record.name)
        model = None if parsed is None else parsed.model
        if model is not None:
            self._by_model.setdefault(model, set()).add(tag.record.name)
            self._model_listings.pop(model, None)
            self._empty.pop(model)
            if (ordered := self._ordered.get(model)) is not None:
                ordered.put(tag)
        self._pending.setdefault(model, ([], []))[0].append(tag.record)

    def _forget(self, name: str) -> None:
        tag = self._tags.pop(name, None)
        if tag is None:
            return
        self._unreadable.discard(name)
        parsed = parse_tag(name)
        model = None if parsed is None else parsed.model
        if model is not None:
            names = self._by_model.get(model, set())
            names.discard(name)
            self._model_listings.pop(model, None)
            if (ordered := self._ordered.get(model)) is not None:
                ordered.drop(name)
            if not names:  # the model's last tag: nothing is kept for it
                self._by_model.pop(model, None)
                self._ordered.pop(model, None)
        self._pending.setdefault(model, ([], []))[1].append(tag.record)

    def _learn(self, tag: _Tag) -> _Tag:
        """Take in a tag this store wrote, as one change."""
        self._forget(tag.record.name)
        self._remember(tag)
        self._publish()
        return tag

    def _publish(self) -> None:
        """Number the tags remembered and forgotten since the last change as one change
        (``journal``); the listings of every tag and of each model involved are made anew."""
        if self._pending:
            self._listing = None
            self.journal.record(self._pending)
            self._pending = {}

    # ------------------------------------------------------------------ saved state
    @property
    def _cache_file(self) -> Path:
        return self.repo.gittrack_dir / "cache" / "registry-tags.json"

    def take_saved(self) -> tuple[Any, dict[str, TagRecord]] | None:
        """Once, after the first read: the derived document a previous process saved and the
        tags (by name) as they were when it was saved; None when there was none."""
        with self.lock:
            saved, self._saved = self._saved, None
            return saved

    def _load_saved(self) -> None:
        """The tags a previous process saw. Their objects are trusted (a tag object never
        changes); a loose ref is read again unless its file is the one read then (same inode
        and modification time), a packed one when ``packed-refs`` holds another object.
        A file saved for another repository, in another format or damaged is ignored."""
        self._loaded = True
        try:
            document = json.loads(self._cache_file.read_bytes())
        except (OSError, ValueError):
            return
        if (
            not isinstance(document, dict)
            or document.get("format") != _CACHE_FORMAT
            or document.get("repository") != str(self.repo.common_dir)
        ):
            return
        try:
            for name, sha, commit, who, email, date, message, annotated, signed in document["tags"]:
                record = TagRecord(name, commit, who, email, date, message, annotated)
                self._remember(_Tag(sha, record, signed))
            loose = {n: (int(i), int(m)) for n, (i, m) in document["loose"].items()}
        except (TypeError, ValueError, KeyError, AttributeError, GittrackError):
            self._tags.clear()
            self._by_model.clear()
            self._model_listings.clear()
            self._ordered.clear()
            self._pending = {}
            return
        self._pending = {}  # what a new store starts from: no change yet
        # What the saved tags' refs held: refs that still hold them are not read again.
        self._loose = {n: stamp for n, stamp in loose.items() if n in self._tags}
        self._packed = {n: t.sha for n, t in self._tags.items() if n not in self._loose}
        if "derived" in document:
            self._saved = (document["derived"], {n: t.record for n, t in self._tags.items()})

    def save(self) -> None:
        """Write what is known for the next process (derived data: a failure to write, a
        full disk say, only costs that process the reading)."""
        with self.lock:
            self.unsaved = 0
            rows = [
                [t.record.name, t.sha, t.record.commit, t.record.tagger_name,
                 t.record.tagger_email, t.record.date.timestamp(), t.record.message,
                 t.record.annotated, t.signed]
                for t in self._tags.values()
                if t.record.name not in self._unreadable
            ]  # fmt: skip
            document: dict[str, Any] = {
                "format": _CACHE_FORMAT,
                "repository": str(self.repo.common_dir),
                "tags": rows,
                "loose": self._loose_stamps(),
            }
            if self.derived is not None:
                tags = self._tags
                document["derived"] = self.derived(
                    lambda r: (known := tags.get(r.name)) is not None and known.record is r
                )
            with contextlib.suppress(OSError):
                replace_file(self._cache_file, json.dumps(document).encode())

    def _loose_stamps(self) -> dict[str, list[int]]:
        """[inode, mtime in ns] of each loose tag ref last read, but for the files changed
        in the last seconds: within the file system's timestamp resolution a ref rewritten
        after the save could show the same stamp (git's "racy" files), so those are read
        again by the next process."""
        recent = (time.time() - _RACY_SECONDS) * 1e9
        return {
            name: [inode, mtime]
            for name, (inode, mtime) in self._loose.items()
            if name in self._tags and name not in self._unreadable and mtime < recent
        }

    # ------------------------------------------------------------------ writing
    def create(
        self, name: str, commit: str, message: str, *, when: int, sign: bool = False
    ) -> TagRecord:
        """Create the annotated tag ``name`` on ``commit``; ``ConflictError`` if it exists."""
        with self.lock:
            return self._create(name, commit, message, when, sign)

    def _create(self, name: str, commit: str, message: str, when: int, sign: bool) -> TagRecord:
        if not message.endswith("\n"):
            message += "\n"
        if sign:
            self._create_signed(name, commit, message, when)
            if self._loaded:  # known as git wrote it (the object is read back once)
                line = _loose_tag_ref(f"{self._tags_dir}/{name}")
                sha = self._object_of(line) if line is not None else self._packed_now(name)
                written = self._read_tags({name: sha})[0] if sha else {}
                if name in written and written[name].record.commit == commit:
                    return self._learn(written[name]).record
        else:
            ident = self.repo.identity()
            body = (
                f"object {commit}\ntype commit\ntag {name}\n"
                f"tagger {ident.signature(when)}\n\n{message}"
            )
            data = body.encode()
            sha = self.repo.write_object("tag", data)
            self.repo.update_ref(f"refs/tags/{name}", sha, None, f"gittrack: tag {name}")
            if self._loaded:
                # Known as written: the next read finds its ref holding this object and does
                # not read the object back; another writer's change to it shows at that read.
                self._learn(_tag_of(name, sha, "tag", data))
        self._pack_when_many()
        known = self._tags.get(name)
        if known is not None and not sign:
            return known.record
        ident = self.repo.identity()
        return TagRecord(name, commit, ident.name, ident.email, when, message)

    def _pack_when_many(self) -> None:
        """Move the loose tag refs into ``packed-refs`` once there are many of them (git's
        own ``pack-refs``, which locks each ref as the ref writer does); a failure leaves
        them loose, which costs reads a little time only.

        ``git pack-refs`` also folds in the loose file of any other ref that is packed
        already; it is not run then, so that only tags move (git 2.39 has no ``--include``).
        """
        if len(self._loose) < LOOSE_TAGS_TO_PACK:
            return
        common = self.repo.common_dir
        for ref in self.repo.packed_ref_map():
            if not ref.startswith("refs/tags/") and os.path.lexists(f"{common}/{ref}"):
                return
        self.repo.git("pack-refs", check=False)
        self._loose = {}  # looked at again, entry by entry, at the next read

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


class _Tag(NamedTuple):
    """A tag as the store knows it: the object its ref holds, the record, and whether the
    tag object carries a signature (a named tuple: a saved store makes ten thousand at once,
    several times faster than a frozen dataclass)."""

    sha: str
    record: TagRecord
    signed: bool = False


class _ModelTags:
    """One model's tags in name order (records, and the names of the signed ones), kept up
    to date tag by tag once the model was listed: a model with thousands of tags is not
    sorted again for each tag it gains."""

    __slots__ = ("names", "records", "signed")

    def __init__(self, tags: Iterable[_Tag]) -> None:
        kept = list(tags)
        self.names = [t.record.name for t in kept]
        self.records = [t.record for t in kept]
        self.signed = {t.record.name for t in kept if t.signed}

    def put(self, tag: _Tag) -> None:
        name = tag.record.name
        at = bisect.bisect_left(self.names, name)
        if at < len(self.names) and self.names[at] == name:
            self.records[at] = tag.record
        else:
            self.names.insert(at, name)
            self.records.insert(at, tag.record)
        if tag.signed:
            self.signed.add(name)
        else:
            self.signed.discard(name)

    def drop(self, name: str) -> None:
        at = bisect.bisect_left(self.names, name)
        if at < len(self.names) and self.names[at] == name:
            del self.names[at], self.records[at]
        self.signed.discard(name)


def _listing_of(tags: Iterable[_Tag], position: TagPosition) -> TagListing:
    kept = tuple(tags)
    records = tuple(map(itemgetter(1), kept))  # _Tag.record
    signed = compress(records, map(itemgetter(2), kept))  # _Tag.signed
    return TagListing(records, frozenset(map(attrgetter("name"), signed)), position)


class _LooseScan:
    """The loose ref files below a directory, each with its (inode, modification time).

    A ref replaced by a rename gets a new inode or, since file systems reuse a freed inode at
    once (ext4 does), at least a new modification time, so the pair tells a new file from
    the one read before; a tag deleted and created again is read again. Stating a file
    costs a few µs, so the directories are looked at first: creating, deleting or renaming
    a file in a directory changes the directory's modification time, and while no directory
    changed, the files are those of the last scan. A directory changed within the last
    ``_RACY_SECONDS`` may change again within its timestamp's resolution without showing
    it, so it is not vouched for: the next look scans it again. When a directory changed,
    a file of a new name or inode is stat'ed at once, and the others (same name, same
    inode: the reused-inode case) at most once every ``_FULL_LOOK_NS``, so that a burst of
    registry writes, each looking at the tags several times, does not stat every ref file
    each time; such a replacement is seen within that second.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._settled: dict[str, int] = {}  # directory -> mtime (ns) of the last scan
        self._found: dict[str, tuple[int, int]] = {}
        self._look_ns = 0
        self.previous_look_ns = 0  # when the look before the last one started (ns)
        self._full_look_ns = 0  # when every file was last stat'ed

    def scan(self) -> dict[str, tuple[int, int]]:
        """Every loose ref (a name relative to the root) and its file's (inode, mtime in
        ns); the same dict object as the last scan when no directory changed."""
        self.previous_look_ns, self._look_ns = self._look_ns, time.time_ns()
        if self._settled and self._unchanged():
            return self._found
        found: dict[str, tuple[int, int]] = {}
        settled: dict[str, int] = {}
        known = self._found
        full = self._look_ns - self._full_look_ns >= _FULL_LOOK_NS
        if full:
            self._full_look_ns = self._look_ns
        racy_after = time.time_ns() - int(_RACY_SECONDS * 1e9)
        every_directory_settled = True
        pending = [("", self.root)]
        while pending:
            prefix, directory = pending.pop()
            try:
                stamp = os.stat(directory).st_mtime_ns  # before the scan: a later change shows
                entries = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                every_directory_settled = False
                continue
            if stamp < racy_after:
                settled[directory] = stamp
            else:
                every_directory_settled = False
            with entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((f"{prefix}{entry.name}/", entry.path))
                    elif not entry.name.endswith(".lock"):
                        name = prefix + entry.name
                        before = known.get(name)
                        if not full and before is not None and before[0] == entry.inode():
                            found[name] = before
                            continue
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        found[name] = (info.st_ino, info.st_mtime_ns)
        self._settled = settled if every_directory_settled else {}
        self._found = found
        return found

    def _unchanged(self) -> bool:
        for directory, stamp in self._settled.items():
            try:
                if os.stat(directory).st_mtime_ns != stamp:
                    return False
            except OSError:
                return False
        return True


def _loose_tag_ref(path: str) -> str | None:
    """The first line of a loose tag ref file, without its trailing whitespace; None when
    the file is gone. A file that cannot be read or is not a regular file (a pipe, a device,
    a link to one) holds "": a broken ref. A ref is one line: only the first bytes are read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = os.read(fd, 4096)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data.split(b"\n", 1)[0].decode("ascii", errors="replace").rstrip()


_BROKEN = "broken"  # what a broken loose ref holds, for the store


def _is_object_id(text: str) -> bool:
    return _OBJECT_ID.fullmatch(text) is not None


def _name_only(name: str, sha: str, target: str) -> _Tag:
    """A tag known by its name and the object its ref holds: a lightweight tag (no tagger,
    date or message), or one whose ref or object cannot be read."""
    return _Tag(sha, TagRecord(name, target, "", "", 0, annotated=False))


def _tag_of(name: str, sha: str, kind: str, body: bytes) -> _Tag:
    """The record of tag ``name`` whose ref holds object ``sha``, as ``git for-each-ref``
    reports it: a lightweight tag when the object is not a tag object."""
    if kind != "tag":
        return _name_only(name, sha, sha)
    header, _, contents = body.partition(b"\n\n")
    fields: dict[bytes, bytes] = {}
    for line in header.split(b"\n"):
        key, _, value = line.partition(b" ")
        fields.setdefault(key, value)
    who, email, when = _tagger(fields.get(b"tagger", b""))
    start = _signature_start(contents)
    message = contents[:start].decode("utf-8", errors="replace")
    target = fields.get(b"object", b"").decode("ascii", errors="replace")
    record = TagRecord(name, target, who, email, when, message)
    return _Tag(sha, record, start < len(contents))


def _tagger(line: bytes) -> tuple[str, str, int]:
    """(name, email, epoch seconds) of a ``tagger`` header, as ``%(taggername)``,
    ``%(taggeremail:trim)`` and ``%(taggerdate:unix)`` give them."""
    opening, closing = line.find(b"<"), line.rfind(b">")
    if opening < 0 or closing < opening:
        return line.decode("utf-8", errors="replace").strip(), "", 0
    who = line[:opening].rstrip().decode("utf-8", errors="replace")
    email = line[opening + 1 : closing].decode("utf-8", errors="replace")
    stamp = line[closing + 1 :].split()
    try:
        return who, email, int(stamp[0]) if stamp else 0
    except ValueError:
        return who, email, 0


def _signature_start(contents: bytes) -> int:
    """Where the signature of a tag message starts (its length when unsigned): the last line
    that opens a signature, as git finds it."""
    start = len(contents)
    position = 0
    while position < len(contents):
        if contents.startswith(_SIGNATURE_STARTS, position):
            start = position
        newline = contents.find(b"\n", position)
        if newline < 0:
            break
        position = newline + 1
    return start
