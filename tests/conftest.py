"""Shared fixtures: an embedded store in a temporary home, a dispatcher over the in-memory backend, and a
function to schedule runs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from push_pools import logs
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend

MEMORY_TEMPLATE: dict[str, Any] = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}", "image": "{{ image }}", "cpu": "{{ cpu }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "image": {"type": "string", "default": "python:3.11"},
            "cpu": {"type": "integer", "minimum": 256, "default": 256},
        },
    },
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", submit_attempts=4, submit_deadline_seconds=5, orphan_timeout_seconds=60)


@pytest.fixture
def store(settings: Settings) -> Iterator[LocalStore]:
    store = LocalStore(settings.store_path)
    yield store
    store.close()


@pytest.fixture
def backend() -> InMemoryBackend:
    return InMemoryBackend()


@pytest.fixture
def dispatcher(store: LocalStore, backend: InMemoryBackend, settings: Settings) -> Dispatcher:
    """A dispatcher whose `process` pools go to the in-memory backend, with no real sleeping between retries."""
    return Dispatcher(store, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)


@pytest.fixture
def pool(store: LocalStore) -> WorkPool:
    """A pool of type `process` (served by the in-memory backend in `dispatcher`) with a small template."""
    return store.save_pool(WorkPool(name="pool", type="process", base_job_template=MEMORY_TEMPLATE))


@pytest.fixture
def deployment(store: LocalStore, pool: WorkPool) -> Deployment:
    return store.save_deployment(
        Deployment(id=str(uuid.uuid4()), name="deploy", pool_name=pool.name, command="echo hi")
    )


ScheduleRun = Callable[..., FlowRun]


@pytest.fixture
def schedule_run(store: LocalStore, deployment: Deployment) -> ScheduleRun:
    """Schedule a run of `deployment`, due `in_seconds` from now (negative: overdue)."""

    def schedule(in_seconds: float = -1, job_variables: dict[str, Any] | None = None) -> FlowRun:
        now = datetime.now(UTC)
        start = now + timedelta(seconds=in_seconds)
        return store.create_run(deployment, start, job_variables=job_variables, now=now)

    return schedule


@pytest.fixture
def process_template() -> dict[str, Any]:
    return default_base_job_template("process")


def without_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment where boto3 finds no region (no AWS_REGION, AWS_DEFAULT_REGION or config file)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")


@pytest.fixture(autouse=True)
def _restore_package_logger() -> Iterator[None]:
    """Entry points configure the `push_pools` logger (handlers, no propagation) and bind a correlation id; each test
    starts from the defaults."""
    package = logging.getLogger("push_pools")
    saved = package.handlers[:], package.level, package.propagate
    token = logs.bind_correlation_id(None)  # an entry point binds its invocation's id and keeps it until the next
    yield
    logs.correlation_id.reset(token)
    package.handlers, package.level, package.propagate = saved[0], saved[1], saved[2]
