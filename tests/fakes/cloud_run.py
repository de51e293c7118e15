"""A local Cloud Run Admin API v2 (REST) for the real `google-cloud-run` client, on 127.0.0.1.

It speaks the shapes the REST transport uses (camelCase JSON, enums as numbers or names):

- jobs: `POST .../jobs?jobId=` (a long-running operation, done at once or after `create_polls` GetOperation
  calls; 409 ALREADY_EXISTS for a taken id; 400 for an invalid id, labels or container; the operation fails
  with NOT_FOUND for an image in `missing_images`), `GET` one or a page, `DELETE` (operation; 409 ABORTED on a
  stale etag, 400 FAILED_PRECONDITION while an execution runs; the job's executions go with it);
- `POST .../jobs/J:run` with overrides: the execution exists at once, in the operation's metadata, with the
  overrides applied to its template (env merged by name, args replaced, timeout, taskCount); the job's etag,
  execution count and latest execution change;
- executions: `GET` one, list (newest first, paged), `POST ...:cancel` (400 FAILED_PRECONDITION once finished),
  `DELETE` (400 FAILED_PRECONDITION while it runs), as Prefect's Cloud Run worker deletes them before their job;
- tasks: `GET .../executions/E/tasks`, one task per `taskCount` (`E-task<i>`), each with its own `logUri` and, once
  the execution finished, its `lastAttemptResult` (the `exit_code` given to `finish`);
- `GET .../operations/O`.

Jobs and executions carry the fields Prefect's Cloud Run worker reads as required (`generation`, `logUri` — the
console's log viewer on the execution, as Cloud Run links it —, a job's `latestCreatedExecution`, empty until its
first run), and a job its `terminalCondition` (type `Ready`: CONDITION_RECONCILING until its creation is done, then
CONDITION_SUCCEEDED), which that worker waits for before running the job.

Executions start with no task running; tests move them with `start_execution`, `finish`, `finish_all`. Every
request is counted by method (`calls`), by method and answer (`answers`) and by the IAM permission it needs
(`permissions`). Faults (`Fault`) answer 429, 503, 404... per method and/or path, with a probability drawn from a
seeded RNG, before the call takes effect or after it (a lost response: the execution exists, the client sees an
error; counted in `lost_responses`). `run_quota` (a `TokenBucket`) rate-limits RunJob with 429s, as Cloud Run's
per-minute job-run quota does. The etag of a job changes with each of its executions (an assumption: it makes
the sweep's etag check testable).
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

_LOC = r"/v2/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_JOB = _LOC + r"/jobs/(?P<job>[^/:]+)"
_EXECUTION = _JOB + r"/executions/(?P<execution>[^/:]+)"
ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (http_method, name, re.compile(pattern + "$"))
    for http_method, name, pattern in [
        ("POST", "CreateJob", _LOC + r"/jobs"),
        ("GET", "ListJobs", _LOC + r"/jobs"),
        ("GET", "GetJob", _JOB),
        ("DELETE", "DeleteJob", _JOB),
        ("POST", "RunJob", _JOB + r":run"),
        ("GET", "ListExecutions", _JOB + r"/executions"),
        ("GET", "GetExecution", _EXECUTION),
        ("GET", "ListTasks", _EXECUTION + r"/tasks"),
        ("POST", "CancelExecution", _EXECUTION + r":cancel"),
        ("DELETE", "DeleteExecution", _EXECUTION),
        ("GET", "GetOperation", _LOC + r"/operations/(?P<operation>[^/]+)"),
    ]
]
PERMISSIONS = {
    "CreateJob": "run.jobs.create",
    "ListJobs": "run.jobs.list",
    "GetJob": "run.jobs.get",
    "DeleteJob": "run.jobs.delete",
    "RunJob": "run.jobs.run",
    "ListExecutions": "run.executions.list",
    "GetExecution": "run.executions.get",
    "ListTasks": "run.tasks.list",
    "CancelExecution": "run.executions.cancel",
    "DeleteExecution": "run.executions.delete",
    "GetOperation": "run.operations.get",
}
"""The IAM permission each method needs (RunJob with overrides needs run.jobs.runWithOverrides as well)."""
WRITE_METHODS = frozenset({"CreateJob", "DeleteJob", "RunJob", "CancelExecution", "DeleteExecution"})
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED"}
_STATUS_NAMES |= {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_JOB_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


@dataclass
class Fault:
    """Answer one of `statuses` to matching calls, with `probability`, at most `times` times."""

    statuses: int | tuple[int, ...]
    method: str = "*"
    path_contains: str = ""
    probability: float = 1.0
    times: int | None = None
    after: float = 0.0
    """Probability that the call takes effect first and the error comes after: a response lost on the way back."""
    retry_after: float | None = None


@dataclass(frozen=True)
class _Drawn:
    status: int
    after_effect: bool
    retry_after: float | None


class TokenBucket:
    """`rate` tokens a second, at most `capacity` saved; `take` answers 0 or the seconds until the next token."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, grpc_status: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.grpc_status = grpc_status or _STATUS_NAMES.get(status, "UNKNOWN")
        self.retry_after = retry_after


class FakeCloudRun:
    """The fake server and its state. Use as a context manager, or `start()` and `stop()`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        create_polls: int = 0,
        run_quota: TokenBucket | None = None,
        quota_retry_after_scale: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.create_polls = create_polls
        self.run_quota = run_quota
        self.quota_retry_after_scale = quota_retry_after_scale
        """Send Retry-After on quota 429s, in the caller's time scale (None: send none, like Cloud Run)."""
        self.clock = clock
        self.missing_images: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.answers: Counter[tuple[str, int]] = Counter()
        self.permissions: Counter[str] = Counter()
        self.lost_responses: Counter[str] = Counter()
        """Calls that took effect but were answered with an injected error, by method."""
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.exit_codes: dict[str, int] = {}
        """The exit code of each finished execution's tasks, by execution name."""
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- server -------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeCloudRun:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-cloud-run", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeCloudRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls ------------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def start_execution(self, name: str) -> None:
        with self._lock:
            execution = self.executions[name]
            execution.update(startTime=self._now(), runningCount=execution["taskCount"])

    def finish(self, name: str, *, succeeded: bool = True, message: str = "", exit_code: int = 1) -> None:
        """End the execution; a failed one's tasks exited with `exit_code`."""
        with self._lock:
            execution = self.executions[name]
            self.exit_codes[name] = 0 if succeeded else exit_code
            tasks = execution["taskCount"]
            execution.update(
                runningCount=0, succeededCount=tasks if succeeded else 0, failedCount=0 if succeeded else tasks
            )
            self._complete(execution, "CONDITION_SUCCEEDED" if succeeded else "CONDITION_FAILED", message)

    def finish_all(self, *, succeeded: bool = True) -> None:
        with self._lock:
            for name, execution in self.executions.items():
                if "completionTime" not in execution:
                    self.finish(name, succeeded=succeeded)

    def executions_by_key(self, env_name: str) -> Counter[str]:
        """How many executions carry each value of an env variable in their template (e.g. idempotency keys)."""
        with self._lock:
            return Counter(
                entry.get("value", "")
                for execution in self.executions.values()
                for container in execution["template"]["containers"]
                for entry in container.get("env", [])
                if entry.get("name") == env_name
            )

    def call_counts(self) -> Counter[str]:
        """A copy of `calls`, safe to take while requests are being served."""
        with self._lock:
            return Counter(self.calls)

    def write_calls(self) -> int:
        return sum(count for method, count in self.calls.items() if method in WRITE_METHODS)

    # ---- dispatch -----------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        route = next(
            (
                (name, match)
                for method, name, pattern in ROUTES
                if method == request.method and (match := pattern.match(request.path))
            ),
            None,
        )
        if route is None:
            return _error(ApiError(404, f"no route for {request.method} {request.path}"))
        name, match = route
        with self._lock:
            self.calls[name] += 1
            self.permissions[PERMISSIONS[name]] += 1
            fault = self._draw_fault(name, request.path)
        body = json.loads(request.get_data() or b"{}")
        if name == "RunJob" and body.get("overrides"):
            with self._lock:
                self.permissions["run.jobs.runWithOverrides"] += 1
        if fault is not None and not fault.after_effect:
            return self._answer(name, _error(ApiError(fault.status, "injected fault", retry_after=fault.retry_after)))
        try:
            with self._lock:
                result = getattr(self, f"_{_snake(name)}")(match.groupdict(), request.args, body)
        except ApiError as exc:
            return self._answer(name, _error(exc))
        if fault is not None:
            with self._lock:
                self.lost_responses[name] += 1
            lost = ApiError(fault.status, "injected fault after the call", retry_after=fault.retry_after)
            return self._answer(name, _error(lost))
        return self._answer(name, Response(json.dumps(result), content_type="application/json"))

    def _answer(self, name: str, response: Response) -> Response:
        with self._lock:
            self.answers[(name, response.status_code)] += 1
        return response

    def _draw_fault(self, method: str, path: str) -> _Drawn | None:
        for fault in self._faults:
            if fault.method not in ("*", method) or fault.path_contains not in path or fault.times == 0:
                continue
            if self._rng.random() < fault.probability:
                if fault.times is not None:
                    fault.times -= 1
                statuses = fault.statuses if isinstance(fault.statuses, tuple) else (fault.statuses,)
                after_effect = self._rng.random() < fault.after
                return _Drawn(self._rng.choice(statuses), after_effect, fault.retry_after)
        return None

    # ---- jobs ---------------------------------------------------------------------------------------------

    def _create_job(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        job_id = args.get("jobId", "")
        if not _JOB_ID.match(job_id):
            raise ApiError(400, f"invalid job id {job_id!r}")
        name = f"{_parent(where)}/jobs/{job_id}"
        if name in self.jobs:
            raise ApiError(409, f"Resource '{job_id}' already exists.", grpc_status="ALREADY_EXISTS")
        _check_job(body)
        now = self._now()
        job = copy.deepcopy(body) | {
            "name": name,
            "uid": f"uid-{next(self._ids)}",
            "generation": "1",
            "createTime": now,
            "updateTime": now,
            "latestCreatedExecution": {},
            "etag": f'"{next(self._ids)}"',
            "executionCount": 0,
            "reconciling": self.create_polls > 0,
            "terminalCondition": _ready_condition(reconciling=self.create_polls > 0, now=now),
        }
        containers = job["template"]["template"]["containers"]
        missing = [c["image"] for c in containers if c["image"] in self.missing_images]
        if not missing:
            self.jobs[name] = job
        operation = self._operation(_parent(where), kind="create", subject=job, polls=self.create_polls)
        if missing:
            operation["error"] = {"code": 5, "message": f"Image '{missing[0]}' not found."}
        return self._operation_view(operation)

    def _get_job(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        return self._job(where)

    def _list_jobs(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        prefix = _parent(where) + "/jobs/"
        jobs = [job for name, job in sorted(self.jobs.items()) if name.startswith(prefix)]
        return _page(jobs, args, "jobs")

    def _delete_job(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(where)
        if args.get("etag") and args["etag"] != job["etag"]:
            raise ApiError(409, "etag mismatch", grpc_status="ABORTED")
        if any(e["job"] == job["name"] and "completionTime" not in e for e in self.executions.values()):
            raise ApiError(400, "the job has running executions", grpc_status="FAILED_PRECONDITION")
        del self.jobs[job["name"]]
        self.executions = {n: e for n, e in self.executions.items() if e["job"] != job["name"]}
        return self._operation_view(self._operation(_parent(where), kind="delete", subject=job))

    def _run_job(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(where)
        if self.run_quota is not None:
            wait = self.run_quota.take()
            if wait > 0:
                scale = self.quota_retry_after_scale
                hint = None if scale is None else wait * scale
                raise ApiError(429, "Quota exceeded for job run requests per minute.", retry_after=hint)
        execution = self._new_execution(job, body.get("overrides") or {})
        return self._operation_view(self._operation(_parent(where), kind="execution", subject=execution))

    def _new_execution(self, job: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        template = copy.deepcopy(job["template"])
        task = template["template"]
        for override in overrides.get("containerOverrides", []):
            container = _container(task["containers"], override.get("name", ""))
            if override.get("clearArgs"):
                container.pop("args", None)
            if override.get("args"):
                container["args"] = list(override["args"])
            merged = {entry["name"]: entry for entry in container.get("env", [])}
            merged |= {entry["name"]: entry for entry in override.get("env", [])}
            container["env"] = list(merged.values())
        if overrides.get("timeout"):
            task["timeout"] = overrides["timeout"]
        tasks = int(overrides.get("taskCount") or template.get("taskCount") or 1)
        suffix = "".join(self._rng.choices(string.ascii_lowercase + string.digits, k=5))
        _, project, _, location, _, short = job["name"].split("/")
        now = self._now()
        execution = {
            "name": f"{job['name']}/executions/{short}-{suffix}",
            "uid": f"uid-{next(self._ids)}",
            "generation": "1",
            "job": job["name"],
            "logUri": log_uri(project, location, short, f"{short}-{suffix}"),
            "createTime": now,
            "taskCount": tasks,
            "parallelism": 1,
            "template": task,
            "runningCount": 0,
            "succeededCount": 0,
            "failedCount": 0,
            "cancelledCount": 0,
            "labels": dict(template.get("labels", {})),
            "etag": f'"{next(self._ids)}"',
        }
        self.executions[execution["name"]] = execution
        job.update(
            executionCount=job["executionCount"] + 1,
            latestCreatedExecution={"name": execution["name"], "createTime": now},
            etag=f'"{next(self._ids)}"',
        )
        return execution

    # ---- executions and operations ------------------------------------------------------------------------

    def _list_executions(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(where)
        ours = [e for e in self.executions.values() if e["job"] == job["name"]]
        return _page(list(reversed(ours)), args, "executions")

    def _get_execution(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        return self._execution(where)

    def _list_tasks(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(where)
        short = execution["name"].rsplit("/", 1)[1]
        tasks = []
        for index in range(execution["taskCount"]):
            task = {
                "name": f"{execution['name']}/tasks/{short}-task{index}",
                "job": execution["job"],
                "execution": execution["name"],
                "index": index,
                "logUri": f"{execution['logUri']}%0Alabels.%22run.googleapis.com/task_index%22%3D%22{index}%22",
            }
            code = self.exit_codes.get(execution["name"])
            if code is not None:
                status = {"code": 0} if code == 0 else {"code": 2, "message": "The container exited with an error."}
                task["lastAttemptResult"] = {"status": status, "exitCode": code}
            tasks.append(task)
        return _page(tasks, args, "tasks")

    def _cancel_execution(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(where)
        if "completionTime" in execution:
            raise ApiError(400, "execution has already completed", grpc_status="FAILED_PRECONDITION")
        execution.update(runningCount=0, cancelledCount=execution["taskCount"])
        self._complete(execution, "CONDITION_FAILED", "The execution was cancelled.")
        return self._operation_view(self._operation(_parent(where), kind="execution", subject=execution))

    def _delete_execution(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(where)
        if "completionTime" not in execution:
            raise ApiError(400, "the execution is still running", grpc_status="FAILED_PRECONDITION")
        del self.executions[execution["name"]]
        return self._operation_view(self._operation(_parent(where), kind="delete-execution", subject=execution))

    def _get_operation(self, where: dict[str, str], args: Any, body: dict[str, Any]) -> dict[str, Any]:
        name = f"{_parent(where)}/operations/{where['operation']}"
        if name not in self.operations:
            raise ApiError(404, f"operation {name} not found")
        operation = self.operations[name]
        if operation["polls"] > 0:
            operation["polls"] -= 1
            if operation["polls"] == 0:
                operation["subject"]["reconciling"] = False
                operation["subject"]["terminalCondition"] = _ready_condition(reconciling=False, now=self._now())
        return self._operation_view(operation)

    def _operation(self, parent: str, *, kind: str, subject: dict[str, Any], polls: int = 0) -> dict[str, Any]:
        """Job creation is done after `polls` reads; an execution's operation when the execution completes."""
        operation = {"name": f"{parent}/operations/op-{next(self._ids)}", "kind": kind, "subject": subject}
        operation["polls"] = polls
        self.operations[operation["name"]] = operation
        return operation

    def _operation_view(self, operation: dict[str, Any]) -> dict[str, Any]:
        subject = operation["subject"]
        if operation["kind"] == "execution":
            done = "completionTime" in subject
            view = {"metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Execution"} | subject}
            response_type = "Execution"
        else:
            done = operation["polls"] == 0
            view, response_type = {}, "Execution" if operation["kind"] == "delete-execution" else "Job"
        view |= {"name": operation["name"], "done": done}
        if done and "error" in operation:
            view["error"] = operation["error"]
        elif done:
            view["response"] = {"@type": f"type.googleapis.com/google.cloud.run.v2.{response_type}"} | subject
        return view

    # ---- helpers ------------------------------------------------------------------------------------------

    def _job(self, where: dict[str, str]) -> dict[str, Any]:
        name = f"{_parent(where)}/jobs/{where['job']}"
        if name not in self.jobs:
            raise ApiError(
                404, f"Resource '{where['job']}' of kind 'JOB' in region '{where['location']}' does not exist."
            )
        return self.jobs[name]

    def _execution(self, where: dict[str, str]) -> dict[str, Any]:
        name = f"{_parent(where)}/jobs/{where['job']}/executions/{where['execution']}"
        if name not in self.executions:
            raise ApiError(404, f"Execution '{where['execution']}' does not exist.")
        return self.executions[name]

    def _complete(self, execution: dict[str, Any], state: str, message: str) -> None:
        now = self._now()
        execution["completionTime"] = now
        execution["conditions"] = [{"type": "Completed", "state": state, "message": message, "lastTransitionTime": now}]
        job = self.jobs.get(execution["job"])
        latest = job.get("latestCreatedExecution", {}) if job else {}
        if latest.get("name") == execution["name"]:
            latest["completionTime"] = now

    def _now(self) -> str:
        return self.clock().astimezone(UTC).isoformat().replace("+00:00", "Z")


@contextmanager
def running(**options: Any) -> Iterator[FakeCloudRun]:
    fake = FakeCloudRun(**options).start()
    try:
        yield fake
    finally:
        fake.stop()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _error(error: ApiError) -> Response:
    document = {"error": {"code": error.status, "message": error.message, "status": error.grpc_status}}
    headers = {"Retry-After": f"{error.retry_after:g}"} if error.retry_after is not None else {}
    return Response(json.dumps(document), status=error.status, content_type="application/json", headers=headers)


def _check_job(body: dict[str, Any]) -> None:
    labels = body.get("labels", {})
    if len(labels) > 64 or not all(_LABEL_KEY.match(k) and _LABEL_VALUE.match(v) for k, v in labels.items()):
        raise ApiError(400, "invalid labels")
    containers = body.get("template", {}).get("template", {}).get("containers", [])
    if not containers or not all(container.get("image") for container in containers):
        raise ApiError(400, "template.template.containers: every container needs an image")


def _ready_condition(*, reconciling: bool, now: str) -> dict[str, Any]:
    state = "CONDITION_RECONCILING" if reconciling else "CONDITION_SUCCEEDED"
    return {"type": "Ready", "state": state, "lastTransitionTime": now}


def _container(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for container in containers:
        if not name or container.get("name") == name:
            return container
    raise ApiError(400, f"container override names no container {name!r}")


def _page(items: list[dict[str, Any]], args: Any, key: str) -> dict[str, Any]:
    size = int(args.get("pageSize") or 100)
    start = int(args.get("pageToken") or 0)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextPageToken"] = str(start + size)
    return page


def log_uri(project: str, location: str, job: str, execution: str) -> str:
    """The console link Cloud Run gives as an execution's `logUri`: the log viewer on that execution's entries."""
    query = "\n".join(
        [
            'resource.type="cloud_run_job"',
            f'resource.labels.job_name="{job}"',
            f'resource.labels.location="{location}"',
            f'labels."run.googleapis.com/execution_name"="{execution}"',
        ]
    )
    return f"https://console.cloud.google.com/logs/viewer?project={project}&advancedFilter={quote(query, safe='/')}"


def _parent(where: dict[str, str]) -> str:
    return f"projects/{where['project']}/locations/{where['location']}"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def tasks_client(fake: FakeCloudRun) -> Any:
    """A real `run_v2.TasksClient` (REST) pointed at the fake, with anonymous credentials."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return run_v2.TasksClient(
        transport="rest", client_options=ClientOptions(api_endpoint=fake.endpoint), credentials=credentials
    )


def clients(fake: FakeCloudRun) -> tuple[Any, Any]:
    """Real `run_v2` REST clients pointed at the fake, with anonymous credentials."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    options = ClientOptions(api_endpoint=fake.endpoint)
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return (
        run_v2.JobsClient(transport="rest", client_options=options, credentials=credentials),
        run_v2.ExecutionsClient(transport="rest", client_options=options, credentials=credentials),
    )
