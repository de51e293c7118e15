"""A fake Cloud Run per test, the real `run_v2` clients pointed at it, and a backend over them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.templating import set_variable_defaults
from tests.fakes.cloud_run import FakeCloudRun, clients, tasks_client

PROJECT = "proj-1"
REGION = "us-central1"
JOBS_SERVICE_ACCOUNT = "push-pools-jobs@proj-1.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> Iterator[FakeCloudRun]:
    with FakeCloudRun(seed=7) as server:
        yield server


@pytest.fixture
def cloud_run(fake: FakeCloudRun) -> CloudRunBackend:
    jobs, executions = clients(fake)
    return CloudRunBackend(
        jobs, executions, tasks_client=tasks_client(fake), call_timeout=5.0, sweep_interval=timedelta(0)
    )


@pytest.fixture
def cloud_run_template() -> dict[str, Any]:
    """The default template with what `push-pool create --type cloud-run` would --set from Terraform's output."""
    return set_variable_defaults(
        default_base_job_template("cloud-run"),
        {"project": PROJECT, "region": REGION, "service_account_name": JOBS_SERVICE_ACCOUNT, "image": "python:3.11"},
    )
