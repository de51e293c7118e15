"""Azure SDK errors as push-pools' errors: the kit's error mechanism fed Azure's table (HTTP status and ARM error
code, never message text).

408, 429, 5xx and the codes in TRANSIENT_CODES are transient (Retry-After is passed on); 401, the codes in
EXECUTOR_CODES (the function's identity denied or its token refused) and no managed identity at all mean the executor
is not ready; every other HTTP error is permanent. An error with no HTTP answer (the network, a timeout, the managed
identity endpoint failing to give a token) is transient. Messages keep ARM's own explanation, without any secret
value of the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from push_pools.backends.kit.errors import ErrorTable, SdkFailure
from push_pools.backends.kit.retry_after import parse_retry_after
from push_pools.errors import PushPoolError

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"ContainerGroupQuotaReached", "AnotherOperationInProgress", "ServiceUnavailable"})
"""ARM error codes of conditions that pass, whatever their HTTP status (quota frees up as groups are swept)."""
EXECUTOR_CODES = frozenset(
    {
        "AuthorizationFailed",
        "LinkedAuthorizationFailed",
        "InvalidAuthenticationToken",
        "InvalidAuthenticationTokenTenant",
        "ExpiredAuthenticationToken",
    }
)
"""ARM error codes that mean the function's own identity is denied (a role assignment missing) or its token refused."""


def _sdk_errors() -> tuple[type[BaseException], ...]:
    from azure.core.exceptions import AzureError

    return (AzureError,)


def _configuration_errors() -> tuple[type[BaseException], ...]:
    from azure.identity import CredentialUnavailableError

    return (CredentialUnavailableError,)


def _read(exc: BaseException) -> SdkFailure:
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = exc.error.code if exc.error is not None else None
        detail = exc.error.message if exc.error is not None and exc.error.message else exc.reason
        return SdkFailure(code=code, status=exc.status_code, detail=str(detail), retry_after=retry_after_of(exc))
    # No HTTP answer: the network, a timeout, or the managed identity endpoint failing to give a token.
    return SdkFailure(code=None, status=None, detail=f"{type(exc).__name__}: {exc}")


AZURE_ERRORS = ErrorTable(
    sdk_errors=_sdk_errors,
    read=_read,
    transient_codes=TRANSIENT_CODES,
    transient_status=TRANSIENT_STATUSES.__contains__,
    configuration_errors=_configuration_errors,
    executor_codes=EXECUTOR_CODES,
    executor_status=frozenset({401}),
)


def translate_error(exc: BaseException, what: str, secrets: Iterable[str] = ()) -> PushPoolError:
    """An Azure SDK error as ours, decided by HTTP status and error code."""
    return AZURE_ERRORS.translate(exc, what, secrets)


def translated(what: str, secrets: Iterable[str] = ()) -> AbstractContextManager[None]:
    """Raise any Azure SDK error of the block as ours, from the original."""
    return AZURE_ERRORS.translated(what, secrets)


def retry_after_of(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    return parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
