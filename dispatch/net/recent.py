"""A bounded cache of values recently computed, safe to share between threads.

The association engine keeps a few results that a worker or the embedded mode computes
again and again with the same inputs (the encoded A-ASSOCIATE-RQ of a job's settings,
what the peer's identical A-ASSOCIATE-AC said). Several sending threads use them at
once, so every access holds a lock: evicting the oldest entry is two steps.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Up to ``size`` values by key; the oldest goes when a new one comes. A key that
    cannot be hashed (settings holding something unhashable) is never kept: :meth:`get`
    gives None and :meth:`put` does nothing."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        try:
            with self._lock:
                return self._items.get(key)
        except TypeError:
            return None

    def put(self, key: K, value: V) -> None:
        try:
            with self._lock:
                if key not in self._items and len(self._items) >= self._size:
                    del self._items[next(iter(self._items))]
                self._items[key] = value
        except TypeError:
            pass

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
