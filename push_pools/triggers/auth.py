"""Webhook authentication by a shared secret, checked in constant time.

A request proves it knows the secret in one of two ways:

- a token: `Authorization: Bearer <secret>` or `X-Push-Pool-Token: <secret>` (what a Prefect automation's
  webhook block can send as a static header);
- a signature: `X-Push-Pool-Timestamp: <unix seconds>` and `X-Push-Pool-Signature: sha256=<hex>`, the
  HMAC-SHA256 of `"<timestamp>." + body` under the secret. The timestamp is 1 to 12 ASCII digits; one more
  than the replay window away from now is refused, and so is a signature this instance has already accepted
  and that is still valid: it is remembered until its own timestamp leaves the window, so a future-dated
  signature cannot be replayed once a window after its receipt.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import threading
import time
from collections.abc import Callable, Mapping

from push_pools.errors import AuthenticationError

TOKEN_HEADER = "x-push-pool-token"
TIMESTAMP_HEADER = "x-push-pool-timestamp"
SIGNATURE_HEADER = "x-push-pool-signature"
SIGNATURE_PREFIX = "sha256="
_MAX_REMEMBERED = 10_000
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers that sign `body` at `timestamp`: for clients, tests and the docs' examples."""
    return {
        "X-Push-Pool-Timestamp": str(timestamp),
        "X-Push-Pool-Signature": _signature(secret.encode(), body, timestamp),
    }


def _signature(secret: bytes, body: bytes, timestamp: int) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookAuthenticator:
    """Checks a request's token or signature against the shared secret."""

    def __init__(
        self, secret: str | None, *, replay_window_seconds: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret.encode() if secret else None
        self._window = replay_window_seconds
        self._clock = clock
        self._seen: set[str] = set()
        self._expiries: list[tuple[int, str]] = []  # a heap: when each remembered signature stops being valid
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Return if the request is authentic; raise AuthenticationError saying why not otherwise."""
        if self._secret is None:
            raise AuthenticationError("no webhook secret is configured (set PUSH_POOL_WEBHOOK_SECRET)")
        lowered = {name.lower(): value for name, value in headers.items()}
        if SIGNATURE_HEADER in lowered:
            self._verify_signature(self._secret, lowered, body)
            return
        token = lowered.get(TOKEN_HEADER) or _bearer(lowered.get("authorization", ""))
        if not token:
            raise AuthenticationError("missing credentials: send a bearer token or an X-Push-Pool-Signature")
        if not hmac.compare_digest(token.encode(errors="replace"), self._secret):
            raise AuthenticationError("invalid token")

    def _verify_signature(self, secret: bytes, headers: Mapping[str, str], body: bytes) -> None:
        text = headers.get(TIMESTAMP_HEADER, "")
        if not _UNIX_SECONDS.fullmatch(text):
            raise AuthenticationError("signed requests need an X-Push-Pool-Timestamp in unix seconds")
        timestamp = int(text)
        now = self._clock()
        if abs(now - timestamp) > self._window:
            raise AuthenticationError(f"request timestamp is outside the {self._window}s replay window")
        signature = headers[SIGNATURE_HEADER]
        if not hmac.compare_digest(signature.encode(errors="replace"), _signature(secret, body, timestamp).encode()):
            raise AuthenticationError("invalid signature")
        self._remember(signature, expires=timestamp + self._window, now=now)

    def _remember(self, signature: str, *, expires: int, now: float) -> None:
        with self._lock:
            while self._expiries and (self._expiries[0][0] < now or len(self._expiries) > _MAX_REMEMBERED):
                self._seen.discard(heapq.heappop(self._expiries)[1])
            if signature in self._seen:
                raise AuthenticationError("replayed request: this signature was already used")
            self._seen.add(signature)
            heapq.heappush(self._expiries, (expires, signature))


def _bearer(authorization: str) -> str:
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""
