"""Google Cloud Run jobs: each flow run is one execution of a Cloud Run job, started by the function, no worker.

How it uses Cloud Run (Admin API v2, `google-cloud-run`):

- **One job per pool and template, reused.** The job's id is `pp-<pool>-<hash of the job spec>` (see
  `cloud_run_spec`). It is created only when absent: a job seen once is remembered by this instance; otherwise
  GetJob, and CreateJob on 404 (a 409 means another instance just made it: fine).
- **One write call per run in steady state:** a RunJob whose overrides carry the run's env, args, timeout and
  its idempotency key (`PUSH_POOL_IDEMPOTENCY_KEY`). The infrastructure id is the execution's full resource name
  (`projects/P/locations/R/jobs/J/executions/E`), read from the RunJob operation's metadata without waiting.
- **No duplicate on redelivery.** RunJob has no request id, so when an earlier submission of the same key may
  have reached Cloud Run (`RunContext.resubmission`), the job's executions are listed (newest first) and one
  whose container env holds the key is adopted. Limits: only executions of this configuration's job created in
  the last `lookback` (24 h) and at most 1,000 of them are read; an execution deleted with its job is not found;
  and the listing is assumed to show an execution once RunJob has answered (Cloud Run lists newest first and
  applies overrides to the execution's template; a slower listing could let one duplicate through).
- **Status** (the tick polls it: Cloud Run sends no events here): completed with every task succeeded →
  SUCCEEDED, cancelled → CANCELLED, otherwise failed → FAILED with Cloud Run's message, and, from one ListTasks
  per failure, the failed task's exit code and log link; tasks running → RUNNING; a deleted execution → GONE.
- **Logs:** `logs()` gives the `gcloud logging read` command whose filter selects the execution's output
  (`push_pools.platforms.gcp.logs`); a failed execution's message carries Cloud Run's reason and its log link.
- **Cancel** is CancelExecution; an execution already finished or gone counts as success.
- **Sweep:** a job of ours (label `push-pools-managed=true`) is "no longer used" when neither its latest
  execution was created nor any execution finished for `job_retention` (7 days by default,
  PUSH_POOL_CLOUD_RUN_JOB_RETENTION_SECONDS), and none of its executions is running; it is then deleted, with
  its etag, unless the template set `keep_job`. A project holds at most 1,000 jobs. Locations swept are
  PUSH_POOL_CLOUD_RUN_LOCATIONS and those this instance has used.
- **Errors** are mapped by exception class (HTTP status): 429, 408, 409, 5xx (but 501), timeouts and connection
  errors are transient; other 4xx (400 invalid spec, 403 permission denied, 404 project or region) are permanent.
- **Retries** belong to the dispatcher: every call is made with `retry=None` and a `call_timeout`, so one slow
  call cannot use up the function's time, and a 429's Retry-After reaches the dispatcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, Protocol

from push_pools.backends.base import JobLogs, RenderedJob, RunContext
from push_pools.backends.kit.secrets import reveal
from push_pools.errors import ConfigurationError, PushPoolError, TransientSubmissionError
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus
from push_pools.platforms.gcp import request as spec
from push_pools.platforms.gcp.errors import (
    operation_polling,
    proto_message,
    sdk_errors,
    translate_error,
    translated,
)
from push_pools.platforms.gcp.logs import read_command
from push_pools.platforms.gcp.status import execution_status, is_idle
from push_pools.settings import Settings

logger = logging.getLogger(__name__)

JOBS_CAP = 1000
"""Cloud Run jobs per project and region."""
_PAGE_SIZE = 100
_MAX_SCANNED_EXECUTIONS = 1000


def build_request(configuration: dict[str, Any], run: RunContext, settings: Settings | None = None) -> dict[str, Any]:
    """The CreateJob request (sent only if the job is absent) and the RunJob request for this run. Pure.

    The project comes from the configuration, else from `settings.gcp_project`, as when submitting.
    """
    return spec.build_request(configuration, run, default_project=settings.gcp_project if settings else None)


class JobsClient(Protocol):
    """The part of `run_v2.JobsClient` the backend calls."""

    def get_job(self, *args: Any, **kwargs: Any) -> Any: ...
    def create_job(self, *args: Any, **kwargs: Any) -> Any: ...
    def run_job(self, *args: Any, **kwargs: Any) -> Any: ...
    def list_jobs(self, *args: Any, **kwargs: Any) -> Any: ...
    def delete_job(self, *args: Any, **kwargs: Any) -> Any: ...


class ExecutionsClient(Protocol):
    """The part of `run_v2.ExecutionsClient` the backend calls."""

    def get_execution(self, *args: Any, **kwargs: Any) -> Any: ...
    def cancel_execution(self, *args: Any, **kwargs: Any) -> Any: ...
    def list_executions(self, *args: Any, **kwargs: Any) -> Any: ...


class TasksClient(Protocol):
    """The part of `run_v2.TasksClient` the backend calls."""

    def list_tasks(self, *args: Any, **kwargs: Any) -> Any: ...


class _Job(Enum):
    """What this submission knows of the run's job before RunJob."""

    REMEMBERED = "remembered"
    """Seen by this instance before: it may have been swept since."""
    READY = "ready"
    """Created by this call, or read and ready."""
    UNCONFIRMED = "unconfirmed"
    """Another instance is creating it (409, or read while reconciling): RunJob may fail for a moment."""


class CloudRunBackend:
    """Runs flow runs as executions of reused Cloud Run jobs."""

    pool_type: ClassVar[str] = "cloud-run"
    reports_infrastructure_events: ClassVar[bool] = False

    def __init__(
        self,
        jobs_client: JobsClient,
        executions_client: ExecutionsClient,
        *,
        tasks_client: TasksClient | None = None,
        default_project: str | None = None,
        locations: Iterable[str] = (),
        job_retention: timedelta = timedelta(days=7),
        sweep_interval: timedelta = timedelta(minutes=10),
        lookback: timedelta = timedelta(hours=24),
        call_timeout: float = 20.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs_client
        self._executions = executions_client
        self._tasks = tasks_client
        """Reads a failed execution's tasks (exit code, log link); without it a failure has the execution's."""
        self.default_project = default_project
        self.job_retention = job_retention
        self.sweep_interval = sweep_interval
        self.lookback = lookback
        self.call_timeout = call_timeout
        self._clock = clock
        self._known_jobs: set[str] = set()
        self._locations: set[str] = set(locations)
        self._warned_pools: set[str] = set()
        self._last_sweep: datetime | None = None
        self._lock = threading.Lock()

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return spec.build_request(configuration, run, default_project=self.default_project)

    # ---- submit -------------------------------------------------------------------------------------------

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        request = self.build_request(configuration, run)
        create, run_job = request["create_job"], request["run_job"]
        self._remember(locations={create["parent"]})
        self._warn_plaintext_secrets(run_job["overrides"], run)
        if run.resubmission:
            found = self._find_execution(run_job["name"], run.idempotency_key)
            if found is not None:
                logger.info("run %s: adopting execution %s", run.flow_run_id, found)
                return InfrastructureRef(infrastructure_pid=found, adopted=True)
        job = self._ensure_job(create)
        return InfrastructureRef(infrastructure_pid=self._run(create, run_job, job))

    def _find_execution(self, job_name: str, idempotency_key: str) -> str | None:
        """An execution of this job started under this key, newest first, within the lookback."""
        from google.api_core import exceptions as api

        horizon = self._clock() - self.lookback
        with translated("ListExecutions"):
            try:
                pager = self._executions.list_executions(
                    request={"parent": job_name, "page_size": _PAGE_SIZE}, retry=None, timeout=self.call_timeout
                )
                for scanned, execution in enumerate(pager, start=1):
                    if any(spec.carries_key(c.env, idempotency_key) for c in execution.template.containers):
                        return str(execution.name)
                    if scanned >= _MAX_SCANNED_EXECUTIONS or (
                        execution.create_time is not None and execution.create_time < horizon
                    ):
                        break
            except api.NotFound:
                self._forget(job_name)
                return None
        self._remember(jobs={job_name})
        return None

    def _ensure_job(self, create: Mapping[str, Any]) -> _Job:
        from google.api_core import exceptions as api
        from google.cloud import run_v2

        name = f"{create['parent']}/jobs/{create['jobId']}"
        if name in self._known_jobs:
            return _Job.REMEMBERED
        job_message = proto_message(run_v2.Job, create["job"], "job_body is not a valid Cloud Run v2 Job")
        with translated("GetJob"):
            try:
                existing = self._jobs.get_job(name=name, retry=None, timeout=self.call_timeout)
            except api.NotFound:
                existing = None
        if existing is not None:
            self._remember(jobs={name})
            return _Job.UNCONFIRMED if existing.reconciling else _Job.READY
        request = run_v2.CreateJobRequest(parent=create["parent"], job_id=create["jobId"], job=job_message)
        with translated("CreateJob"):
            try:
                operation = self._jobs.create_job(request=request, retry=None, timeout=self.call_timeout)
                operation.result(timeout=self.call_timeout, polling=operation_polling(self.call_timeout))
            except api.Conflict:
                self._remember(jobs={name})
                return _Job.UNCONFIRMED
        logger.info("created Cloud Run job %s", name)
        self._remember(jobs={name})
        return _Job.READY

    def _run(self, create: Mapping[str, Any], run_job: Mapping[str, Any], job: _Job) -> str:
        """RunJob; a remembered job that was swept meanwhile is made again, once."""
        from google.api_core import exceptions as api
        from google.cloud import run_v2

        overrides = proto_message(
            run_v2.RunJobRequest.Overrides, reveal(run_job["overrides"]), "invalid RunJob overrides"
        )
        request = run_v2.RunJobRequest(name=run_job["name"], overrides=overrides)
        try:
            operation = self._jobs.run_job(request=request, retry=None, timeout=self.call_timeout)
        except api.NotFound as exc:
            self._forget(run_job["name"])
            if job is _Job.REMEMBERED:
                return self._run(create, run_job, self._ensure_job(create))
            raise TransientSubmissionError(f"Cloud Run job {run_job['name']} is not there yet: {exc.message}") from exc
        except api.BadRequest as exc:
            if job is _Job.UNCONFIRMED:
                raise TransientSubmissionError(f"Cloud Run job {run_job['name']} is not ready: {exc.message}") from exc
            raise translate_error(exc, "RunJob") from exc
        except sdk_errors() as exc:
            raise translate_error(exc, "RunJob") from exc
        execution_name = str(getattr(operation.metadata, "name", "") or "")
        if not spec.is_execution_name(execution_name):
            # The execution exists but we cannot name it: the dispatcher's next try looks it up by key.
            raise TransientSubmissionError("RunJob answered without the execution's name")
        return execution_name

    def _warn_plaintext_secrets(self, overrides: Mapping[str, Any], run: RunContext) -> None:
        """Names delivered by secret reference are never in the overrides: any still there is plaintext."""
        env = overrides["containerOverrides"][0]["env"]
        exposed = sorted({entry["name"] for entry in env} & spec.SECRET_ENV_NAMES)
        if exposed and run.pool_name not in self._warned_pools:
            self._warned_pools.add(run.pool_name)
            logger.warning(
                "pool %s sends %s as plaintext env overrides; set prefect_api_key_secret (or env_from_secrets) "
                "so Cloud Run reads them from Secret Manager",
                run.pool_name,
                ", ".join(exposed),
            )

    # ---- status and cancel --------------------------------------------------------------------------------

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        from google.api_core import exceptions as api

        name = self._execution_name(infrastructure_pid)
        with translated("GetExecution"):
            try:
                execution = self._executions.get_execution(name=name, retry=None, timeout=self.call_timeout)
            except api.NotFound:
                return InfrastructureStatus(
                    state=InfrastructureState.GONE, message=f"Cloud Run execution {name} no longer exists"
                )
        status = execution_status(execution)
        if status.state is InfrastructureState.FAILED and self._tasks is not None:
            status = execution_status(execution, self._failed_task(self._tasks, name))
        return status

    def _failed_task(self, client: TasksClient, execution_name: str) -> Any:
        """The first task whose last attempt exited non-zero (one ListTasks); None if none, or if they cannot be
        read (logged: the failure keeps the execution's message)."""
        try:
            with translated("ListTasks"):
                tasks = client.list_tasks(
                    request={"parent": execution_name, "page_size": _PAGE_SIZE}, retry=None, timeout=self.call_timeout
                )
                return next((task for task in tasks if task.last_attempt_result.exit_code), None)
        except PushPoolError as exc:
            logger.warning("cannot read the tasks of %s: %s", execution_name, exc)
            return None

    def cancel(self, infrastructure_pid: str) -> None:
        from google.api_core import exceptions as api

        name = self._execution_name(infrastructure_pid)
        with translated("CancelExecution"):
            try:
                self._executions.cancel_execution(name=name, retry=None, timeout=self.call_timeout)
            except api.NotFound:
                return
            except api.BadRequest:
                # Cloud Run refuses to cancel a finished execution (400 FAILED_PRECONDITION): that is success.
                if self.status(name).finished:
                    return
                raise

    def logs(self, infrastructure_pid: str, tail: int | None = None, job: RenderedJob | None = None) -> JobLogs:
        """The command that reads the execution's output from Cloud Logging (push-pools does not read it)."""
        return JobLogs(elsewhere=read_command(self._execution_name(infrastructure_pid)))

    def _execution_name(self, infrastructure_pid: str) -> str:
        if not spec.is_execution_name(infrastructure_pid):
            raise ConfigurationError(
                f"{infrastructure_pid!r} is not a Cloud Run execution (projects/P/locations/R/jobs/J/executions/E)"
            )
        self._remember(locations={spec.location_of(infrastructure_pid)})
        return infrastructure_pid

    # ---- sweep --------------------------------------------------------------------------------------------

    def sweep(self, now: datetime) -> int:
        """Delete our jobs that are no longer used, at most once per `sweep_interval`."""
        with self._lock:
            if self._last_sweep is not None and now - self._last_sweep < self.sweep_interval:
                return 0
            self._last_sweep = now
            locations = sorted(self._locations)
        return sum(self._sweep_location(location, now) for location in locations)

    def _sweep_location(self, location: str, now: datetime) -> int:
        with translated("ListJobs"):
            jobs = [
                job
                for job in self._jobs.list_jobs(
                    request={"parent": location, "page_size": _PAGE_SIZE}, retry=None, timeout=self.call_timeout
                )
                if job.labels.get(spec.MANAGED_LABEL) == "true"
            ]
        if len(jobs) > JOBS_CAP * 8 // 10:
            logger.warning("%s holds %d push-pools jobs (Cloud Run allows %d)", location, len(jobs), JOBS_CAP)
        idle = [
            job for job in jobs if job.labels.get(spec.KEEP_LABEL) != "true" and is_idle(job, now, self.job_retention)
        ]
        return sum(1 for job in idle if self._delete_if_unused(job))

    def _delete_if_unused(self, job: Any) -> bool:
        from google.api_core import exceptions as api

        try:
            recent = self._executions.list_executions(
                request={"parent": job.name, "page_size": _PAGE_SIZE}, retry=None, timeout=self.call_timeout
            ).executions
            if any(execution.completion_time is None for execution in recent):
                return False
            self._jobs.delete_job(request={"name": job.name, "etag": job.etag}, retry=None, timeout=self.call_timeout)
        except api.NotFound:
            self._forget(job.name)
            return False
        except sdk_errors() as exc:
            # Changed meanwhile (etag), throttled or refused: the next sweep looks again.
            logger.warning("sweep kept Cloud Run job %s: %s", job.name, translate_error(exc, "DeleteJob"))
            return False
        self._forget(job.name)
        logger.info("deleted idle Cloud Run job %s", job.name)
        return True

    # ---- memory -------------------------------------------------------------------------------------------

    def _remember(self, *, jobs: Iterable[str] = (), locations: Iterable[str] = ()) -> None:
        with self._lock:
            self._known_jobs.update(jobs)
            self._locations.update(locations)

    def _forget(self, job_name: str) -> None:
        with self._lock:
            self._known_jobs.discard(job_name)


def from_settings(settings: Settings) -> CloudRunBackend:
    """The backend the function uses: REST clients with the function's own credentials, built once."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import run_v2

    try:
        jobs, executions = run_v2.JobsClient(transport="rest"), run_v2.ExecutionsClient(transport="rest")
        tasks = run_v2.TasksClient(transport="rest")
    except DefaultCredentialsError as exc:
        raise ConfigurationError(
            f"no Google Cloud credentials for cloud-run pools ({exc}); run where a service account is attached, "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc
    return CloudRunBackend(
        jobs,
        executions,
        tasks_client=tasks,
        default_project=settings.gcp_project,
        locations=settings.cloud_run_locations,
        job_retention=timedelta(seconds=settings.cloud_run_job_retention_seconds),
        call_timeout=min(20.0, settings.submit_deadline_seconds),
    )
