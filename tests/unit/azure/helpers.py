"""Rendering an `aci` pool's template for one run, the way the dispatcher does, without a store."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from push_pools.backends.base import RunContext
from push_pools.jobs import prepare_job, run_context
from push_pools.models import Deployment, FlowRun, State, StateType, WorkPool
from push_pools.orchestrators.base import RunEnvironment

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "azure"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
IDENTITY = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/jobs"
)
API_KEY = "pnu_supersecretapikey0123456789"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def a_run(job_variables: dict[str, Any] | None = None, *, run_id: str | None = None) -> FlowRun:
    now = datetime.now(UTC)
    return FlowRun(
        id=run_id or str(uuid.uuid4()),
        name="quiet-fox",
        pool_name="azure",
        deployment_id="d1",
        deployment_name="etl",
        state=State(type=StateType.PENDING, name="Pending", timestamp=now),
        expected_start_time=now,
        job_variables=job_variables or {},
    )


def render(
    template: dict[str, Any],
    job_variables: dict[str, Any] | None = None,
    *,
    deployment_variables: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    run: FlowRun | None = None,
) -> tuple[dict[str, Any], RunContext]:
    """The rendered job configuration of a run in a pool with `template`, and the run's context."""
    run = (run or a_run()).model_copy(update={"job_variables": job_variables or {}})
    pool = WorkPool(name="azure", type="aci", base_job_template=template)
    deployment = Deployment(
        id="d1", name="etl", pool_name="azure", image="ghcr.io/acme/etl:1", job_variables=deployment_variables or {}
    )
    environment = RunEnvironment(
        env={"PREFECT_API_URL": "https://api.prefect.cloud/api/accounts/a/workspaces/w", "PREFECT_API_KEY": API_KEY}
        | (env or {}),
        labels={"push-pools.io/flow-run-id": run.id},
        command="prefect flow-run execute",
    )
    job = prepare_job(pool, deployment, run, environment, environ={})
    return job.configuration, run_context(run)
