"""The fake ARM server's deployments (what Prefect's ACI worker sends) and the template evaluation behind them.

Deployments are driven over HTTP as ARM's REST API (`azure-mgmt-resource` is not a dependency of ours; the
benchmark drives the fake with it from Prefect's own environment)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.arm import FakeArm
from tests.fakes.arm_templates import InvalidTemplate, ResourceGroup, container_groups, unique_string

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/flows"
RESOURCE_GROUP = ResourceGroup(GROUP_ID, "flows", "westeurope")
TEMPLATE: dict[str, Any] = {
    "parameters": {
        "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        "container_group_name": {"type": "string", "defaultValue": "[uniqueString(resourceGroup().id)]"},
        "container_name": {"type": "string", "defaultValue": "[uniqueString(resourceGroup().id)]"},
    },
    "resources": [
        {
            "type": "Microsoft.ContainerInstance/containerGroups",
            "apiVersion": "2022-09-01",
            "name": "[parameters('container_group_name')]",
            "location": "[parameters('location')]",
            "properties": {
                "containers": [
                    {
                        "name": "[parameters('container_name')]",
                        "properties": {
                            "image": "flows:1",
                            "command": ["[concat('python', ' -m')]", "[['literal']"],
                            "resources": {"requests": {"cpu": 1, "memoryInGB": 1}},
                        },
                    }
                ],
                "osType": "Linux",
                "restartPolicy": "Never",
            },
        }
    ],
}


def test_expressions_are_evaluated() -> None:
    [(name, body)] = container_groups(TEMPLATE, {"container_group_name": {"value": "run-1"}}, RESOURCE_GROUP)

    assert name == "run-1"
    assert body["location"] == "westeurope"
    container = body["properties"]["containers"][0]
    assert container["name"] == unique_string(GROUP_ID)
    assert len(container["name"]) == 13
    assert container["properties"]["command"] == ["python -m", "['literal']"]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda t: t["resources"][0].update(type="Microsoft.Storage/storageAccounts"), "container groups only"),
        (lambda t: t["resources"][0].update(name="[variables('x')]"), "cannot evaluate variables()"),
        (lambda t: t["resources"][0].update(name="[parameters('nope')]"), "no parameter 'nope'"),
        (lambda t: t["resources"][0].update(name="[parameters('location']"), "not closed"),
        (lambda t: t["resources"][0].update(name="[resourceGroup().tags]"), "no property 'tags'"),
        (lambda t: t["resources"][0].update(name="[parameters('location') junk]"), "unexpected"),
        (lambda t: t["parameters"].update(required={"type": "string"}), "no value and no defaultValue"),
        (lambda t: t.pop("resources"), "no resources"),
    ],
)
def test_templates_the_fake_cannot_honour_are_refused(change: Any, complaint: str) -> None:
    template = copy.deepcopy(TEMPLATE)
    change(template)

    with pytest.raises(InvalidTemplate, match=complaint):
        container_groups(template, {}, RESOURCE_GROUP)


def test_undeclared_parameters_are_refused() -> None:
    with pytest.raises(InvalidTemplate, match="not declared"):
        container_groups(TEMPLATE, {"surprise": {"value": 1}}, RESOURCE_GROUP)


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm(resource_groups={"flows": "westeurope"}, operation_polls=0) as fake:
        yield fake


def deploy(arm: FakeArm, name: str, body: Any) -> requests.Response:
    url = f"{arm.url}{GROUP_ID}/providers/Microsoft.Resources/deployments/{name}?api-version=2024-03-01"
    return requests.put(url, json=body, headers={"Authorization": "Bearer t"}, timeout=10)


def follow(arm: FakeArm, answer: requests.Response) -> dict[str, Any]:
    status: dict[str, Any] = requests.get(
        answer.headers["Azure-AsyncOperation"], headers={"Authorization": "Bearer t"}, timeout=10
    ).json()
    return status


def test_a_deployment_creates_its_container_group(arm: FakeArm) -> None:
    parameters = {"container_group_name": {"value": "run-1"}}
    answer = deploy(arm, "prefect-run-1", {"properties": {"mode": "Incremental", "template": TEMPLATE,
                                                          "parameters": parameters}})  # fmt: skip

    assert answer.status_code == 201
    assert follow(arm, answer)["status"] == "Succeeded"
    assert arm.group("run-1").body["location"] == "westeurope"
    assert arm.calls == {"PUT deployment": 1, "GET operation": 1}
    read = requests.get(answer.url, headers={"Authorization": "Bearer t"}, timeout=10).json()
    assert read["properties"]["provisioningState"] == "Succeeded"
    assert read["properties"]["outputResources"] == [{"id": arm.group("run-1").resource_id}]


def test_a_refused_group_fails_the_deployment(arm: FakeArm) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["resources"][0]["properties"]["osType"] = "Plan9"
    answer = deploy(arm, "bad", {"properties": {"template": template, "parameters": {}}})

    assert answer.status_code == 201
    status = follow(arm, answer)
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "InvalidOsType"
    assert arm.groups == {}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"properties": {"template": "nope"}}'])
def test_malformed_deployments_are_refused(arm: FakeArm, body: bytes) -> None:
    url = f"{arm.url}{GROUP_ID}/providers/Microsoft.Resources/deployments/d?api-version=2024-03-01"
    answer = requests.put(url, data=body, headers={"Authorization": "Bearer t"}, timeout=10)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidTemplate"


def test_an_unknown_deployment_is_not_found(arm: FakeArm) -> None:
    url = f"{arm.url}{GROUP_ID}/providers/Microsoft.Resources/deployments/ghost?api-version=2024-03-01"
    answer = requests.get(url, headers={"Authorization": "Bearer t"}, timeout=10)

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "DeploymentNotFound"
