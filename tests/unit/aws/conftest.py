"""Rendering ECS job configurations the way the dispatcher does, for the pure tests of the ECS backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.jobs import prepare_job
from push_pools.models import Deployment, FlowRun, State, StateType, WorkPool
from push_pools.orchestrators.base import RunEnvironment

FIXTURES = Path(__file__).parents[2] / "fixtures" / "aws"
RUN_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
RUN = RunContext(
    flow_run_id=RUN_ID,
    flow_run_name="cheerful-otter",
    pool_name="ecs-pool",
    idempotency_key=f"{RUN_ID}-1",
    deployment_name="nightly",
)
ENVIRONMENT = RunEnvironment(
    env={
        "PREFECT_API_URL": "https://prefect.example/api",
        "PREFECT_API_KEY": "pnu_secret",
        "PREFECT__FLOW_RUN_ID": RUN_ID,
    },
    labels={"prefect.io/flow-run-id": RUN_ID, "prefect.io/flow-run-name": "cheerful-otter"},
    command="prefect flow-run execute",
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def render(
    job_variables: dict[str, Any] | None = None,
    *,
    template: dict[str, Any] | None = None,
    image: str | None = "ghcr.io/example/flows:1",
    command: str | None = None,
    environment: RunEnvironment = ENVIRONMENT,
) -> dict[str, Any]:
    """The configuration the ECS backend receives for a run of a deployment in a pool with this template."""
    pool = WorkPool(name="ecs-pool", type="ecs", base_job_template=template or default_base_job_template("ecs"))
    deployment = Deployment(id="d-1", name="nightly", pool_name=pool.name, image=image, command=command)
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    run = FlowRun(
        id=RUN_ID,
        name="cheerful-otter",
        pool_name=pool.name,
        deployment_id=deployment.id,
        state=State(type=StateType.SCHEDULED, name="Scheduled", timestamp=now),
        expected_start_time=now,
        job_variables=job_variables or {},
    )
    configuration: dict[str, Any] = prepare_job(pool, deployment, run, environment, environ={}).configuration
    return configuration
