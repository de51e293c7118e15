"""The pure half of the Cloud Run backend: configuration → CreateJob and RunJob requests, row by row."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.backends.kit import secrets
from push_pools.errors import JobVariablesError, TemplateError
from push_pools.platforms.gcp import request as spec
from push_pools.templating import (
    check_base_job_template,
    merge_job_variables,
    render_job_configuration,
    schema_defaults,
    validate_job_variables,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gcp"
RUN = RunContext(flow_run_id="0b9f0d57-run", flow_run_name="brave-otter", pool_name="etl", idempotency_key="0b9f-1")


def render(template: dict[str, Any], run: RunContext = RUN, **values: Any) -> dict[str, Any]:
    """What `prepare_job` hands the backend: rendered, with the orchestrator's env and labels first."""
    merged = merge_job_variables(schema_defaults(template), values)
    validate_job_variables(template, merged)
    configuration = render_job_configuration(template, merged)
    orchestrator_env = {"PUSH_POOL_FLOW_RUN_ID": run.flow_run_id, "PREFECT_API_KEY": "pnu_plaintext"}
    orchestrator_labels = {"push-pools.io/flow-run-id": run.flow_run_id, "push-pools.io/pool-name": run.pool_name}
    configuration["env"] = orchestrator_env | (configuration.get("env") or {})
    configuration["labels"] = orchestrator_labels | (configuration.get("labels") or {})
    configuration["name"] = configuration.get("name") or run.flow_run_name
    return configuration


@pytest.fixture
def default_template() -> dict[str, Any]:
    return default_base_job_template("cloud-run")


@pytest.fixture
def prefect_template() -> dict[str, Any]:
    return json.loads((FIXTURES / "prefect-cloud-run-v2-template.json").read_text())


def overrides_env(request: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in request["run_job"]["overrides"]["containerOverrides"][0]["env"]}


def job_container(request: dict[str, Any]) -> dict[str, Any]:
    return request["create_job"]["job"]["template"]["template"]["containers"][0]


# ---- the default template -------------------------------------------------------------------------------------


def test_default_template_is_valid_and_uses_prefects_variable_names(default_template: dict[str, Any]) -> None:
    check_base_job_template(default_template)
    names = set(default_template["variables"]["properties"])
    prefect = {"region", "image", "cpu", "memory", "timeout", "max_retries", "service_account_name"}
    prefect |= {"vpc_connector_name", "env", "env_from_secrets", "prefect_api_key_secret", "labels", "command"}
    assert prefect | {"project", "args", "keep_job", "launch_stage", "cloudsql_instances"} <= names


def test_default_template_request_matches_the_golden_file(default_template: dict[str, Any]) -> None:
    configuration = render(
        default_template,
        project="my-project",
        image="us-docker.pkg.dev/my-project/flows/etl:1.0",
        command="python -m flows.etl",
        args=["--date", "today"],
        service_account_name="push-pools-jobs@my-project.iam.gserviceaccount.com",
        prefect_api_key_secret={"secret": "prefect-api-key", "version": "3"},
        env={"LOG_LEVEL": "debug"},
    )
    golden = json.loads((FIXTURES / "default-template-request.json").read_text())
    assert spec.build_request(configuration, RUN) == golden


def test_missing_required_values_are_clear_errors(default_template: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="no Google Cloud project"):
        spec.build_request(render(default_template, image="python:3.11"), RUN)
    with pytest.raises(TemplateError, match="no image"):
        spec.build_request(render(default_template, project="my-project"), RUN)
    with pytest.raises(JobVariablesError, match="memory"):
        render(default_template, project="my-project", image="x", memory="lots")


# ---- a Prefect user's cloud-run-v2 template -------------------------------------------------------------------


def test_prefect_template_renders_and_builds(prefect_template: dict[str, Any]) -> None:
    check_base_job_template(prefect_template)
    configuration = render(
        prefect_template,
        image="us-docker.pkg.dev/p/flows/etl:1",
        command="prefect flow-run execute",
        prefect_api_key_secret={"secret": "prefect-api-key"},
        env_from_secrets={"DB_PASSWORD": {"secret": "db", "version": "2"}},
        vpc_connector_name="projects/p/locations/us-central1/connectors/c",
    )
    request = spec.build_request(configuration, RUN, default_project="fallback-project")
    assert request["create_job"]["parent"] == "projects/fallback-project/locations/us-central1"
    job = request["create_job"]["job"]
    assert job["client"] == "prefect"
    assert job["launchStage"] == "BETA"
    task = job["template"]["template"]
    assert "timeout" not in task, "the timeout is a per-run override"
    assert task["vpcAccess"] == {"connector": "projects/p/locations/us-central1/connectors/c"}
    assert job_container(request)["command"] == ["prefect", "flow-run", "execute"]
    secret_refs = {e["name"]: e["valueSource"]["secretKeyRef"] for e in job_container(request)["env"]}
    assert secret_refs == {
        "PREFECT_API_KEY": {"secret": "prefect-api-key", "version": "latest"},
        "DB_PASSWORD": {"secret": "db", "version": "2"},
    }
    assert request["run_job"]["overrides"]["timeout"] == "600s"
    assert "PREFECT_API_KEY" not in overrides_env(request)


@pytest.mark.parametrize(
    ("credentials", "default", "expected"),
    [
        ({"project": "from-credentials"}, "fallback", "from-credentials"),
        ({"$ref": {"block_document_id": "3c1b0a6e"}}, "fallback", "fallback"),
        (None, "fallback", "fallback"),
    ],
)
def test_prefect_template_project_comes_from_credentials_or_the_default(
    prefect_template: dict[str, Any], credentials: Any, default: str, expected: str
) -> None:
    values = {"credentials": credentials} if credentials is not None else {}
    configuration = render(prefect_template, **values)
    request = spec.build_request(configuration, RUN, default_project=default)
    assert request["create_job"]["parent"] == f"projects/{expected}/locations/us-central1"


def test_prefect_template_without_any_project_says_how_to_set_one(prefect_template: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="PUSH_POOL_GCP_PROJECT"):
        spec.build_request(render(prefect_template), RUN)


# ---- one job per pool and template ----------------------------------------------------------------------------


def _request(template: dict[str, Any], run: RunContext = RUN, **values: Any) -> dict[str, Any]:
    return spec.build_request(render(template, run, **({"project": "proj-1", "image": "python:3.11"} | values)), run)


def test_runs_of_one_template_share_a_job_and_differ_only_in_overrides(default_template: dict[str, Any]) -> None:
    other = RunContext(flow_run_id="77-other", flow_run_name="calm-heron", pool_name="etl", idempotency_key="77-1")
    first = _request(default_template, env={"DAY": "mon"}, args=["a"], timeout=60)
    second = _request(default_template, other, env={"DAY": "tue"}, args=["b"], timeout=120)
    assert first["create_job"] == second["create_job"]
    assert first["run_job"]["name"] == second["run_job"]["name"]
    assert overrides_env(first)["DAY"] == "mon"
    assert overrides_env(second)["DAY"] == "tue"
    assert overrides_env(second)[spec.IDEMPOTENCY_ENV] == "77-1"
    assert second["run_job"]["overrides"]["containerOverrides"][0]["args"] == ["b"]
    assert second["run_job"]["overrides"]["timeout"] == "120s"


@pytest.mark.parametrize(
    "change",
    [
        {"image": "python:3.12"},
        {"cpu": "2000m"},
        {"memory": "1Gi"},
        {"command": "python other.py"},
        {"service_account_name": "sa@p.iam.gserviceaccount.com"},
        {"env_from_secrets": {"X": {"secret": "x"}}},
        {"labels": {"team": "data"}},
        {"keep_job": True},
        {"region": "europe-west1"},
    ],
)
def test_a_change_to_the_job_makes_another_job(default_template: dict[str, Any], change: dict[str, Any]) -> None:
    assert _request(default_template)["run_job"]["name"] != _request(default_template, **change)["run_job"]["name"]


def test_same_template_in_another_pool_is_another_job(default_template: dict[str, Any]) -> None:
    other_pool = RunContext(flow_run_id="1", flow_run_name="n", pool_name="reports", idempotency_key="1-1")
    assert _request(default_template)["create_job"]["jobId"].startswith("pp-etl-")
    assert _request(default_template, other_pool)["create_job"]["jobId"].startswith("pp-reports-")


def test_hash_label_names_the_spec_without_itself(default_template: dict[str, Any]) -> None:
    request = _request(default_template)
    job = request["create_job"]["job"]
    label = job["labels"].pop(spec.TEMPLATE_LABEL)
    assert label == spec.spec_hash(job)
    assert request["create_job"]["jobId"].endswith(label)


@pytest.mark.parametrize(
    ("pool", "prefix"),
    [
        ("etl", "pp-etl-"),
        ("ETL_Nightly.v2", "pp-etl-nightly-v2-"),
        ("9lives", "pp-9lives-"),
        ("a" * 63, "pp-" + "a" * 30 + "-"),
        ("---", "pp-"),
    ],
)
def test_job_ids_are_valid_cloud_run_ids(pool: str, prefix: str) -> None:
    job_id = spec.job_id_for(pool, "0123456789ab")
    assert job_id.startswith(prefix)
    assert re.fullmatch(r"[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?", job_id), job_id


# ---- secrets --------------------------------------------------------------------------------------------------


def test_api_key_secret_replaces_the_plaintext_key_everywhere(default_template: dict[str, Any]) -> None:
    request = _request(default_template, prefect_api_key_secret={"secret": "k"})
    text = json.dumps(request)
    assert "pnu_plaintext" not in text
    refs = [e for e in job_container(request)["env"] if e["name"] == "PREFECT_API_KEY"]
    assert refs == [{"name": "PREFECT_API_KEY", "valueSource": {"secretKeyRef": {"secret": "k", "version": "latest"}}}]


def test_the_idempotency_key_cannot_be_overridden_by_the_template(default_template: dict[str, Any]) -> None:
    request = _request(default_template, env={spec.IDEMPOTENCY_ENV: "forged"})
    names = [e["name"] for e in request["run_job"]["overrides"]["containerOverrides"][0]["env"]]
    assert names.count(spec.IDEMPOTENCY_ENV) == 1
    assert overrides_env(request)[spec.IDEMPOTENCY_ENV] == RUN.idempotency_key


def test_without_a_secret_the_key_travels_as_a_plain_override(default_template: dict[str, Any]) -> None:
    request = _request(default_template)
    assert overrides_env(secrets.reveal(request))["PREFECT_API_KEY"] == "pnu_plaintext"
    assert overrides_env(secrets.preview(request))["PREFECT_API_KEY"] == secrets.MASK
    assert "pnu_plaintext" not in json.dumps(request["create_job"])


def test_secret_names_are_dropped_from_plain_env_and_static_container_env(prefect_template: dict[str, Any]) -> None:
    prefect_template["job_configuration"]["job_body"]["template"]["template"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "STATIC", "value": "kept"},
    ]
    configuration = render(
        prefect_template,
        env={"DB_PASSWORD": "also-plain"},
        env_from_secrets={"DB_PASSWORD": {"secret": "db"}},
        prefect_api_auth_string_secret={"secret": "auth"},
    )
    configuration["env"]["PREFECT_API_AUTH_STRING"] = "user:pass"
    request = spec.build_request(configuration, RUN, default_project="proj-1")
    text = json.dumps(secrets.reveal(request))
    assert "hunter2" not in text
    assert "also-plain" not in text
    assert "user:pass" not in text
    env = {e["name"]: e for e in job_container(request)["env"]}
    assert env["STATIC"] == {"name": "STATIC", "value": "kept"}
    assert env["PREFECT_API_AUTH_STRING"]["valueSource"]["secretKeyRef"]["secret"] == "auth"


@pytest.mark.parametrize(
    "selector", [{"version": "1"}, {"secret": ""}, {"secret": "s", "extra": 1}, 42, ["s"]], ids=repr
)
def test_bad_secret_selectors_are_template_errors(selector: Any) -> None:
    configuration = {"region": "us-central1", "project": "proj-1", "job_body": {}, "prefect_api_key_secret": selector}
    with pytest.raises(TemplateError, match="prefect_api_key_secret"):
        spec.build_request(configuration, RUN)


def test_a_plain_secret_name_means_its_latest_version() -> None:
    assert spec.SecretKeySelector.model_validate("api-key").reference() == {"secret": "api-key", "version": "latest"}


# ---- labels ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"push-pools.io/pool-name": "ETL"}, {"push-pools-io-pool-name": "etl"}),
        ({"Team": "Data Eng"}, {"team": "data-eng"}),
        ({"1st": "x"}, {"l-1st": "x"}),
        ({"k": "v" * 80}, {"k": "v" * 63}),
        ({"k" * 80: "v"}, {"k" * 63: "v"}),
        ({"empty": None}, {"empty": ""}),
        ({"ü": "ö"}, {"l": "-"}),
    ],
)
def test_labels_are_made_valid_for_google_cloud(labels: dict[str, Any], expected: dict[str, str]) -> None:
    assert spec.sanitize_labels(labels) == expected


def test_labels_naming_the_run_are_left_off_the_job(default_template: dict[str, Any]) -> None:
    labels = _request(default_template, labels={"run": RUN.flow_run_name})["create_job"]["job"]["labels"]
    assert "push-pools-io-flow-run-id" not in labels
    assert "run" not in labels
    assert labels["push-pools-io-pool-name"] == "etl"
    assert labels[spec.MANAGED_LABEL] == "true"
    assert labels[spec.POOL_LABEL] == "etl"


def test_keep_job_is_a_label_and_labels_stay_within_googles_limit(default_template: dict[str, Any]) -> None:
    many = {f"label-{i}": "x" for i in range(100)}
    labels = _request(default_template, labels=many, keep_job=True)["create_job"]["job"]["labels"]
    assert labels[spec.KEEP_LABEL] == "true"
    assert len(labels) == spec.MAX_LABELS


# ---- the rest of the job and the run --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(600, 600), ("600s", 600), ("45", 45), (604800, 604800), (None, None)])
def test_timeouts(value: Any, expected: int | None) -> None:
    job = spec.parse_configuration(
        {"region": "us-central1", "job_body": {"template": {"template": {"containers": [{}]}}}, "timeout": value}
    )
    assert spec.timeout_seconds(job) == expected


@pytest.mark.parametrize("value", [0, -5, 604801, "ten minutes", "1.5s"])
def test_bad_timeouts_are_template_errors(value: Any) -> None:
    job = spec.parse_configuration({"region": "us-central1", "job_body": {}, "timeout": value})
    with pytest.raises(TemplateError, match="timeout"):
        spec.timeout_seconds(job)


@pytest.mark.parametrize(
    ("command", "expected"),
    [("python -m flows.etl --x 'a b'", ["python", "-m", "flows.etl", "--x", "a b"]), (["a", "b c"], ["a", "b c"])],
)
def test_commands_are_split_like_a_shell(default_template: dict[str, Any], command: Any, expected: list[str]) -> None:
    configuration = render(default_template, project="proj-1", image="i")
    configuration["command"] = command
    assert job_container(spec.build_request(configuration, RUN))["command"] == expected


def test_no_command_leaves_the_image_entrypoint(default_template: dict[str, Any]) -> None:
    assert "command" not in job_container(_request(default_template))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"A": "1", "B": None}, {"A": "1"}),
        ({"N": 3, "T": True, "F": False}, {"N": "3", "T": "true", "F": "false"}),
        ({"J": {"a": [1]}}, {"J": '{"a": [1]}'}),
    ],
)
def test_plain_env_values_become_strings(env: dict[str, Any], expected: dict[str, str]) -> None:
    assert spec.plain_env(env) == expected


def test_unset_vpc_connector_and_cloudsql(default_template: dict[str, Any]) -> None:
    request = _request(default_template, cloudsql_instances=["p:us-central1:db"])
    task = request["create_job"]["job"]["template"]["template"]
    assert "vpcAccess" not in task
    assert task["volumes"] == [{"name": "cloudsql", "cloudSqlInstance": {"instances": ["p:us-central1:db"]}}]
    assert job_container(request)["volumeMounts"] == [{"name": "cloudsql", "mountPath": "/cloudsql"}]


BASE = {"region": "us-central1", "project": "proj-1"}
CONTAINERS = {"template": {"template": {"containers": [{"image": "i"}]}}}


@pytest.mark.parametrize(
    ("configuration", "problem"),
    [
        ({"region": "us-central1"}, "job_body"),
        (BASE | {"job_body": {}}, "containers must list a container"),
        (BASE | {"job_body": {"template": {"template": {"containers": []}}}}, "containers must list"),
        (BASE | {"job_body": {"template": {"template": {"containers": ["x"]}}}}, "JSON object"),
        (BASE | {"job_body": {"template": "x"}}, "containers must list"),
        (BASE | {"job_body": "x"}, "job_body"),
        ({"project": "proj-1", "job_body": CONTAINERS}, "region"),
        (BASE | {"region": "the moon", "job_body": CONTAINERS}, "region"),
        (BASE | {"project": "p/../../x", "job_body": CONTAINERS}, "not a Google Cloud project"),
        (BASE | {"job_body": {"template": {"template": {"containers": [{"image": "i", "env": {"A": 1}}]}}}}, "env"),
        (BASE | {"job_body": CONTAINERS, "command": "python 'unbalanced"}, "cannot be split"),
        (BASE | {"job_body": CONTAINERS, "command": [{"x": 1}]}, "command"),
        (BASE | {"job_body": CONTAINERS, "env": ["A=1"]}, "env"),
        (BASE | {"job_body": CONTAINERS, "keep_job": "sometimes"}, "keep_job"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_configurations_are_template_errors(configuration: dict[str, Any], problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        spec.build_request(configuration, RUN)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("projects/p/locations/us-central1/jobs/j/executions/j-abc12", True),
        ("projects/p/locations/us-central1/jobs/j", False),
        ("projects/p/locations/r/jobs/j/executions/e/tasks/t", False),
        ("host:1234", False),
        ("", False),
    ],
)
def test_execution_names(name: str, valid: bool) -> None:
    assert spec.is_execution_name(name) is valid


def test_location_of_a_resource() -> None:
    name = "projects/p/locations/us-central1/jobs/j/executions/j-abc12"
    assert spec.location_of(name) == "projects/p/locations/us-central1"
