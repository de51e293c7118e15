"""The webhook, independent of any web framework: headers and body in, status and JSON out.

Order of checks: size (413), credentials (401), payload (400), then the request itself (202, or 200 for a tick;
404 for an unknown run; 503 with Retry-After when it should be sent again; 500 when our configuration is wrong).
Nothing is dispatched unless every check passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from push_pools.errors import AuthenticationError, PayloadError
from push_pools.triggers.auth import WebhookAuthenticator
from push_pools.triggers.handling import ReplyKind, RequestHandler
from push_pools.triggers.payloads import Action, parse_request

RETRY_AFTER_SECONDS = 30
_STATUS = {
    ReplyKind.DONE: 202,
    ReplyKind.RETRY: 503,
    ReplyKind.NOT_FOUND: 404,
    ReplyKind.INVALID: 400,
    ReplyKind.FAILED: 500,
}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    def text(self) -> str:
        return json.dumps(self.body)


class Webhook:
    """Authenticates, parses and handles one webhook request."""

    def __init__(self, handler: RequestHandler, authenticator: WebhookAuthenticator, *, max_body_bytes: int) -> None:
        self.handler = handler
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes

    @classmethod
    def for_handler(cls, handler: RequestHandler) -> Webhook:
        """The webhook every entry point serves: the secret, replay window and size limit from settings."""
        settings = handler.dispatcher.settings
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        authenticator = WebhookAuthenticator(secret, replay_window_seconds=settings.webhook_replay_window_seconds)
        return cls(handler, authenticator, max_body_bytes=settings.webhook_max_body_bytes)

    def oversized(self, length: int) -> HttpResponse | None:
        """The 413 answer for a body of this length, if it is over the limit (checked before reading it)."""
        if length <= self.max_body_bytes:
            return None
        return error_response(413, f"body of {length} bytes is over the {self.max_body_bytes}-byte limit")

    def handle(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        too_large = self.oversized(len(body))
        if too_large is not None:
            return too_large
        try:
            self.authenticator.verify(headers, body)
        except AuthenticationError as exc:
            return error_response(401, str(exc), {"WWW-Authenticate": 'Bearer realm="push-pools"'})
        try:
            request = parse_request(body)
        except PayloadError as exc:
            return error_response(400, str(exc))
        reply = self.handler.handle(request)
        status = 200 if request.action is Action.TICK and reply.kind is ReplyKind.DONE else _STATUS[reply.kind]
        extra = {"Retry-After": str(RETRY_AFTER_SECONDS)} if reply.kind is ReplyKind.RETRY else {}
        return HttpResponse(status, reply.body, {"Content-Type": "application/json", **extra})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, {"error": message}, {"Content-Type": "application/json", **(headers or {})})
