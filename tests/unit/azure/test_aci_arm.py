"""A Prefect `azure-container-instance` template (its documented shape, with an ARM template inside) renders into
one container group request; what push-pools cannot honour is refused with a TemplateError that says where."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from push_pools.errors import TemplateError
from push_pools.platforms.azure import backend as aci
from push_pools.platforms.azure.arm import RESOURCE_GROUP_LOCATION, read_arm_template
from push_pools.templating import check_base_job_template
from tests.unit.azure.helpers import API_KEY, IDENTITY, SUBSCRIPTION, fixture, render

PUSH_POOL_DEFAULTS = {
    "subscription_id": SUBSCRIPTION,
    "resource_group_name": "prefect-rg",
    "identities": [IDENTITY],
    "image_registry": {"registry_url": "acme.azurecr.io", "identity": IDENTITY},
    "aci_credentials": {"$ref": {"block_document_id": "2f0e1a4c-0000-4000-8000-00000000000a"}},
}


def prefect_template(**defaults: Any) -> dict[str, Any]:
    """Prefect's template, with variable defaults as a provisioned push pool sets them."""
    template: dict[str, Any] = fixture("prefect_aci_template.json")
    for name, value in (PUSH_POOL_DEFAULTS | defaults).items():
        template["variables"]["properties"][name]["default"] = value
    return template


def arm_resource(template: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = template["job_configuration"]["arm_template"]["resources"][0]
    return resource


def test_the_fixture_is_a_valid_base_job_template() -> None:
    check_base_job_template(prefect_template())


def test_a_provisioned_prefect_push_pool_template_renders_and_builds() -> None:
    configuration, run = render(prefect_template(), {"env": {"EXTRA": "1"}})
    request = aci.build_request(configuration, run)
    body = request["body"]
    (container,) = body["properties"]["containers"]
    assert request["resource_group_name"] == "prefect-rg"
    assert request["container_group_name"] == f"pp-{run.idempotency_key}"
    assert body["location"] == RESOURCE_GROUP_LOCATION, "[resourceGroup().location] is resolved when submitting"
    assert container["name"] == "flow-run", "the ARM expression naming the container is replaced"
    properties = container["properties"]
    assert properties["image"] == "ghcr.io/acme/etl:1"
    assert properties["command"] == ["/opt/prefect/entrypoint.sh", "prefect", "flow-run", "execute"]
    assert properties["resources"]["requests"] == {"cpu": 1.0, "memoryInGB": 1.0}
    names = {v["name"]: v for v in properties["environmentVariables"]}
    assert names["EXTRA"] == {"name": "EXTRA", "value": "1"}
    assert set(names["PREFECT_API_KEY"]) == {"name", "secureValue"}
    assert body["properties"]["imageRegistryCredentials"] == [{"server": "acme.azurecr.io", "identity": IDENTITY}]
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    assert body["properties"]["restartPolicy"] == "Never"
    assert body["properties"]["osType"] == "Linux"
    assert API_KEY not in json.dumps(request, default=str)
    assert "block_document_id" not in json.dumps(body, default=str), (
        "the function's own identity is used, not a Prefect block"
    )


def test_a_deployment_command_and_job_variables_override_the_arm_template() -> None:
    configuration, run = render(
        prefect_template(), {"command": "python flow.py", "cpu": 2, "memory": 4, "entrypoint": "/bin/tini"}
    )
    container = aci.build_request(configuration, run)["body"]["properties"]["containers"][0]["properties"]
    assert container["command"] == ["/bin/tini", "python", "flow.py"]
    assert container["resources"]["requests"] == {"cpu": 2, "memoryInGB": 4}


def test_arm_template_properties_push_pools_does_not_know_are_passed_through() -> None:
    template = prefect_template()
    properties = arm_resource(template)["properties"]
    properties["priority"] = "Spot"
    properties["diagnostics"] = {"logAnalytics": {"workspaceId": "w", "logType": "ContainerInstanceLogs"}}
    properties["containers"].append({"name": "sidecar", "properties": {"image": "busybox", "resources": {}}})
    arm_resource(template)["tags"] = {"cost-centre": "42"}
    arm_resource(template)["location"] = "northeurope"
    configuration, run = render(template)
    body = aci.build_request(configuration, run)["body"]
    assert body["properties"]["priority"] == "Spot"
    assert body["properties"]["diagnostics"]["logAnalytics"]["workspaceId"] == "w"
    assert [c["name"] for c in body["properties"]["containers"]] == ["flow-run", "sidecar"]
    assert body["tags"]["cost-centre"] == "42"
    assert body["location"] == "northeurope"


def test_the_location_job_variable_wins_over_the_arm_template() -> None:
    template = prefect_template()
    template["job_configuration"]["location"] = "{{ location }}"
    template["variables"]["properties"]["location"] = {"type": "string", "default": "swedencentral"}
    configuration, run = render(template)
    assert aci.build_request(configuration, run)["body"]["location"] == "swedencentral"


def test_a_system_assigned_identity_in_the_arm_template_is_kept_beside_user_ones() -> None:
    template = prefect_template()
    arm_resource(template)["identity"] = {"type": "SystemAssigned"}
    configuration, run = render(template)
    identity = aci.build_request(configuration, run)["body"]["identity"]
    assert identity["type"] == "SystemAssigned, UserAssigned"
    assert identity["userAssignedIdentities"] == {IDENTITY: {}}


def test_secure_values_written_in_the_arm_template_stay_secure() -> None:
    template = prefect_template()
    container = arm_resource(template)["properties"]["containers"][0]["properties"]
    container["environmentVariables"] = [{"name": "DB_PASSWORD", "secureValue": "in-template-secret"}]
    configuration, run = render(template)
    request = aci.build_request(configuration, run)
    assert "in-template-secret" not in json.dumps(request, default=str)


def minimal_arm(**resource: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "Microsoft.ContainerInstance/containerGroups",
        "location": "westeurope",
        "properties": {"containers": [{"name": "c", "properties": {"image": "i"}}], "osType": "Linux"},
    }
    return {"resources": [base | resource]}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("not a template", "must be a JSON object"),
        ({"resources": []}, "exactly one resource"),
        ({"resources": [{"type": "x"}, {"type": "y"}]}, "(it holds 2)"),
        ({"resources": [{"type": "Microsoft.Storage/storageAccounts"}]}, "not Microsoft.ContainerInstance"),
        (minimal_arm(properties="x"), "no 'properties' object"),
        (minimal_arm(properties={"containers": []}), "at least one container"),
        (minimal_arm(properties={"containers": [{"name": "c"}], "restartPolicy": "Always"}), "restartPolicy 'Always'"),
        (minimal_arm(location="[variables('where')]"), "location \"[variables('where')]\" is an ARM expression"),
        (minimal_arm(location="[parameters('missing')]"), "parameter 'missing', which has no defaultValue"),
        (minimal_arm(location=3), "'location' must be a string"),
        (minimal_arm(identity="SystemAssigned"), "'identity' must be an object"),
        (minimal_arm(tags=["a"]), "'tags' must be an object"),
        (
            minimal_arm(properties={"containers": [{"name": "c", "properties": {"image": "[concat('a', 'b')]"}}]}),
            "properties.containers[0].properties.image = \"[concat('a', 'b')]\"",
        ),
        (
            minimal_arm(
                properties={"containers": [{"name": "c"}, {"name": "[parameters('sidecar')]"}]},
            ),
            "parameter 'sidecar'",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused(template: Any, message: str) -> None:
    with pytest.raises(TemplateError) as error:
        read_arm_template(template)
    assert message in str(error.value)


def test_many_expressions_are_listed_a_few_at_a_time() -> None:
    properties = {"containers": [{"name": "c", "properties": {f"p{i}": f"[f({i})]" for i in range(8)}}]}
    with pytest.raises(TemplateError, match=r"\(and 3 more\)"):
        read_arm_template(minimal_arm(properties=properties))


def test_parameters_resolve_to_their_defaults_and_escaped_brackets_stay_literal() -> None:
    template = minimal_arm(
        location="[parameters('where')]",
        tags={"note": "[[not an expression]"},
        properties={"containers": [{"name": "x", "properties": {"image": "[parameters('image')]"}}]},
    )
    template["parameters"] = {"where": {"defaultValue": "uksouth"}, "image": {"defaultValue": "python:3.12"}}
    group = read_arm_template(template)
    assert group.location == "uksouth"
    assert group.tags == {"note": "[not an expression]"}
    assert group.properties["containers"][0]["properties"]["image"] == "python:3.12"


def test_parameters_that_refer_to_each_other_forever_are_refused() -> None:
    template = minimal_arm(location="[parameters('a')]")
    template["parameters"] = {"a": {"defaultValue": "[parameters('b')]"}, "b": {"defaultValue": "[parameters('a')]"}}
    with pytest.raises(TemplateError, match="too deeply"):
        read_arm_template(template)


def test_reading_does_not_change_the_template() -> None:
    template = prefect_template()["job_configuration"]["arm_template"]
    before = copy.deepcopy(template)
    read_arm_template(template)
    assert template == before
