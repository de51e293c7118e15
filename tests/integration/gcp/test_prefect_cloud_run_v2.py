"""Prefect's own cloud-run-v2 base job template, taken at test time from the real worker (installed by `make test`
in `.venv-prefect-workers`), in a push-pools pool: runs submit through the dispatcher and the real client to the
fake, exactly as they would from a Prefect user's work pool."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.settings import Settings
from tests.compat.prefect_workers import prefect_default_template
from tests.fakes.cloud_run import FakeCloudRun, clients

FULL = {
    "region": "europe-west1",
    "image": "europe-docker.pkg.dev/proj-1/flows/etl:1",
    "cpu": "2",
    "memory": "1Gi",
    "args": ["--verbose"],
    "timeout": 900,
    "max_retries": 1,
    "service_account_name": "runner@proj-1.iam.gserviceaccount.com",
    "vpc_connector_name": "projects/proj-1/locations/europe-west1/connectors/c",
    "env": {"STAGE": "prod"},
    "keep_job": True,
    "prefect_api_key_secret": {"secret": "prefect-api-key", "version": "latest"},
    "env_from_secrets": {"DB_PASSWORD": {"secret": "db", "version": "2"}},
}


@pytest.fixture(scope="module")
def prefect_template() -> dict[str, Any]:
    return prefect_default_template("cloud-run-v2")


def submitted(
    template: dict[str, Any], fake: FakeCloudRun, home: Path, job_variables: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit one run of a deployment with these job variables; the fake's execution and job for it."""
    settings = Settings(home=home, submit_attempts=2)
    store = LocalStore(settings.store_path)
    try:
        store.save_pool(WorkPool(name="prefect-pool", type="cloud-run-v2:push", base_job_template=template))
        deployment = store.save_deployment(
            Deployment(id=str(uuid.uuid4()), name="etl", pool_name="prefect-pool", job_variables=job_variables)
        )
        jobs, executions = clients(fake)
        backend = CloudRunBackend(jobs, executions, default_project="proj-1", call_timeout=5.0)
        dispatcher = Dispatcher(store, Backends(settings, {"cloud-run": backend}), settings, sleep=lambda _: None)
        now = datetime.now(UTC)
        run = store.create_run(deployment, now - timedelta(seconds=1), now=now)
        outcome = dispatcher.submit_run(run.id)
        assert outcome.status == "submitted", outcome.message
        execution = fake.executions[store.get_run(run.id).infrastructure_pid or ""]
        return execution, fake.jobs[execution["job"]]
    finally:
        store.close()


def test_prefects_own_template_submits_with_its_defaults(
    prefect_template: dict[str, Any], fake: FakeCloudRun, tmp_path: Path
) -> None:
    execution, job = submitted(prefect_template, fake, tmp_path, {})
    assert execution["job"].startswith("projects/proj-1/locations/us-central1/jobs/pp-prefect-pool-")
    container = execution["template"]["containers"][0]
    assert container["image"] == "prefecthq/prefect:3-latest"
    assert container["resources"] == {"limits": {"cpu": "1000m", "memory": "512Mi"}}
    assert execution["template"]["timeout"] == "600s"
    assert execution["template"]["maxRetries"] == 0
    assert job["client"] == "prefect"
    assert "vpcAccess" not in job["template"]["template"]


def test_prefects_own_template_submits_with_every_variable(
    prefect_template: dict[str, Any], fake: FakeCloudRun, tmp_path: Path
) -> None:
    execution, job = submitted(prefect_template, fake, tmp_path, FULL)
    assert execution["job"].startswith("projects/proj-1/locations/europe-west1/jobs/pp-prefect-pool-")
    task = execution["template"]
    container = task["containers"][0]
    assert container["image"] == FULL["image"]
    assert container["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}}
    assert container["args"] == ["--verbose"]
    assert (task["timeout"], task["maxRetries"]) == ("900s", 1)
    assert task["serviceAccount"] == FULL["service_account_name"]
    assert task["vpcAccess"] == {"connector": FULL["vpc_connector_name"]}
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["STAGE"] == {"name": "STAGE", "value": "prod"}
    assert env["PREFECT_API_KEY"]["valueSource"]["secretKeyRef"] == {"secret": "prefect-api-key", "version": "latest"}
    assert env["DB_PASSWORD"]["valueSource"]["secretKeyRef"] == {"secret": "db", "version": "2"}
    assert job["labels"]["push-pools-keep"] == "true"
