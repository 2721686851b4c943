"""The registry state of one repository, kept once per process and saved for the next one.

Every ``Client`` has its own ``RegistryService`` and the command line makes a new ``Client``
for each command, but what they read (the tags, in a ``TagStore``) and what they compute from
it (the state, with a ``StateBuilder``) belongs to the repository: it is kept once per
repository handle, which ``open_repository`` shares among the clients of one git common dir.
Each operation still looks at the tag refs at its start (the store's refresh), so a tag
written by another process, ``git tag`` or ``git fetch --tags`` is in the very next state; the
tags that changed are replayed on top of the state (``StateBuilder``). The store's lock makes
the read of the tags and the state computed from them one step for the UI server's threads.

The builder is also saved, with the tags, in the store's file in ``$GIT_DIR/gittrack/cache``
(derived data): a new process takes up the state a previous one computed instead of replaying
every tag, then replays what changed since. The file names the tags of each replayed event;
a model whose tags changed since the save (moved, deleted, more of them) is replayed, whole or
from where it stopped, exactly as in the process that saved it. The store ignores a damaged
file, one of another format or one saved for another repository.

The listing of the whole registry (read-only summaries, ``RegistryService.model_listing``) is
remembered with the state and the tracking branch commit it was made from, and handed out
again while neither changed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gittrack.registry.state import RegistryState, StateBuilder
from gittrack.registry.tags_io import TagListing, TagStore
from gittrack.store.bounded_cache import BoundedCache
from gittrack.tracking.repository import TrackingRepository
from gittrack.utils import collector

T = TypeVar("T")
_Known = tuple[TagListing, tuple[str, ...], RegistryState]

SAVE_AFTER_REPLAYED = 64
"""Tag events replayed (or tag refs read again) since the last save that make a state worth
saving for the next process, or a quarter of the tags known if more (``SAVE_SHARE``): a save
writes every tag, so its cost per replayed tag stays flat at any size. A process that found
no saved state saves what it replayed."""
SAVE_SHARE = 4


class SharedRegistry:
    """The tags of one repository and the registry state computed from them."""

    def __init__(self, tags: TagStore) -> None:
        """The shared state of the repository whose tags ``tags`` reads.

        Args:
            tags: the repository's tag store; this object saves it (with the builder).
        """
        self.tags = tags
        self.builder = StateBuilder()
        self.restored = False  # whether a saved state was taken up (read by tests)
        self._saved_state_found = False
        self._replayed_at_save = 0
        # The last state of the whole registry, and of each model last asked for.
        self._whole: _Known | None = None
        self._states: BoundedCache[str, _Known] = BoundedCache(256)
        self._listing: tuple[RegistryState, str | None, list[Any]] | None = None
        tags.derived = self.builder.document

    def current(
        self, stages: Sequence[str], model: str | None = None, refresh: bool = True
    ) -> tuple[TagListing, RegistryState]:
        """The tags now (all, or those of ``model``) and the registry state they give.

        Args:
            stages: the labels that are stages.
            model: only this model's tags (the state knows no other model).
            refresh: False: the tags as last read, with this process's writes since
                (``TagStore.read``).

        Returns:
            ``(listing, state)``; the same objects as the previous call when no tag changed.

        Raises:
            InvalidInputError: ``model`` is not a valid model name, or a stage is not a label.
            CorruptDataError: tags that give no state (see ``registry.state``).
        """
        stages = tuple(stages)
        with self.tags.lock, collector.paused():
            listing = self.tags.read(model, refresh)
            self._take_saved()
            known = self._whole if model is None else self._states.get(model)
            if known is not None and known[0] is listing and known[1] == stages:
                return listing, known[2]
            state = self.builder.build(listing.records, stages, listing.position)
            if model is None:
                self._whole = (listing, stages, state)
            else:
                self._states.put(model, (listing, stages, state))
            self._save_when_worth_it()
            return listing, state

    def remembered_listing(
        self,
        state: RegistryState,
        commit: str | None,
        make: Callable[[], list[T]],
        keep: Callable[[], bool],
    ) -> list[T]:
        """The listing of the whole registry made from ``state`` (a state ``current`` gave) and
        the tracking branch at ``commit``: made by ``make`` the first time, and the same items
        again while neither changed (the items must be read-only).

        Args:
            state: the registry state the listing is made from.
            commit: the tracking branch commit holding the metadata it reads.
            make: makes the listing.
            keep: after ``make``, whether the listing may be remembered (not when something
                was left out with a warning, which the next listing must give again).

        Returns:
            A new list of the listing's items.
        """
        known = self._listing
        if known is not None and known[0] is state and known[1] == commit:
            return list(known[2])
        with collector.paused():
            listing = make()
        if keep():
            self._listing = (state, commit, listing)
        return list(listing)

    def _take_saved(self) -> None:
        saved = self.tags.take_saved()
        if saved is not None:
            document, records = saved
            self.builder.restore(document, records)
            self.restored = bool(document)
            self._saved_state_found = True

    def _save_when_worth_it(self) -> None:
        replayed = self.builder.replayed - self._replayed_at_save
        enough = max(SAVE_AFTER_REPLAYED, self.tags.known // SAVE_SHARE)
        if max(replayed, self.tags.unsaved) >= enough or (replayed and not self._saved_state_found):
            self._replayed_at_save = self.builder.replayed
            self._saved_state_found = True
            self.tags.save()


_shared: weakref.WeakKeyDictionary[TrackingRepository, SharedRegistry] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_registry(repository: TrackingRepository) -> SharedRegistry:
    """The registry state of a repository handle (one per handle, living as long as it).

    Args:
        repository: the process's handle of the repository (``open_repository``).

    Returns:
        The state every registry service of that handle shares.
    """
    with _shared_lock:
        shared = _shared.get(repository)
        if shared is None:
            shared = _shared[repository] = SharedRegistry(TagStore(repository.repo))
        return shared
