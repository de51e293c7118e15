"""An HTTP transport between push-pools and the real Prefect server that counts the requests the server receives,
and can lose the answer to chosen requests after the server has handled them (a timeout on the way back).

A Prefect server on SQLite answers 503 when a write finds the database busy (`PATCH flow_runs/{id}/labels` reads
then writes in one deferred transaction, which SQLite cannot make wait, so it meets this whenever another write
lands in between), and the client sends the same request again. `answered` counts the requests the server carried
out, one per call push-pools makes, whatever the contention; `busy` counts those 503s apart."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable

import httpx

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_API_PREFIX = re.compile(r"^/api/")
BUSY = 503


def endpoint(request: httpx.Request) -> str:
    """`POST flow_runs/{id}/set_state`: the method and the path, ids replaced by `{id}`."""
    path = _ID.sub("{id}", _API_PREFIX.sub("", request.url.path))
    return f"{request.method} {path}"


class RecordingTransport(httpx.BaseTransport):
    """Forwards to the server; counts, by endpoint, what reached it (`calls`), what it carried out (`answered`)
    and what it refused as busy (`busy`); `lose` drops answers it selects; `absent` answers 404 to the requests it
    selects without sending them, as a server without that endpoint (an older Prefect) would."""

    def __init__(
        self,
        lose: Callable[[httpx.Request], bool] | None = None,
        absent: Callable[[httpx.Request], bool] | None = None,
    ) -> None:
        self._inner = httpx.HTTPTransport()
        self._lose = lose
        self._absent = absent
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.busy: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._absent is not None and self._absent(request):
            return httpx.Response(404, json={"detail": "Not Found"}, request=request)
        response = self._inner.handle_request(request)
        response.read()
        with self._lock:
            self.calls[endpoint(request)] += 1
            (self.busy if response.status_code == BUSY else self.answered)[endpoint(request)] += 1
            lost = self._lose is not None and self._lose(request)
            if lost:
                self.lost[endpoint(request)] += 1
        if lost:
            raise httpx.ReadTimeout("the answer was lost on its way back", request=request)
        return response

    def clear(self) -> None:
        with self._lock:
            for counter in (self.calls, self.answered, self.busy, self.lost):
                counter.clear()

    def close(self) -> None:
        self._inner.close()


def endpoint_is(method: str, path_suffix: str) -> Callable[[httpx.Request], bool]:
    """Select every request whose method matches and whose path ends with `path_suffix`."""
    return lambda request: request.method == method and request.url.path.endswith(path_suffix)


def lose_first(method: str, path_suffix: str) -> Callable[[httpx.Request], bool]:
    """Lose the answer to the first request whose method matches and whose path ends with `path_suffix`."""
    pending = [True]

    def select(request: httpx.Request) -> bool:
        if pending[0] and request.method == method and request.url.path.endswith(path_suffix):
            pending[0] = False
            return True
        return False

    return select
