"""AWS errors as push-pools errors, decided by error code and HTTP status, never by message text.

- Transient (retried by the dispatcher, then the run is requeued): throttling codes, HTTP 429 and 5xx, ECS's
  `ServerException`, timeouts and connection failures, and RunTask `failures` that mean capacity is short now
  (`RESOURCE:*`, `AGENT`, Fargate's "Capacity is unavailable at this time"). RunTask reports failures in its
  answer, not as an error; their `reason` is the only code ECS gives for them.
- Permanent (the run is CRASHED with the reason): ClusterNotFoundException, AccessDenied, invalid parameters,
  ClientException (e.g. a task definition that cannot be described) and any other 4xx.
- No credentials or no region: a ConfigurationError, since nothing works until the function is set up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from push_pools.errors import (
    ConfigurationError,
    PermanentSubmissionError,
    PushPoolError,
    TransientSubmissionError,
)

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

_HINTS = {
    "ClusterNotFoundException": "create the cluster, or set the pool's `cluster` job variable to an existing one",
    "AccessDeniedException": "grant the function's role this action (see terraform/modules/aws/iam.tf)",
    "AccessDenied": "grant the function's role this action (see terraform/modules/aws/iam.tf)",
    "UnrecognizedClientException": "the function's AWS credentials are not valid",
}


def translate(exc: Exception, action: str) -> PushPoolError:
    """The push-pools error for an SDK exception raised by `action` (e.g. "ecs:RunTask")."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, ClientError):
        return _client_error(exc.response, action)
    if isinstance(exc, NoCredentialsError | NoRegionError):
        return ConfigurationError(f"{action}: {exc}")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TransientSubmissionError(f"{action}: {type(exc).__name__}")
    return PermanentSubmissionError(f"{action} failed: {type(exc).__name__}: {exc}")


def _client_error(response: Mapping[str, Any], action: str) -> PushPoolError:
    error = response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    metadata = response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    message = f"{action} refused ({code}): {error.get('Message', '')}".rstrip(": ")
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientSubmissionError(message, retry_after=_retry_after(metadata.get("HTTPHeaders", {})))
    hint = _HINTS.get(code)
    return PermanentSubmissionError(f"{message} — {hint}" if hint else message)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def failures_error(failures: Sequence[Mapping[str, Any]]) -> PushPoolError:
    """The error for RunTask `failures` (it answered, but started nothing)."""
    first = failures[0]
    reason = str(first.get("reason", "unknown"))
    detail = f" ({first['detail']})" if first.get("detail") else ""
    message = f"ecs:RunTask started no task: {reason}{detail}"
    if reason.startswith(CAPACITY_FAILURE_PREFIXES):
        return TransientSubmissionError(message)
    return PermanentSubmissionError(message)
