"""Reading Cloud Run resources and errors: execution status, job idleness, SDK errors → our error tree."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as api
from google.cloud import run_v2

from push_pools.backends.kit.evidence import TAIL_CHARS
from push_pools.errors import ExecutorNotReadyError, PermanentSubmissionError, TransientSubmissionError
from push_pools.models import InfrastructureState
from push_pools.platforms.gcp.errors import retry_after, translate_error
from push_pools.platforms.gcp.logs import logging_filter, read_command
from push_pools.platforms.gcp.status import execution_status, is_idle

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def execution(**fields: Any) -> run_v2.Execution:
    return run_v2.Execution.from_json(json.dumps({"taskCount": 1} | fields))


DONE = {"completionTime": "2026-11-24T11:00:00Z"}


@pytest.mark.parametrize(
    ("fields", "state", "message"),
    [
        ({}, InfrastructureState.STARTING, None),
        ({"startTime": "2026-11-24T10:00:00Z"}, InfrastructureState.RUNNING, None),
        ({"runningCount": 1}, InfrastructureState.RUNNING, None),
        (DONE | {"succeededCount": 1}, InfrastructureState.SUCCEEDED, None),
        (DONE | {"taskCount": 3, "succeededCount": 3}, InfrastructureState.SUCCEEDED, None),
        (DONE | {"taskCount": 3, "succeededCount": 2, "failedCount": 1}, InfrastructureState.FAILED, "1 task(s)"),
        (
            DONE | {"failedCount": 1, "conditions": [{"type": "Completed", "message": "Task exited with code 2"}]},
            InfrastructureState.FAILED,
            "exited with code 2",
        ),
        (
            DONE | {"cancelledCount": 1, "conditions": [{"type": "Completed", "message": "cancelled"}]},
            InfrastructureState.CANCELLED,
            "cancelled",
        ),
        (DONE, InfrastructureState.FAILED, "0 task(s) failed"),
    ],
)
def test_execution_status(fields: dict[str, Any], state: InfrastructureState, message: str | None) -> None:
    status = execution_status(execution(**fields))
    assert status.state is state
    if message is None:
        assert status.message is None
    else:
        assert message in (status.message or "")


def job(created: datetime, latest: dict[str, Any] | None = None) -> run_v2.Job:
    document: dict[str, Any] = {"createTime": created.isoformat()}
    if latest is not None:
        document["latestCreatedExecution"] = latest
    return run_v2.Job.from_json(json.dumps(document))


WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("candidate", "idle"),
    [
        (job(NOW - timedelta(days=8)), True),
        (job(NOW - timedelta(days=6)), False),
        (job(NOW - timedelta(days=30), {"name": "e", "createTime": (NOW - timedelta(days=8)).isoformat()}), False),
        (
            job(
                NOW - timedelta(days=30),
                {
                    "name": "e",
                    "createTime": (NOW - timedelta(days=9)).isoformat(),
                    "completionTime": (NOW - timedelta(days=8)).isoformat(),
                },
            ),
            True,
        ),
        (
            job(
                NOW - timedelta(days=30),
                {
                    "name": "e",
                    "createTime": (NOW - timedelta(days=9)).isoformat(),
                    "completionTime": (NOW - timedelta(days=1)).isoformat(),
                },
            ),
            False,
        ),
    ],
    ids=["old-never-run", "young", "latest-still-running", "finished-long-ago", "finished-recently"],
)
def test_job_idleness(candidate: run_v2.Job, idle: bool) -> None:
    assert is_idle(candidate, NOW, WEEK) is idle


def http_error(status: int, headers: dict[str, str] | None = None, details: list[Any] | None = None) -> Any:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return api.from_http_status(status, "refused", response=response, details=details or [])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses(status: int) -> None:
    assert isinstance(translate_error(http_error(status), "RunJob"), TransientSubmissionError)


@pytest.mark.parametrize("status", [400, 404, 412, 501])
def test_permanent_statuses(status: int) -> None:
    error = translate_error(http_error(status), "RunJob")
    assert isinstance(error, PermanentSubmissionError)
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("status", [401, 403])
def test_the_functions_identity_denied_means_the_executor_is_not_ready(status: int) -> None:
    error = translate_error(http_error(status), "RunJob")
    assert isinstance(error, ExecutorNotReadyError)
    assert isinstance(error, PermanentSubmissionError), "still permanent for the call: retrying does not help"
    assert f"HTTP {status}" in str(error)


def test_access_denied_says_which_roles_are_missing() -> None:
    assert "serviceAccountUser" in str(translate_error(http_error(403), "RunJob"))


@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("slow"), requests.ConnectionError("refused"), TimeoutError(), api.RetryError("x", None)],
    ids=type,
)
def test_transport_failures_are_transient(failure: BaseException) -> None:
    assert isinstance(translate_error(failure, "GetJob"), TransientSubmissionError)


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"Retry-After": "7"}, None, 7.0),
        ({"Retry-After": "0.25"}, None, 0.25),
        ({"Retry-After": "soon"}, None, None),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}], 1.5),
        ({}, [{"@type": "type.googleapis.com/google.rpc.ErrorInfo"}], None),
        ({}, None, None),
    ],
)
def test_retry_after(headers: dict[str, str], details: list[Any] | None, expected: float | None) -> None:
    assert retry_after(http_error(429, headers, details)) == expected


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    hint = retry_after(http_error(429, {"Retry-After": format_datetime(later, usegmt=True)}))
    assert hint is not None
    assert 25 <= hint <= 31


def test_transient_errors_carry_the_hint() -> None:
    error = translate_error(http_error(429, {"Retry-After": "4"}), "RunJob")
    assert isinstance(error, TransientSubmissionError)
    assert error.retry_after == 4.0


def test_missing_credentials_are_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from push_pools.errors import ConfigurationError
    from push_pools.platforms.gcp import backend as cloud_run
    from push_pools.settings import Settings

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="no Google Cloud credentials for cloud-run pools"):
        cloud_run.from_settings(Settings(home=tmp_path))


def test_a_failed_execution_says_why_bounded_and_links_its_logs() -> None:
    link = "https://console.cloud.google.com/logs/viewer?project=p&advancedFilter=x"
    reason = "Task j-abc12-task0 failed with message: The container exited with an error."
    failed = DONE | {"failedCount": 1, "logUri": link}
    status = execution_status(execution(**failed, conditions=[{"type": "Completed", "message": reason}]))
    assert status.message == f"Cloud Run execution failed: {reason}; logs: {link}"
    long = execution_status(execution(**failed, conditions=[{"type": "Completed", "message": "x" * 5000}]))
    assert long.message == f"Cloud Run execution failed: {'x' * (TAIL_CHARS - 1)}…; logs: {link}"


def test_an_executions_output_is_named_by_a_cloud_logging_filter() -> None:
    name = "projects/proj-1/locations/us-central1/jobs/pp-etl-1a2b/executions/pp-etl-1a2b-x7k2p"
    query = (
        'resource.type="cloud_run_job" AND resource.labels.job_name="pp-etl-1a2b" AND '
        'resource.labels.location="us-central1" AND labels."run.googleapis.com/execution_name"="pp-etl-1a2b-x7k2p"'
    )
    assert logging_filter(name) == query
    assert shlex.split(read_command(name)) == [
        "gcloud", "logging", "read", query, "--project=proj-1", "--freshness=30d", "--order=asc",
        "--format=value(textPayload)",
    ]  # fmt: skip


def test_a_failed_task_gives_the_failure_its_exit_code_and_its_own_log_link() -> None:
    failed = execution(**DONE, failedCount=1, logUri="https://e", conditions=[{"type": "Completed", "message": "m"}])
    task = run_v2.Task.from_json(json.dumps({"logUri": "https://t", "lastAttemptResult": {"exitCode": 3}}))
    status = execution_status(failed, task)
    assert (status.state, status.exit_code, status.message) == (
        InfrastructureState.FAILED,
        3,
        "Cloud Run execution failed: m; logs: https://t",
    )
