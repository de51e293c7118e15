"""Prefect's real `azure-container-instance` default base job template, taken from the Prefect worker itself
(installed in `.venv-prefect-workers` by `make test`), set up as a provisioned push pool would be, submits through
the ACI backend to the fake ARM: one container group, in the resource group's region, the API key secure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from push_pools.platforms.azure import backend as aci
from push_pools.platforms.azure.backend import AciBackend
from push_pools.templating import check_base_job_template
from tests.compat.prefect_workers import prefect_default_template
from tests.fakes.arm import FakeArm, fake_clients
from tests.unit.azure.helpers import API_KEY, IDENTITY, SUBSCRIPTION, render


@pytest.fixture(scope="module")
def prefect_template() -> dict[str, Any]:
    # Prefect renders this template only with its two required variables.
    return prefect_default_template(
        "azure-container-instance", {"resource_group_name": "rg", "subscription_id": SUBSCRIPTION}
    )


def provisioned(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `prefect work-pool create --type azure-container-instance:push` leaves it: defaults set."""
    copy: dict[str, Any] = json.loads(json.dumps(template))
    properties = copy["variables"]["properties"]
    properties["subscription_id"]["default"] = SUBSCRIPTION
    properties["resource_group_name"]["default"] = "rg-flows"
    properties["identities"]["default"] = [IDENTITY]
    properties["image_registry"]["default"] = {"registry_url": "acme.azurecr.io", "identity": IDENTITY}
    return copy


@pytest.mark.slow  # importing Prefect and its Azure worker in their own environment takes about 4 s
def test_prefects_real_template_submits_one_container_group(prefect_template: dict[str, Any]) -> None:
    template = provisioned(prefect_template)
    check_base_job_template(template)
    configuration, run = render(template, {"env": {"STAGE": "prod"}})
    with FakeArm(resource_groups={"rg-flows": "northeurope"}) as arm:
        ref = AciBackend(fake_clients(arm)).submit(configuration, run)
        assert ref.infrastructure_pid == aci.build_request(configuration, run)["resource_id"]
        (body,) = arm.bodies
    assert body["location"] == "northeurope", "[resourceGroup().location], looked up"
    assert arm.calls == {"GET resource-group": 1, "PUT group": 1}
    (container,) = body["properties"]["containers"]
    properties = container["properties"]
    assert properties["image"] == "ghcr.io/acme/etl:1"
    assert properties["command"][0] == "/opt/prefect/entrypoint.sh"
    variables = {v["name"]: v for v in properties["environmentVariables"]}
    assert variables["PREFECT_API_KEY"] == {"name": "PREFECT_API_KEY", "secureValue": API_KEY}
    assert variables["STAGE"] == {"name": "STAGE", "value": "prod"}
    assert body["properties"]["imageRegistryCredentials"] == [{"server": "acme.azurecr.io", "identity": IDENTITY}]
    assert body["identity"]["userAssignedIdentities"] == {IDENTITY: {}}
    assert body["properties"]["restartPolicy"] == "Never"
