"""Reviewing a Prefect pool before serving it, and the automation's webhook payload and shape."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.errors import ConfigurationError
from push_pools.orchestrators.prefect.automation import (
    EVENTS,
    PAYLOAD_TEMPLATE,
    automation_body,
    block_name,
    check_webhook_url,
    webhook_block_data,
)
from push_pools.orchestrators.prefect.pool_import import review_pool
from push_pools.triggers.payloads import Action, parse_request

BLOCK = {"$ref": {"block_document_id": "5b0c4a1e-0000-4000-8000-000000000000"}}


def process_template() -> dict[str, Any]:
    return default_base_job_template("process")


def test_push_pools_own_template_is_usable_as_it_is() -> None:
    review = review_pool("etl", "process", process_template())
    assert (review.pool_type, review.usable, review.problems, review.warnings) == ("process", True, [], [])


@pytest.mark.parametrize(
    ("prefect_type", "message"),
    [
        ("kubernetes", "cannot serve pools of type 'kubernetes'"),
        ("cloud-run", "Cloud Run v1 worker"),
        ("cloud-run:push", "Cloud Run v1 worker"),
        ("modal:push", "cannot serve pools of type 'modal:push'"),
    ],
)
def test_pool_types_it_cannot_serve_are_refused(prefect_type: str, message: str) -> None:
    review = review_pool("etl", prefect_type, process_template())
    assert review.pool_type is None
    assert not review.usable
    assert message in review.problems[0]


def test_prefect_placeholders_and_block_defaults_are_problems() -> None:
    template = process_template()
    template["job_configuration"]["secret"] = "{{ prefect.blocks.secret.token }}"
    template["job_configuration"]["other"] = "{{ undeclared }}"
    template["variables"]["properties"]["env"]["default"] = {"TOKEN": BLOCK}

    review = review_pool("etl", "process", template)

    assert not review.usable
    assert any("'{{ prefect.blocks.secret.token }}'" in p and "does not resolve" in p for p in review.problems)
    assert any("'{{ undeclared }}'" in p for p in review.problems)
    assert any("variable 'env' defaults to a Prefect block reference" in p for p in review.problems)


def test_what_the_backend_ignores_is_a_warning() -> None:
    template = process_template()
    template["job_configuration"]["aws_credentials"] = "{{ aws_credentials }}"
    template["variables"]["properties"]["aws_credentials"] = {"type": "object"}
    template["variables"]["properties"]["unused"] = {"type": "string"}

    review = review_pool("etl", "process", template)

    assert review.usable
    assert review.warnings == [
        "variable 'unused' is declared but no placeholder uses it: setting it has no effect",
        "job_configuration key 'aws_credentials' is not read by push-pools' process backend: it is ignored",
    ]


def test_a_template_rendering_to_a_job_the_backend_refuses_is_a_warning_for_deployments() -> None:
    template = copy.deepcopy(process_template())
    template["variables"]["properties"]["env"] = {"type": "array", "default": ["A=1"]}  # a list, not a mapping

    review = review_pool("etl", "process", template)

    assert review.usable
    assert any("every deployment must supply it" in w for w in review.warnings)
    empty_command = process_template()
    empty_command["job_configuration"]["command"] = ""
    warnings = review_pool("etl", "process", empty_command).warnings
    assert not any("does not render" in w for w in warnings), "Prefect's default command fills it"


@pytest.mark.parametrize(
    "template",
    [{}, {"job_configuration": []}, {"job_configuration": {}, "variables": {"type": "objekt"}}, {"extra": 1}],
)
def test_a_malformed_template_is_a_problem(template: dict[str, Any]) -> None:
    assert not review_pool("etl", "process", template).usable


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"$ref": "#/definitions/ProcessVariables"}, "'#/definitions/ProcessVariables' that points to nothing"),
        ({"$ref": "#/properties/command"}, "cycle of $refs"),
        (True, "variable 'command' is described by true"),
    ],
)
def test_a_variables_schema_that_would_fail_at_run_time_is_a_problem(schema: Any, problem: str) -> None:
    template = process_template()
    template["variables"]["properties"]["command"] = schema
    review = review_pool("etl", "process", template)
    assert not review.usable
    assert any(problem in p for p in review.problems), review.problems


@pytest.mark.parametrize(
    ("event", "action"),
    [(EVENTS[0], Action.SUBMIT), (EVENTS[1], Action.SUBMIT), (EVENTS[2], Action.CANCEL)],
)
def test_the_payload_prefect_renders_is_our_documented_request(event: str, action: Action) -> None:
    run_id = "0f4c7b1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b"
    # What Prefect's Jinja produces from PAYLOAD_TEMPLATE (checked against a real server in tests/e2e/prefect).
    rendered = PAYLOAD_TEMPLATE.replace("{{ event.resource.id | replace('prefect.flow-run.', '') }}", run_id).replace(
        "{{ event.event }}", event
    )

    request = parse_request(rendered)

    assert (request.action, request.flow_run_id) == (action, run_id)


def test_the_automation_matches_the_pools_runs_and_keeps_the_token_in_the_block() -> None:
    body = automation_body("etl", "pool-id", "block-id")
    trigger = body["trigger"]
    assert trigger["expect"] == list(EVENTS)
    assert trigger["match_related"] == {"prefect.resource.id": "prefect.work-pool.pool-id"}
    assert (trigger["posture"], trigger["threshold"]) == ("Reactive", 1)
    assert body["actions"] == [{"type": "call-webhook", "block_document_id": "block-id", "payload": PAYLOAD_TEMPLATE}]
    assert "token" not in json.dumps(body)
    data = webhook_block_data("https://fn.example/hook", "s3cret")
    assert data["headers"] == {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("pool", "name"), [("etl", "push-pools-etl"), ("Team ETL/2", "push-pools-team-etl-2"), ("__", "push-pools-pool")]
)
def test_block_names_are_slugs(pool: str, name: str) -> None:
    assert block_name(pool) == name


@pytest.mark.parametrize("url", ["ftp://fn/hook", "fn.example/hook", "http://", ""])
def test_a_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        check_webhook_url(url)


def test_import_reads_the_project_setting_as_submitting_does() -> None:
    """`push-pool import` once warned that a cloud-run pool names no project although PUSH_POOL_GCP_PROJECT did."""
    from push_pools.settings import Settings
    from push_pools.templating import set_variable_defaults

    defaults = {"region": "us-central1", "image": "flows:1"}
    template = set_variable_defaults(default_base_job_template("cloud-run"), defaults)
    assert any("names no Google Cloud project" in w for w in review_pool("cr", "cloud-run-v2:push", template).warnings)
    assert review_pool("cr", "cloud-run-v2:push", template, Settings(gcp_project="my-project")).warnings == []
