"""The dispatcher: for one run, claim → render → submit → record. Imports no cloud SDK.

Every entry point (webhook, queue message, timer, infrastructure event) ends here. The guarantees users rely on
live in this module:

- **At most one infrastructure per run.** A run is claimed (SCHEDULED → PENDING, atomically) before anything is
  submitted, and every submission carries the run's idempotency key, so a crash between submit and record is
  repaired by resubmitting under the same key, which adopts what the first submission started.
- **No run is lost.** Transient cloud errors are retried with jittered backoff within a deadline; when that runs
  out the run is given back (PENDING → SCHEDULED) and the outcome says REQUEUED, so the message is retried.
  A permanent error marks the run CRASHED with a message a person can act on.
- **The run pays only for its own faults.** Its job variables, its template, its image: the run is CRASHED with the
  reason. The executor's own setup (the pool type's extra not installed, no region, no credentials, the function's
  identity denied): the run stays (or goes back to) SCHEDULED and the pool shows NOT_READY with the reason, until the
  executor is fixed. Anything unexpected is contained here, logged once with its traceback and the run's id.
- **Terminal states are sticky** (enforced by the orchestrator's `set_state`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay

from push_pools.backends import backend_module, missing_module, pool_type
from push_pools.backends.kit.retry_after import WaitRetryAfter
from push_pools.errors import (
    ConfigurationError,
    ExecutorNotReadyError,
    PermanentSubmissionError,
    PushPoolError,
    TemplateError,
    TransientSubmissionError,
)
from push_pools.jobs import PreparedJob, prepare_job, run_context
from push_pools.models import (
    FlowRun,
    InfrastructureRef,
    InfrastructureState,
    InfrastructureStatus,
    StateType,
    SubmissionOutcome,
    SubmissionStatus,
    WorkPool,
)
from push_pools.orchestrators.base import ClaimResult, Orchestrator
from push_pools.settings import Settings

if TYPE_CHECKING:
    from push_pools.backends.base import Backend

logger = logging.getLogger("push_pools.dispatcher")

_ADOPTED = "adopted infrastructure already started for this run"
_LOGGED = {
    SubmissionStatus.SUBMITTED,
    SubmissionStatus.DEFERRED,
    SubmissionStatus.NOT_READY,
    SubmissionStatus.CRASHED,
    SubmissionStatus.REQUEUED,
}
"""The outcomes of a submission logged as one INFO line with the run's fields."""

Clock = Callable[[], datetime]
_OURS = frozenset({ClaimResult.CLAIMED, ClaimResult.RECLAIMED})


def utc_now() -> datetime:
    return datetime.now(UTC)


class Backends:
    """Backends by pool type: the ones given (entry points pass clients built once), others built on first use."""

    def __init__(self, settings: Settings, given: Mapping[str, Backend] | None = None) -> None:
        self._settings = settings
        self._backends: dict[str, Backend] = dict(given or {})

    def for_type(self, name: str) -> Backend:
        """The pool type's backend; ExecutorNotReadyError when this installation cannot build it (its extra is not
        installed, a setting, the region or the credentials are missing), whatever the SDK raised."""
        canonical = pool_type(name).name
        if canonical not in self._backends:
            module = backend_module(canonical)
            try:
                self._backends[canonical] = module.from_settings(self._settings)
            except PushPoolError as exc:
                raise ExecutorNotReadyError(str(exc)) from exc
            except ModuleNotFoundError as exc:
                raise missing_module(canonical, exc.name) from exc
            except Exception as exc:  # any failure to build a client is the executor's setup, not a run's fault
                message = f"cannot build the {canonical} backend: {type(exc).__name__}: {exc}"
                raise ExecutorNotReadyError(message) from exc
        return self._backends[canonical]

    def built(self) -> list[Backend]:
        return list(self._backends.values())


class Dispatcher:
    """Submits due runs of an orchestrator's pools to their backends, and follows them up."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        backends: Backends,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.backends = backends
        self.settings = settings
        self.clock = clock
        self._sleep = sleep
        self._environ = os.environ if environ is None else environ

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, backends: Mapping[str, Backend] | None = None
    ) -> Dispatcher:
        """The dispatcher an entry point uses: the configured orchestrator, and backends (given, or built lazily)."""
        from push_pools.orchestrators import orchestrator_from_settings

        settings = settings or Settings()
        return cls(orchestrator_from_settings(settings), Backends(settings, backends), settings)

    # ---- one run ------------------------------------------------------------------------------------------

    def submit_run(self, flow_run_id: str) -> SubmissionOutcome:
        """Submit one run by id if it is due: the webhook's and the queue message's path."""
        return self.submit(self.orchestrator.get_run(flow_run_id, with_history=False))

    def submit(self, run: FlowRun, pool: WorkPool | None = None, claim: ClaimResult | None = None) -> SubmissionOutcome:
        """Claim and submit a run, or say why not. Safe to call any number of times, from anywhere, at once.
        `claim` is the answer to a claim already made for it (`claim_due`)."""
        now = self.clock()
        pool = pool or self.orchestrator.get_pool(run.pool_name)
        if run.state.type is StateType.PENDING and run.infrastructure_pid is None:
            return self._resume_held(run, pool, now)
        if run.state.type is not StateType.SCHEDULED:
            return _outcome(run, SubmissionStatus.SKIPPED, f"run is {run.state.type}, not SCHEDULED")
        if not run.is_due(now):
            due_in = (run.expected_start_time - now).total_seconds()
            return _outcome(run, SubmissionStatus.NOT_DUE, f"due in {due_in:.0f}s", due_in_seconds=due_in)
        if pool.is_paused:
            return _outcome(run, SubmissionStatus.DEFERRED, f"pool {pool.name!r} is paused")
        if claim is None:
            if (problem := self._executor_problem(pool)) is not None:
                return self._not_ready(run, pool, problem)
            claim = self.orchestrator.claim_run(run, now, pool.concurrency_limit)
        if claim in _OURS:
            claimed_before = claim is ClaimResult.RECLAIMED or any(
                state.type is StateType.PENDING for state in run.state_history
            )
            return self._submit_claimed(run, pool, resubmission=claimed_before)
        if claim is ClaimResult.HELD:
            return self._resume_held(self.orchestrator.get_run(run.id, with_history=False), pool, now)
        if claim is ClaimResult.AT_LIMIT:
            return _outcome(run, SubmissionStatus.DEFERRED, f"pool {pool.name!r} is at its concurrency limit")
        return _outcome(run, SubmissionStatus.SKIPPED, "another dispatcher has this run")

    def claim_due(self, runs: Sequence[FlowRun], pool: WorkPool) -> Iterator[list[tuple[FlowRun, ClaimResult | None]]]:
        """A tick's due runs, in the groups the orchestrator claims in one call (`claims_per_call`), each run with
        its claim's answer for `submit`; one group of unclaimed runs (None) where claims cost no call. A group
        whose claim fails is given unclaimed: `submit` then claims each run and reports its own failure."""
        size = self.orchestrator.claims_per_call
        if size <= 1 or pool.is_paused:
            yield [(run, None) for run in runs]
            return
        for start in range(0, len(runs), size):
            group = runs[start : start + size]
            now = self.clock()
            claimable = [run for run in group if run.state.type is StateType.SCHEDULED and run.is_due(now)]
            answers: list[ClaimResult | None] = [None] * len(claimable)
            try:
                answers = list(self.orchestrator.claim_runs(claimable, now, pool.concurrency_limit))
            except PushPoolError as exc:
                logger.warning("claiming %d due runs of pool %r failed: %s", len(claimable), pool.name, exc)
            claims = dict(zip((run.id for run in claimable), answers, strict=True))
            yield [(run, claims.get(run.id)) for run in group]

    def _resume_held(self, run: FlowRun, pool: WorkPool, now: datetime) -> SubmissionOutcome:
        """A PENDING run with no infrastructure: another dispatcher is submitting it, or died doing so."""
        age = now - run.state.timestamp
        if age < self.settings.orphan_timeout:
            return _outcome(run, SubmissionStatus.SKIPPED, "being submitted by another dispatcher")
        if (problem := self._executor_problem(pool)) is not None:
            return self._not_ready(run, pool, problem)
        message = f"no infrastructure recorded {age.total_seconds():.0f}s after claim; resubmitting"
        if not self.orchestrator.release_run(run, message):
            return _outcome(run, SubmissionStatus.SKIPPED, "another dispatcher recovered this run")
        logger.warning("run %s: %s", run.id, message)
        if self.orchestrator.claim_run(run, now, None) not in _OURS:
            return _outcome(run, SubmissionStatus.SKIPPED, "another dispatcher recovered this run")
        return self._submit_claimed(run, pool, resubmission=True)

    def _submit_claimed(self, run: FlowRun, pool: WorkPool, *, resubmission: bool) -> SubmissionOutcome:
        warnings: tuple[str, ...] = ()
        try:
            job = self._prepare_claimed(run, pool)
            warnings = job.warnings
            for warning in warnings:
                logger.warning("run %s: %s", run.id, warning)
            backend = self.backends.for_type(pool.type)
            ref = self._submit_with_retries(backend, job.configuration, run, resubmission)
        except ExecutorNotReadyError as exc:
            self.orchestrator.release_run(run, f"waiting for the executor: {exc}")
            return self._not_ready(run, pool, str(exc))
        except TransientSubmissionError as exc:
            return self._requeue(run, f"submission kept failing ({exc}); the run is scheduled again to be retried")
        except (TemplateError, ConfigurationError, PermanentSubmissionError) as exc:
            message = f"Submission to {pool.type} pool {pool.name!r} failed: {exc}"
            self.orchestrator.set_state(run, StateType.CRASHED, message, only_from={StateType.PENDING})
            return _outcome(run, SubmissionStatus.CRASHED, message, warnings=warnings)
        except Exception as exc:  # a fault outside our error tree: the run may have started, so it is resubmitted
            logger.exception("run %s: submission failed unexpectedly", run.id, extra=_fields(run))
            message = f"submission failed unexpectedly ({_described(exc)}); the run is scheduled again to be retried"
            return self._requeue(run, message)
        pid = ref.infrastructure_pid
        note = _ADOPTED if ref.adopted else None
        if not self.orchestrator.record_submission(run, pid, note):
            logger.warning("run %s left PENDING while being submitted; stopping %s", run.id, pid)
            backend.cancel(pid)
            return _outcome(run, SubmissionStatus.CANCELLED, "cancelled while being submitted", pid=pid)
        return _outcome(run, SubmissionStatus.SUBMITTED, note, pid=pid, warnings=warnings)

    def _prepare_claimed(self, run: FlowRun, pool: WorkPool) -> PreparedJob:
        """`prepare`, with any unexpected fault of rendering read as the run's own (the same input fails again)."""
        try:
            return self.prepare(run, pool)
        except PushPoolError:
            raise
        except Exception as exc:
            logger.exception("run %s: its job could not be rendered", run.id, extra=_fields(run))
            raise TemplateError(f"its job could not be rendered: {_described(exc)}") from exc

    def _executor_problem(self, pool: WorkPool) -> str | None:
        """Why this executor cannot serve the pool now (its backend cannot be built), or None."""
        try:
            self.backends.for_type(pool.type)
        except ExecutorNotReadyError as exc:
            return str(exc)
        return None

    def _not_ready(self, run: FlowRun, pool: WorkPool, problem: str) -> SubmissionOutcome:
        """The run waits SCHEDULED; the pool says why until the executor is fixed."""
        self.orchestrator.record_tick(pool.name, self.clock(), problem)
        return _outcome(run, SubmissionStatus.NOT_READY, f"the executor cannot serve pool {pool.name!r}: {problem}")

    def _requeue(self, run: FlowRun, message: str) -> SubmissionOutcome:
        self.orchestrator.release_run(run, message)
        return _outcome(run, SubmissionStatus.REQUEUED, message)

    def prepare(self, run: FlowRun, pool: WorkPool) -> PreparedJob:
        """The run's rendered job configuration: what `submit` hands to the backend."""
        deployment = self.orchestrator.get_deployment(run.deployment_id) if run.deployment_id else None
        environment = self.orchestrator.run_environment(run)
        return prepare_job(pool, deployment, run, environment, environ=self._environ)

    def preview(self, run: FlowRun, pool: WorkPool) -> dict[str, Any]:
        """The exact request the backend would send for this run, secret values as `SecretStr`. Touches nothing.

        The backend's module builds it from settings, as the backend would, so previewing needs no cloud credentials.
        """
        job = self.prepare(run, pool)
        return backend_module(pool.type).build_request(job.configuration, run_context(run), self.settings)

    def _submit_with_retries(
        self, backend: Backend, configuration: dict[str, Any], run: FlowRun, resubmission: bool
    ) -> InfrastructureRef:
        """Submit, retrying transient failures; every try after the first is marked as a resubmission."""
        tries = itertools.count()

        def submit_once() -> InfrastructureRef:
            return backend.submit(configuration, run_context(run, resubmission=resubmission or next(tries) > 0))

        return self._retrying()(submit_once)

    def _retrying(self) -> Retrying:
        settings = self.settings
        extra: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
        return Retrying(
            retry=retry_if_exception_type(TransientSubmissionError),
            stop=stop_after_attempt(settings.submit_attempts) | stop_before_delay(settings.submit_deadline_seconds),
            wait=WaitRetryAfter(settings.submit_backoff_max_seconds),
            reraise=True,
            **extra,
        )

    # ---- cancellation and infrastructure reports ----------------------------------------------------------

    def cancel_run(self, flow_run_id: str) -> SubmissionOutcome:
        """Stop a CANCELLING run's infrastructure and mark it CANCELLED. Idempotent."""
        return self.cancel(self.orchestrator.get_run(flow_run_id, with_history=False))

    def cancel(self, run: FlowRun) -> SubmissionOutcome:
        if run.state.type is not StateType.CANCELLING:
            return _outcome(run, SubmissionStatus.SKIPPED, f"run is {run.state.type}, not CANCELLING")
        if run.infrastructure_pid is None and self._may_be_submitting(run):
            return _outcome(run, SubmissionStatus.SKIPPED, "no infrastructure recorded yet; it may be in flight")
        if run.infrastructure_pid is not None:
            pool = self.orchestrator.get_pool(run.pool_name)
            self.backends.for_type(pool.type).cancel(run.infrastructure_pid)
        self.orchestrator.set_state(
            run, StateType.CANCELLED, "Cancelled by push-pools", only_from={StateType.CANCELLING}
        )
        return _outcome(run, SubmissionStatus.CANCELLED, pid=run.infrastructure_pid)

    def _may_be_submitting(self, run: FlowRun) -> bool:
        """Whether a dispatcher may still be submitting a CANCELLING run, unseen by an orchestrator that cannot
        refuse its record (see `Orchestrator.checks_state_on_record`): until the orphan timeout has passed."""
        if self.orchestrator.checks_state_on_record:
            return False
        return self.clock() - run.state.timestamp < self.settings.orphan_timeout

    def report_infrastructure(self, run: FlowRun, status: InfrastructureStatus) -> bool:
        """Apply what the infrastructure says to the run. True if the run's state changed."""
        live = {StateType.PENDING, StateType.RUNNING}
        own_states = not self.orchestrator.reports_flow_states
        match status.state:
            case InfrastructureState.RUNNING if own_states:
                return self.orchestrator.set_state(run, StateType.RUNNING, only_from={StateType.PENDING})
            case InfrastructureState.SUCCEEDED if own_states:
                return self.orchestrator.set_state(run, StateType.COMPLETED, _exit_message(status), only_from=live)
            case InfrastructureState.FAILED | InfrastructureState.GONE:
                if run.state.type is StateType.CANCELLING:
                    return self.orchestrator.set_state(run, StateType.CANCELLED, _exit_message(status))
                return self.orchestrator.set_state(run, StateType.CRASHED, _exit_message(status), only_from=live)
            case InfrastructureState.CANCELLED:
                return self.orchestrator.set_state(
                    run, StateType.CANCELLED, _exit_message(status), only_from=live | {StateType.CANCELLING}
                )
        return False


def _exit_message(status: InfrastructureStatus) -> str:
    if status.exit_code is None:
        return status.message or f"Infrastructure {status.state.lower()}"
    message = f"Infrastructure exited with code {status.exit_code}"
    return f"{message}: {status.message}" if status.message else message


def _fields(run: FlowRun) -> dict[str, Any]:
    """The run's fields on every log line about it."""
    return {"flow_run_id": run.id, "pool": run.pool_name, "deployment": run.deployment_name, "attempt": run.attempt}


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _outcome(
    run: FlowRun,
    status: SubmissionStatus,
    message: str | None = None,
    *,
    pid: str | None = None,
    due_in_seconds: float | None = None,
    warnings: tuple[str, ...] = (),
) -> SubmissionOutcome:
    if status in _LOGGED:
        outcome = "adopted" if status is SubmissionStatus.SUBMITTED and message == _ADOPTED else status.value
        extra = _fields(run) | {"infrastructure_pid": pid, "outcome": outcome}
        logger.info("run %s: %s%s", run.id, outcome, f" ({message})" if message else "", extra=extra)
    return SubmissionOutcome(
        flow_run_id=run.id,
        status=status,
        infrastructure_pid=pid,
        message=message,
        due_in_seconds=due_in_seconds,
        warnings=warnings,
    )
