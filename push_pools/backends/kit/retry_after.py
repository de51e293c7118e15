"""The one Retry-After parser, and the tenacity wait that honours the cloud's hint."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tenacity.wait import wait_base, wait_random_exponential

from push_pools.errors import TransientSubmissionError

if TYPE_CHECKING:
    from tenacity import RetryCallState


def parse_retry_after(value: object, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a Retry-After value: a number of seconds ("3", "1.5", gRPC's "2s") or an HTTP date.

    None for a missing or unreadable value; never negative.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text.removesuffix("s")))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


class WaitRetryAfter(wait_base):
    """Jittered exponential backoff, but never shorter than the cloud's own Retry-After hint."""

    def __init__(self, cap: float) -> None:
        self._jitter = wait_random_exponential(multiplier=0.05, max=cap)

    def __call__(self, retry_state: RetryCallState) -> float:
        hint = 0.0
        if retry_state.outcome is not None and retry_state.outcome.failed:
            error = retry_state.outcome.exception()
            if isinstance(error, TransientSubmissionError) and error.retry_after:
                hint = error.retry_after
        return max(hint, float(self._jitter(retry_state)))
