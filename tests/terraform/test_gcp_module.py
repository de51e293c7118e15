"""Google-Cloud-specific checks of `terraform/modules/gcp` and its examples, read statically with python-hcl2 (no
terraform binary here): the custom role against the calls the backend really makes, where each grant lands, the
Pub/Sub wiring that keeps every message, the tick, the functions, and the output `push-pool create` takes. What
every module and example must pass, checkov included, is in test_all_directories.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.gcp.burst import INSTANCES, SUBMIT_ATTEMPTS, SUBMIT_DEADLINE_SECONDS
from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.cli.parsing import parse_assignments
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.settings import Settings
from push_pools.templating import merge_job_variables, render_job_configuration, schema_defaults, set_variable_defaults
from push_pools.triggers.payloads import Action, parse_request
from tests.fakes.cloud_run import FakeCloudRun, clients, tasks_client
from tests.terraform.hcl_tools import ROOT, load

MODULE = ROOT / "terraform" / "modules" / "gcp"
EXAMPLES = [ROOT / "terraform" / "examples" / "gcp-standalone", ROOT / "terraform" / "examples" / "gcp-prefect"]
BROAD_ROLES = {"roles/owner", "roles/editor", "roles/viewer", "roles/run.admin", "roles/run.developer"}


def resources(kind: str) -> dict[str, Any]:
    return {name: body for (type_, name), body in load(MODULE).typed("resource").items() if type_ == kind}


def blocks(kind: str) -> dict[str, Any]:
    return load(MODULE).named(kind)


def module_locals() -> dict[str, Any]:
    return load(MODULE).named("locals")


# ---- least privilege ------------------------------------------------------------------------------------------


def permissions_the_backend_uses() -> set[str]:
    """Every Cloud Run permission a full life of runs needs, measured on the fake: create, run, adopt, status,
    cancel, sweep."""
    template = set_variable_defaults(default_base_job_template("cloud-run"), {"project": "proj-1", "image": "img"})
    configuration = render_job_configuration(template, merge_job_variables(schema_defaults(template), {}))
    configuration.update(env={}, labels={})
    clock = {"now": datetime(2026, 11, 1, tzinfo=UTC)}
    with FakeCloudRun(create_polls=1, clock=lambda: clock["now"]) as fake:
        jobs, executions = clients(fake)
        backend = CloudRunBackend(
            jobs, executions, tasks_client=tasks_client(fake), call_timeout=5.0, clock=lambda: clock["now"]
        )
        runs = [RunContext(f"r{n}", f"n{n}", "etl", f"r{n}-1") for n in range(2)]
        first = backend.submit(configuration, runs[0]).infrastructure_pid
        second = backend.submit(configuration, RunContext("r1", "n1", "etl", "r1-1", resubmission=True))
        backend.status(first)
        backend.cancel(first)
        fake.finish(second.infrastructure_pid, succeeded=False)
        backend.status(second.infrastructure_pid)  # a failure: its tasks are read
        assert backend.sweep(clock["now"] + timedelta(days=30)) == 1
        return set(fake.permissions)


def test_the_custom_role_holds_exactly_the_permissions_the_backend_uses() -> None:
    role = resources("google_project_iam_custom_role")["dispatcher"]
    assert role["permissions"] == "${local.cloud_run_permissions}"
    assert set(module_locals()["cloud_run_permissions"]) == permissions_the_backend_uses()


def test_the_project_wide_grant_is_only_the_custom_role() -> None:
    project_grants = resources("google_project_iam_member")
    assert list(project_grants) == ["function_dispatches"]
    assert project_grants["function_dispatches"]["role"] == "${google_project_iam_custom_role.dispatcher.id}"
    assert project_grants["function_dispatches"]["member"] == "${google_service_account.function.member}"


def test_no_broad_role_anywhere() -> None:
    text = " ".join((MODULE / name).read_text() for name in ("main.tf", "iam.tf"))
    assert not [role for role in BROAD_ROLES if f'"{role}"' in text]


def test_acting_as_a_service_account_is_granted_on_the_jobs_account_only() -> None:
    acting = {
        name: body
        for name, body in resources("google_service_account_iam_member").items()
        if body["role"] == "roles/iam.serviceAccountUser"
    }
    assert acting == {
        "function_acts_as_jobs": {
            "service_account_id": "${google_service_account.jobs.name}",
            "role": "roles/iam.serviceAccountUser",
            "member": "${google_service_account.function.member}",
        }
    }


def test_the_functions_jobs_and_push_have_separate_identities() -> None:
    accounts = resources("google_service_account")
    assert set(accounts) == {"function", "jobs", "push"}
    ids = {body["account_id"] for body in accounts.values()}
    assert len(ids) == 3
    prefix_limit = 20  # name_prefix's validation; service account ids are at most 30 characters
    assert all(len(i.replace("${var.name_prefix}", "x" * prefix_limit)) <= 30 for i in ids)


def test_secrets_are_readable_by_whom_needs_them_and_only_them() -> None:
    grants = resources("google_secret_manager_secret_iam_member")
    assert set(grants) == {"function_reads", "jobs_read"}
    assert all(body["role"] == "roles/secretmanager.secretAccessor" for body in grants.values())
    assert grants["function_reads"]["for_each"] == "${toset(local.function_secret_ids)}"
    assert grants["jobs_read"]["for_each"] == "${toset(local.prefect_secret_ids)}", "jobs never read the webhook secret"


# ---- functions ------------------------------------------------------------------------------------------------


def test_two_python_311_functions_from_one_source_with_the_entry_points_main_py_exports() -> None:
    function = resources("google_cloudfunctions2_function")["this"]
    (build,) = function["build_config"]
    assert build["runtime"] == "python311"
    assert build["entry_point"] == "${each.key}"
    assert set(module_locals()["functions"]) == {"webhook", "pubsub"}
    main = (ROOT / "infra" / "gcp" / "main.py").read_text()
    assert "import configure_logging, pubsub, webhook" in main


def test_only_the_webhook_may_be_public_and_the_pubsub_function_takes_only_pubsub() -> None:
    functions = module_locals()["functions"]
    assert functions["pubsub"]["ingress"] == "ALLOW_INTERNAL_ONLY"
    assert functions["webhook"]["ingress"] == "${var.webhook_ingress}"
    push_invoker = resources("google_cloud_run_v2_service_iam_member")["push_invokes_pubsub"]
    assert push_invoker["member"] == "${google_service_account.push.member}"
    assert "pubsub" in push_invoker["name"]
    public = resources("google_cloud_run_v2_service_iam_member")["webhook_invokers"]
    assert "webhook" in public["name"]
    assert "allUsers" in public["for_each"]
    assert "var.webhook_public" in public["for_each"]


def test_secrets_reach_the_functions_as_secret_environment_variables() -> None:
    functions = module_locals()["functions"]
    assert "PUSH_POOL_WEBHOOK_SECRET = local.webhook_secret_id" in functions["webhook"]["secrets"]
    assert "PUSH_POOL_WEBHOOK_SECRET" not in str(functions["pubsub"]["secrets"])
    assert "PREFECT_API_KEY" in module_locals()["orchestrator_secrets"]
    environment = json.dumps(module_locals()["environment"])
    assert "PREFECT_API_KEY" not in environment
    assert "WEBHOOK_SECRET" not in environment


def test_the_functions_get_the_settings_the_code_reads() -> None:
    environment = json.dumps(module_locals()["environment"])
    names = set(re.findall(r"PUSH_POOL_[A-Z_]+", environment))
    known = {f"PUSH_POOL_{field.upper()}" for field in Settings.model_fields}
    assert names <= known, names - known
    for needed in (
        "PUSH_POOL_GCP_PROJECT",
        "PUSH_POOL_CLOUD_RUN_LOCATIONS",
        "PUSH_POOL_CLOUD_RUN_JOB_RETENTION_SECONDS",
    ):
        assert needed in names


# ---- Pub/Sub and the tick -------------------------------------------------------------------------------------


def test_refused_messages_end_in_a_dead_letter_topic_that_keeps_them() -> None:
    subscriptions = resources("google_pubsub_subscription")
    requests = subscriptions["requests"]
    (policy,) = requests["dead_letter_policy"]
    assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert policy["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert requests["retry_policy"][0]["minimum_backoff"] == "${var.retry_minimum_backoff_seconds}s"
    assert requests["ack_deadline_seconds"] == "${var.function_timeout_seconds}"
    assert subscriptions["dead_letter"]["topic"] == "${google_pubsub_topic.dead_letter.id}", "dead letters are held"


def test_the_subscription_pushes_to_the_pubsub_function_with_an_oidc_token() -> None:
    (push,) = resources("google_pubsub_subscription")["requests"]["push_config"]
    assert 'google_cloudfunctions2_function.this["pubsub"]' in push["push_endpoint"]
    assert push["oidc_token"][0]["service_account_email"] == "${google_service_account.push.email}"


def test_the_pubsub_service_agent_can_dead_letter() -> None:
    agent = module_locals()["pubsub_agent"]
    assert agent == "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    publisher = resources("google_pubsub_topic_iam_member")["agent_publishes_dead_letters"]
    subscriber = resources("google_pubsub_subscription_iam_member")["agent_forwards_dead_letters"]
    assert (publisher["role"], publisher["topic"]) == (
        "roles/pubsub.publisher",
        "${google_pubsub_topic.dead_letter.name}",
    )
    assert (subscriber["role"], subscriber["subscription"]) == (
        "roles/pubsub.subscriber",
        "${google_pubsub_subscription.requests.name}",
    )
    assert publisher["member"] == subscriber["member"] == "${local.pubsub_agent}"


def test_the_tick_publishes_a_tick_request_every_minute() -> None:
    tick = resources("google_cloud_scheduler_job")["tick"]
    assert blocks("variable")["tick_schedule"]["default"] == "* * * * *"
    assert tick["schedule"] == "${var.tick_schedule}"
    (target,) = tick["pubsub_target"]
    assert target["topic_name"] == "${google_pubsub_topic.requests.id}"
    published = re.fullmatch(r'\$\{base64encode\(jsonencode\(\{(\w+) = "(\w+)"\}\)\)\}', target["data"])
    assert published is not None, target["data"]
    assert parse_request(json.dumps({published[1]: published[2]})).action is Action.TICK


# ---- variables, outputs, examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "project_id",
        "region",
        "name_prefix",
        "function_source_zip",
        "orchestrator",
        "max_delivery_attempts",
        "function_timeout_seconds",
        "tick_interval_seconds",
        "webhook_ingress",
        "webhook_invokers",
        "secret_version",
    ],
)
def test_variables_that_can_be_wrong_are_validated(name: str) -> None:
    assert blocks("variable")[name].get("validation"), name


def test_the_benchmark_measures_the_settings_the_module_deploys() -> None:
    variables = blocks("variable")
    assert variables["max_instances"]["default"] == INSTANCES
    assert variables["submit_attempts"]["default"] == SUBMIT_ATTEMPTS
    assert variables["submit_deadline_seconds"]["default"] == SUBMIT_DEADLINE_SECONDS
    assert "PUSH_POOL_SUBMIT_ATTEMPTS = tostring(var.submit_attempts)" in module_locals()["environment"]


def test_the_pool_create_args_feed_push_pool_create() -> None:
    value = blocks("output")["pool_create_args"]["value"]
    for name in ("project", "region", "service_account_name", "prefect_api_key_secret"):
        assert f"{name} " in value or f"{name} =" in value, name
    assert "--set '${name}=${value}'" in value
    # What it renders to for a concrete deployment, read back the way `push-pool create --set` reads it:
    rendered = [
        "project=my-project",
        "region=europe-west1",
        "service_account_name=push-pools-jobs@my-project.iam.gserviceaccount.com",
        'prefect_api_key_secret={"secret":"prefect-api-key","version":"latest"}',
    ]
    template = set_variable_defaults(default_base_job_template("cloud-run"), parse_assignments(rendered))
    assert template["variables"]["properties"]["prefect_api_key_secret"]["default"] == {
        "secret": "prefect-api-key",
        "version": "latest",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_give_the_module_its_required_inputs(example: Path) -> None:
    (body,) = load(example).named("module").values()
    variables = blocks("variable")
    assert set(body) - {"source"} <= set(variables)
    assert {name for name, spec in variables.items() if "default" not in spec} <= set(body)


def test_the_prefect_example_is_wired_to_prefect() -> None:
    (body,) = load(EXAMPLES[1]).named("module").values()
    assert body["orchestrator"] == "prefect"
    assert body["prefect_api_url"] == "${var.prefect_api_url}"
    assert body["prefect_api_key_secret_id"] == "${var.prefect_api_key_secret_id}"


@pytest.mark.parametrize("kind", ["google_service_account", "google_project_iam_custom_role"])
def test_identities_wait_for_the_apis_on_a_fresh_project(kind: str) -> None:
    found = resources(kind)
    assert found
    for name, body in found.items():
        assert "${google_project_service.apis}" in str(body.get("depends_on")), f"{kind}.{name}"


def test_project_iam_needs_cloud_resource_manager() -> None:
    assert "cloudresourcemanager.googleapis.com" in (MODULE / "main.tf").read_text()
