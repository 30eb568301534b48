"""The one bounded cache: a thread-safe least-recently-used map over ``cachetools``.

Every cache of the gateway (plans, visible schemas, derived tables, decision snapshots,
verified access tokens) is one :class:`LruCache` owned by its user, so each has a fixed
upper bound on memory and none is module state. ``cachetools.LRUCache`` is not
thread-safe (a read reorders it), hence the lock around every operation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import cachetools

__all__ = ["LruCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most ``maxsize`` entries; putting one more evicts the least recently used
    (read or written). ``maxsize <= 0`` keeps nothing: every ``get`` misses.

    Values must not be None (``get`` returns None for a miss). Thread-safe.
    """

    __slots__ = ("_data", "_lock", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = max(0, maxsize)
        self._data: cachetools.LRUCache[K, V] | None = (
            cachetools.LRUCache(self._maxsize) if self._maxsize else None
        )
        self._lock = threading.Lock()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or None."""
        data = self._data
        if data is None:
            return None
        with self._lock:
            # Indexing, not .get(): cachetools' get() looks the key up twice, and hits
            # (every request's plan, token and snapshot) are the path that matters.
            try:
                return data[key]
            except KeyError:
                return None

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` (replacing any), evicting the least recently
        used entry when full."""
        data = self._data
        if data is None:
            return
        with self._lock:
            data[key] = value

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, or ``compute()`` stored and returned.

        ``compute`` runs outside the lock (it may be slow), so two threads missing the
        same key at once may both compute; the last one stored wins. Whatever
        ``compute`` raises propagates and nothing is stored.
        """
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def clear(self) -> None:
        data = self._data
        if data is not None:
            with self._lock:
                data.clear()

    def __len__(self) -> int:
        data = self._data
        if data is None:
            return 0
        with self._lock:
            return len(data)
