"""AWS errors as push-pools errors: the kit's error mechanism fed AWS's table (error codes and HTTP statuses).

- Transient (retried by the dispatcher, then the run is requeued): throttling codes, HTTP 429 and 5xx, ECS's
  `ServerException`, timeouts and connection failures, and RunTask `failures` that mean capacity is short now
  (`RESOURCE:*`, `AGENT`, Fargate's "Capacity is unavailable at this time"). RunTask reports failures in its
  answer, not as an error; their `reason` is the only code ECS gives for them.
- Permanent (the run is CRASHED with the reason): ClusterNotFoundException, invalid parameters, ClientException
  (e.g. a task definition that cannot be described) and any other 4xx.
- No credentials, no region, or the function's role denied or not valid: the executor is not ready (the run waits
  SCHEDULED, the pool shows NOT_READY), since nothing works until the function is set up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from push_pools.backends.kit.errors import ErrorTable, SdkFailure
from push_pools.backends.kit.retry_after import parse_retry_after
from push_pools.errors import PermanentSubmissionError, PushPoolError, TransientSubmissionError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "LimitExceededException",
    }
)
"""Codes that mean "not now". ECS's LimitExceededException is a rate or in-flight limit (e.g. tasks in
PROVISIONING per cluster), which passes: retried like throttling."""

CAPACITY_FAILURE_PREFIXES = ("RESOURCE:", "AGENT", "Capacity is unavailable")

_IAM_HINT = "grant the function's role this action (see terraform/modules/aws/iam.tf)"
_HINTS: dict[str | int, str] = {
    "ClusterNotFoundException": "create the cluster, or set the pool's `cluster` job variable to an existing one",
    "AccessDeniedException": _IAM_HINT,
    "AccessDenied": _IAM_HINT,
    "UnrecognizedClientException": "the function's AWS credentials are not valid",
}


EXECUTOR_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
"""Codes that mean the function's own role is denied or its credentials are not valid."""


def _sdk_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _configuration_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import NoCredentialsError, NoRegionError

    return (NoCredentialsError, NoRegionError)


def _read(exc: BaseException) -> SdkFailure:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        return SdkFailure(
            code=str(error.get("Code", "Unknown")),
            status=int(metadata.get("HTTPStatusCode") or 0) or None,
            detail=str(error.get("Message", "")) or "(no message)",
            retry_after=parse_retry_after(metadata.get("HTTPHeaders", {}).get("retry-after")),
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return SdkFailure(code=None, status=None, detail=type(exc).__name__)
    # Any other botocore error (a parameter that does not validate, say) is ours to fix: permanent.
    return SdkFailure(code=type(exc).__name__, status=None, detail=str(exc))


AWS_ERRORS = ErrorTable(
    sdk_errors=_sdk_errors,
    read=_read,
    transient_codes=TRANSIENT_CODES,
    transient_status=lambda status: status == 429 or status >= 500,
    configuration_errors=_configuration_errors,
    executor_codes=EXECUTOR_CODES,
    hints=_HINTS,
)


def translate(exc: BaseException, action: str) -> PushPoolError:
    """The push-pools error for an SDK exception raised by `action` (e.g. "ecs:RunTask")."""
    return AWS_ERRORS.translate(exc, action)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    found = response.get("Error", {}).get("Code") if isinstance(response, Mapping) else None
    return str(found) if found else None


def failures_error(failures: Sequence[Mapping[str, Any]]) -> PushPoolError:
    """The error for RunTask `failures` (it answered, but started nothing)."""
    first = failures[0]
    reason = str(first.get("reason", "unknown"))
    detail = f" ({first['detail']})" if first.get("detail") else ""
    message = f"ecs:RunTask started no task: {reason}{detail}"
    if reason.startswith(CAPACITY_FAILURE_PREFIXES):
        return TransientSubmissionError(message, code=reason)
    return PermanentSubmissionError(message, code=reason)
