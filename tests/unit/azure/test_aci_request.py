"""The container group request, row by row: names, ids, env and secure values, tags, command, bad configuration."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.errors import ConfigurationError, JobVariablesError, TemplateError
from push_pools.platforms.azure import backend as aci
from push_pools.platforms.azure.arm import RESOURCE_GROUP_LOCATION
from push_pools.platforms.azure.request import (
    KEEP_TAG,
    KEY_TAG,
    container_command,
    container_group_id,
    container_group_name,
    environment_variables,
    parse_container_group_id,
    request_body_bytes,
    sanitise_tags,
    secret_values,
)
from push_pools.templating import check_base_job_template
from tests.unit.azure.helpers import API_KEY, IDENTITY, SUBSCRIPTION, a_run, fixture, render

GROUP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
DEFAULTS = {"subscription_id": SUBSCRIPTION, "resource_group_name": "rg-flows", "location": "westeurope"}


def default_request(job_variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    configuration, run = render(default_base_job_template("aci"), DEFAULTS | (job_variables or {}), **kwargs)
    return aci.build_request(configuration, run)


def job_container(request: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = request["body"]["properties"]["containers"][0]
    return container


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("0c86c8c4-9381-4a2d-b1ae-5d4551708409-1", "pp-0c86c8c4-9381-4a2d-b1ae-5d4551708409-1"),
        ("0c86c8c4-9381-4a2d-b1ae-5d4551708409-12", "pp-0c86c8c4-9381-4a2d-b1ae-5d4551708409-12"),
        ("short", "pp-short"),
    ],
)
def test_a_group_name_is_the_idempotency_key_when_it_is_valid(key: str, expected: str) -> None:
    assert container_group_name(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "Run_ID--7",
        "UPPER-case-1",
        "x" * 200 + "-1",
        "run/with/slashes-1",
        "-leading-and-trailing-",
        "ünïcödé-1",
        "a" * 59 + "-1",
    ],
)
def test_any_key_gives_a_valid_group_name(key: str) -> None:
    name = container_group_name(key)
    assert len(name) <= 63
    assert GROUP_NAME.match(name), name


def test_keys_differing_only_in_what_names_cannot_hold_get_different_names() -> None:
    names = {container_group_name(key) for key in ["Run-1", "run-1", "RUN-1", "run_1", "run.1", "run--1"]}
    assert len(names) == 6
    assert container_group_name("x" * 100 + "-1") != container_group_name("x" * 100 + "-2")


def test_a_group_name_is_deterministic() -> None:
    assert container_group_name("abc-1") == container_group_name("abc-1")


def test_resource_ids_round_trip_and_parse_case_insensitively() -> None:
    pid = container_group_id(SUBSCRIPTION, "rg-flows", "pp-x-1")
    assert parse_container_group_id(pid) == (SUBSCRIPTION, "rg-flows", "pp-x-1")
    lowered = pid.replace("resourceGroups", "resourcegroups").replace(
        "Microsoft.ContainerInstance", "microsoft.containerinstance"
    )
    assert parse_container_group_id(lowered) == (SUBSCRIPTION, "rg-flows", "pp-x-1")


@pytest.mark.parametrize(
    "pid",
    [
        "",
        "pp-x-1",
        "host:123",
        "cluster::arn:aws:ecs:eu-west-1:1:task/x",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/a/b",
    ],
)
def test_foreign_infrastructure_ids_are_refused(pid: str) -> None:
    with pytest.raises(ConfigurationError, match="not a container group resource id"):
        parse_container_group_id(pid)


@pytest.mark.parametrize(
    ("env", "secure", "base", "expected"),
    [
        ({"A": "1"}, set(), None, [{"name": "A", "value": "1"}]),
        ({"A": "1", "B": None}, set(), None, [{"name": "A", "value": "1"}]),
        ({"TOKEN": "t"}, {"TOKEN"}, None, [{"name": "TOKEN", "secureValue": "t"}]),
        ({"A": "2"}, set(), [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}], [("A", "2"), ("C", "3")]),
        ({"C": None}, set(), [{"name": "C", "value": "3"}], []),
        ({}, set(), [{"name": "S", "secureValue": "s"}], [{"name": "S", "secureValue": "s"}]),
        ({"S": "new"}, set(), [{"name": "S", "secureValue": "s"}], [{"name": "S", "secureValue": "new"}]),
    ],
)
def test_environment_variables(
    env: dict[str, str | None], secure: set[str], base: list[dict[str, Any]] | None, expected: list[Any]
) -> None:
    variables = json.loads(request_body_bytes({"v": environment_variables(env, secure, base)}))["v"]
    if expected and isinstance(expected[0], tuple):
        assert [(v["name"], v["value"]) for v in variables] == expected
    else:
        assert variables == expected


def test_an_arm_environment_entry_without_a_name_is_refused() -> None:
    with pytest.raises(TemplateError, match="needs a 'name'"):
        environment_variables({}, set(), [{"value": "x"}])


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"push-pools.io/flow-run-id": "x"}, {"push-pools.io-flow-run-id": "x"}),
        ({"a<b>c%d&e\\f?g/h": "v"}, {"a-b-c-d-e-f-g-h": "v"}),
        ({"k": "v" * 300}, {"k": "v" * 256}),
        ({"k" * 600: "v"}, {"k" * 512: "v"}),
        ({"": "dropped"}, {}),
    ],
)
def test_tags_are_sanitised(tags: dict[str, str], expected: dict[str, str]) -> None:
    assert sanitise_tags(tags) == expected


@pytest.mark.parametrize(
    ("command", "entrypoint", "expected"),
    [
        (
            "prefect flow-run execute",
            "/opt/prefect/entrypoint.sh",
            ["/opt/prefect/entrypoint.sh", "prefect", "flow-run", "execute"],
        ),
        ("python -c 'print(1 + 1)'", None, ["python", "-c", "print(1 + 1)"]),
        (["python", "-m", "flows"], None, ["python", "-m", "flows"]),
        (None, "/opt/prefect/entrypoint.sh", None),
        ("", "/entry", None),
        ([], None, None),
    ],
)
def test_container_command(command: str | list[str] | None, entrypoint: str | None, expected: list[str] | None) -> None:
    assert container_command(command, entrypoint) == expected


def test_an_unsplittable_command_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="command cannot be split"):
        container_command("echo 'unbalanced", None)


def test_the_default_template_is_valid_and_renders_the_documented_request() -> None:
    template = default_base_job_template("aci")
    check_base_job_template(template)
    run = a_run(run_id="0c86c8c4-9381-4a2d-b1ae-5d4551708409")
    configuration, context = render(template, DEFAULTS | {"identities": [IDENTITY]}, run=run)
    request = aci.build_request(configuration, context)
    golden = fixture("default_request.json")
    assert json.loads(json.dumps(request, default=str)) == golden


def test_the_api_key_is_a_secure_value_never_a_plain_one() -> None:
    request = default_request()
    variables = {v["name"]: v for v in job_container(request)["properties"]["environmentVariables"]}
    assert set(variables["PREFECT_API_KEY"]) == {"name", "secureValue"}
    assert variables["PREFECT_API_URL"]["value"].startswith("https://")
    assert API_KEY not in json.dumps(request, default=str), "printing the request hides the key"
    assert API_KEY in request_body_bytes(request["body"]).decode(), "sending it reveals the key"
    assert secret_values(request["body"]) == [API_KEY]


def test_named_environment_variables_become_secure_values_and_the_api_key_always_is() -> None:
    request = default_request(
        {"secure_environment_names": ["DB_PASSWORD"], "env": {"DB_PASSWORD": "hunter22", "PLAIN": "x"}}
    )
    variables = {v["name"]: v for v in job_container(request)["properties"]["environmentVariables"]}
    assert "secureValue" in variables["DB_PASSWORD"]
    assert "secureValue" in variables["PREFECT_API_KEY"]
    assert variables["PLAIN"] == {"name": "PLAIN", "value": "x"}
    assert "hunter22" not in json.dumps(request, default=str)


def test_job_variables_reach_the_container_group() -> None:
    request = default_request(
        {
            "cpu": 2,
            "memory": 3.5,
            "gpu_count": 1,
            "gpu_sku": "V100",
            "identities": [IDENTITY],
            "image_registry": {"registry_url": "https://acme.azurecr.io/", "identity": IDENTITY},
            "subnet_ids": ["/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/a"],
            "dns_servers": ["10.0.0.4"],
            "entrypoint": None,
            "command": "python -m etl --full",
        }
    )
    properties = request["body"]["properties"]
    container = job_container(request)["properties"]
    assert container["resources"]["requests"] == {"cpu": 2, "memoryInGB": 3.5, "gpu": {"count": 1, "sku": "V100"}}
    assert container["command"] == ["python", "-m", "etl", "--full"]
    assert container["image"] == "ghcr.io/acme/etl:1"
    assert properties["imageRegistryCredentials"] == [{"server": "acme.azurecr.io", "identity": IDENTITY}]
    assert properties["subnetIds"][0]["id"].endswith("/subnets/a")
    assert properties["dnsConfig"] == {"nameServers": ["10.0.0.4"]}
    assert properties["restartPolicy"] == "Never"
    assert request["body"]["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}


def test_without_any_image_prefects_image_is_used() -> None:
    run = RunContext(flow_run_id="r", flow_run_name="n", pool_name="p", idempotency_key="r-1")
    request = aci.build_request({"subscription_id": SUBSCRIPTION, "resource_group_name": "rg"}, run)
    assert job_container(request)["properties"]["image"] == "prefecthq/prefect:3-latest"


def test_a_registry_identity_is_given_to_the_group_even_when_not_listed() -> None:
    request = default_request({"image_registry": {"registry_url": "acme.azurecr.io", "identity": IDENTITY}})
    assert request["body"]["identity"]["userAssignedIdentities"] == {IDENTITY: {}}


def test_a_password_registry_keeps_its_password_secret() -> None:
    registry = {"registry_url": "docker.io", "username": "bot", "password": "registry-pass-123"}
    request = default_request({"image_registry": registry})
    (credentials,) = request["body"]["properties"]["imageRegistryCredentials"]
    assert credentials["server"] == "docker.io"
    assert "registry-pass-123" not in json.dumps(request, default=str)
    assert "registry-pass-123" in secret_values(request["body"])


def test_without_a_location_the_resource_group_region_is_used() -> None:
    configuration, run = render(
        default_base_job_template("aci"), {"subscription_id": SUBSCRIPTION, "resource_group_name": "rg"}
    )
    assert aci.build_request(configuration, run)["body"]["location"] == RESOURCE_GROUP_LOCATION


def test_tags_carry_labels_and_the_idempotency_key_and_keep() -> None:
    request = default_request({"labels": {"team": "data"}, "keep_container_group": True})
    tags = request["body"]["tags"]
    assert tags["team"] == "data"
    assert tags["push-pools.io-flow-run-id"]
    assert tags[KEY_TAG].endswith("-1")
    assert tags[KEEP_TAG] == "true"
    assert KEEP_TAG not in default_request()["body"]["tags"]


def test_too_many_labels_are_refused() -> None:
    with pytest.raises(TemplateError, match="at most 50 tags"):
        default_request({"labels": {f"l{i}": "v" for i in range(60)}})


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"subscription_id": "not-a-uuid"}, "subscription_id"),
        ({"resource_group_name": "bad/name"}, "resource_group_name"),
        ({"resource_group_name": "ends-with-dot."}, "resource_group_name"),
        ({"cpu": 0}, "cpu"),
        ({"cpu": "two"}, "cpu"),
        ({"memory": -1}, "memory"),
        ({"gpu_count": 0}, "gpu_count"),
        ({"identities": ["not-an-id"]}, "identities"),
        ({"image_registry": {"registry_url": "x"}}, "image_registry"),
        ({"env": {"A": 1}}, "env"),
        ({"keep_container_group": "yes"}, "keep_container_group"),
    ],
)
def test_bad_job_variables_are_refused_by_the_schema(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(JobVariablesError, match=message):
        default_request(variables)


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({}, "subscription_id: Field required"),
        ({"subscription_id": SUBSCRIPTION}, "resource_group_name: Field required"),
        ({"subscription_id": "x", "resource_group_name": "rg"}, "subscription_id: Value error, must be a subscription"),
        ({"subscription_id": SUBSCRIPTION, "resource_group_name": "a/b"}, "resource_group_name"),
        ({"subscription_id": SUBSCRIPTION, "resource_group_name": "rg", "image": "i", "gpu_count": 1}, "gpu_count and"),
        ({"subscription_id": SUBSCRIPTION, "resource_group_name": "rg", "image": "i", "cpu": -1}, "cpu"),
        ({"subscription_id": SUBSCRIPTION, "resource_group_name": "rg", "image": "i", "env": "A=1"}, "env"),
        (
            {"subscription_id": SUBSCRIPTION, "resource_group_name": "rg", "image": "i", "arm_template": []},
            "arm_template",
        ),
        (
            {
                "subscription_id": SUBSCRIPTION,
                "resource_group_name": "rg",
                "image_registry": {"$ref": {"block_document_id": "b"}},
            },
            "refers to a Prefect block",
        ),
    ],
)
def test_bad_configurations_are_template_errors(configuration: dict[str, Any], message: str) -> None:
    run = RunContext(flow_run_id="r", flow_run_name="n", pool_name="p", idempotency_key="r-1")
    with pytest.raises(TemplateError, match=re.escape(message)):
        aci.build_request(configuration, run)


def test_building_a_request_needs_no_azure_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['azure'] = None\n"
        "from push_pools.platforms.azure import backend as aci\n"
        "from push_pools.backends.base import RunContext\n"
        f"r = aci.build_request({{'subscription_id': '{SUBSCRIPTION}', 'resource_group_name': 'rg', 'image': 'i'}},"
        " RunContext('r', 'n', 'p', 'r-1'))\n"
        "print(r['container_group_name'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pp-r-1"
