"""One small TTL cache: a value computed once per key, by one caller at a time, kept for a while (or for good).

What a backend learns about its cloud and may reuse: task definition ARNs by family, the subnets of a VPC, that a
Cloud Run job exists, the region of a resource group, an SDK client per subscription. Thread-safe; the clock is
injected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key, each kept `ttl` seconds after it was stored (None: kept until discarded)."""

    def __init__(self, ttl: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._values: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[K, threading.Lock] = {}

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._fresh(key)

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._values[key] = (value, self._clock())

    def discard(self, key: K) -> None:
        with self._lock:
            self._values.pop(key, None)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The kept value, else `compute()` by one caller (the others for the same key wait for it), then kept."""
        with self._lock:
            found = self._fresh(key)
            if found is not None:
                return found
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                found = self._fresh(key)
            if found is not None:
                return found
            value = compute()
            self.put(key, value)
            return value

    def _fresh(self, key: K) -> V | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, stored = entry
        if self.ttl is not None and self._clock() - stored >= self.ttl:
            del self._values[key]
            return None
        return value
