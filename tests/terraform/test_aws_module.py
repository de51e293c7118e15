"""AWS-specific checks of `terraform/modules/aws` and its examples: the wiring the code depends on (handler, env
names, partial batch responses, the tick's payload, the task-event pattern), and the shape of its IAM."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.cli.parsing import parse_assignments
from push_pools.platforms.aws import function as aws_lambda
from push_pools.platforms.aws.request import STARTED_BY_PREFIX
from push_pools.templating import set_variable_defaults
from push_pools.triggers.payloads import Action, parse_request
from tests.terraform.aws_module import MODULE_DIR, granted_actions, locals_, module, policy_statements, resource
from tests.terraform.hcl_tools import ROOT, TERRAFORM, load

FIXTURES = ROOT / "tests" / "fixtures" / "aws"
AWS_EXAMPLES = [TERRAFORM / "examples" / "aws-standalone", TERRAFORM / "examples" / "aws-prefect"]
RESOURCE_LEVEL_LESS = {
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
}


def expression(text: str) -> str:
    return text.removeprefix("${").removesuffix("}")


def test_the_function_runs_the_packaged_handler_on_python_311() -> None:
    function = resource("aws_lambda_function", "this")
    assert function["runtime"] == "python3.11"
    module_name, _, attribute = function["handler"].partition(".")
    shim = (ROOT / "infra" / "aws" / f"{module_name}.py").read_text()
    assert f"import {attribute}" in shim
    assert "filebase64sha256(var.package_path)" in function["source_code_hash"]


def test_the_function_environment_uses_the_names_the_code_reads() -> None:
    environment = str(locals_()["function_environment"])
    read = (aws_lambda.WEBHOOK_SECRET_ARN, *aws_lambda.EXPORTED_SECRETS, aws_lambda.QUEUE_URL, "PUSH_POOL_HOME")
    for name in read:
        assert name in environment, name
    assert "PREFECT_API_URL" in environment


def test_the_queue_reports_partial_batches_and_dead_letters_its_failures() -> None:
    mapping = resource("aws_lambda_event_source_mapping", "runs")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["event_source_arn"] == "${aws_sqs_queue.runs.arn}"
    queue = resource("aws_sqs_queue", "runs")
    assert "aws_sqs_queue.dead_letters.arn" in queue["redrive_policy"]
    assert expression(queue["visibility_timeout_seconds"]) == "6 * var.timeout_seconds"
    (dead_letters,) = resource("aws_lambda_function", "this")["dead_letter_config"]
    assert dead_letters["target_arn"] == "${aws_sqs_queue.dead_letters.arn}"


def test_the_tick_sends_a_tick_every_minute_with_its_own_role() -> None:
    schedule = resource("aws_scheduler_schedule", "tick")
    variables = module().named("variable")
    assert variables["tick_schedule_expression"]["default"] == "rate(1 minute)"
    (target,) = schedule["target"]
    assert target["role_arn"] == "${aws_iam_role.scheduler.arn}"
    payload = expression(target["input"]).removeprefix("jsonencode(").removesuffix(")")
    assert parse_request(json.dumps(_hcl_object(payload))).action is Action.TICK
    (statement,) = policy_statements("scheduler")
    assert statement.actions == ("lambda:InvokeFunction",)
    assert statement.resources == ["${aws_lambda_function.this.arn}"]


def _hcl_object(text: str) -> dict[str, Any]:
    """`{ action = "tick" }` → {"action": "tick"} (flat objects of strings only)."""
    pairs = re.findall(r"(\w+)\s*=\s*\"([^\"]*)\"", text)
    return dict(pairs)


def test_the_task_event_rule_catches_push_pools_tasks_of_the_cluster() -> None:
    pattern = resource("aws_cloudwatch_event_rule", "task_state")["event_pattern"]
    assert '"aws.ecs"' in pattern or "aws.ecs" in pattern
    assert "ECS Task State Change" in pattern
    assert f'prefix = "{STARTED_BY_PREFIX}"' in pattern
    assert "local.cluster_arn" in pattern
    event = json.loads((FIXTURES / "ecs_task_state_change.json").read_text())
    assert event["detail"]["startedBy"].startswith(STARTED_BY_PREFIX)
    permission = resource("aws_lambda_permission", "task_state")
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["source_arn"] == "${aws_cloudwatch_event_rule.task_state.arn}"


def test_no_action_is_a_wildcard_and_star_resources_are_only_where_aws_allows_nothing_else() -> None:
    for document in ("function", "function_network", "scheduler", "task_execution"):
        for statement in policy_statements(document):
            assert all("*" not in action for action in statement.actions), statement
            if statement.resources == ["*"] and document == "function":
                assert set(statement.actions) <= RESOURCE_LEVEL_LESS, statement


def test_run_task_is_held_to_the_cluster_and_pass_role_to_ecs_tasks() -> None:
    by_sid = {statement.sid: statement for statement in policy_statements("function")}
    run = by_sid["RunTasksOnTheCluster"]
    assert run.conditions[0]["variable"] == "ecs:cluster"
    passing = by_sid["PassTheTaskRoles"]
    assert passing.conditions[0] == {
        "test": "StringEquals", "variable": "iam:PassedToService", "values": ["ecs-tasks.amazonaws.com"]
    }  # fmt: skip
    tagging = by_sid["TagTasksAsTheyStart"]
    assert tagging.conditions[0]["variable"] == "ecs:CreateAction"
    assert by_sid["FindTheDefaultVpcsSubnets"].only_when == "${local.discovers_subnets ? [1] : []}"


def test_the_function_cannot_touch_iam_beyond_passing_its_roles() -> None:
    assert {action for action in granted_actions() if action.startswith("iam:")} == {"iam:PassRole"}


def test_the_pool_command_output_feeds_push_pool_create() -> None:
    """Rebuild the command from the module's pool defaults with sample values and give it to the CLI's parser."""
    defaults = {
        "cluster": "push-pools",
        "execution_role_arn": "arn:aws:iam::123456789012:role/push-pools-task-execution",
        "configure_cloudwatch_logs": True,
        "cloudwatch_logs_options": {"awslogs-group": "/push-pools/push-pools/tasks", "awslogs-create-group": "false"},
        "task_role_arn": "arn:aws:iam::123456789012:role/push-pools-task",
        "prefect_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
        "prefect_api_auth_string_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:auth-AbCdEf",
        "network_configuration": {"subnets": ["subnet-0abc"], "securityGroups": [], "assignPublicIp": "DISABLED"},
    }
    pool_defaults = str(locals_()["pool_defaults"])
    assert set(re.findall(r"(\w+)\s*=", pool_defaults)) >= set(defaults) - {"network_configuration"}
    words = shlex.split(
        " ".join(f"--set '{k}={v if isinstance(v, str) else json.dumps(v)}'" for k, v in defaults.items())
    )
    assignments = parse_assignments([word for word in words if word != "--set"])
    template = set_variable_defaults(default_base_job_template("ecs"), assignments)
    assert template["variables"]["properties"]["cluster"]["default"] == "push-pools"
    assert template["variables"]["properties"]["configure_cloudwatch_logs"]["default"] is True
    command = str(module().named("output")["push_pool_create_command"]["value"])
    assert "push-pool create POOL --type ecs" in command


@pytest.mark.parametrize("example", AWS_EXAMPLES, ids=lambda p: p.name)
def test_the_aws_examples_explain_themselves(example: Path) -> None:
    readme = (example / "README.md").read_text()
    assert "push-pool package aws" in readme
    assert "terraform apply" in readme


def test_the_prefect_example_keeps_the_api_key_out_of_terraform() -> None:
    example = load(TERRAFORM / "examples" / "aws-prefect")
    call = example.named("module")["push_pools"]
    assert call["orchestrator"] == "prefect"
    assert "aws_secretsmanager_secret_version" not in {kind for kind, _ in example.typed("resource")}


def test_the_standalone_example_shares_one_store_and_runs_one_instance() -> None:
    example = load(TERRAFORM / "examples" / "aws-standalone")
    call = example.named("module")["push_pools"]
    assert call["orchestrator"] == "local"
    assert call["efs_access_point_arn"] == "${aws_efs_access_point.store.arn}"
    assert call["reserved_concurrency"] == 1
    assert "SQLite" in (TERRAFORM / "examples" / "aws-standalone" / "README.md").read_text()


def test_module_readme_says_why_the_url_has_no_aws_auth() -> None:
    readme = (MODULE_DIR / "README.md").read_text()
    assert "Why the function URL has no AWS auth" in readme
    assert "Encryption" in readme


def test_the_function_reads_only_the_tasks_log_group() -> None:
    by_sid = {statement.sid: statement for statement in policy_statements("function")}
    reading = by_sid["ReadTheTasksOutput"]
    assert (reading.actions, reading.resources) == (
        ("logs:GetLogEvents",),
        ["${aws_cloudwatch_log_group.tasks.arn}:*"],
    )
