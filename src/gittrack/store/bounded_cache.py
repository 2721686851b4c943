"""A dictionary that holds at most a fixed number of entries, forgetting the least recently used.

The store keeps what it learnt about immutable git objects (a tree's entries, a commit's tree
and parents, which objects are on disk) so that a commit does not read back what it just
wrote. Objects never change, so an entry is never wrong, only possibly unused: past its bound
the cache forgets the entry used longest ago, and a forgotten answer is read again from git.
One lock makes it safe for the threads that commit through one repository handle.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class BoundedCache(Generic[K, V]):
    """A mapping of at most ``max_entries`` entries, evicting the least recently used."""

    def __init__(self, max_entries: int) -> None:
        """An empty cache.

        Args:
            max_entries: how many entries are kept at most (at least 1).

        Raises:
            ValueError: when ``max_entries`` is below 1.
        """
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value kept for ``key`` (now the most recently used), else ``default``."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._data.move_to_end(key)
            return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, forgetting the least recently used entry when full."""
        with self._lock:
            data = self._data
            data[key] = value
            data.move_to_end(key)
            if len(data) > self.max_entries:
                data.popitem(last=False)

    def add_all(self, keys: Iterable[K], value: V) -> None:
        """Keep ``value`` for each of ``keys`` (a set-like use: which keys are known)."""
        with self._lock:
            data = self._data
            for key in keys:
                data[key] = value
                data.move_to_end(key)
            while len(data) > self.max_entries:
                data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget ``key``; returns what was kept for it (None when nothing was)."""
        with self._lock:
            return self._data.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
