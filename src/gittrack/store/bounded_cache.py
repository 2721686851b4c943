"""A dictionary with a maximum size that forgets the least recently used entries.

The store keeps what it learnt about immutable git objects (a tree's entries, a commit's tree
and parents, which objects are on disk) so that a commit does not read back what it just
wrote. Objects never change, so an entry is never wrong, only possibly unused: past its bound
the cache forgets the entries used longest ago, and a forgotten answer is read again from git.

The size is a number of entries, or, with ``weigh``, a sum of weights: a tree of 256 entries
weighs 256, so a cache of trees is bounded in memory whatever the trees' shapes. One lock
makes it safe for the threads that commit through one repository handle.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class BoundedCache(Generic[K, V]):
    """A mapping whose total size stays within ``max_size``, evicting the least recently used."""

    def __init__(self, max_size: int, weigh: Callable[[V], int] | None = None) -> None:
        """An empty cache.

        Args:
            max_size: the largest total size kept (at least 1): a number of entries, or the
                sum of their weights with ``weigh``.
            weigh: the size of one value (each at least 1); None: every entry counts 1.

        Raises:
            ValueError: when ``max_size`` is below 1.
        """
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self.max_size = max_size
        self._weigh = weigh
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value kept for ``key`` (now the most recently used), else ``default``."""
        with self._lock:
            found = self._data.get(key, _MISSING)
            if found is _MISSING:
                return default
            self._data.move_to_end(key)
            return found[0]  # type: ignore[index]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, forgetting the least recently used entries to make room
        (a value larger than the whole cache is not kept)."""
        weight = 1 if self._weigh is None else max(1, self._weigh(value))
        with self._lock:
            self._store(key, value, weight)

    def add_all(self, keys: Iterable[K], value: V) -> None:
        """Keep ``value`` for each of ``keys`` (a set-like use: which keys are known)."""
        weight = 1 if self._weigh is None else max(1, self._weigh(value))
        with self._lock:
            for key in keys:
                self._store(key, value, weight)

    def _store(self, key: K, value: V, weight: int) -> None:
        data = self._data
        old = data.pop(key, None)
        if old is not None:
            self._size -= old[1]
        data[key] = (value, weight)
        self._size += weight
        while self._size > self.max_size:
            _key, (_value, evicted) = data.popitem(last=False)
            self._size -= evicted

    def pop(self, key: K) -> V | None:
        """Forget ``key``; returns what was kept for it (None when nothing was)."""
        with self._lock:
            found = self._data.pop(key, None)
            if found is None:
                return None
            self._size -= found[1]
            return found[0]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._size = 0

    @property
    def size(self) -> int:
        """The total size of the entries kept (their number, or the sum of their weights)."""
        return self._size

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
