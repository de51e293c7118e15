"""`push-pool preview` of an ACI run is what ARM (the fake, through the real SDK) receives, field by field; a
`[resourceGroup().location]` is named as resolved on submission, and is the resource group's region when sent."""

from __future__ import annotations

import pytest

from push_pools.backends.kit import secrets
from push_pools.platforms.azure import backend as aci_module
from push_pools.platforms.azure.arm import RESOURCE_GROUP_LOCATION
from tests.fakes.arm import FakeArm
from tests.integration.azure.conftest import MakeBackend
from tests.integration.azure.test_aci_backend import configuration, run_context
from tests.unit.azure.helpers import API_KEY


@pytest.mark.parametrize("location", ["westeurope", RESOURCE_GROUP_LOCATION])
def test_the_preview_is_what_arm_received(arm: FakeArm, make_backend: MakeBackend, location: str) -> None:
    rendered = configuration(location=location, secure_environment_names=["DB_PASSWORD"])
    rendered["env"] |= {"DB_PASSWORD": "hunter2", "KEY_NAME": "shown"}
    run = run_context()
    preview = aci_module.build_request(rendered, run)
    pid = make_backend().submit(rendered, run).infrastructure_pid
    assert pid == preview["resource_id"]
    (received,) = arm.bodies
    sent = secrets.reveal(preview["body"])
    if location == RESOURCE_GROUP_LOCATION:
        assert preview["resolved_on_submission"] == [
            f"body.location: the region of resource group {preview['subscription_id']}/rg-flows, read from ARM once"
        ]
        sent["location"] = "westeurope"  # the resource group's region, read from ARM
    else:
        assert preview["resolved_on_submission"] == []
    for field, value in sent.items():
        assert received[field] == value, field
    shown = secrets.preview(preview)
    env = {e["name"]: e.get("secureValue", e.get("value")) for e in shown["body"]["properties"]["containers"][0][
        "properties"]["environmentVariables"]}  # fmt: skip
    assert (env["PREFECT_API_KEY"], env["DB_PASSWORD"], env["KEY_NAME"]) == ("********", "********", "shown")
    assert API_KEY not in str(shown)
