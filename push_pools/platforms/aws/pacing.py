"""Pacing RunTask after ECS throttles it, so that a burst of runs goes out at ECS's launch rate.

ECS refills its RunTask and Fargate-launch buckets continuously (Fargate: 100 burst, then 20 launches a second).
Once a burst has emptied them, runs retried at random moments either wait while tokens are there to take, or
arrive together and are throttled again, spending their tries. After a ThrottlingException, the pacer hands the
callers of this instance slots one `interval` apart, starting at ECS's documented launch rate; every throttle met
while paced widens the interval (other instances or workloads share the account's buckets), every launch narrows it
back, never below the nominal rate. Pacing ends once no throttle has been seen for `quiet_seconds`.

This is not a retry: the dispatcher retries a throttled submission as any transient failure; the pacer only
decides when RunTask calls of this instance go out meanwhile. Thread-safe; one per backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FARGATE_LAUNCHES_PER_SECOND = 20.0
"""ECS's sustained Fargate task launch rate per account and region (RunTask itself allows 40 a second)."""


class LaunchPacer:
    """Slots for RunTask calls while ECS is throttling them."""

    SLOW_DOWN = 1.5
    """The interval grows by this factor when a paced call is throttled: instances pacing alone back off fast."""
    SPEED_UP = 0.97
    """The interval shrinks by this factor with each launch while pacing, back towards the nominal rate."""

    def __init__(
        self,
        *,
        launches_per_second: float = FARGATE_LAUNCHES_PER_SECOND,
        quiet_seconds: float = 2.0,
        max_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval = 1.0 / launches_per_second
        self.interval = self.min_interval
        self.quiet_seconds = quiet_seconds
        self.max_interval = max_interval
        self._clock = clock
        self._sleep = sleep
        self._paced_until = 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    @property
    def pacing(self) -> bool:
        return self._clock() < self._paced_until

    def wait_for_slot(self) -> bool:
        """Before a RunTask: while pacing, wait for this call's slot. True if the call was paced."""
        with self._lock:
            now = self._clock()
            if now >= self._paced_until:
                return False
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
        return True

    def throttled(self, *, paced: bool) -> None:
        """A RunTask was throttled: pace from now on; slower if the call had waited for its slot (a throttle of a
        call sent before pacing began says nothing about the pace)."""
        with self._lock:
            now = self._clock()
            if paced and now < self._paced_until:
                self.interval = min(self.max_interval, self.interval * self.SLOW_DOWN)
            self._paced_until = now + self.quiet_seconds
            self._next_slot = max(self._next_slot, now + self.interval)

    def launched(self) -> None:
        """A RunTask went through: while pacing, move back towards the nominal rate."""
        with self._lock:
            if self._clock() < self._paced_until:
                self.interval = max(self.min_interval, self.interval * self.SPEED_UP)
