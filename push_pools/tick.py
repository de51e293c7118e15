"""The tick: what the timer trigger does once a minute, and the safety net under every other trigger.

For each pool: remember that the executor ran (the pool shows READY, or NOT_READY and why when this installation
cannot serve it, its runs left SCHEDULED), stop the infrastructure of CANCELLING runs,
read the state of running infrastructure that sends no events (and of infrastructure that does, once it has been
silent for `event_silence_timeout_seconds`, in case an event was lost), resubmit orphans (PENDING with no infrastructure
for longer than the orphan timeout), then submit due runs, several at once, within the pool's concurrency limit
(claimed a group per call where the orchestrator can: `Dispatcher.claim_due`), a page of `tick_batch_size` after
another while runs are due, until the tick's deadline; the next tick continues where it stopped.
Then each backend sweeps what it left behind, and the store deletes up to `PRUNE_PER_TICK` runs that ended longer
ago than `run_retention_seconds`.

Like a batch processor isolating records, each step, each pool and each run is on its own: an unexpected exception is
logged once with its traceback and the ids, counted in the report's errors, and never stops the other steps or pools.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from push_pools.backends.base import Backend
from push_pools.dispatcher import Dispatcher
from push_pools.errors import ExecutorNotReadyError, PushPoolError
from push_pools.models import FlowRun, StateType, SubmissionOutcome, SubmissionStatus, WorkPool
from push_pools.orchestrators.base import ClaimResult

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
    left_due: int = 0
    """Due runs a tick saw but left for the next one, having reached its deadline (at least this many)."""
    state_changes: int = 0
    swept: int = 0
    pruned: int = 0
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Outcomes by status, e.g. {"submitted": 3, "deferred": 1}."""
        return dict(Counter(str(outcome.status) for outcome in self.outcomes))

    def summary(self) -> str:
        counts = ", ".join(f"{count} {status}" for status, count in sorted(self.counts().items()))
        left = f"; stopped at its deadline with {self.left_due}+ due run(s) left" if self.left_due else ""
        return (
            f"{len(self.pools)} pool(s): {counts or 'no runs due'}{left}; {self.state_changes} state change(s), "
            f"{self.cancelled} cancelled, {self.swept} swept, {self.pruned} pruned, {len(self.errors)} error(s)"
        )


def tick(dispatcher: Dispatcher, pool_name: str | None = None, *, deadline: float | None = None) -> TickReport:
    """One pass over one pool (or all of them), taking due runs page after page until none is left or `deadline`
    (a `time.monotonic()` value; default: `tick_deadline_seconds` from now) has passed. Past reading the pools,
    every fault is logged and counted in the report, never raised."""
    orchestrator = dispatcher.orchestrator
    if deadline is None:
        deadline = time.monotonic() + dispatcher.settings.tick_deadline_seconds
    now = dispatcher.clock()
    pools = [orchestrator.get_pool(pool_name)] if pool_name else orchestrator.list_pools()
    report = TickReport()
    for pool in pools:
        report.pools.append(pool.name)
        action = partial(_tick_pool, dispatcher, pool, now, deadline, report)
        _guarded(report, f"pool {pool.name!r}", action, pool=pool.name)
    for backend in dispatcher.backends.built():
        _guarded(report, f"{backend.pool_type} sweep", partial(_add_swept, report, backend, now))
    _guarded(report, "pruning ended runs", partial(_prune, dispatcher, now, report))
    return report


def _tick_pool(dispatcher: Dispatcher, pool: WorkPool, now: datetime, deadline: float, report: TickReport) -> None:
    """The pool's steps, each on its own: a failing step is reported and the next one runs."""
    orchestrator = dispatcher.orchestrator
    try:
        backend = dispatcher.backends.for_type(pool.type)
    except ExecutorNotReadyError as exc:
        logger.warning("pool %s is not ready: %s", pool.name, exc, extra={"pool": pool.name})
        report.errors.append(f"pool {pool.name!r} is not ready: {exc}")
        orchestrator.record_tick(pool.name, now, str(exc))
        return
    step = partial(_guarded, report, pool=pool.name)
    page = _page(dispatcher)
    step("heartbeat", partial(orchestrator.record_tick, pool.name, now))
    step("cancellations", partial(_cancel, dispatcher, pool, report))
    pending = step("reading PENDING runs", partial(orchestrator.runs_in_state, pool.name, StateType.PENDING, page))
    running = step("reading RUNNING runs", partial(orchestrator.runs_in_state, pool.name, StateType.RUNNING, page))
    step("status reads", partial(_follow_up, dispatcher, backend, (pending or []) + (running or []), now, report))
    orphan_before = now - dispatcher.settings.orphan_timeout
    orphans = [r for r in pending or [] if r.infrastructure_pid is None and r.state.timestamp <= orphan_before]
    if pool.is_paused:
        step("submissions", partial(_submit_all, dispatcher, pool, orphans, [], report))
        return
    step("due runs", partial(_drain, dispatcher, pool, orphans, page, deadline, report))


def _page(dispatcher: Dispatcher) -> int:
    """How many runs one listing call asks for: the batch size, within what the orchestrator allows."""
    return min(dispatcher.settings.tick_batch_size, dispatcher.orchestrator.max_page_size)


def _drain(
    dispatcher: Dispatcher,
    pool: WorkPool,
    orphans: list[FlowRun],
    page: int,
    deadline: float,
    report: TickReport,
) -> None:
    """Submit due runs a page at a time while a page is full and time remains. A page that brought no run this tick
    has not seen (all given back to be retried), a deferral (the concurrency limit) or the executor not being ready
    ends it; stopping at the deadline reads one more page to say how many due runs are left."""
    limit = page if pool.concurrency_limit is None else min(page, pool.concurrency_limit)
    seen = {run.id for run in orphans}
    while True:
        due = dispatcher.orchestrator.scheduled_runs(pool.name, dispatcher.clock(), limit)
        fresh = [run for run in due if run.id not in seen]
        if not fresh and not orphans:
            return
        done = len(report.outcomes)
        _submit_all(dispatcher, pool, orphans, fresh, report)
        orphans = []
        seen.update(run.id for run in fresh)
        page_outcomes = {outcome.status for outcome in report.outcomes[done:]}
        if len(due) < limit or page_outcomes & {SubmissionStatus.DEFERRED, SubmissionStatus.NOT_READY}:
            return
        if time.monotonic() >= deadline:
            left = dispatcher.orchestrator.scheduled_runs(pool.name, dispatcher.clock(), limit)
            report.left_due += sum(1 for run in left if run.id not in seen)
            return


def _cancel(dispatcher: Dispatcher, pool: WorkPool, report: TickReport) -> None:
    for run in dispatcher.orchestrator.runs_in_state(pool.name, StateType.CANCELLING, _page(dispatcher)):
        cancelled = _guarded(report, f"cancel {run.id}", partial(dispatcher.cancel, run), pool=pool.name, run=run.id)
        if cancelled is not None and cancelled.status is SubmissionStatus.CANCELLED:
            report.cancelled += 1


def _follow_up(
    dispatcher: Dispatcher, backend: Backend, runs: list[FlowRun], now: datetime, report: TickReport
) -> None:
    """Read the infrastructure state of live runs; a backend that pushes events is asked only about runs it has been
    silent on for long (a lost event)."""
    quiet_since = now - dispatcher.settings.event_silence_timeout if backend.reports_infrastructure_events else now
    for run in runs:
        if run.infrastructure_pid is None or run.state.timestamp > quiet_since:
            continue
        action = partial(_apply_status, dispatcher, backend, run)
        if _guarded(report, f"status of {run.id}", action, pool=run.pool_name, run=run.id):
            report.state_changes += 1


def _apply_status(dispatcher: Dispatcher, backend: Backend, run: FlowRun) -> bool:
    assert run.infrastructure_pid is not None
    return dispatcher.report_infrastructure(run, backend.status(run.infrastructure_pid))


def _submit_all(
    dispatcher: Dispatcher, pool: WorkPool, orphans: list[FlowRun], due: list[FlowRun], report: TickReport
) -> None:
    """Submit several runs at once, due runs claimed a group at a time (submissions start on the first group). Once
    the executor turns out not to be ready, no more runs are claimed and unclaimed ones are left SCHEDULED."""
    work = orphans + due
    if not work:
        return
    not_ready = threading.Event()

    def submit(run: FlowRun, claim: ClaimResult | None) -> SubmissionOutcome | None:
        if not_ready.is_set() and claim is None:
            return None
        outcome = dispatcher.submit(run, pool, claim)
        if outcome.status is SubmissionStatus.NOT_READY:
            not_ready.set()
        return outcome

    workers = min(len(work), dispatcher.settings.max_parallel_submissions)
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(submit, run, None) for run in orphans]
        for group in dispatcher.claim_due(due, pool):
            if not_ready.is_set():
                break
            futures += [executor.submit(submit, run, claim) for run, claim in group]
        for run, future in zip(work, futures, strict=False):
            outcome = _guarded(report, f"submit {run.id}", future.result, pool=pool.name, run=run.id)
            if outcome is not None:
                report.outcomes.append(outcome)
    if not_ready.is_set():
        reason = next(o.message for o in report.outcomes if o.status is SubmissionStatus.NOT_READY)
        report.errors.append(f"pool {pool.name!r} is not ready: {reason}")


def _add_swept(report: TickReport, backend: Backend, now: datetime) -> None:
    report.swept += backend.sweep(now)


def _prune(dispatcher: Dispatcher, now: datetime, report: TickReport) -> None:
    retention = dispatcher.settings.run_retention
    if retention is not None:
        report.pruned += dispatcher.orchestrator.prune_runs(now - retention, PRUNE_PER_TICK)


def _guarded(
    report: TickReport, what: str, action: Callable[[], T], *, pool: str | None = None, run: str | None = None
) -> T | None:
    """Run one step; a failure is logged once (with its traceback when it is not one of ours) with the pool's and
    the run's ids, counted in the report, and the tick goes on with the next step."""
    try:
        return action()
    except Exception as exc:
        extra = {key: value for key, value in (("pool", pool), ("flow_run_id", run)) if value is not None}
        if isinstance(exc, PushPoolError):
            logger.warning("%s failed: %s", what, exc, extra=extra)
            report.errors.append(f"{what}: {exc}")
        else:
            logger.exception("%s failed unexpectedly", what, extra=extra)
            report.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        return None
