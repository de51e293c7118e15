"""`push-pool preview` of an ECS run is what ECS (moto) receives, field by field: the request object is built once,
and submit sends the very object the preview prints (secret values revealed, nothing else changed)."""

from __future__ import annotations

from typing import Any

import pytest

from push_pools.backends.kit import secrets
from push_pools.platforms.aws.status import parse_infrastructure_id
from tests.integration.aws.conftest import EcsPool


def test_the_preview_is_what_ecs_received(ecs_pool: EcsPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # as in the function: the preview's awslogs-region
    run = ecs_pool.schedule(job_variables={"env": {"GREETING": "hello"}, "labels": {"team": "data"}})
    preview = ecs_pool.dispatcher.preview(ecs_pool.store.get_run(run.id), ecs_pool.pool)
    sent: dict[str, Any] = secrets.reveal(preview)
    outcome = ecs_pool.dispatcher.submit_run(run.id)
    (task,) = ecs_pool.tasks()
    assert parse_infrastructure_id(outcome.infrastructure_pid or "")[1] == task["taskArn"]

    run_task = sent["RunTask"]
    assert task["overrides"]["containerOverrides"] == run_task["overrides"]["containerOverrides"]
    assert {tag["key"]: tag["value"] for tag in task["tags"]} == {tag["key"]: tag["value"] for tag in run_task["tags"]}
    assert task["startedBy"] == run_task["startedBy"]
    assert task["launchType"] == run_task["launchType"]
    assert task["clusterArn"].endswith(f"/{run_task['cluster']}")

    registered = ecs_pool.world.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    definition = registered["taskDefinition"]
    wanted = sent["RegisterTaskDefinition"]
    assert definition["family"] == wanted["family"] == run_task["taskDefinition"]
    for field in ("cpu", "memory", "networkMode", "requiresCompatibilities", "executionRoleArn"):
        assert definition.get(field) == wanted.get(field), field
    (container,) = definition["containerDefinitions"]
    (wanted_container,) = wanted["containerDefinitions"]
    for field, value in wanted_container.items():
        assert container[field] == value, field
    assert [note.split(":")[0] for note in preview["resolved_on_submission"]] == [
        "RunTask.taskDefinition",
        "RunTask.networkConfiguration",
    ]
