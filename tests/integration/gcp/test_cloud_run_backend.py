"""The Cloud Run backend with the real `run_v2` REST clients against the local fake: calls counted, not timed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from push_pools.backends.base import RunContext
from push_pools.errors import (
    ConfigurationError,
    ExecutorDeniedError,
    PermanentSubmissionError,
    TemplateError,
    TransientSubmissionError,
)
from push_pools.models import InfrastructureState
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.platforms.gcp.logs import logging_filter, read_command
from push_pools.platforms.gcp.request import IDEMPOTENCY_ENV, KEEP_LABEL, MANAGED_LABEL
from push_pools.templating import merge_job_variables, render_job_configuration, schema_defaults
from tests.fakes.cloud_run import FakeCloudRun, Fault, clients


def configuration(template: dict[str, Any], **values: Any) -> dict[str, Any]:
    rendered = render_job_configuration(template, merge_job_variables(schema_defaults(template), values))
    rendered["env"] = {"PREFECT_API_KEY": "pnu_secret_value"} | rendered.get("env", {})
    rendered.setdefault("labels", {})
    return rendered


def run(number: int, *, resubmission: bool = False, pool: str = "etl") -> RunContext:
    return RunContext(
        flow_run_id=f"run-{number}",
        flow_run_name=f"name-{number}",
        pool_name=pool,
        idempotency_key=f"run-{number}-1",
        resubmission=resubmission,
    )


def fresh_backend(fake: FakeCloudRun, **options: Any) -> CloudRunBackend:
    jobs, executions = clients(fake)
    return CloudRunBackend(jobs, executions, call_timeout=5.0, **options)


# ---- submission -----------------------------------------------------------------------------------------------


def test_the_first_run_creates_the_job_and_later_runs_are_one_write_each(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    first = cloud_run.submit(config, run(1))
    assert dict(fake.calls) == {"GetJob": 1, "CreateJob": 1, "RunJob": 1}
    fake.calls.clear()
    refs = [cloud_run.submit(config, run(n)) for n in range(2, 12)]
    assert dict(fake.calls) == {"RunJob": 10}
    assert len(fake.jobs) == 1
    assert len({ref.infrastructure_pid for ref in [first, *refs]}) == 11
    assert not any(ref.adopted for ref in [first, *refs])
    assert first.infrastructure_pid in fake.executions


def test_a_new_instance_finds_the_job_with_a_read(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    cloud_run.submit(config, run(1))
    fake.calls.clear()
    fresh_backend(fake).submit(config, run(2))
    assert dict(fake.calls) == {"GetJob": 1, "RunJob": 1}


def test_a_job_another_instance_created_meanwhile_is_used(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    cloud_run.submit(config, run(1))
    fake.inject(Fault(404, method="GetJob", times=1))  # it read "absent" just before the other one created it
    ref = fresh_backend(fake).submit(config, run(2))
    assert fake.answers[("CreateJob", 409)] == 1
    assert ref.infrastructure_pid in fake.executions
    assert len(fake.jobs) == 1


def test_job_creation_waits_for_its_operation(fake: FakeCloudRun, cloud_run_template: dict[str, Any]) -> None:
    fake.create_polls = 2
    ref = fresh_backend(fake).submit(configuration(cloud_run_template), run(1))
    assert fake.calls["GetOperation"] == 2
    assert ref.infrastructure_pid in fake.executions


def test_an_image_cloud_run_cannot_find_is_permanent(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    fake.missing_images.add("us-docker.pkg.dev/p/r/missing:1")
    with pytest.raises(PermanentSubmissionError, match="not found"):
        cloud_run.submit(configuration(cloud_run_template, image="us-docker.pkg.dev/p/r/missing:1"), run(1))
    assert fake.calls["RunJob"] == 0


def test_a_job_swept_meanwhile_is_made_again(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    cloud_run.submit(config, run(1))
    fake.finish_all()
    fake.jobs.clear()  # another instance's sweep deleted it
    ref = cloud_run.submit(config, run(2))
    assert ref.infrastructure_pid in fake.executions
    assert fake.calls["CreateJob"] == 2
    assert fake.answers[("RunJob", 404)] == 1


def test_an_invalid_job_body_is_refused_before_any_call(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    config["job_body"]["template"]["template"]["containers"][0]["imagePullPolicy"] = "Always"
    with pytest.raises(TemplateError, match="imagePullPolicy"):
        cloud_run.submit(config, run(1))
    assert sum(fake.calls.values()) == 0


# ---- idempotency ----------------------------------------------------------------------------------------------


def test_a_lost_response_is_followed_by_adoption_not_a_second_execution(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    cloud_run.submit(config, run(1))
    fake.inject(Fault(503, method="RunJob", times=1, after=1.0))
    with pytest.raises(TransientSubmissionError):
        cloud_run.submit(config, run(2))
    retry = cloud_run.submit(config, run(2, resubmission=True))
    assert retry.adopted
    assert fake.executions_by_key(IDEMPOTENCY_ENV)["run-2-1"] == 1
    assert retry.infrastructure_pid in fake.executions


def test_a_resubmission_with_nothing_started_starts_once(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    config = configuration(cloud_run_template)
    cloud_run.submit(config, run(1))
    fake.calls.clear()
    ref = cloud_run.submit(config, run(2, resubmission=True))
    assert not ref.adopted
    assert dict(fake.calls) == {"ListExecutions": 1, "RunJob": 1}
    assert fake.executions_by_key(IDEMPOTENCY_ENV) == {"run-1-1": 1, "run-2-1": 1}


def test_a_resubmission_before_the_job_exists_creates_it(
    fake: FakeCloudRun, cloud_run_template: dict[str, Any]
) -> None:
    ref = fresh_backend(fake).submit(configuration(cloud_run_template), run(1, resubmission=True))
    assert not ref.adopted
    assert fake.answers[("ListExecutions", 404)] == 1
    assert fake.calls["CreateJob"] == 1


def test_the_lookup_reads_newest_first_and_stops_at_the_lookback(
    fake: FakeCloudRun, cloud_run_template: dict[str, Any]
) -> None:
    clock = {"now": datetime(2026, 11, 1, tzinfo=UTC)}
    fake.clock = lambda: clock["now"]
    backend = fresh_backend(fake, clock=lambda: clock["now"], lookback=timedelta(hours=1))
    config = configuration(cloud_run_template)
    for number in range(150):
        backend.submit(config, run(number))
    clock["now"] += timedelta(hours=2)
    for number in range(150, 300):
        backend.submit(config, run(number))
    fake.calls.clear()
    assert backend.submit(config, run(250, resubmission=True)).adopted
    assert fake.calls["ListExecutions"] == 1, "a recent execution is on the first page"
    fake.calls.clear()
    assert not backend.submit(config, run(999, resubmission=True)).adopted
    assert fake.calls["ListExecutions"] == 2, "the first execution older than the lookback, on page 2, ends the scan"
    assert not backend.submit(config, run(10, resubmission=True)).adopted, "the documented limit: too old to be read"


# ---- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "error"),
    [
        ("RunJob", 429, TransientSubmissionError),
        ("RunJob", 500, TransientSubmissionError),
        ("RunJob", 503, TransientSubmissionError),
        ("RunJob", 400, PermanentSubmissionError),
        ("RunJob", 403, ExecutorDeniedError),
        ("GetJob", 503, TransientSubmissionError),
        ("GetJob", 403, ExecutorDeniedError),
        ("CreateJob", 400, PermanentSubmissionError),
        ("CreateJob", 403, ExecutorDeniedError),
        ("CreateJob", 404, PermanentSubmissionError),
        ("CreateJob", 429, TransientSubmissionError),
    ],
)
def test_errors_are_mapped_by_status(
    fake: FakeCloudRun,
    cloud_run: CloudRunBackend,
    cloud_run_template: dict[str, Any],
    method: str,
    status: int,
    error: type,
) -> None:
    fake.inject(Fault(status, method=method))
    with pytest.raises(error, match=f"Cloud Run {method}: HTTP {status}"):
        cloud_run.submit(configuration(cloud_run_template), run(1))


def test_throttling_carries_cloud_runs_retry_after(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    fake.inject(Fault(429, method="RunJob", retry_after=12))
    with pytest.raises(TransientSubmissionError) as raised:
        cloud_run.submit(configuration(cloud_run_template), run(1))
    assert raised.value.retry_after == 12


def test_an_unreachable_api_is_transient(fake: FakeCloudRun, cloud_run_template: dict[str, Any]) -> None:
    backend = fresh_backend(fake)
    fake.stop()
    with pytest.raises(TransientSubmissionError, match="did not complete"):
        backend.submit(configuration(cloud_run_template), run(1))


# ---- secrets --------------------------------------------------------------------------------------------------


def test_the_api_key_reaches_cloud_run_only_by_reference(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = configuration(cloud_run_template, prefect_api_key_secret={"secret": "prefect-api-key", "version": "2"})
    ref = cloud_run.submit(config, run(1))
    stored = json.dumps([fake.jobs, fake.executions, fake.operations], default=str)
    assert "pnu_secret_value" not in stored
    assert "pnu_secret_value" not in caplog.text
    env = fake.executions[ref.infrastructure_pid]["template"]["containers"][0]["env"]
    assert {
        "name": "PREFECT_API_KEY",
        "valueSource": {"secretKeyRef": {"secret": "prefect-api-key", "version": "2"}},
    } in env


def test_a_plaintext_api_key_is_warned_about_once_per_pool_without_its_value(
    cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    config = configuration(cloud_run_template)
    for number in range(3):
        cloud_run.submit(config, run(number))
    warnings = [r for r in caplog.records if "plaintext" in r.getMessage()]
    assert len(warnings) == 1
    assert "PREFECT_API_KEY" in warnings[0].getMessage()
    assert "pnu_secret_value" not in caplog.text


# ---- status and cancel ----------------------------------------------------------------------------------------


def test_status_follows_the_execution(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    pid = cloud_run.submit(configuration(cloud_run_template), run(1)).infrastructure_pid
    assert cloud_run.status(pid).state is InfrastructureState.STARTING
    fake.start_execution(pid)
    assert cloud_run.status(pid).state is InfrastructureState.RUNNING
    fake.finish(pid, succeeded=False, message="Task flow-run-task0 failed with message: boom", exit_code=3)
    failed = cloud_run.status(pid)
    assert (failed.state, failed.exit_code) == (InfrastructureState.FAILED, 3)
    task_link = fake.executions[pid]["logUri"] + "%0Alabels.%22run.googleapis.com/task_index%22%3D%220%22"
    assert (
        failed.message
        == f"Cloud Run execution failed: Task flow-run-task0 failed with message: boom; logs: {task_link}"
    )
    assert fake.calls["ListTasks"] == 1, "one ListTasks per failure"
    fake.inject(Fault(503, method="ListTasks", times=1))
    unread = cloud_run.status(pid)
    execution_link = fake.executions[pid]["logUri"]
    assert (unread.exit_code, unread.message) == (None, (failed.message or "").replace(task_link, execution_link))
    other = cloud_run.submit(configuration(cloud_run_template), run(2)).infrastructure_pid
    fake.finish(other)
    assert cloud_run.status(other).state is InfrastructureState.SUCCEEDED
    fake.jobs.clear()
    fake.executions.clear()
    assert cloud_run.status(other).state is InfrastructureState.GONE


def test_logs_name_the_cloud_logging_query_cloud_runs_own_link_makes(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    pid = cloud_run.submit(configuration(cloud_run_template), run(1)).infrastructure_pid
    found = cloud_run.logs(pid)
    assert (found.lines, found.elsewhere) == ((), read_command(pid))
    link = urlsplit(fake.executions[pid]["logUri"])
    assert parse_qs(link.query)["advancedFilter"][0].splitlines() == logging_filter(pid).split(" AND ")
    assert fake.calls["GetExecution"] == 0, "the query is known from the execution's name"
    with pytest.raises(ConfigurationError, match="is not a Cloud Run execution"):
        cloud_run.logs("host:123")


def test_cancel_is_idempotent(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    pid = cloud_run.submit(configuration(cloud_run_template), run(1)).infrastructure_pid
    fake.start_execution(pid)
    cloud_run.cancel(pid)
    assert cloud_run.status(pid).state is InfrastructureState.CANCELLED
    cloud_run.cancel(pid)
    assert fake.answers[("CancelExecution", 400)] == 1
    done = cloud_run.submit(configuration(cloud_run_template), run(2)).infrastructure_pid
    fake.finish(done)
    cloud_run.cancel(done)
    assert cloud_run.status(done).state is InfrastructureState.SUCCEEDED
    cloud_run.cancel(done.replace("-", "x", 1).rsplit("/", 1)[0] + "/gone-00000")


def test_cancel_failures_are_reported(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    pid = cloud_run.submit(configuration(cloud_run_template), run(1)).infrastructure_pid
    fake.inject(Fault(503, method="CancelExecution", times=1))
    with pytest.raises(TransientSubmissionError):
        cloud_run.cancel(pid)
    fake.inject(Fault(403, method="CancelExecution", times=1))
    with pytest.raises(PermanentSubmissionError):
        cloud_run.cancel(pid)


@pytest.mark.parametrize("pid", ["", "host:123", "projects/p/locations/r/jobs/j", "arn:aws:ecs:task/x", "../../x"])
def test_foreign_infrastructure_ids_are_refused(cloud_run: CloudRunBackend, pid: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Cloud Run execution"):
        cloud_run.status(pid)
    with pytest.raises(ConfigurationError, match="not a Cloud Run execution"):
        cloud_run.cancel(pid)


# ---- sweep ----------------------------------------------------------------------------------------------------


@pytest.fixture
def aged(fake: FakeCloudRun) -> dict[str, datetime]:
    clock = {"now": datetime(2026, 11, 1, tzinfo=UTC)}
    fake.clock = lambda: clock["now"]
    return clock


def test_sweep_deletes_only_our_idle_jobs(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any], aged: dict[str, datetime]
) -> None:
    idle = cloud_run.submit(configuration(cloud_run_template, image="img:idle"), run(1)).infrastructure_pid
    kept = cloud_run.submit(
        configuration(cloud_run_template, image="img:kept", keep_job=True), run(2)
    ).infrastructure_pid
    running = cloud_run.submit(configuration(cloud_run_template, image="img:running"), run(3)).infrastructure_pid
    fake.finish(idle)
    fake.finish(kept)
    aged["now"] += timedelta(days=3)
    recent = cloud_run.submit(configuration(cloud_run_template, image="img:recent"), run(4)).infrastructure_pid
    fake.finish(recent)
    foreign = dict(next(iter(fake.jobs.values())), name="projects/proj-1/locations/us-central1/jobs/theirs", labels={})
    fake.jobs[foreign["name"]] = foreign
    removed = cloud_run.sweep(aged["now"] + timedelta(days=6))
    assert removed == 1
    remaining = {name.rsplit("/", 1)[1] for name in fake.jobs}
    assert idle.split("/")[5] not in remaining
    assert {kept.split("/")[5], running.split("/")[5], recent.split("/")[5], "theirs"} <= remaining
    assert all(
        job["labels"].get(KEEP_LABEL) == "true" for name, job in fake.jobs.items() if name.endswith(kept.split("/")[5])
    )


def test_sweep_keeps_a_job_whose_older_execution_still_runs(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any], aged: dict[str, datetime]
) -> None:
    config = configuration(cloud_run_template)
    older = cloud_run.submit(config, run(1)).infrastructure_pid
    newer = cloud_run.submit(config, run(2)).infrastructure_pid
    fake.finish(newer)
    assert cloud_run.sweep(aged["now"] + timedelta(days=30)) == 0
    fake.finish(older)
    assert cloud_run.sweep(aged["now"] + timedelta(days=30)) == 1
    assert not fake.jobs


def test_sweep_keeps_a_job_that_changed_since_it_was_listed(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any], aged: dict[str, datetime]
) -> None:
    cloud_run.submit(configuration(cloud_run_template), run(1))
    fake.finish_all()
    fake.inject(Fault(409, method="DeleteJob", times=1))
    assert cloud_run.sweep(aged["now"] + timedelta(days=8)) == 0
    assert len(fake.jobs) == 1


def test_sweep_runs_once_per_interval_and_in_configured_locations(
    fake: FakeCloudRun, cloud_run_template: dict[str, Any], aged: dict[str, datetime]
) -> None:
    fresh_backend(fake).submit(configuration(cloud_run_template), run(1))
    fake.finish_all()
    backend = fresh_backend(
        fake, locations=["projects/proj-1/locations/us-central1"], sweep_interval=timedelta(minutes=10)
    )
    later = aged["now"] + timedelta(days=8)
    fake.calls.clear()
    assert backend.sweep(later) == 1
    assert backend.sweep(later + timedelta(minutes=5)) == 0
    assert fake.calls["ListJobs"] == 1
    backend.sweep(later + timedelta(minutes=11))
    assert fake.calls["ListJobs"] == 2


def test_sweep_errors_are_reported(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    cloud_run.submit(configuration(cloud_run_template), run(1))
    fake.inject(Fault(403, method="ListJobs"))
    with pytest.raises(PermanentSubmissionError, match="ListJobs"):
        cloud_run.sweep(datetime.now(UTC))


def test_every_job_we_make_is_labelled_ours(
    fake: FakeCloudRun, cloud_run: CloudRunBackend, cloud_run_template: dict[str, Any]
) -> None:
    cloud_run.submit(configuration(cloud_run_template), run(1))
    cloud_run.submit(configuration(cloud_run_template, image="other"), run(2, pool="Reports Pool"))
    assert {job["labels"][MANAGED_LABEL] for job in fake.jobs.values()} == {"true"}
