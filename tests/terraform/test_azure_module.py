"""Azure-specific checks of `terraform/modules/azure` and its examples, read statically with python-hcl2 (no
terraform binary here): least privilege that matches what the code calls, secrets by Key Vault reference, the
settings the function reads, and the outputs `push-pool create --type aci` takes. checkov runs at the end."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.cli.parsing import parse_assignments
from push_pools.platforms.azure import function as azure_functions
from push_pools.platforms.azure.backend import CONDITIONAL_ACTIONS, REQUIRED_ACTIONS, AciBackend
from push_pools.templating import schema_defaults, validate_job_variables
from tests.fakes.arm import FakeArm, fake_clients

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "terraform" / "modules" / "azure"
EXAMPLES = [ROOT / "terraform" / "examples" / "azure-standalone", ROOT / "terraform" / "examples" / "azure-prefect"]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
FAKE_CALL_ACTIONS = {
    "PUT group": "Microsoft.ContainerInstance/containerGroups/write",
    "GET group": "Microsoft.ContainerInstance/containerGroups/read",
    "GET list": "Microsoft.ContainerInstance/containerGroups/read",
    "DELETE group": "Microsoft.ContainerInstance/containerGroups/delete",
    "GET logs": "Microsoft.ContainerInstance/containerGroups/containers/logs/read",
    "GET resource-group": "Microsoft.Resources/subscriptions/resourceGroups/read",
}
"""The ARM action each call to the fake needs, as ARM's authorisation documents it."""
ALLOWED_BUILT_IN_ROLES = {
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Key Vault Secrets User",
    "Key Vault Secrets Officer",
    "Monitoring Metrics Publisher",
    "AcrPull",
}


@cache
def parsed(directory: Path) -> dict[str, list[Any]]:
    """Every top-level block of every .tf file in a directory, merged by kind."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for kind, blocks in hcl2.load(handle, serialization_options=OPTIONS).items():
                merged.setdefault(kind, []).extend(blocks)
    return merged


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in parsed(MODULE).get("resource", []) for name, body in block.get(kind, {}).items()}


def module_locals() -> dict[str, Any]:
    return {name: value for block in parsed(MODULE).get("locals", []) for name, value in block.items()}


def variables() -> dict[str, dict[str, Any]]:
    return {name: body for block in parsed(MODULE)["variable"] for name, body in block.items()}


def outputs() -> dict[str, dict[str, Any]]:
    return {name: body for block in parsed(MODULE)["output"] for name, body in block.items()}


def app_settings_text() -> str:
    """The `merge(...)` expression of the app settings, as HCL text."""
    return str(module_locals()["app_settings"])


# ---- least privilege ----------------------------------------------------------------------------------------


def test_the_custom_role_grants_exactly_the_actions_the_backend_needs() -> None:
    assert module_locals()["aci_actions"] == list(REQUIRED_ACTIONS)
    role = resources("azurerm_role_definition")["aci_executor"]
    assert role["permissions"][0]["actions"] == "${local.aci_actions}"
    assert role["assignable_scopes"] == ["${local.resource_group_id}"]
    assert not any("*" in action for action in REQUIRED_ACTIONS)


def test_the_backend_calls_no_action_beyond_the_role(tmp_path: Path) -> None:
    """Every operation of the backend against the fake, mapped to the ARM action it needs: all in the role."""
    subscription = "00000000-0000-4000-8000-000000000001"
    configuration = {"subscription_id": subscription, "resource_group_name": "rg", "image": "i", "command": "x"}
    with FakeArm() as arm:
        backend = AciBackend(fake_clients(arm))
        first = backend.submit(configuration, RunContext("a", "n", "p", "a-1"))
        backend.submit(configuration, RunContext("a", "n", "p", "a-1", resubmission=True))
        arm.finish(first.infrastructure_pid.rsplit("/", 1)[1], 1, logs="boom")
        backend.status(first.infrastructure_pid)
        backend.sweep(datetime.now(UTC).replace(year=2100))
        backend.cancel(first.infrastructure_pid)
    called = {FAKE_CALL_ACTIONS[call] for call in arm.calls}
    assert called == set(REQUIRED_ACTIONS)


def test_assigning_the_jobs_identity_is_allowed_on_that_identity_only() -> None:
    role = resources("azurerm_role_definition")["assign_jobs_identity"]
    assert role["permissions"][0]["actions"] == [CONDITIONAL_ACTIONS["identities"]]
    assignment = resources("azurerm_role_assignment")["function_assign_jobs_identity"]
    assert assignment["scope"] == "${azurerm_user_assigned_identity.jobs.id}"


def test_joining_subnets_is_granted_only_when_there_are_subnets_and_only_on_them() -> None:
    role = resources("azurerm_role_definition")["join_subnets"]
    assert role["count"] == "${length(var.container_subnet_ids) > 0 ? 1 : 0}"
    assert role["permissions"][0]["actions"] == [CONDITIONAL_ACTIONS["subnet_ids"]]
    assignment = resources("azurerm_role_assignment")["function_join_subnets"]
    assert assignment["for_each"] == "${toset(var.container_subnet_ids)}"
    assert assignment["scope"] == "${each.value}"


def test_no_broad_built_in_role_is_assigned() -> None:
    for name, assignment in resources("azurerm_role_assignment").items():
        built_in = assignment.get("role_definition_name")
        assert built_in is None or built_in in ALLOWED_BUILT_IN_ROLES, f"{name} assigns {built_in}"
    text = json.dumps(parsed(MODULE))
    assert '"Contributor"' not in text
    assert '"Owner"' not in text


def test_the_function_and_the_jobs_have_separate_identities() -> None:
    identities = resources("azurerm_user_assigned_identity")
    assert set(identities) == {"function", "jobs"}
    granted_to_jobs = [
        a for a in resources("azurerm_role_assignment").values() if "jobs.principal_id" in a["principal_id"]
    ]
    assert [a["role_definition_name"] for a in granted_to_jobs] == ["AcrPull"], "flow code cannot start containers"


# ---- the function app ---------------------------------------------------------------------------------------


def test_the_function_app_is_linux_python_311_with_the_user_assigned_identity() -> None:
    app = resources("azurerm_linux_function_app")["this"]
    assert app["site_config"][0]["application_stack"][0]["python_version"] == "3.11"
    assert app["identity"][0] == {
        "type": "UserAssigned",
        "identity_ids": ["${azurerm_user_assigned_identity.function.id}"],
    }
    assert app["key_vault_reference_identity_id"] == "${azurerm_user_assigned_identity.function.id}"
    assert app["storage_uses_managed_identity"] is True
    assert app["https_only"] is True
    assert resources("azurerm_service_plan")["this"]["os_type"] == "Linux"


def test_secrets_reach_the_app_as_key_vault_references_only() -> None:
    settings = app_settings_text()
    assert re.search(r'PUSH_POOL_WEBHOOK_SECRET\s*=\s*"@Microsoft\.KeyVault\(SecretUri=', settings)
    prefect_settings = str(module_locals()["prefect_app_settings"])
    for name in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
        assert re.search(name + r'\s*=\s*"@Microsoft\.KeyVault\(SecretUri=', prefect_settings), name
    assert "random_password" not in settings
    assert not re.search(r"var\.prefect_api_(key|auth_string)\b", settings + prefect_settings)
    vault = resources("azurerm_key_vault")["this"]
    assert vault["rbac_authorization_enabled"] is True
    user = resources("azurerm_role_assignment")["function_secrets_user"]
    assert (user["role_definition_name"], user["scope"]) == ("Key Vault Secrets User", "${azurerm_key_vault.this.id}")
    sensitive = {name for name, variable in variables().items() if variable.get("sensitive")}
    assert sensitive == {"prefect_api_key", "prefect_api_auth_string"}


def test_the_app_settings_are_the_ones_the_code_reads() -> None:
    settings = app_settings_text()
    for name in (
        azure_functions.QUEUE_NAME_SETTING,
        azure_functions.QUEUE_SERVICE_URI_SETTING,
        f"{azure_functions.QUEUE_CONNECTION}__credential",
        f"{azure_functions.QUEUE_CONNECTION}__clientId",
        "AzureWebJobsStorage__credential",
        "AZURE_CLIENT_ID",
        "PUSH_POOL_ACI_RETENTION_SECONDS",
        "PUSH_POOL_ACI_RESOURCE_GROUPS",
        "PUSH_POOL_ORCHESTRATOR",
        "PUSH_POOL_TICK_INTERVAL_SECONDS",
    ):
        assert name in settings, name
    assert re.search(r'PUSH_POOL_TICK_INTERVAL_SECONDS\s*=\s*"60"', settings), "the timer fires every minute"
    assert azure_functions.TICK_SCHEDULE == "0 * * * * *"


def test_the_queue_and_its_poison_twin_exist() -> None:
    queues = resources("azurerm_storage_queue")
    assert queues["runs"]["name"] == "${var.queue_name}"
    assert queues["runs_poison"]["name"] == "${var.queue_name}-poison"
    host = json.loads((ROOT / "infra" / "azure" / "host.json").read_text())
    queues = host["extensions"]["queues"]
    hours, minutes, seconds = (int(part) for part in queues["visibilityTimeout"].split(":"))
    retrying_for = queues["maxDequeueCount"] * (3600 * hours + 60 * minutes + seconds)
    assert retrying_for > 300, "redeliveries outlast ACI's 5-minute create-quota window"
    assert host["extensions"]["queues"]["messageEncoding"] == "none", "the Enqueue sends plain JSON text"


def test_storage_takes_entra_id_only() -> None:
    account = resources("azurerm_storage_account")["function"]
    assert account["shared_access_key_enabled"] is False
    assert account["min_tls_version"] == "TLS1_2"
    assert account["allow_nested_items_to_be_public"] is False


def test_application_insights_is_workspace_based_with_entra_ingestion() -> None:
    insights = resources("azurerm_application_insights")["this"]
    assert insights["workspace_id"] == "${azurerm_log_analytics_workspace.this.id}"
    assert insights["local_authentication_disabled"] is True
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" in app_settings_text()


# ---- variables, outputs, examples, README -------------------------------------------------------------------


def test_every_variable_is_typed_and_described() -> None:
    for name, body in variables().items():
        assert body.get("type"), name
        assert len(body.get("description", "")) > 20, name


@pytest.mark.parametrize(
    "name",
    [
        "name",
        "resource_group_name",
        "location",
        "package_path",
        "service_plan_sku",
        "orchestrator",
        "queue_name",
        "container_subnet_ids",
        "container_registry_id",
        "container_group_retention_seconds",
        "app_settings",
    ],
)
def test_variables_that_can_be_wrong_are_validated(name: str) -> None:
    assert variables()[name].get("validation"), name


def test_every_output_is_described() -> None:
    for name, body in outputs().items():
        assert body.get("description"), name


def test_the_create_args_output_feeds_push_pool_create() -> None:
    value = outputs()["push_pool_create_args"]["value"]
    assert "--type aci" in value
    assert "jsonencode(value)" in value
    job_variables = json.dumps(module_locals()["pool_job_variables"])
    for name in ("subscription_id", "resource_group_name", "location", "identities", "image_registry", "subnet_ids"):
        assert name in job_variables, name
    # What the output renders to, for a concrete deployment: each --set value is JSON, as `push-pool create` reads.
    identity = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/jobs"
    rendered = {
        "subscription_id": "00000000-0000-4000-8000-000000000001",
        "resource_group_name": "rg-push-pools",
        "location": "westeurope",
        "identities": [identity],
    }
    assignments = parse_assignments([f"{name}={json.dumps(value)}" for name, value in rendered.items()])
    assert assignments == rendered
    template = default_base_job_template("aci")
    validate_job_variables(template, schema_defaults(template) | assignments)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_use_the_module_by_relative_path(example: Path) -> None:
    (block,) = parsed(example)["module"]
    (body,) = block.values()
    assert body["source"] == "../../modules/azure"
    assert set(body) - {"source"} <= set(variables())
    required = {name for name, spec in variables().items() if "default" not in spec}
    assert required <= set(body)


def test_the_standalone_example_runs_the_embedded_store_on_a_dedicated_plan() -> None:
    (block,) = parsed(EXAMPLES[0])["module"]
    (body,) = block.values()
    assert body["orchestrator"] == "local"
    assert body["service_plan_sku"] != "Y1"
    preconditions = resources("azurerm_linux_function_app")["this"]["lifecycle"][0]["precondition"]
    assert any("local.dedicated_plan" in p["condition"] for p in preconditions)


def test_the_readme_lists_every_input_and_output() -> None:
    readme = (MODULE / "README.md").read_text()
    for name in [*variables(), *outputs()]:
        assert f"`{name}`" in readme, name


# ---- checkov ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # checkov loads its whole policy set: about 4 s per directory
@pytest.mark.parametrize("directory", [MODULE, *EXAMPLES], ids=lambda path: path.name)
def test_checkov_passes_and_every_skip_says_why(directory: Path) -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov is installed by `make test` in .venv-checkov")
    for path in MODULE.glob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"checkov:skip=CKV2?_AZURE_\d+:.{20,}", line), f"{path.name}: {line.strip()}"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "terraform", "--skip-download", "--quiet", "--compact"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout
