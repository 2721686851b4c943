"""Creating registry tags: the date each tag gets, and a new name when one is taken."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from gittrack.errors import ConflictError, RepositoryError
from gittrack.registry.state import TagRecord
from gittrack.registry.tag_names import TagKind, parse_tag
from gittrack.registry.tags_io import TagListing, TagStore
from gittrack.registry.time_travel import tag_order_key
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.refs import RefLockedError

MAX_ATTEMPTS = 50
_ENDING_KINDS = (TagKind.DEREGISTRATION, TagKind.DEPRECATION)


class TagWriter:
    """Writes the tags of one repository's registry."""

    def __init__(self, tags: TagStore) -> None:
        self.tags = tags

    def write(
        self,
        model: str,
        tag_name: Callable[[TagListing], str],
        commit: str,
        message: str,
        sign: bool = False,
    ) -> str:
        """Create the tag ``tag_name(model's tags)`` names on ``commit``; when another writer
        took that name first (a counter, say), read the tags again and take the next one."""
        locked: RefLockedError | None = None
        for _ in range(MAX_ATTEMPTS):
            listing = self.tags.read(model)
            name = tag_name(listing)
            try:
                self.create(listing, model, name, commit, message, sign)
            except RefLockedError as exc:
                if exc.stale:  # left by a writer that stopped: says to run recover
                    raise
                locked = exc
                time.sleep(0.01)
                continue
            except ConflictError:
                locked = None
                continue
            return name
        if locked is not None:  # names the lock file and what to do
            raise locked
        raise RepositoryError(f"could not create a registry tag for {model!r}: too many races")

    def create(
        self,
        listing: TagListing,
        model: str,
        name: str,
        commit: str,
        message: str,
        sign: bool = False,
    ) -> None:
        """Create tag ``name``, dated by :func:`tag_time`; ``ConflictError`` if it exists."""
        self.tags.create(name, commit, message, when=tag_time(listing, model, name), sign=sign)


def tag_time(listing: TagListing, model: str, new_tag: str) -> int:
    """Now, or one second later when the new tag would sort before a tag that ends a life.

    Tags are ordered by tagger date (whole seconds), then counter and kind (see
    ``registry.state``). A registration made in the same second as a deprecation, or a counted
    deprecation next to an uncounted deregistration, would sort the wrong way round and the
    model would look deleted, or not; such a tag is dated one second later. GTO breaks ties
    its own way, so a deprecation is always dated after the model's other tags.
    """
    new = parse_tag(new_tag)
    assert new is not None
    mine = tag_order_key(new.kind, new.counter)
    latest, last_second = _latest_tags(listing, model)
    when = int(time.time())
    if latest is not None:
        when = max(when, int(latest.timestamp()))
    # Only the tags dated in the second the new one gets can sort around it.
    second = datetime.fromtimestamp(when, tz=timezone.utc)
    following = second + timedelta(seconds=1)
    same_second = []
    for record in last_second:
        if second <= record.date < following:
            other = parse_tag(record.name)
            assert other is not None
            same_second.append((other.kind, tag_order_key(other.kind, other.counter)))
    if new.kind is TagKind.DEPRECATION and same_second:
        return when + 1  # GTO reads a deprecation as the model's end only when it is last
    ending = new.kind in _ENDING_KINDS
    if any(key > mine and (ending or kind in _ENDING_KINDS) for kind, key in same_second):
        when += 1
    return when


def _of_model(tag: str, model: str) -> bool:
    parsed = parse_tag(tag)
    return parsed is not None and parsed.model == model


_Dated = tuple[tuple[TagRecord, ...], frozenset[int], tuple[TagRecord, ...]]
_dated_seen: BoundedCache[str, _Dated] = BoundedCache(256)


def _latest_tags(listing: TagListing, model: str) -> tuple[datetime | None, list[TagRecord]]:
    """The date of the latest annotated tag of ``model`` in ``listing`` (None without one),
    and the annotated tags of ``model`` dated in that tag's second.

    A listing holds the same record objects while their tags are unchanged, so when every
    record of the last call for this model is still in ``listing``, only the added records
    are looked at (set operations on the objects' ids find them; the saved records stay
    referenced, so their ids are not reused). A listing that lost or changed a tag is read
    whole.
    """
    records = listing.records
    ids = frozenset(map(id, records))
    seen = _dated_seen.get(model)
    if seen is not None and seen[1] <= ids:
        # The latest tag seen is among those of its second, which are kept.
        by_id = dict(zip(map(id, records), records))
        candidates: Iterable[TagRecord] = [*seen[2], *(by_id[i] for i in ids - seen[1])]
    else:
        candidates = records
    dated = [r for r in candidates if r.annotated and _of_model(r.name, model)]
    latest = max((r.date for r in dated), default=None)
    last_second: list[TagRecord] = []
    if latest is not None:
        start = datetime.fromtimestamp(math.floor(latest.timestamp()), tz=timezone.utc)
        last_second = [r for r in dated if r.date >= start]
    _dated_seen.put(model, (records, ids, tuple(last_second)))
    return latest, last_second
