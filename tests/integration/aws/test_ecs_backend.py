"""The ECS backend against moto, through the dispatcher: what it registers, what it runs, how many calls it makes,
how it reads and stops tasks, and how AWS's refusals become run states."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from push_pools.jobs import run_context
from push_pools.models import InfrastructureState, StateType, SubmissionStatus
from push_pools.platforms.aws.configuration import DEFAULT_CONTAINER_NAME
from push_pools.platforms.aws.status import parse_infrastructure_id
from tests.fakes.aws_front import Call, PassThrough, error_response, json_response
from tests.integration.aws.conftest import CLUSTER, IMAGE, EcsPool, ecs_template

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prefect-api-key-AbCdEf"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/push-pools-task-execution"


def test_first_run_registers_the_task_definition_then_each_run_is_one_call(ecs_pool: EcsPool) -> None:
    runs = [ecs_pool.schedule() for _ in range(3)]
    with ecs_pool.world.recorder.counting() as first:
        outcome = ecs_pool.dispatcher.submit_run(runs[0].id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    assert first == {
        "ecs:DescribeTaskDefinition": 1,
        "ecs:RegisterTaskDefinition": 1,
        "ec2:DescribeVpcs": 1,
        "ec2:DescribeSubnets": 1,
        "ecs:RunTask": 1,
    }
    with ecs_pool.world.recorder.counting() as warm:
        for run in runs[1:]:
            assert ecs_pool.dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    assert warm == {"ecs:RunTask": 2}
    tasks = ecs_pool.tasks()
    assert len(tasks) == 3
    assert {task["startedBy"] for task in tasks} == {f"push-pools-{run.id}-1" for run in runs}


def test_a_cold_instance_finds_the_registered_family_without_registering(ecs_pool: EcsPool) -> None:
    ecs_pool.dispatcher.submit_run(ecs_pool.schedule().id)
    cold = ecs_pool.world.backend()
    run = ecs_pool.schedule()
    configuration = ecs_pool.dispatcher.prepare(run, ecs_pool.pool).configuration
    with ecs_pool.world.recorder.counting() as calls:
        cold.submit(configuration, run_context(run))
    assert calls == {"ecs:DescribeTaskDefinition": 1, "ec2:DescribeVpcs": 1, "ec2:DescribeSubnets": 1, "ecs:RunTask": 1}
    families = ecs_pool.world.client("ecs").list_task_definition_families()["families"]
    assert len(families) == 1


def test_the_task_runs_the_deployment_with_the_run_env_and_tags(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule(job_variables={"env": {"GREETING": "hello"}})
    outcome = ecs_pool.dispatcher.submit_run(run.id)
    cluster, task_arn = parse_infrastructure_id(outcome.infrastructure_pid or "")
    assert cluster == CLUSTER
    (task,) = ecs_pool.tasks()
    assert task["taskArn"] == task_arn
    override = task["overrides"]["containerOverrides"][0]
    assert override["name"] == DEFAULT_CONTAINER_NAME
    assert override["command"] == ["python", "-m", "flows.nightly"]
    env = {item["name"]: item["value"] for item in override["environment"]}
    assert env["GREETING"] == "hello"
    assert env["PUSH_POOL_FLOW_RUN_ID"] == run.id
    tags = {tag["key"]: tag["value"] for tag in task.get("tags", [])}
    assert tags["push-pools.io/flow-run-id"] == run.id
    definition = ecs_pool.world.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    assert container["image"] == IMAGE
    assert definition["taskDefinition"]["requiresCompatibilities"] == ["FARGATE"]
    assert ecs_pool.store.get_run(run.id).infrastructure_pid == outcome.infrastructure_pid


def test_the_api_key_goes_by_reference_never_in_plaintext(ecs_pool: EcsPool, caplog: pytest.LogCaptureFixture) -> None:
    secret_value = "pnu_do-not-leak-0123456789"
    ecs_pool.store.save_pool(
        ecs_pool.pool.model_copy(
            update={
                "base_job_template": ecs_template(
                    prefect_api_key_secret_arn=SECRET_ARN, execution_role_arn=EXECUTION_ROLE
                )
            }
        ),
        overwrite=True,
    )
    run = ecs_pool.schedule(job_variables={"env": {"PREFECT_API_KEY": secret_value}})
    assert ecs_pool.dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    (task,) = ecs_pool.tasks()
    definition = ecs_pool.world.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    assert container["secrets"] == [{"name": "PREFECT_API_KEY", "valueFrom": SECRET_ARN}]
    assert definition["taskDefinition"]["executionRoleArn"] == EXECUTION_ROLE
    everything = json.dumps([task, definition], default=str) + caplog.text
    assert secret_value not in everything
    names = {item["name"] for item in task["overrides"]["containerOverrides"][0]["environment"]}
    assert "PREFECT_API_KEY" not in names


def test_a_prefect_ecs_template_runs_unchanged(ecs_pool: EcsPool, prefect_ecs_template: dict[str, Any]) -> None:
    pool = ecs_pool.store.save_pool(
        ecs_pool.pool.model_copy(update={"name": "prefect-pool", "base_job_template": prefect_ecs_template})
    )
    deployment = ecs_pool.store.save_deployment(
        ecs_pool.deployment.model_copy(
            update={"id": "prefect-deployment", "name": "from-prefect", "pool_name": pool.name}
        )
    )
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    run = ecs_pool.store.create_run(
        deployment, now, job_variables={"cluster": CLUSTER, "cpu": 512, "memory": 1024}, now=now
    )
    outcome = ecs_pool.dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.SUBMITTED, outcome.message
    (task,) = ecs_pool.tasks()
    assert task["overrides"]["containerOverrides"][0]["command"] == ["python", "-m", "flows.nightly"]
    definition = ecs_pool.world.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    assert definition["taskDefinition"]["cpu"] == "512"
    assert definition["taskDefinition"]["family"].startswith("push-pools_prefect-pool-")


def test_fargate_spot_runs_as_a_capacity_provider_strategy(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule(job_variables={"launch_type": "FARGATE_SPOT"})
    assert ecs_pool.dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    (task,) = ecs_pool.tasks()
    assert task.get("capacityProviderName") == "FARGATE_SPOT"


def test_status_follows_the_task(ecs_pool: EcsPool) -> None:
    outcome = ecs_pool.dispatcher.submit_run(ecs_pool.schedule().id)
    pid = outcome.infrastructure_pid or ""
    assert ecs_pool.backend.status(pid).state is InfrastructureState.RUNNING
    ecs_pool.stop(parse_infrastructure_id(pid)[1], exit_code=3)
    status = ecs_pool.backend.status(pid)
    assert (status.state, status.exit_code) == (InfrastructureState.FAILED, 3)


def test_status_of_a_task_ecs_forgot_is_gone(ecs_pool: EcsPool) -> None:
    pid = f"{CLUSTER}::arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123456789abcdef0123456789abcdef"
    assert ecs_pool.backend.status(pid).state is InfrastructureState.GONE
    assert ecs_pool.backend.status(pid.replace(CLUSTER, "deleted-cluster", 1)).state is InfrastructureState.GONE


def test_cancel_stops_the_task_and_is_idempotent(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule()
    pid = ecs_pool.dispatcher.submit_run(run.id).infrastructure_pid or ""
    ecs_pool.store.request_cancellation(run.id)
    assert ecs_pool.dispatcher.cancel_run(run.id).status is SubmissionStatus.CANCELLED
    (task,) = ecs_pool.tasks()
    assert task["desiredStatus"] == "STOPPED"
    ecs_pool.backend.cancel(pid)  # stopping a stopped task is fine
    assert ecs_pool.store.get_run(run.id).state.type is StateType.CANCELLED


def test_cancelling_a_task_whose_cluster_is_gone_succeeds(ecs_pool: EcsPool) -> None:
    ecs_pool.backend.cancel("deleted-cluster::arn:aws:ecs:us-east-1:123456789012:task/deleted-cluster/0123")


def test_cancelling_a_task_ecs_does_not_know_succeeds(ecs_pool_server: EcsPool) -> None:
    pid = f"{CLUSTER}::arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123456789abcdef0123456789abcdef"
    with ecs_pool_server.world.recorder.counting() as calls:
        ecs_pool_server.backend.cancel(pid)
    assert calls == {"ecs:StopTask": 1, "ecs:DescribeTasks": 1}


def test_a_missing_cluster_crashes_the_run_with_the_reason(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule(job_variables={"cluster": "no-such-cluster"})
    outcome = ecs_pool.dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    state = ecs_pool.store.get_run(run.id).state
    assert state.type is StateType.CRASHED
    assert "ClusterNotFoundException" in (state.message or "")
    assert "create the cluster" in (state.message or "")


def test_overrides_over_8_kib_are_refused_before_any_call(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule(job_variables={"env": {f"VAR_{i}": "x" * 100 for i in range(80)}})
    with ecs_pool.world.recorder.counting() as calls:
        outcome = ecs_pool.dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    assert "8192" in (outcome.message or "")
    assert calls == {}


class _Answer(PassThrough):
    """Answers the first `times` calls of one ECS operation with a canned response."""

    def __init__(self, operation: str, times: int, answer: Any) -> None:
        self.operation, self.times, self.answer, self.answered = operation, times, answer, 0

    def on_request(self, call: Call) -> AWSResponse | None:
        if call.service != "ecs" or call.operation != self.operation or self.answered >= self.times:
            return None
        self.answered += 1
        response: AWSResponse = self.answer(call)
        return response


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDeniedException", 400, StateType.SCHEDULED),
        ("InvalidParameterException", 400, StateType.CRASHED),
        ("ServerException", 500, StateType.PENDING),
        ("ThrottlingException", 400, StateType.PENDING),
    ],
)
def test_run_task_errors_are_mapped_by_code(
    ecs_pool_server: EcsPool, code: str, status: int, expected: StateType
) -> None:
    layer = _Answer("RunTask", 4, lambda call: error_response(call, code, "refused", status))
    ecs_pool_server.world.add_layer(layer)
    run = ecs_pool_server.schedule()
    ecs_pool_server.dispatcher.submit_run(run.id)
    assert ecs_pool_server.store.get_run(run.id).state.type is expected
    if expected is StateType.PENDING:  # transient: retried until the layer stopped refusing
        assert layer.answered == 4
        assert len(ecs_pool_server.tasks()) == 1


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Capacity is unavailable at this time. Please try again later or in a different availability zone", "PENDING"),
        ("RESOURCE:MEMORY", "PENDING"),
        ("MISSING", "CRASHED"),
    ],
)
def test_run_task_failures_are_transient_only_for_capacity(
    ecs_pool_server: EcsPool, reason: str, expected: str
) -> None:
    failure = {
        "tasks": [],
        "failures": [{"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/x", "reason": reason}],
    }
    layer = _Answer("RunTask", 2, lambda call: json_response(call, 200, failure))
    ecs_pool_server.world.add_layer(layer)
    run = ecs_pool_server.schedule()
    outcome = ecs_pool_server.dispatcher.submit_run(run.id)
    assert ecs_pool_server.store.get_run(run.id).state.type == expected
    if expected == "CRASHED":
        assert reason in (outcome.message or "")


def test_a_conflicting_resubmission_adopts_the_first_task(ecs_pool_server: EcsPool) -> None:
    run = ecs_pool_server.schedule()
    first = ecs_pool_server.dispatcher.submit_run(run.id)
    configuration = ecs_pool_server.dispatcher.prepare(run, ecs_pool_server.pool).configuration
    configuration["env"] = {**configuration["env"], "CHANGED": "since the first try"}
    ref = ecs_pool_server.backend.submit(configuration, run_context(run, resubmission=True))
    assert ref.adopted
    assert ref.infrastructure_pid == first.infrastructure_pid
    assert len(ecs_pool_server.tasks()) == 1
