"""The one exception tree of push-pools.

Every error push-pools raises on purpose is a `PushPoolError`; anything else is a bug. The tree says what the
caller should do, not where the error came from:

    PushPoolError
    ├── ConfigurationError          settings, unknown pool type, missing cloud resource named by the user
    │   └── ExecutorNotReadyError   this installation cannot serve a pool now: the run waits, the pool is NOT_READY
    ├── NotFoundError               an unknown pool, deployment or flow run
    ├── AlreadyExistsError          creating something that exists (use --overwrite / update)
    ├── TemplateError               a base job template that cannot be used, or a placeholder that cannot render
    │   └── JobVariablesError       job variables that break the template's `variables` schema
    ├── PayloadError                a webhook or queue message that cannot be read (HTTP 400)
    │   ├── PayloadTooLargeError    over the body size limit (HTTP 413)
    │   └── AuthenticationError     missing, forged or replayed credentials (HTTP 401)
    ├── OrchestratorError           the store or orchestrator API refused or failed
    │   └── OrchestratorUnavailableError   it cannot be reached now: retry later
    └── SubmissionError             the cloud refused or failed a submission
        ├── TransientSubmissionError    throttling, 5xx, timeouts: retried with backoff, then requeued
        └── PermanentSubmissionError    bad request, missing cluster: the run is CRASHED
            └── ExecutorDeniedError     the function's own identity denied: also an ExecutorNotReadyError

Backends translate SDK errors into `SubmissionError`s at their boundary (by error code or HTTP status, never by
message text) and raise them `from` the SDK error; the error keeps the cloud's code and HTTP status
(`push_pools.backends.kit.errors` is the one mechanism that does it, fed one table per cloud).
"""

from __future__ import annotations


class PushPoolError(Exception):
    """Base class of every error push-pools raises on purpose."""


class ConfigurationError(PushPoolError):
    """A setting, a pool type or a cloud resource named by the user is missing or wrong."""


class ExecutorNotReadyError(ConfigurationError):
    """The executor itself cannot serve a pool now, through no fault of the run: the pool type's extra is not
    installed, a setting or the cloud region is missing, the function's identity has no credentials or is denied.

    The dispatcher leaves (or puts back) the run SCHEDULED and marks the pool NOT_READY with this reason; the run is
    submitted once the executor is fixed.
    """


class NotFoundError(PushPoolError):
    """An unknown work pool, deployment or flow run."""


class AlreadyExistsError(PushPoolError):
    """Creating an object whose name is taken."""


class TemplateError(PushPoolError):
    """A base job template that cannot be used, or a placeholder that cannot be rendered."""


class JobVariablesError(TemplateError):
    """Job variables that do not conform to the template's `variables` schema."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid job variables: " + "; ".join(problems))


class PayloadError(PushPoolError):
    """A webhook request or queue message that cannot be read."""


class PayloadTooLargeError(PayloadError):
    """A request body over the configured size limit."""


class AuthenticationError(PayloadError):
    """Missing, forged or replayed webhook credentials."""


class OrchestratorError(PushPoolError):
    """The embedded store or the orchestrator's API refused or failed a call."""


class OrchestratorUnavailableError(OrchestratorError):
    """The orchestrator cannot be reached now; the caller should retry later."""


class SubmissionError(PushPoolError):
    """The cloud refused or failed to start a flow run's infrastructure.

    `code` is the cloud's own error code (`ThrottlingException`, `ContainerGroupQuotaReached`) and `status` the HTTP
    status of its answer, when the error came from one.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TransientSubmissionError(SubmissionError):
    """Throttling, a server error or a timeout: worth retrying.

    `retry_after` carries the cloud's own hint (seconds), when it gave one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class PermanentSubmissionError(SubmissionError):
    """A refusal that retrying cannot fix; the run is marked CRASHED with this message."""


class ExecutorDeniedError(PermanentSubmissionError, ExecutorNotReadyError):
    """The cloud refused the function's own identity (access denied, credentials not valid): permanent for the call
    (retrying does not help), and the executor's fault, not the run's, so the run waits and the pool is NOT_READY."""
