"""The tick: what the timer trigger does once a minute, and the safety net under every other trigger.

For each pool: remember that the executor ran (the pool shows READY), stop the infrastructure of CANCELLING runs,
read the state of running infrastructure that sends no events (and of infrastructure that does, once it has been
silent for `event_silence_timeout_seconds`, in case an event was lost), resubmit orphans (PENDING with no infrastructure
for longer than the orphan timeout), then submit due runs, several at once, within the pool's concurrency limit
(claimed a group per call where the orchestrator can: `Dispatcher.claim_due`).
Then each backend sweeps what it left behind, and the store deletes up to `PRUNE_PER_TICK` runs that ended longer
ago than `run_retention_seconds`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from push_pools.backends.base import Backend
from push_pools.dispatcher import Dispatcher
from push_pools.errors import PushPoolError
from push_pools.models import StateType, SubmissionOutcome, SubmissionStatus, WorkPool

logger = logging.getLogger("push_pools.tick")

T = TypeVar("T")

PRUNE_PER_TICK = 1000
"""Most ended runs one tick deletes (`PUSH_POOL_RUN_RETENTION_SECONDS`): a backlog is pruned over several ticks."""


@dataclass
class TickReport:
    """What one tick did."""

    pools: list[str] = field(default_factory=list)
    outcomes: list[SubmissionOutcome] = field(default_factory=list)
    cancelled: int = 0
    state_changes: int = 0
    swept: int = 0
    pruned: int = 0
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Outcomes by status, e.g. {"submitted": 3, "deferred": 1}."""
        return dict(Counter(str(outcome.status) for outcome in self.outcomes))

    def summary(self) -> str:
        counts = ", ".join(f"{count} {status}" for status, count in sorted(self.counts().items()))
        return (
            f"{len(self.pools)} pool(s): {counts or 'no runs due'}; {self.state_changes} state change(s), "
            f"{self.cancelled} cancelled, {self.swept} swept, {self.pruned} pruned, {len(self.errors)} error(s)"
        )


def tick(dispatcher: Dispatcher, pool_name: str | None = None) -> TickReport:
    """One pass over one pool (or all of them)."""
    orchestrator = dispatcher.orchestrator
    now = dispatcher.clock()
    pools = [orchestrator.get_pool(pool_name)] if pool_name else orchestrator.list_pools()
    report = TickReport()
    for pool in pools:
        report.pools.append(pool.name)
        _guarded(report, f"pool {pool.name!r}", partial(_tick_pool, dispatcher, pool, now, report))
    for backend in dispatcher.backends.built():
        _guarded(report, f"{backend.pool_type} sweep", partial(_add_swept, report, backend, now))
    _guarded(report, "pruning ended runs", partial(_prune, dispatcher, now, report))
    return report


def _tick_pool(dispatcher: Dispatcher, pool: WorkPool, now: datetime, report: TickReport) -> None:
    orchestrator = dispatcher.orchestrator
    orchestrator.record_tick(pool.name, now)
    batch = dispatcher.settings.tick_batch_size
    for run in orchestrator.runs_in_state(pool.name, StateType.CANCELLING, batch):
        cancelled = _guarded(report, f"cancel {run.id}", partial(dispatcher.cancel, run))
        if cancelled is not None and cancelled.status is SubmissionStatus.CANCELLED:
            report.cancelled += 1
    backend = dispatcher.backends.for_type(pool.type)
    pending = orchestrator.runs_in_state(pool.name, StateType.PENDING, batch)
    running = orchestrator.runs_in_state(pool.name, StateType.RUNNING, batch)
    # A backend that pushes events is asked only about runs it has been silent on for long: a lost event.
    quiet_since = now - dispatcher.settings.event_silence_timeout if backend.reports_infrastructure_events else now
    for run in pending + running:
        if run.infrastructure_pid is None or run.state.timestamp > quiet_since:
            continue
        status = _guarded(report, f"status of {run.id}", partial(backend.status, run.infrastructure_pid))
        if status is not None and dispatcher.report_infrastructure(run, status):
            report.state_changes += 1
    orphan_before = now - dispatcher.settings.orphan_timeout
    orphans = [r for r in pending if r.infrastructure_pid is None and r.state.timestamp <= orphan_before]
    if pool.is_paused:
        due = []
    else:
        limit = batch if pool.concurrency_limit is None else min(batch, pool.concurrency_limit)
        due = orchestrator.scheduled_runs(pool.name, now, limit)
    work = orphans + due
    if not work:
        return
    workers = min(len(work), dispatcher.settings.max_parallel_submissions)
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(dispatcher.submit, run, pool) for run in orphans]
        for group in dispatcher.claim_due(due, pool):  # claimed a group at a time: submissions start on the first
            futures += [executor.submit(dispatcher.submit, run, pool, claim) for run, claim in group]
        for run, future in zip(work, futures, strict=True):
            outcome = _guarded(report, f"submit {run.id}", future.result)
            if outcome is not None:
                report.outcomes.append(outcome)
                if outcome.status is SubmissionStatus.DEFERRED:
                    logger.info("run %s deferred: %s", run.id, outcome.message)


def _add_swept(report: TickReport, backend: Backend, now: datetime) -> None:
    report.swept += backend.sweep(now)


def _prune(dispatcher: Dispatcher, now: datetime, report: TickReport) -> None:
    retention = dispatcher.settings.run_retention
    if retention is not None:
        report.pruned += dispatcher.orchestrator.prune_runs(now - retention, PRUNE_PER_TICK)


def _guarded(report: TickReport, what: str, action: Callable[[], T]) -> T | None:
    """Run one step; a failure is reported and the tick goes on with the next step."""
    try:
        return action()
    except PushPoolError as exc:
        logger.warning("%s failed: %s", what, exc)
        report.errors.append(f"{what}: {exc}")
        return None
