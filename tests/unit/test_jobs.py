"""From pool, deployment and run to the job configuration: the orchestrator's image for a job naming none, and the
embedded store's refusal of a container deployment with no image at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from push_pools.backends import backend_module, default_base_job_template, pool_type
from push_pools.errors import ConfigurationError, TemplateError
from push_pools.jobs import DEFAULT_IMAGE_KEY, check_deployment, prepare_job, run_context
from push_pools.models import Deployment, FlowRun, State, StateType, WorkPool
from push_pools.orchestrators.base import RunEnvironment
from push_pools.orchestrators.prefect.orchestrator import prefect_image


def pool(kind: str, template: dict[str, Any] | None = None) -> WorkPool:
    return WorkPool(name="p", type=kind, base_job_template=template or default_base_job_template(kind))


def run() -> FlowRun:
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    return FlowRun(
        id="r-1",
        name="happy-fox",
        pool_name="p",
        state=State(type=StateType.SCHEDULED, name="Scheduled", timestamp=now),
        expected_start_time=now,
    )


@pytest.mark.parametrize(
    ("version", "python", "image"),
    [
        ("3.8.8", (3, 12, 4), "prefecthq/prefect:3.8.8-python3.12"),
        ("3.6.29", (3, 11), "prefecthq/prefect:3.6.29-python3.11"),
    ],
)
def test_prefects_image_is_named_as_prefect_names_it(version: str, python: tuple[int, ...], image: str) -> None:
    assert prefect_image(version, python) == image


def test_the_orchestrators_image_reaches_the_configuration() -> None:
    environment = RunEnvironment(default_image="prefecthq/prefect:3.8.8-python3.12")
    configuration = prepare_job(pool("ecs"), None, run(), environment).configuration
    assert configuration[DEFAULT_IMAGE_KEY] == "prefecthq/prefect:3.8.8-python3.12"
    assert DEFAULT_IMAGE_KEY not in prepare_job(pool("ecs"), None, run(), RunEnvironment()).configuration


@pytest.mark.parametrize("kind", ["ecs", "cloud-run"])
def test_a_container_deployment_with_no_image_is_refused_at_creation(kind: str) -> None:
    with pytest.raises(TemplateError, match="deployment 'etl' names no image and pool 'p' gives none: pass --image"):
        check_deployment(pool(kind), Deployment(id="d", name="etl", pool_name="p"))


@pytest.mark.parametrize(
    ("deployment", "template_image"),
    [
        (Deployment(id="d", name="etl", pool_name="p", image="python:3.12"), None),
        (Deployment(id="d", name="etl", pool_name="p", job_variables={"image": "python:3.12"}), None),
        (Deployment(id="d", name="etl", pool_name="p"), "default"),
        (Deployment(id="d", name="etl", pool_name="p"), "literal"),
    ],
)
def test_an_image_from_the_deployment_or_the_pool_is_enough(deployment: Deployment, template_image: str | None) -> None:
    template = default_base_job_template("ecs")
    if template_image == "default":
        template["variables"]["properties"]["image"]["default"] = "python:3.12"
    elif template_image == "literal":
        template["job_configuration"]["task_definition"]["containerDefinitions"][0]["image"] = "python:3.12"
    check_deployment(pool("ecs", template), deployment)


def test_a_process_deployment_needs_no_image() -> None:
    check_deployment(pool("process"), Deployment(id="d", name="etl", pool_name="p", command="true"))


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("ecs", "ecs"),
        ("ecs:push", "ecs"),
        ("cloud-run", "cloud-run"),
        ("cloud-run-v2", "cloud-run"),
        ("cloud-run-v2:push", "cloud-run"),
        ("aci", "aci"),
        ("azure-container-instance", "aci"),
        ("azure-container-instance:push", "aci"),
        ("process", "process"),
    ],
)
def test_prefects_type_names_are_ours(name: str, ours: str) -> None:
    assert pool_type(name).name == ours


@pytest.mark.parametrize("name", ["kubernetes", "cloud-run-v1", "ecs:pull", ""])
def test_unknown_types_are_refused_naming_prefects_names(name: str) -> None:
    with pytest.raises(
        ConfigurationError, match="known types: process, ecs, cloud-run, aci \\(Prefect's names: process, ecs:push"
    ):
        pool_type(name)


REQUIRED = {
    "ecs": {},
    "cloud-run": {"project": "proj-1", "region": "europe-west1"},
    "aci": {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group_name": "rg"},
}


def image_requested(kind: str, request: dict[str, Any]) -> str:
    if kind == "ecs":
        return str(request["RegisterTaskDefinition"]["containerDefinitions"][0]["image"])
    if kind == "cloud-run":
        return str(request["create_job"]["job"]["template"]["template"]["containers"][0]["image"])
    return str(json.dumps(request)).split('"image": "')[1].split('"')[0]


@pytest.mark.parametrize(
    ("kind", "image"),
    [
        ("ecs", "prefecthq/prefect:3.8.8-python3.12"),
        ("cloud-run", "docker.io/prefecthq/prefect:3.8.8-python3.12"),
        ("aci", "prefecthq/prefect:3.8.8-python3.12"),
    ],
)
def test_a_job_naming_no_image_gets_the_orchestrators(kind: str, image: str) -> None:
    template = default_base_job_template(kind)
    template["variables"]["properties"]["image"].pop("default", None)
    deployment = Deployment(id="d", name="etl", pool_name="p", job_variables=REQUIRED[kind])
    environment = RunEnvironment(default_image="prefecthq/prefect:3.8.8-python3.12")
    configuration = prepare_job(pool(kind, template), deployment, run(), environment).configuration
    request = backend_module(kind).build_request(configuration, run_context(run()))
    assert image_requested(kind, request) == image


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda t: t["job_configuration"]["task_definition"]["containerDefinitions"][0].update(
                image="{{ prefect.blocks.secret.registry.value }}/img"
            ),
            "the base job template's 'task_definition.containerDefinitions[0].image' refers to "
            "{{ prefect.blocks.secret.registry.value }}",
        ),
        (
            lambda t: t["job_configuration"].update(cluster="{{ prefect.variables.cluster }}"),
            "the base job template's 'cluster' refers to {{ prefect.variables.cluster }}",
        ),
        (
            lambda t: t["variables"]["properties"]["image"].update(default={"$ref": {"block_document_id": "b-1"}}),
            "job variable 'image' refers to a $ref block document reference",
        ),
    ],
)
def test_a_template_pointing_into_prefect_is_never_rendered_wrong(change: Any, named: str) -> None:
    template = default_base_job_template("ecs")
    change(template)
    with pytest.raises(TemplateError) as raised:
        prepare_job(pool("ecs", template), None, run(), RunEnvironment())
    assert named in str(raised.value)
    assert "will not render a wrong value" in str(raised.value)


def test_a_credentials_block_is_left_alone_since_it_is_never_used() -> None:
    template = default_base_job_template("ecs")
    template["job_configuration"]["aws_credentials"] = "{{ aws_credentials }}"
    template["variables"]["properties"]["aws_credentials"] = {"default": {"$ref": {"block_document_id": "b-1"}}}
    prepare_job(pool("ecs", template), None, run(), RunEnvironment())
