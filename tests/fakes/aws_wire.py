"""`aws_front` at the wire: a moto server on 127.0.0.1 whose every request passes the same layers (`Layer`) before
moto sees it, whichever process, SDK or version sent it.

`AwsFront` hooks one boto3 session, so it only sees the calls of the process that made the session. `AwsWire` is
for comparisons across processes (push-pools beside Prefect's ECS worker, which runs in its own virtual
environment): both point `AWS_ENDPOINT_URL` at it and are counted, throttled and answered by the same layers. It
serves moto's own WSGI application in front of one WSGI wrapper, so there is no second hop.

Each request is recorded as a `WireCall`, attributed to the access key that signed it (SigV4's credential scope
names the key and the service): give each client its own key and one server counts them apart. The operation is the
`X-Amz-Target` action (JSON protocols: ECS, SQS...) or the `Action` form field (query protocols: EC2, IAM...).
Requests without a signature (moto's own `/moto-api/` endpoints) pass straight through, unrecorded.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import requests
from botocore.awsrequest import AWSResponse
from werkzeug.serving import BaseWSGIServer, make_server

from tests.fakes.aws_front import Call, Layer

_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")
_HTTP_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(frozen=True)
class WireCall:
    """One signed request and its answer, as seen at the wire."""

    access_key: str
    service: str
    operation: str
    status: int
    answered_at: float
    """`time.monotonic()` of this process when the answer left."""
    params: dict[str, Any] = field(repr=False)
    answer: dict[str, Any] = field(repr=False)
    by_layer: bool = False
    """A layer answered (a throttle, a replayed client token) instead of moto."""

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


class AwsWire:
    """A moto server behind `layers`, recording every signed call. Start it, or use it as a context manager."""

    def __init__(self, *layers: Layer) -> None:
        self.layers: list[Layer] = list(layers)
        """The layers every request passes, in order; replace the list between measurements to reset them."""
        self._calls: list[WireCall] = []
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the wire is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return None

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-wire", daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> AwsWire:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_moto(self) -> None:
        """Forget every AWS resource (moto's reset); the record of calls is kept."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()

    # ---- the record -----------------------------------------------------------------------------------------

    def calls(self, *, access_key: str | None = None, since: int = 0) -> list[WireCall]:
        """The calls recorded from position `since` on (see `mark`), of one access key or of all."""
        with self._lock:
            recorded = self._calls[since:]
        return [call for call in recorded if access_key is None or call.access_key == access_key]

    def mark(self) -> int:
        """A position in the record: pass it as `since` to see only the calls made after it."""
        with self._lock:
            return len(self._calls)

    def counts(self, *, access_key: str | None = None, since: int = 0) -> Counter[str]:
        """Calls by action (`ecs:RunTask`), answered by moto or by a layer alike."""
        return Counter(call.action for call in self.calls(access_key=access_key, since=since))

    # ---- the WSGI wrapper -----------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _read_body(environ)
        signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if signed is None:
            return self._moto(environ, start_response)  # type: ignore[no-any-return]
        call = Call(
            service=signed["service"],
            operation=_operation(environ, body),
            params=_params(environ, body),
            context={},
            url=f"http://{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}",
        )
        for layer in self.layers:
            answer = layer.on_request(call)
            if answer is not None:
                return self._answer_from_layer(signed["key"], call, answer, start_response)
        status, headers, content = self._ask_moto(environ)
        for layer in self.layers:
            layer.on_response(call, status, content)
        self._record(WireCall(signed["key"], call.service, call.operation, status, time.monotonic(),
                              call.params, _json(content)))  # fmt: skip
        start_response(f"{status} {_HTTP_REASONS.get(status, 'Status')}", headers)
        return [content]

    def _ask_moto(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        captured = _Captured()
        chunks = self._moto(environ, captured)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return captured.status, captured.headers, content

    def _answer_from_layer(
        self, key: str, call: Call, answer: AWSResponse, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        content = answer.content
        self._record(WireCall(key, call.service, call.operation, answer.status_code, time.monotonic(),
                              call.params, _json(content), by_layer=True))  # fmt: skip
        headers = [(name, value) for name, value in answer.headers.items() if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(content))))
        status = answer.status_code
        start_response(f"{status} {_HTTP_REASONS.get(status, 'Status')}", headers)
        return [content]

    def _record(self, call: WireCall) -> None:
        with self._lock:
            self._calls.append(call)


class _Captured:
    """A WSGI `start_response` that keeps what it is given."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        self.status = int(status.split(" ", 1)[0])
        self.headers = list(headers)
        return lambda data: None


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _operation(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target.rsplit(".", 1)[-1])
    form = dict(parse_qsl(body.decode(errors="replace"))) if body else {}
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    return form.get("Action") or query.get("Action") or f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


def _params(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    if environ.get("HTTP_X_AMZ_TARGET"):
        return _json(body)
    return dict(parse_qsl(body.decode(errors="replace"))) if body else {}


def _json(content: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(content) if content else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
