"""A local fake of Azure Queue Storage's Put Message, for the real `azure-storage-queue` client.

`POST /{account}/{queue}/messages?visibilitytimeout=N` with `<QueueMessage><MessageText>…</MessageText>
</QueueMessage>` is stored in `messages` (text and visibility delay) and answered 201 with the XML the SDK reads.
`fail_with` makes every call answer that status instead. Serves on 127.0.0.1, port 0, until closed.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development key: signing only, it grants nothing anywhere."""


@dataclass(frozen=True)
class QueuedMessage:
    queue: str
    text: str
    visibility_timeout: int


class FakeQueueService:
    def __init__(self) -> None:
        self.messages: list[QueuedMessage] = []
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeQueueService:
        server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.02), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def account_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake queue service is not running")
        return f"http://127.0.0.1:{self._server.server_port}/{ACCOUNT}"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if self.fail_with is not None:
            body = "<?xml version='1.0' encoding='utf-8'?><Error><Code>ServerBusy</Code><Message>busy</Message></Error>"
            headers = {"x-ms-error-code": "ServerBusy"}
            return Response(body, self.fail_with, headers, content_type="application/xml")
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 3 or parts[2] != "messages":
            return Response(status=404)
        if not request.headers.get("Authorization", "").startswith("SharedKey "):
            return Response(status=403)
        text = ElementTree.fromstring(request.get_data()).findtext("MessageText") or ""
        visibility = int(request.args.get("visibilitytimeout", "0"))
        with self._lock:
            self.messages.append(QueuedMessage(parts[1], text, visibility))
        now = datetime.now(UTC)
        fmt = "%a, %d %b %Y %H:%M:%S GMT"
        body = (
            "<?xml version='1.0' encoding='utf-8'?><QueueMessagesList><QueueMessage>"
            f"<MessageId>{uuid.uuid4()}</MessageId><InsertionTime>{now.strftime(fmt)}</InsertionTime>"
            f"<ExpirationTime>{(now + timedelta(days=7)).strftime(fmt)}</ExpirationTime>"
            f"<PopReceipt>receipt</PopReceipt><TimeNextVisible>{now.strftime(fmt)}</TimeNextVisible>"
            "</QueueMessage></QueueMessagesList>"
        )
        return Response(body, 201, content_type="application/xml")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None
