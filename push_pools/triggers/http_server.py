"""`push-pool serve`: the function, running locally. The same webhook and tick code paths the cloud entry
points call, behind the standard library's HTTP server, with a periodic tick and an in-process delay queue
standing in for SQS's delayed messages.

    POST /          the webhook (any path but /healthz)
    GET  /healthz   200 while the server runs
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from push_pools.dispatcher import Dispatcher
from push_pools.tick import tick
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.payloads import RunRequest
from push_pools.triggers.webhook import Webhook, error_response

logger = logging.getLogger("push_pools.serve")


class LocalFunction:
    """An HTTP webhook server plus a tick every `tick_interval` seconds, until `stop()`."""

    def __init__(self, dispatcher: Dispatcher, *, host: str, port: int) -> None:
        settings = dispatcher.settings
        self.dispatcher = dispatcher
        self.handler = RequestHandler(dispatcher, enqueue=self._enqueue)
        self.webhook = Webhook.for_handler(self.handler)
        self.tick_interval = settings.tick_interval_seconds
        self._stopping = threading.Event()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler_class(self.webhook))
        self.server.daemon_threads = True
        self._threads = [
            threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="push-pool-http", daemon=True
            ),
            threading.Thread(target=self._tick_forever, name="push-pool-tick", daemon=True),
        ]

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        for thread in self._threads:
            thread.join(timeout=10)

    def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                report = tick(self.dispatcher)
                logger.info("tick: %s", report.summary())
            except Exception:  # the loop must outlive any one failing tick
                logger.exception("tick failed")
            self._stopping.wait(self.tick_interval)

    def _enqueue(self, request: RunRequest, delay: float) -> None:
        """Handle the request again after `delay` seconds, as a delayed queue message would arrive."""
        timer = threading.Timer(delay, self._deliver, args=(request,))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _deliver(self, request: RunRequest) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}
        if not self._stopping.is_set():
            # A RETRY here needs no redelivery: the run is SCHEDULED again, and the periodic tick takes it.
            reply = self.handler.handle(request)
            logger.info("delayed %s %s: %s", request.action, request.flow_run_id, reply.kind)


def _handler_class(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "push-pools"

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b'{"status": "ok"}', {"Content-Type": "application/json"})
            else:
                self._send(404, b'{"error": "not found"}', {"Content-Type": "application/json"})

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                response = error_response(411, "a Content-Length header is required")
            else:
                response = webhook.oversized(int(length)) or webhook.handle(
                    dict(self.headers.items()), self.rfile.read(int(length))
                )
            self._send(response.status, response.text().encode(), response.headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The caller stopped waiting (Prefect's webhook call gives up after 5 s); the work is done anyway.
                logger.info("%s left before the %s answer", self.address_string(), status)

        def log_message(self, format: str, *args: object) -> None:
            logger.info("%s " + format, self.address_string(), *args)

    return Handler
