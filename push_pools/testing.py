"""An in-memory backend for tests and benchmarks: records every call, honours idempotency keys, and can be told
to fail, the way httpx's MockTransport stands in for a network."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from push_pools.backends.base import RunContext
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus

FailureHook = Callable[[str, RunContext | None], None]
"""Called with the operation name ("submit", "status", "cancel") before it runs; raise to make it fail."""


class InMemoryBackend:
    """A backend whose infrastructure is a dict. Thread-safe."""

    pool_type: ClassVar[str] = "memory"
    reports_infrastructure_events: ClassVar[bool] = False

    def __init__(self, *, fail: FailureHook | None = None) -> None:
        self.fail = fail
        self.calls: Counter[str] = Counter()
        self.started: dict[str, dict[str, Any]] = {}
        """Infrastructure started, by infrastructure id: the request each one was started with."""
        self.statuses: dict[str, InfrastructureStatus] = {}
        self.cancelled: set[str] = set()
        self._by_key: dict[str, str] = {}
        self._lock = threading.Lock()

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return {"configuration": configuration, "idempotency_key": run.idempotency_key}

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        self._call("submit", run)
        with self._lock:
            existing = self._by_key.get(run.idempotency_key)
            if existing is not None:
                return InfrastructureRef(infrastructure_pid=existing, adopted=True)
            pid = f"memory::{run.idempotency_key}"
            self._by_key[run.idempotency_key] = pid
            self.started[pid] = self.build_request(configuration, run)
            self.statuses[pid] = InfrastructureStatus(state=InfrastructureState.RUNNING)
        return InfrastructureRef(infrastructure_pid=pid)

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        self._call("status", None)
        return self.statuses.get(infrastructure_pid, InfrastructureStatus(state=InfrastructureState.GONE))

    def cancel(self, infrastructure_pid: str) -> None:
        self._call("cancel", None)
        with self._lock:
            self.cancelled.add(infrastructure_pid)
            if infrastructure_pid in self.statuses:
                self.statuses[infrastructure_pid] = InfrastructureStatus(state=InfrastructureState.CANCELLED)

    def sweep(self, now: datetime) -> int:
        return 0

    def finish(self, infrastructure_pid: str, exit_code: int) -> None:
        """Make a started run end with this exit code."""
        state = InfrastructureState.SUCCEEDED if exit_code == 0 else InfrastructureState.FAILED
        self.statuses[infrastructure_pid] = InfrastructureStatus(state=state, exit_code=exit_code)

    def _call(self, operation: str, run: RunContext | None) -> None:
        with self._lock:
            self.calls[operation] += 1
        if self.fail is not None:
            self.fail(operation, run)
