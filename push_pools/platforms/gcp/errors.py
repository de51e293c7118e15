"""The Cloud Run SDK's edge: its errors read as ours (the kit's error mechanism fed Cloud Run's table: HTTP status,
never message text), the server's wait hint, JSON documents as proto messages, and the polling of a job's creation.

429, 408, 409, 5xx (but 501) and transport failures (timeouts, refused connections, credential refreshes that
could not reach the metadata server) are transient; 401 and 403 (the function's service account is denied, or an API
is not enabled) mean the executor is not ready; every other 4xx is permanent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from push_pools.backends.kit.errors import ErrorTable, SdkFailure
from push_pools.backends.kit.retry_after import parse_retry_after
from push_pools.errors import PushPoolError, TemplateError


@functools.cache
def sdk_errors() -> tuple[type[BaseException], ...]:
    """What a Cloud Run call can raise: API errors, and transport failures (timeouts, refused connections)."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    return (api.GoogleAPIError, requests.RequestException, auth.TransportError, auth.RefreshError, TimeoutError)


def _transient_status(status: int) -> bool:
    """429, 408, 409 (a concurrent change), 499 (cancelled) and 5xx but 501."""
    return status in (408, 409, 429, 499) or (status >= 500 and status != 501)


def _read(exc: BaseException) -> SdkFailure:
    from google.api_core import exceptions as api

    if not isinstance(exc, api.GoogleAPICallError):
        return SdkFailure(code=None, status=None, detail=f"did not complete: {type(exc).__name__}")
    grpc = getattr(exc, "grpc_status_code", None)
    code = getattr(grpc, "name", None) or type(exc).__name__
    return SdkFailure(code=code, status=exc.code, detail=str(exc.message), retry_after=retry_after(exc))


_PERMISSION_HINT = (
    "the function's service account needs the push-pools Cloud Run role and "
    "roles/iam.serviceAccountUser on the job's service account"
)
CLOUD_RUN_ERRORS = ErrorTable(
    sdk_errors=sdk_errors,
    read=_read,
    transient_status=_transient_status,
    executor_status=frozenset({401, 403}),
    hints={401: _PERMISSION_HINT, 403: _PERMISSION_HINT},
)


def translated(action: str) -> AbstractContextManager[None]:
    return CLOUD_RUN_ERRORS.translated(f"Cloud Run {action}")


def translate_error(exc: BaseException, action: str) -> PushPoolError:
    """An SDK error as ours, by HTTP status, never by message text."""
    return CLOUD_RUN_ERRORS.translate(exc, f"Cloud Run {action}")


def retry_after(exc: Any) -> float | None:
    """The server's wait hint: a Retry-After header (seconds or HTTP date), or a google.rpc.RetryInfo detail."""
    response = getattr(exc, "response", None)
    header = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if header:
        return parse_retry_after(header)
    for detail in getattr(exc, "details", None) or ():
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            return parse_retry_after(detail.get("retryDelay"))
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
