"""One JSON line per log record, keyed by run, in the field names each log platform indexes.

A record's run fields come from `extra=` (`flow_run_id`, `pool`, `deployment`, `attempt`,
`infrastructure_pid`, `outcome`); the invocation's correlation id comes from `correlation_id`, a
context variable each entry point sets once per invocation (`bind_correlation_id`).

Flavours (`JsonFormatter(platform=...)`):
- `"plain"`: `timestamp`, `level`, `logger`, `message`, run fields, `correlation_id`.
- `"aws"`: the keys aws-lambda-powertools' Logger emits (`level`, `message`, `timestamp`,
  `function_request_id` for the Lambda request id), so CloudWatch Logs Insights queries work for both.
- `"gcp"`: Cloud Logging's `severity`, and the run fields also under `logging.googleapis.com/labels`
  (string values), so a run is found with `labels.flow_run_id="..."`; the execution id is `execution_id`.

Azure Functions is different: the Python worker's own handler sends each record's message to the host, which adds
the invocation id (`customDimensions.InvocationId`) but drops `extra` fields and does not parse JSON messages
(azure-functions-python-worker issues 1327, 1681). So there the run fields go into the message text itself
(`RunFieldsInMessage`), found with `traces | where message has "flow_run_id=RUN_ID"`.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
from typing import Any, Literal

Platform = Literal["plain", "aws", "gcp"]

RUN_FIELDS = ("flow_run_id", "pool", "deployment", "attempt", "infrastructure_pid", "outcome")
CORRELATION_KEYS: dict[str, str] = {
    "plain": "correlation_id",
    "aws": "function_request_id",
    "gcp": "execution_id",
}

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def bind_correlation_id(value: str | None) -> contextvars.Token[str | None]:
    """Tag every record of this invocation with the platform's request id; returns the token to reset it."""
    return correlation_id.set(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values JSON cannot encode are written as their `str()`."""

    def __init__(self, platform: Platform = "plain") -> None:
        super().__init__()
        self.platform = platform

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        timestamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat()
        entry: dict[str, Any] = {"timestamp": timestamp, "logger": record.name, "message": message}
        entry["severity" if self.platform == "gcp" else "level"] = record.levelname
        fields = {name: getattr(record, name) for name in RUN_FIELDS if getattr(record, name, None) is not None}
        entry.update(fields)
        request_id = correlation_id.get()
        if request_id is not None:
            entry[CORRELATION_KEYS[self.platform]] = request_id
        if self.platform == "gcp" and fields:
            entry["logging.googleapis.com/labels"] = {name: str(value) for name, value in fields.items()}
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable line for a terminal: the message, then the run fields as `key=value`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = run_fields_text(record)
        return f"{line} {fields}" if fields else line


class RunFieldsInMessage(logging.Filter):
    """Put on a handler whose pipeline keeps only the message text: appends the run's fields as `key=value`."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = run_fields_text(record)
        if fields and not getattr(record, "run_fields_in_message", False):
            record.msg, record.args = f"{record.getMessage()} {fields}", None
            record.run_fields_in_message = True
        return True


def run_fields_text(record: logging.LogRecord) -> str:
    """The record's run fields as `flow_run_id=... pool=...`, empty when it has none."""
    return " ".join(f"{name}={getattr(record, name)}" for name in RUN_FIELDS if getattr(record, name, None) is not None)


def configure(formatter: logging.Formatter, level: int = logging.INFO) -> None:
    """Send push-pools' records to stderr through this formatter, replacing earlier handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    package = logging.getLogger("push_pools")
    package.handlers = [handler]
    package.setLevel(level)
    package.propagate = False
