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
- `"azure"`: flat top-level keys (`invocation_id`, run fields): Application Insights stores a JSON
  line's keys as customDimensions, queried as `customDimensions.flow_run_id`.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
from typing import Any, Literal

Platform = Literal["plain", "aws", "gcp", "azure"]

RUN_FIELDS = ("flow_run_id", "pool", "deployment", "attempt", "infrastructure_pid", "outcome")
CORRELATION_KEYS: dict[str, str] = {
    "plain": "correlation_id",
    "aws": "function_request_id",
    "gcp": "execution_id",
    "azure": "invocation_id",
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
        fields = " ".join(
            f"{name}={getattr(record, name)}" for name in RUN_FIELDS if getattr(record, name, None) is not None
        )
        return f"{line} {fields}" if fields else line


def configure(formatter: logging.Formatter, level: int = logging.INFO) -> None:
    """Send push-pools' records to stderr through this formatter, replacing earlier handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    package = logging.getLogger("push_pools")
    package.handlers = [handler]
    package.setLevel(level)
    package.propagate = False
