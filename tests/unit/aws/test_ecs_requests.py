"""The requests an ECS submission makes, built from rendered job configurations: row by row, and against golden
files for the default template and for a Prefect-shaped one."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from push_pools.backends.kit import secrets
from push_pools.errors import TemplateError
from push_pools.platforms.aws.backend import build_request
from push_pools.platforms.aws.configuration import (
    TaskDefinitionFacts,
    content_hash,
    drop_empty,
    family_name,
    log_stream_prefix,
    parse_job,
)
from push_pools.platforms.aws.request import (
    OVERRIDES_LIMIT,
    build_requests,
    check_overrides_size,
    client_token,
    run_tags,
    started_by,
    tag_text,
    with_network,
)
from tests.unit.aws.conftest import FIXTURES, RUN, fixture, render

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prefect-api-key-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/push-pools-task-execution"


def requests_for(job_variables: dict[str, Any] | None = None, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    built = build_requests(parse_job(render(job_variables, **kwargs)), RUN, region="us-east-1")
    assert built.task_definition is not None
    return built.task_definition, secrets.reveal(built.run_task)


@pytest.mark.parametrize(
    ("template", "golden"),
    [(None, "golden_default_template.json"), ("prefect_ecs_template.json", "golden_prefect_template.json")],
)
def test_golden_requests(template: str | None, golden: str) -> None:
    """Regenerate with `UPDATE_GOLDEN=1` after a deliberate change, and review the diff."""
    import os

    variables = {"cluster": "push-pools", "env": {"STAGE": "prod"}}
    configuration = render(variables, template=fixture(template) if template else None)
    request = secrets.preview(build_request(configuration, RUN, region="us-east-1"))
    path = FIXTURES / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n")
    assert request == json.loads(path.read_text())


def test_the_default_task_definition_is_fargate_ready() -> None:
    definition, _ = requests_for()
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")
    assert definition["containerDefinitions"] == [{"image": "ghcr.io/example/flows:1", "name": "prefect"}]
    assert definition["family"].startswith("push-pools_ecs-pool-")


def test_the_family_names_the_content() -> None:
    one, _ = requests_for({"cpu": 512, "memory": 1024})
    same, _ = requests_for({"cpu": 512, "memory": 1024, "env": {"ONLY": "in overrides"}})
    other, _ = requests_for({"cpu": 2048, "memory": 4096})
    assert one["family"] == same["family"]
    assert one["family"] != other["family"]
    assert one["family"].removeprefix("push-pools_ecs-pool-") == content_hash(one)


@pytest.mark.parametrize(
    ("base", "expected"),
    [("my family!", "my-family"), ("a" * 300, "a" * 238), ("///", "push-pools"), ("ok_name-1", "ok_name-1")],
)
def test_family_names_are_what_ecs_allows(base: str, expected: str) -> None:
    name = family_name(base, "0123456789abcdef")
    assert name == f"{expected}-0123456789abcdef"
    assert len(name) <= 255


def test_ec2_puts_cpu_and_memory_on_the_container() -> None:
    definition, run_task = requests_for({"launch_type": "EC2"})
    container = definition["containerDefinitions"][0]
    assert (container["cpu"], container["memory"]) == (1024, 2048)
    assert "requiresCompatibilities" not in definition
    assert run_task["launchType"] == "EC2"


@pytest.mark.parametrize(
    ("variables", "launch_type", "strategy"),
    [
        ({}, "FARGATE", None),
        ({"launch_type": "FARGATE_SPOT"}, None, [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
        (
            {"capacity_provider_strategy": [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]},
            None,
            [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}],
        ),
        ({"launch_type": "EXTERNAL"}, "EXTERNAL", None),
    ],
)
def test_launch_type_or_capacity_provider_strategy(
    variables: dict[str, Any], launch_type: str | None, strategy: list[dict[str, Any]] | None
) -> None:
    _, run_task = requests_for(variables)
    assert run_task.get("launchType") == launch_type
    assert run_task.get("capacityProviderStrategy") == strategy


def test_the_run_rides_in_the_overrides_with_its_tokens() -> None:
    _, run_task = requests_for({"env": {"STAGE": "prod", "UNSET_ME": None}}, command="python -m flows.nightly")
    (override,) = run_task["overrides"]["containerOverrides"]
    assert override["name"] == "prefect"
    assert override["command"] == ["python", "-m", "flows.nightly"]
    env = {item["name"]: item["value"] for item in override["environment"]}
    assert env["STAGE"] == "prod"
    assert "UNSET_ME" not in env
    assert env["PREFECT_API_KEY"] == "pnu_secret"  # no secret ARN: sent as Prefect's workers send it
    assert run_task["clientToken"] == RUN.idempotency_key
    assert run_task["startedBy"] == f"push-pools-{RUN.idempotency_key}"
    tags = {tag["key"]: tag["value"] for tag in run_task["tags"]}
    assert tags["push-pools.io/flow-run-id"] == RUN.flow_run_id
    assert tags["prefect.io/flow-run-name"] == "cheerful-otter"


def test_the_orchestrators_command_is_used_when_the_deployment_has_none() -> None:
    _, run_task = requests_for()
    assert run_task["overrides"]["containerOverrides"][0]["command"] == ["prefect", "flow-run", "execute"]


def test_the_api_key_travels_by_reference_only() -> None:
    definition, run_task = requests_for({"prefect_api_key_secret_arn": SECRET_ARN, "execution_role_arn": ROLE})
    container = definition["containerDefinitions"][0]
    assert container["secrets"] == [{"name": "PREFECT_API_KEY", "valueFrom": SECRET_ARN}]
    assert "pnu_secret" not in json.dumps([definition, run_task])


def test_the_auth_string_of_a_self_hosted_server_travels_by_reference_too() -> None:
    auth_arn = SECRET_ARN + "-auth"
    variables = {"prefect_api_auth_string_secret_arn": auth_arn, "execution_role_arn": ROLE}
    definition, run_task = requests_for(variables | {"env": {"PREFECT_API_AUTH_STRING": "admin:hunter2"}})
    secrets = definition["containerDefinitions"][0]["secrets"]
    assert secrets == [{"name": "PREFECT_API_AUTH_STRING", "valueFrom": auth_arn}]
    assert "hunter2" not in json.dumps([definition, run_task])


def test_a_secret_needs_an_execution_role() -> None:
    with pytest.raises(TemplateError, match="execution role to read the API-key secret"):
        requests_for({"prefect_api_key_secret_arn": SECRET_ARN})


def test_env_the_container_gets_as_a_secret_is_dropped_from_plaintext() -> None:
    template = json.loads(json.dumps(fixture("prefect_ecs_template.json")))
    container = template["job_configuration"]["task_definition"]["containerDefinitions"][0]
    container["secrets"] = [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}]
    container["environment"] = [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "KEEP", "value": "1"}]
    definition, run_task = requests_for(
        {"env": {"DB_PASSWORD": "hunter2"}, "execution_role_arn": ROLE}, template=template
    )
    assert "hunter2" not in json.dumps([definition, run_task])
    assert definition["containerDefinitions"][0]["environment"] == [{"name": "KEEP", "value": "1"}]


def test_cloudwatch_logs_are_configured_like_prefect_does() -> None:
    definition, _ = requests_for(
        {
            "configure_cloudwatch_logs": True,
            "execution_role_arn": ROLE,
            "cloudwatch_logs_options": {"awslogs-group": "/push-pools/tasks", "awslogs-create-group": "false"},
        }
    )
    options = definition["containerDefinitions"][0]["logConfiguration"]["options"]
    assert options == {
        "awslogs-create-group": "false",
        "awslogs-group": "/push-pools/tasks",
        "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "prefect-logs_ecs-pool",
    }
    with pytest.raises(TemplateError, match="write CloudWatch logs"):
        requests_for({"configure_cloudwatch_logs": True})


@pytest.mark.parametrize(
    ("deployment_id", "flow_id", "prefix"),
    [
        ("d-1", "f-1", "prefect-logs_ecs-pool_d-1"),
        (None, "f-1", "prefect-logs_ecs-pool_f-1"),
        (None, None, "prefect-logs_ecs-pool"),
    ],
)
def test_the_log_stream_prefix_is_prefect_awss(deployment_id: str | None, flow_id: str | None, prefix: str) -> None:
    assert log_stream_prefix(dataclasses.replace(RUN, deployment_id=deployment_id, flow_id=flow_id)) == prefix


def test_a_network_configuration_is_completed() -> None:
    _, run_task = requests_for({"network_configuration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}})
    awsvpc = run_task["networkConfiguration"]["awsvpcConfiguration"]
    assert awsvpc == {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED", "securityGroups": []}


def test_without_one_the_default_vpc_is_needed() -> None:
    built = build_requests(parse_job(render()), RUN, region=None)
    assert built.needs_network
    assert built.fargate
    networked = with_network(built.run_task, ["subnet-a", "subnet-b"], public_ip=True)
    assert networked["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    assert "networkConfiguration" not in built.run_task


def test_an_existing_task_definition_is_run_not_registered() -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/mine:3"
    job = parse_job(render({"task_definition_arn": arn}))
    facts = TaskDefinitionFacts("awsvpc", ("FARGATE",), ("app", "sidecar"), frozenset({"TOKEN"}))
    built = build_requests(job, RUN, region="us-east-1", facts=facts)
    assert built.task_definition is None
    assert built.run_task["taskDefinition"] == arn
    assert built.run_task["overrides"]["containerOverrides"][0]["name"] == "app"
    assert built.needs_network


def test_a_flat_template_works_too() -> None:
    flat = {
        "job_configuration": {
            "image": "{{ image }}",
            "cpu": "{{ cpu }}",
            "memory": "{{ memory }}",
            "cluster": "{{ cluster }}",
            "env": "{{ env }}",
            "task_role_arn": "{{ task_role_arn }}",
        },
        "variables": {
            "type": "object",
            "properties": {
                "image": {"type": "string"},
                "cpu": {"type": "integer", "default": 256},
                "memory": {"type": "integer", "default": 512},
                "cluster": {"type": "string", "default": "c"},
                "env": {"type": "object"},
                "task_role_arn": {"type": "string", "default": "arn:aws:iam::1:role/flow"},
            },
        },
    }
    definition, run_task = requests_for(template=flat)
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    assert definition["containerDefinitions"][0]["image"] == "ghcr.io/example/flows:1"
    assert run_task["cluster"] == "c"
    assert run_task["overrides"]["taskRoleArn"] == "arn:aws:iam::1:role/flow"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"cluster": 7}, "job variable 'cluster'"),
        ({"launch_type": "LAMBDA"}, "job variable 'launch_type'"),
        ({"capacity_provider_strategy": [{"weight": 1}]}, "capacityProvider"),
        ({"network_configuration": {"securityGroups": ["sg-1"]}}, "subnets"),
        ({"labels": {"aws:reserved": "x"}}, "reserved by ECS"),
        ({"labels": {f"label-{i}": "x" for i in range(60)}}, "ECS allows 50"),
        ({"env": {f"VAR_{i}": "x" * 200 for i in range(50)}}, "ECS allows 8192"),
    ],
)
def test_bad_job_variables_are_refused_with_a_reason(variables: dict[str, Any], message: str) -> None:
    from push_pools.errors import PushPoolError

    with pytest.raises(PushPoolError, match=message):
        requests_for(variables)


def test_no_image_is_refused() -> None:
    with pytest.raises(TemplateError, match="no image"):
        requests_for(image=None)


def test_a_wrongly_typed_configuration_is_refused() -> None:
    for configuration in ({"env": "not a dict"}, {"task_definition": []}, {"command": 3}):
        with pytest.raises(TemplateError, match="ecs job configuration"):
            parse_job(configuration)
    with pytest.raises(TemplateError, match="count must be 1"):
        build_requests(parse_job({"image": "i", "task_run_request": {"count": 3}}), RUN, region=None)
    with pytest.raises(TemplateError, match="not in the ECS task definition"):
        build_requests(
            parse_job(
                {"container_name": "app", "task_definition": {"containerDefinitions": [{"name": "x", "image": "i"}]}}
            ),
            RUN,
            region=None,
        )
    essential = {"task_definition": {"containerDefinitions": [{"name": "prefect", "image": "i", "essential": False}]}}
    with pytest.raises(TemplateError, match="essential"):
        build_requests(parse_job(essential), RUN, region=None)


@pytest.mark.parametrize(
    ("key", "token"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e-1", "0f8fad5b-d9cb-469f-a165-70867728950e-1"),
        ("k" * 64, "k" * 64),
        ("k" * 65, None),
        ("with space", None),
    ],
)
def test_client_tokens_fit_ecs(key: str, token: str | None) -> None:
    result = client_token(key)
    assert len(result) <= 64
    assert all(33 <= ord(c) <= 126 for c in result)
    assert result == (token or result)
    assert client_token(key) == result  # stable
    if token is None:
        assert result != key


@pytest.mark.parametrize(
    ("key", "expected"),
    [("abc-1", "push-pools-abc-1"), ("a b/c", "push-pools-a_b_c"), ("x" * 200, "push-pools-" + "x" * 117)],
)
def test_started_by_is_what_ecs_allows(key: str, expected: str) -> None:
    assert started_by(key) == expected


def test_tags_are_sanitised_and_the_run_wins() -> None:
    tags = run_tags({"team": "data eng!", "push-pools.io/flow-run-id": "forged"}, {"ok": "v#1"}, RUN)
    as_dict = {tag["key"]: tag["value"] for tag in tags}
    assert as_dict["team"] == "data-eng"
    assert as_dict["ok"] == "v-1"
    assert as_dict["push-pools.io/flow-run-id"] == RUN.flow_run_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World", "Hello-World"),
        ("key with spaces!", "key-with-spaces"),
        ("a*b", "a-b"),
        ("prefect.io/flow-run-id", "prefect.io/flow-run-id"),
        ("user@example.com:8080/x=y+z", "user@example.com:8080/x=y+z"),
        ("it's", "it-s"),
        ("1,000 runs", "1000-runs"),
        ("Tom &amp; Jerry", "Tom-Jerry"),
        ("&#65;&#x42;", "AB"),
        ("&#99999999;", "99999999"),
        ("café", "caf"),
        ("--a--b--", "a-b"),
        ("", ""),
    ],
)
def test_tag_text_is_prefect_aws_slug(text: str, expected: str) -> None:
    assert tag_text(text) == expected


def test_the_overrides_limit_counts_json_characters() -> None:
    def overrides(length: int) -> dict[str, Any]:
        framing = len(json.dumps({"containerOverrides": [{"name": "p", "command": [""]}]}, separators=(",", ":")))
        return {"containerOverrides": [{"name": "p", "command": ["x" * (length - framing)]}]}

    check_overrides_size(overrides(OVERRIDES_LIMIT))
    with pytest.raises(TemplateError, match="come to 8193 characters; ECS allows 8192"):
        check_overrides_size(overrides(OVERRIDES_LIMIT + 1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": None, "b": "", "c": [], "d": {}, "e": False, "f": 0}, {"e": False, "f": 0}),
        ([{"x": None}, "", "y"], ["y"]),
        ({"nested": {"deep": {"gone": None}}}, {}),
    ],
)
def test_drop_empty(value: Any, expected: Any) -> None:
    assert drop_empty(value) == expected


def test_the_preview_says_what_only_aws_can_tell() -> None:
    preview = build_request(render({"configure_cloudwatch_logs": True, "execution_role_arn": ROLE}), RUN)
    notes = " ".join(preview["resolved_on_submission"])
    for expected in ("default VPC", "awslogs-region", "ARN of this family"):
        assert expected in notes
