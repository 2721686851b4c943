"""Creating registry tags: the date each tag gets, and a new name when one is taken."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from gittrack.errors import ConflictError, RepositoryError
from gittrack.registry.state import TagFeed, TagRecord, name_maxima
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
        refresh: bool = True,
    ) -> str:
        """Create the tag ``tag_name(model's tags)`` names on ``commit``; when another writer
        took that name first (a counter, say), read the tags again and take the next one.

        With ``refresh`` False, the first attempt takes the tags as the store last read them
        (with its own writes since): a caller that read them at the start of its operation
        does not look at the refs again for each tag it writes.
        """
        locked: RefLockedError | None = None
        for attempt in range(MAX_ATTEMPTS):
            listing = self.tags.read(model, refresh or attempt > 0)
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
    last = _last_second(listing, model)
    when = int(time.time())
    if last is None:
        return when
    when = max(when, last.second)
    # Only the tags dated in the second the new one gets can sort around it: the tags of
    # the model's last second, when the new one gets that second.
    if when != last.second:
        return when
    if new.kind is TagKind.DEPRECATION:
        return when + 1  # GTO reads a deprecation as the model's end only when it is last
    # A tag sorting after the new one is a problem when either of the two ends a life.
    after = last.top if new.kind in _ENDING_KINDS else last.top_ending
    if after is not None and after > mine:
        when += 1
    return when


def next_version_number(listing: TagListing, model: str) -> int:
    """The next version number of ``model`` (``state.next_version_number``) for a listing of
    the model's tags; a store's listing costs the tags added since the last call."""
    return _maxima(listing, model)[0] + 1


def next_assignment_counter(listing: TagListing, model: str) -> int:
    """The counter of ``model``'s next counted tag (``state.next_assignment_counter``) for a
    listing of its tags; a store's listing costs the tags added since the last call."""
    return _maxima(listing, model)[1] + 1


T = TypeVar("T")
_NOT_YET = object()
_MODELS_KEPT = 1024  # models whose value is kept per store


class _Folded(Generic[T]):
    """A value computed from the tags of one model and kept per store and model: for a
    store's listing (one with a position), the value at the previous listing is brought up to
    date with the tags added since (``TagJournal.changes``); a removed or changed tag, or a
    listing without a position, computes it from every tag of the model again. What is kept
    for a store goes with it (the journal is a weak key)."""

    def __init__(
        self,
        compute: Callable[[Sequence[TagRecord], str], T],
        extend: Callable[[T, Sequence[TagRecord], str], T],
    ) -> None:
        """Kept by ``compute(tags, model)`` and, from tags added since, ``extend(value,
        added tags, model)``; both look only at the tags of ``model`` among those given."""
        self._compute = compute
        self._extend = extend
        self._seen: weakref.WeakKeyDictionary[TagFeed, BoundedCache[str, tuple[int, T]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # one model's value is brought up to date at a time

    def __call__(self, listing: TagListing, model: str) -> T:
        position = listing.position
        if position is None:
            return self._compute(listing.records, model)
        with self._lock:
            kept = self._seen.get(position.feed)
            if kept is None:
                kept = self._seen[position.feed] = BoundedCache(_MODELS_KEPT)
            seen = kept.get(model)
            value: Any = _NOT_YET
            if seen is not None:
                changes = position.feed.changes(model, seen[0], position.generation)
                if changes is not None and not changes.removed:
                    added = changes.added
                    value = self._extend(seen[1], added, model) if added else seen[1]
            if value is _NOT_YET:
                value = self._compute(listing.records, model)
            kept.put(model, (position.generation, value))
            return value


def _more_maxima(known: tuple[int, int], added: Sequence[TagRecord], model: str) -> tuple[int, int]:
    more = name_maxima(added, model)
    return max(known[0], more[0]), max(known[1], more[1])


_maxima: _Folded[tuple[int, int]] = _Folded(name_maxima, _more_maxima)


class _LastSecond(NamedTuple):
    """The annotated tags of a model dated in the second of its latest one: that second
    (epoch seconds), the highest order key among them (``tag_order_key``) and the highest
    among those that end a life (None without one)."""

    second: int
    top: tuple[float, int]
    top_ending: tuple[float, int] | None


def _more_last_second(
    known: _LastSecond | None, added: Sequence[TagRecord], model: str
) -> _LastSecond | None:
    for record in added:
        parsed = parse_tag(record.name)
        if not record.annotated or parsed is None or parsed.model != model:
            continue
        second = math.floor(record.date.timestamp())
        if known is not None and second < known.second:
            continue
        key = tag_order_key(parsed.kind, parsed.counter)
        ending = key if parsed.kind in _ENDING_KINDS else None
        if known is None or second > known.second:
            known = _LastSecond(second, key, ending)
        else:
            top_ending = known.top_ending
            if ending is not None and (top_ending is None or ending > top_ending):
                top_ending = ending
            known = _LastSecond(second, max(known.top, key), top_ending)
    return known


_last_second: _Folded[_LastSecond | None] = _Folded(
    lambda records, model: _more_last_second(None, records, model), _more_last_second
)
