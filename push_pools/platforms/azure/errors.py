"""Azure SDK errors as push-pools' SubmissionErrors, decided by HTTP status and ARM error code, never by text.

408, 429, 5xx and the codes in TRANSIENT_CODES are transient (Retry-After is passed on); every other HTTP error
is permanent. An error with no HTTP answer (the network, a timeout, the managed identity endpoint failing to give a
token) is transient. Messages keep ARM's own explanation, without any secret value of the request.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from push_pools.errors import PermanentSubmissionError, SubmissionError, TransientSubmissionError

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"ContainerGroupQuotaReached", "AnotherOperationInProgress", "ServiceUnavailable"})
"""ARM error codes of conditions that pass, whatever their HTTP status (quota frees up as groups are swept)."""
_MAX_ERROR_CHARS = 500


def translate_error(exc: AzureError, what: str, secrets: Iterable[str] = ()) -> SubmissionError:
    """An Azure SDK error as a transient or permanent SubmissionError, decided by HTTP status and error code."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = exc.error.code if exc.error is not None else None
        detail = exc.error.message if exc.error is not None and exc.error.message else exc.reason
        message = _scrub(f"{what}: HTTP {exc.status_code}{f' {code}' if code else ''}: {detail}", secrets)
        if exc.status_code in TRANSIENT_STATUSES or code in TRANSIENT_CODES:
            return TransientSubmissionError(message, retry_after=retry_after_of(exc))
        return PermanentSubmissionError(message)
    # No HTTP answer: the network, a timeout, or the managed identity endpoint failing to give a token.
    return TransientSubmissionError(f"{what}: {type(exc).__name__}: {_scrub(str(exc), secrets)}")


@contextmanager
def translated(what: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Raise any Azure SDK error of the block as a SubmissionError, from the original."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise translate_error(exc, what, secrets) from exc


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_after_of(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    return parse_retry_after(response.headers.get("Retry-After")) if response is not None else None


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
