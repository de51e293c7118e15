"""What a webhook request or queue message may say, and how it is read. Pure.

The documented payload (JSON; the Content-Type header is not required, because Prefect's call-webhook action
may send none):

    {"flow_run_id": "<uuid>"}                          submit this run if it is due (the default action)
    {"flow_run_id": "<uuid>", "action": "cancel"}      stop this CANCELLING run's infrastructure
    {"flow_run_id": "<uuid>", "event": "prefect.flow-run.Cancelling"}   the action named by a Prefect event
    {"action": "tick"}  or  {"action": "tick", "pool": "<name>"}        run the tick now

A Prefect event itself (`{"event": "prefect.flow-run.Scheduled", "resource": {"prefect.resource.id":
"prefect.flow-run.<uuid>"}, ...}`) is accepted too, so an automation may send `{{ event }}` unchanged.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from push_pools.errors import PayloadError
from push_pools.models import NAME_PATTERN

MAX_MESSAGE_BYTES = 64 * 1024


class Action(StrEnum):
    SUBMIT = "submit"
    CANCEL = "cancel"
    TICK = "tick"


PREFECT_EVENT_ACTIONS = {
    "prefect.flow-run.Scheduled": Action.SUBMIT,
    "prefect.flow-run.Late": Action.SUBMIT,
    "prefect.flow-run.Cancelling": Action.CANCEL,
}
_PREFECT_RUN_RESOURCE = "prefect.flow-run."


class RunRequest(BaseModel):
    """One thing a trigger asks the dispatcher to do."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Action = Action.SUBMIT
    flow_run_id: str | None = None
    pool: str | None = Field(default=None, pattern=NAME_PATTERN)

    @field_validator("flow_run_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a UUID") from None

    @model_validator(mode="after")
    def _run_named(self) -> RunRequest:
        if self.action is not Action.TICK and self.flow_run_id is None:
            raise ValueError(f"action {self.action.value!r} needs a flow_run_id")
        return self

    def to_message(self) -> str:
        """The queue message body for this request."""
        return self.model_dump_json(exclude_none=True)


def parse_request(body: bytes | str) -> RunRequest:
    """Read a webhook body or queue message; a PayloadError says what is wrong with it."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise PayloadError(f"payload of {len(raw)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from None
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        raise PayloadError("payload has a number too long to read") from None
    except RecursionError:
        raise PayloadError("payload is nested too deeply") from None
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object")
    try:
        return RunRequest.model_validate(_normalise(document))
    except ValidationError as exc:
        raise PayloadError("invalid payload: " + _describe(exc)) from None


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Turn a Prefect event (or our payload naming one) into our fields."""
    fields = dict(document)
    event = fields.pop("event", None)
    if event is not None:
        if not isinstance(event, str) or event not in PREFECT_EVENT_ACTIONS:
            known = ", ".join(PREFECT_EVENT_ACTIONS)
            raise PayloadError(f"unsupported event {str(event)[:100]!r}; supported events: {known}")
        if "action" in fields:
            raise PayloadError("give either 'action' or 'event', not both")
        fields["action"] = PREFECT_EVENT_ACTIONS[event]
    resource = fields.pop("resource", None)
    if "flow_run_id" not in fields and isinstance(resource, dict):
        resource_id = resource.get("prefect.resource.id")
        if isinstance(resource_id, str) and resource_id.startswith(_PREFECT_RUN_RESOURCE):
            fields["flow_run_id"] = resource_id.removeprefix(_PREFECT_RUN_RESOURCE)
    return fields


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}" for error in exc.errors()
    )
