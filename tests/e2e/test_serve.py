"""`push-pool serve` over real HTTP on 127.0.0.1: signed and token requests, a run delayed until due by the
in-process queue, the periodic tick, and bad requests answered before anything is dispatched."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.triggers.auth import sign
from push_pools.triggers.http_server import LocalFunction
from tests.conftest import ScheduleRun

SECRET = "serve-secret"


@pytest.fixture
def served(
    store: LocalStore, backend: InMemoryBackend, settings: Settings
) -> Iterator[tuple[LocalFunction, httpx.Client]]:
    settings = Settings(
        home=settings.home, webhook_secret=SECRET, tick_interval_seconds=0.2, webhook_max_body_bytes=2048
    )
    function = LocalFunction(
        Dispatcher(store, Backends(settings, {"process": backend}), settings), host="127.0.0.1", port=0
    )
    function.start()
    host, port = function.address
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client:
        yield function, client
    function.stop()


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def test_health(served: tuple[LocalFunction, httpx.Client]) -> None:
    _, client = served
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/elsewhere").status_code == 404


def test_a_signed_webhook_submits_at_once(
    served: tuple[LocalFunction, httpx.Client], store: LocalStore, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    _, client = served
    run = schedule_run()
    body = json.dumps({"flow_run_id": run.id}).encode()
    response = client.post("/", content=body, headers=sign(SECRET, body, int(time.time())))
    assert response.status_code in (202,)
    assert response.json()["status"] in ("submitted", "skipped")  # the periodic tick may have won the claim
    wait_for(lambda: store.get_run(run.id).infrastructure_pid is not None)  # the tick that won may still be recording
    assert backend.calls["submit"] == 1


def test_a_run_due_soon_is_submitted_when_due_by_the_delay_queue(
    served: tuple[LocalFunction, httpx.Client], store: LocalStore, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    function, client = served
    function.tick_interval = 3600  # only the delay queue can submit it now
    time.sleep(0.3)
    run = schedule_run(in_seconds=0.5)
    response = client.post(
        "/", content=json.dumps({"flow_run_id": run.id}), headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert (response.status_code, response.json()["status"]) == (202, "queued")
    wait_for(lambda: store.get_run(run.id).infrastructure_pid is not None)
    submitted_at = datetime.now(UTC)
    assert submitted_at >= run.expected_start_time
    assert backend.calls["submit"] == 1


def test_the_periodic_tick_submits_without_any_request(
    served: tuple[LocalFunction, httpx.Client], store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    wait_for(lambda: store.get_run(run.id).state.type is not StateType.SCHEDULED)
    assert store.get_pool("pool").last_tick_at is not None


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b'{"action": "tick"}', 401),
        ({"Authorization": "Bearer wrong"}, b'{"action": "tick"}', 401),
        ({"Authorization": f"Bearer {SECRET}"}, b"not json", 400),
        ({"Authorization": f"Bearer {SECRET}"}, b'{"flow_run_id": "00000000-0000-4000-8000-000000000000"}', 404),
        ({"Authorization": f"Bearer {SECRET}"}, b"x" * 4096, 413),
    ],
)
def test_bad_requests_get_clear_answers(
    served: tuple[LocalFunction, httpx.Client],
    backend: InMemoryBackend,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    _, client = served
    response = client.post("/", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]
    assert backend.calls["submit"] == 0


def test_a_request_without_content_length_is_refused(served: tuple[LocalFunction, httpx.Client]) -> None:
    function, _ = served
    host, port = function.address
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer serve-secret\r\n\r\n")
        answer = connection.recv(4096).decode()
    assert answer.startswith("HTTP/1.0 411") or answer.startswith("HTTP/1.1 411")


def test_the_serve_command_runs_until_sigterm(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "push-pool"
    env = {**os.environ, "PUSH_POOL_HOME": str(tmp_path), "PUSH_POOL_WEBHOOK_SECRET": SECRET, "COLUMNS": "200"}
    server = subprocess.Popen([script, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        address = re.search(r"http://[\d.]+:\d+", line)
        assert address is not None, line
        response = httpx.post(address.group(0), json={"action": "tick"}, headers={"Authorization": f"Bearer {SECRET}"})
        assert response.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
