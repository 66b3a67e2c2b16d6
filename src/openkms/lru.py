"""A bounded mapping that evicts the least recently used entry, safe across a worker's threads.

For caches ``functools.lru_cache`` cannot express: one per object (it lives and dies with its owner) or keyed by
something other than a function's arguments. A pure function of hashable arguments uses ``lru_cache`` instead.
What a cache must never hold (an access key's status, a policy decision) is its owner's docstring's business.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar, TypeVarTuple

K = TypeVar("K")
V = TypeVar("V")
Args = TypeVarTuple("Args")


class LRUCache(Generic[K, V]):
    """At most ``max_entries`` entries; a hit makes its entry the most recently used. None is never a value: it
    stands for absent (so a computation that finds nothing caches nothing)."""

    __slots__ = ("_entries", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("an LRU cache holds at least one entry")
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        return self._max

    def get(self, key: K) -> V | None:
        """The cached value, or None if absent."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: K, compute: Callable[[*Args], V], *args: *Args) -> V:
        """The cached value, else ``compute(*args)``'s, kept (arguments rather than a closure: no allocation on a
        hit). ``compute`` runs outside the lock, so a slow one blocks no other key; two threads missing the same
        key at once may both compute it (the later result is kept)."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        value = compute(*args)
        self.put(key, value)
        return value

    def discard(self, key: K) -> None:
        """Drop ``key``'s entry now, if there is one."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
