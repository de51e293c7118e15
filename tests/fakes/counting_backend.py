"""A backend that writes one line per submit call to a shared file, and never deduplicates: if two dispatchers
in different processes both submitted a run, the file says so."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from push_pools.backends.base import RunContext
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus


class FileCountingBackend:
    pool_type: ClassVar[str] = "counting"
    reports_infrastructure_events: ClassVar[bool] = False

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return {"key": run.idempotency_key}

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        line = f"{run.flow_run_id} {os.getpid()}\n".encode()
        descriptor = os.open(self.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, line)  # one O_APPEND write per line: lines never interleave
        finally:
            os.close(descriptor)
        return InfrastructureRef(infrastructure_pid=f"counted::{run.flow_run_id}")

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        return InfrastructureStatus(state=InfrastructureState.RUNNING)

    def cancel(self, infrastructure_pid: str) -> None:
        return None

    def sweep(self, now: datetime) -> int:
        return 0

    def submitted(self) -> list[str]:
        """Run ids, once per submit call."""
        return [line.split()[0] for line in self.ledger.read_text().splitlines()] if self.ledger.exists() else []
