"""The Cloud Run SDK's edge: its errors read as ours (by exception class, that is HTTP status, never by message
text), the server's wait hint, JSON documents as proto messages, and the polling of a job's creation.

429, 408, 409, 5xx (but 501) and transport failures (timeouts, refused connections, credential refreshes that
could not reach the metadata server) are transient; every other 4xx is permanent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from push_pools.errors import PermanentSubmissionError, SubmissionError, TemplateError, TransientSubmissionError


@functools.cache
def sdk_errors() -> tuple[type[BaseException], ...]:
    """What a Cloud Run call can raise: API errors, and transport failures (timeouts, refused connections)."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    return (api.GoogleAPIError, requests.RequestException, auth.TransportError, auth.RefreshError, TimeoutError)


@contextmanager
def translated(action: str) -> Iterator[None]:
    try:
        yield
    except sdk_errors() as exc:
        raise translate_error(exc, action) from exc


def translate_error(exc: BaseException, action: str) -> SubmissionError:
    """An SDK error as ours, by exception class (i.e. HTTP status), never by message text."""
    from google.api_core import exceptions as api

    if not isinstance(exc, api.GoogleAPICallError):
        return TransientSubmissionError(f"Cloud Run {action} did not complete: {type(exc).__name__}")
    code = exc.code
    message = f"Cloud Run {action} failed ({code}): {exc.message}"
    transient = (api.TooManyRequests, api.Conflict, api.Cancelled)
    if isinstance(exc, transient) or code == 408 or (isinstance(exc, api.ServerError) and code != 501):
        return TransientSubmissionError(message, retry_after=retry_after(exc))
    if isinstance(exc, api.Forbidden | api.Unauthorized):
        message += (
            "; the function's service account needs the push-pools Cloud Run role and "
            "roles/iam.serviceAccountUser on the job's service account"
        )
    return PermanentSubmissionError(message)


def retry_after(exc: Any) -> float | None:
    """The server's wait hint: a Retry-After header (seconds or HTTP date), or a google.rpc.RetryInfo detail."""
    response = getattr(exc, "response", None)
    header = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    for detail in getattr(exc, "details", None) or ():
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).removesuffix("s")
            try:
                return max(0.0, float(delay))
            except ValueError:
                return None
    return None


def proto_message(message_type: Any, document: Mapping[str, Any], problem: str) -> Any:
    """A camelCase JSON document as a Cloud Run proto message; unknown fields are a template error."""
    from google.protobuf import json_format

    try:
        return message_type.from_json(json.dumps(document))
    except json_format.ParseError as exc:
        raise TemplateError(f"{problem}: {exc}") from exc


def operation_polling(timeout: float) -> Any:
    """Poll a job's creation briskly (it takes seconds), within the call timeout."""
    from google.api_core.future import polling

    return polling.DEFAULT_POLLING.with_delay(initial=0.2, maximum=2.0, multiplier=1.5).with_timeout(timeout)
