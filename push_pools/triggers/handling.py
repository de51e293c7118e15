"""What every trigger does with a request, whatever carried it (HTTP, SQS, Pub/Sub, a storage queue, a timer).

Entry points decode their platform's event into `RunRequest`s, call `RequestHandler.handle`, and encode the
`Reply`: an HTTP status for a webhook, ack or retry for a queue message. No entry point holds business logic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from push_pools.dispatcher import Dispatcher
from push_pools.errors import NotFoundError, OrchestratorUnavailableError, PayloadError, PushPoolError
from push_pools.models import SubmissionOutcome, SubmissionStatus
from push_pools.tick import tick
from push_pools.triggers.payloads import Action, RunRequest, parse_request

logger = logging.getLogger("push_pools.triggers")

Enqueue = Callable[[RunRequest, float], None]
"""Put a request back on the platform's queue, to be delivered after the given delay in seconds."""


class ReplyKind(StrEnum):
    DONE = "done"
    """Handled; nothing more to do for this request (even if the run was skipped or crashed)."""
    RETRY = "retry"
    """Not handled now, for a reason that passes: redeliver it (HTTP 503, queue message not acknowledged)."""
    NOT_FOUND = "not-found"
    """It names a run that does not exist."""
    INVALID = "invalid"
    """It cannot be read; redelivering it will not help."""
    FAILED = "failed"
    """Something on our side is wrong (configuration); a person should look."""


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def acknowledged(self) -> bool:
        """For queues: True to delete the message; False leaves it for redelivery and, in the end, the DLQ."""
        return self.kind in (ReplyKind.DONE, ReplyKind.NOT_FOUND)


class RequestHandler:
    """Carries out `RunRequest`s on a dispatcher."""

    def __init__(self, dispatcher: Dispatcher, *, enqueue: Enqueue | None = None) -> None:
        self.dispatcher = dispatcher
        self.enqueue = enqueue

    def handle_message(self, body: bytes | str) -> Reply:
        """A queue message: parse it, then handle it."""
        try:
            request = parse_request(body)
        except PayloadError as exc:
            logger.error("unreadable message: %s", exc)
            return Reply(ReplyKind.INVALID, {"error": str(exc)})
        return self.handle(request)

    def handle(self, request: RunRequest, *, deadline: float | None = None) -> Reply:
        """Carry out the request; a tick stops taking due runs at `deadline` (a `time.monotonic()` value)."""
        try:
            if request.action is Action.TICK:
                report = tick(self.dispatcher, request.pool, deadline=deadline)
                return Reply(ReplyKind.DONE, {"tick": report.summary(), "errors": report.errors})
            if request.flow_run_id is None:
                return Reply(ReplyKind.INVALID, {"error": f"action {request.action.value!r} needs a flow_run_id"})
            if request.action is Action.CANCEL:
                return _reply(self.dispatcher.cancel_run(request.flow_run_id))
            return self._submit(request, request.flow_run_id)
        except NotFoundError as exc:
            return Reply(ReplyKind.NOT_FOUND, {"error": str(exc)})
        except OrchestratorUnavailableError as exc:
            logger.warning("orchestrator unavailable: %s", exc)
            return Reply(ReplyKind.RETRY, {"error": str(exc)})
        except PushPoolError as exc:
            logger.error("request %s failed: %s", request.to_message(), exc)
            return Reply(ReplyKind.FAILED, {"error": str(exc)})
        except Exception as exc:  # a fault outside our error tree still gets an answer, never a dropped request
            logger.exception("request %s failed unexpectedly", request.to_message())
            return Reply(ReplyKind.FAILED, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    def _submit(self, request: RunRequest, flow_run_id: str) -> Reply:
        outcome = self.dispatcher.submit_run(flow_run_id)
        horizon = self.dispatcher.settings.enqueue_horizon_seconds
        due_in = outcome.due_in_seconds
        if outcome.status is SubmissionStatus.NOT_DUE and self.enqueue and due_in is not None and due_in <= horizon:
            self.enqueue(request, due_in)
            return Reply(ReplyKind.DONE, _body(outcome) | {"status": "queued", "delay_seconds": round(due_in, 3)})
        return _reply(outcome)


def _reply(outcome: SubmissionOutcome) -> Reply:
    kind = ReplyKind.RETRY if outcome.status is SubmissionStatus.REQUEUED else ReplyKind.DONE
    return Reply(kind, _body(outcome))


def _body(outcome: SubmissionOutcome) -> dict[str, Any]:
    return outcome.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
