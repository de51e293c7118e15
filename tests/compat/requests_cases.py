"""The comparison cases: templates and job variables a Prefect user gives, drawn from what Prefect's own worker
tests pin down (prefect-aws `test_ecs_worker.py`, prefect-gcp `test_cloud_run_worker_v2.py`, Prefect's
`test_process_worker.py` and `test_base_worker.py`), written as our own data.

A case is `(id, worker type, template or None for the worker's default, job variables)`."""

from __future__ import annotations

from typing import Any

RUN: dict[str, Any] = {
    "id": "7c1d2f0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
    "name": "happy-fox",
    "flow_id": "0f1e2d3c-4b5a-4968-8776-655443322110",
    "flow_name": "etl",
    "pool": "etl-pool",
    "pool_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    "region": "us-east-1",
    "default_subnets": ["subnet-default-a", "subnet-default-b"],
    "worker": "push-pools",
}
"""The one flow run every case renders for, with what Prefect's worker would know of it."""

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/flows:1"


def ecs_template(task_definition: dict[str, Any], **task_run_request: Any) -> dict[str, Any]:
    """A hand-written ECS base job template, as users write them beside Prefect's default."""
    return {
        "job_configuration": {
            "command": "{{ command }}",
            "env": "{{ env }}",
            "labels": "{{ labels }}",
            "name": "{{ name }}",
            "task_definition": task_definition,
            "task_run_request": {"cluster": "{{ cluster }}", "launchType": "FARGATE", **task_run_request},
            "container_name": "{{ container_name }}",
        },
        "variables": {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "env": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                "labels": {"type": "object"},
                "name": {"type": "string"},
                "cluster": {"type": "string"},
                "container_name": {"type": "string"},
            },
        },
    }


ECS_CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = [
    ("ecs-no-image", "ecs", None, {}),
    ("ecs-image", "ecs", None, {"image": IMAGE}),
    ("ecs-cluster-and-sizes", "ecs", None, {"image": IMAGE, "cluster": "prod", "cpu": 2048, "memory": 4096}),
    ("ecs-command-string", "ecs", None, {"image": IMAGE, "command": "python -m my_flow --flag 'a b'"}),
    ("ecs-env-merged", "ecs", None, {"image": IMAGE, "env": {"STAGE": "prod", "EMPTY": ""}}),
    ("ecs-env-unset", "ecs", None, {"image": IMAGE, "env": {"PREFECT__FLOW_NAME": None}}),
    ("ecs-labels", "ecs", None, {"image": IMAGE, "labels": {"team": "data", "cost-centre": "42"}}),
    ("ecs-labels-sanitised", "ecs", None, {"image": IMAGE, "labels": {"Hello, World": "Hello, World"}}),
    ("ecs-label-bad-key", "ecs", None, {"image": IMAGE, "labels": {"key with spaces!": "v#1", "a*b": "x&y"}}),
    ("ecs-ec2", "ecs", None, {"image": IMAGE, "launch_type": "EC2", "cpu": 512, "memory": 1024}),
    ("ecs-fargate-spot", "ecs", None, {"image": IMAGE, "launch_type": "FARGATE_SPOT"}),
    (
        "ecs-capacity-providers",
        "ecs",
        None,
        {"image": IMAGE, "capacity_provider_strategy": [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]},
    ),
    (
        "ecs-network",
        "ecs",
        None,
        {
            "image": IMAGE,
            "vpc_id": "vpc-1",
            "network_configuration": {
                "subnets": ["subnet-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            },
        },
    ),
    (
        "ecs-roles",
        "ecs",
        None,
        {
            "image": IMAGE,
            "task_role_arn": "arn:aws:iam::123456789012:role/task",
            "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
        },
    ),
    (
        "ecs-api-key-secret",
        "ecs",
        None,
        {
            "image": IMAGE,
            "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
            "prefect_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
        },
    ),
    (
        "ecs-cloudwatch-logs",
        "ecs",
        None,
        {"image": IMAGE, "configure_cloudwatch_logs": True, "execution_role_arn": "arn:aws:iam::1:role/exec"},
    ),
    (
        "ecs-cloudwatch-options",
        "ecs",
        None,
        {
            "image": IMAGE,
            "configure_cloudwatch_logs": True,
            "execution_role_arn": "arn:aws:iam::1:role/exec",
            "cloudwatch_logs_options": {"awslogs-group": "flows", "awslogs-stream-prefix": "etl"},
        },
    ),
    ("ecs-family", "ecs", None, {"image": IMAGE, "family": "my-family"}),
    (
        "ecs-custom-containers",
        "ecs",
        ecs_template(
            {
                "containerDefinitions": [
                    {"name": "prefect", "image": IMAGE, "environment": [{"name": "FROM_TEMPLATE", "value": "1"}]},
                    {"name": "sidecar", "image": "datadog/agent:7", "essential": False},
                ],
                "cpu": 1024,
                "memory": 2048,
            }
        ),
        {"env": {"STAGE": "prod"}},
    ),
    (
        "ecs-named-container",
        "ecs",
        ecs_template({"containerDefinitions": [{"name": "flow", "image": IMAGE}]}),
        {"container_name": "flow", "cluster": "prod"},
    ),
    (
        "ecs-unnamed-container",
        "ecs",
        ecs_template({"containerDefinitions": [{"image": IMAGE}]}),
        {},
    ),
    (
        "ecs-ec2-template",
        "ecs",
        ecs_template(
            {"containerDefinitions": [{"name": "prefect", "image": IMAGE}], "requiresCompatibilities": ["EC2"]},
            launchType="EC2",
        ),
        {"cluster": "prod"},
    ),
    (
        "ecs-template-overrides-and-tags",
        "ecs",
        ecs_template(
            {"containerDefinitions": [{"name": "prefect", "image": IMAGE}]},
            overrides={"containerOverrides": [{"name": "prefect", "environment": "{{ env }}"}], "cpu": 512},
            tags=[{"key": "owner", "value": "platform"}],
        ),
        {"env": {"STAGE": "prod"}, "labels": {"team": "data"}},
    ),
]


NO_OVERRIDES = "run_task.overrides"
ON_PURPOSE: dict[str, set[str]] = {
    # A template whose task_run_request writes no container override: Prefect's worker then sends neither the
    # run's command nor its env (the container starts without PREFECT__FLOW_RUN_ID); push-pools always does.
    "ecs-custom-containers": {NO_OVERRIDES},
    "ecs-named-container": {NO_OVERRIDES},
    "ecs-unnamed-container": {NO_OVERRIDES},
    "ecs-ec2-template": {NO_OVERRIDES},
}
"""The fields where a case differs from Prefect on purpose (docs/prefect.md lists why); all others are equal."""
