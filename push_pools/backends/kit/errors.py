"""One mechanism mapping a cloud SDK's errors to push-pools' error tree, fed one table per cloud.

Shaped after httpx's transport exception mapping: the SDK's exceptions go in, ours come out `from` them. Each cloud
gives an `ErrorTable`: which SDK exceptions it translates, how to read one as an `SdkFailure` (the cloud's error
code, the HTTP status, the text for people, the Retry-After hint), and which codes and statuses pass. The decision is
made here, by code and status only, never by message text:

- the executor's own setup failing (no credentials, no region) → ExecutorNotReadyError, and its identity denied or
  not valid → ExecutorDeniedError (a permanent error that is also the executor's): the run waits SCHEDULED and the
  pool shows NOT_READY until the function is fixed;
- no answer at all, neither code nor status (network, timeout, a token endpoint that failed) → transient;
- a transient code, or a status the table calls transient (by default 408, 429 and 5xx) → TransientSubmissionError,
  with the cloud's Retry-After;
- anything else → PermanentSubmissionError, with the table's hint for its code or status when it has one.

Every message reads `<action>: HTTP <status> <code>: <detail>`, with known secret values scrubbed out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from push_pools.errors import (
    ExecutorDeniedError,
    ExecutorNotReadyError,
    PermanentSubmissionError,
    PushPoolError,
    TransientSubmissionError,
)

MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class SdkFailure:
    """What one SDK error says, as far as deciding goes."""

    code: str | None
    """The cloud's error code (`ThrottlingException`, `ContainerGroupQuotaReached`, gRPC's `RESOURCE_EXHAUSTED`)."""
    status: int | None
    """The HTTP status of the answer; None when unknown. Neither code nor status: no answer came (network, timeout,
    credentials endpoint), which is transient."""
    detail: str
    """The cloud's explanation, for people."""
    retry_after: float | None = None
    """Seconds the cloud asked to wait, when it said."""


def default_transient_status(status: int) -> bool:
    """408, 429 and 5xx pass."""
    return status in (408, 429) or status >= 500


@dataclass(frozen=True)
class ErrorTable:
    """One cloud's errors: what the SDK raises, how to read it, and which codes and statuses pass."""

    sdk_errors: Callable[[], tuple[type[BaseException], ...]]
    """The SDK exceptions to translate (imported when first needed, so the kit imports no SDK)."""
    read: Callable[[BaseException], SdkFailure]
    transient_codes: Collection[str] = frozenset()
    transient_status: Callable[[int], bool] = default_transient_status
    configuration_errors: Callable[[], tuple[type[BaseException], ...]] = tuple
    """SDK exceptions that mean the function is not set up (no credentials, no region)."""
    executor_codes: Collection[str] = frozenset()
    """Error codes that mean the function's own identity is denied or not valid (`AccessDeniedException`)."""
    executor_status: Collection[int] = frozenset()
    """HTTP statuses that mean the same, for clouds whose codes do not say it (401, 403)."""
    hints: Mapping[str | int, str] = field(default_factory=dict)
    """What to do about a permanent error, by code or status."""

    def translate(self, exc: BaseException, action: str, secrets: Iterable[str] = ()) -> PushPoolError:
        """Our error for the SDK exception `exc` raised by `action` (e.g. "ecs:RunTask")."""
        if isinstance(exc, self.configuration_errors()):
            return ExecutorNotReadyError(scrub(f"{action}: {exc}", secrets))
        failure = self.read(exc)
        code, status = failure.code, failure.status
        said = " ".join(part for part in (f"HTTP {status}" if status else None, code) if part)
        message = scrub(f"{action}: {said}: {failure.detail}" if said else f"{action}: {failure.detail}", secrets)
        no_answer = status is None and code is None
        if no_answer or (code is not None and code in self.transient_codes) or self.transient_status(status or 0):
            return TransientSubmissionError(message, retry_after=failure.retry_after, code=code, status=status)
        hint = self.hints.get(code or "") or self.hints.get(status or 0)
        message = f"{message} — {hint}" if hint else message
        if code in self.executor_codes or status in self.executor_status:
            return ExecutorDeniedError(message, code=code, status=status)
        return PermanentSubmissionError(message, code=code, status=status)

    @contextmanager
    def translated(self, action: str, secrets: Iterable[str] = ()) -> Iterator[None]:
        """Raise the SDK errors of the block as ours, `from` the original."""
        try:
            yield
        except self.sdk_errors() as exc:
            raise self.translate(exc, action, secrets) from exc


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text without any secret value of the request, and not longer than MAX_MESSAGE_CHARS."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
