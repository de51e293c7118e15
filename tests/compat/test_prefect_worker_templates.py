"""Prefect's own default base job templates (process, ecs, cloud-run-v2, azure-container-instance) load and render
unchanged: the templates and the renderings come from the real Prefect workers, installed in their own virtual
environment by `make test`, and ours must equal theirs."""

from __future__ import annotations

from typing import Any

import pytest

from push_pools.templating import (
    check_base_job_template,
    expand_dotted_keys,
    merge_job_variables,
    render_job_configuration,
    schema_defaults,
    unused_job_variables,
    validate_job_variables,
)
from tests.compat.prefect_workers import prefect_renderings

CASES: list[tuple[str, dict[str, Any]]] = [
    ("process", {}),
    (
        "process",
        {"command": "python flow.py", "env": {"A": "1"}, "env.B": "2", "working_dir": "/srv", "labels": {"x": "y"}},
    ),
    ("ecs", {}),
    (
        "ecs",
        {
            "image": "python:3.11",
            "cpu": 1024,
            "memory": 2048,
            "cluster": "prod",
            "family": "etl",
            "launch_type": "FARGATE_SPOT",
            "vpc_id": "vpc-1",
            "task_role_arn": "arn:aws:iam::123456789012:role/task",
            "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
            "network_configuration": {
                "subnets": ["subnet-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            },
            "configure_cloudwatch_logs": True,
            "cloudwatch_logs_options": {"awslogs-group": "flows"},
            "env": {"STAGE": "prod"},
            "labels": {"team": "data"},
            "prefect_api_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key",
            "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}],
        },
    ),
    ("cloud-run-v2", {}),
    (
        "cloud-run-v2",
        {
            "region": "europe-west1",
            "image": "europe-docker.pkg.dev/p/r/flows:1",
            "cpu": "2",
            "memory": "1Gi",
            "args": ["--verbose"],
            "timeout": 900,
            "max_retries": 1,
            "service_account_name": "runner@p.iam.gserviceaccount.com",
            "vpc_connector_name": "projects/p/locations/europe-west1/connectors/c",
            "env": {"STAGE": "prod"},
            "keep_job": True,
            "prefect_api_key_secret": {"secret": "prefect-api-key", "version": "latest"},
        },
    ),
    (
        "azure-container-instance",
        {"resource_group_name": "rg", "subscription_id": "00000000-0000-0000-0000-000000000001"},
    ),
    (
        "azure-container-instance",
        {
            "resource_group_name": "rg",
            "subscription_id": "00000000-0000-0000-0000-000000000001",
            "image": "acr.azurecr.io/flows:1",
            "cpu": 2.0,
            "memory": 4.0,
            "gpu_count": 1,
            "gpu_sku": "V100",
            "identities": [
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"
            ],
            "subnet_ids": [
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            ],
            "dns_servers": ["10.0.0.4"],
            "env": {"STAGE": "prod"},
            "env.EXTRA": "yes",
        },
    ),
]


@pytest.fixture(scope="module")
def prefect_results() -> list[dict[str, Any]]:
    return prefect_renderings(CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(CASES)])
def test_prefect_templates_load_and_render_unchanged(prefect_results: list[dict[str, Any]], index: int) -> None:
    template, expected = prefect_results[index]["template"], prefect_results[index]["rendered"]
    check_base_job_template(template)
    explicit = expand_dotted_keys(CASES[index][1])
    values = merge_job_variables(schema_defaults(template), explicit)
    validate_job_variables(template, values)
    assert render_job_configuration(template, values) == expected
    assert unused_job_variables(template, explicit) == []
