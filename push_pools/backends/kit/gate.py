"""One rate gate: after a cloud said "slow down" for a scope (a subscription, an account), calls to that scope wait.

It does not pace or retry: it remembers until when the cloud asked not to be called, so a throttled burst stops
calling at once and the dispatcher's retry waits out the rest. Thread-safe; the clock is injected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class RateGate:
    """Closed for a scope until the cloud's Retry-After has passed."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def remaining(self, scope: Hashable) -> float:
        """Seconds until calls to `scope` may go again; 0 when the gate is open."""
        with self._lock:
            return max(0.0, self._until.get(scope, 0.0) - self._monotonic())

    def hold(self, scope: Hashable, seconds: float) -> None:
        """Close the gate for `scope` for `seconds` (a later close never shortens an earlier one)."""
        with self._lock:
            until = self._monotonic() + seconds
            self._until[scope] = max(until, self._until.get(scope, 0.0))
