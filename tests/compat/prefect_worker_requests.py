"""Run by the Prefect workers' own Python (`.venv-prefect-workers`, not ours): for each case on stdin, print the
requests Prefect's own worker code makes for one flow run, built by the worker's own methods:

- `ecs`: `{"task_definition": RegisterTaskDefinition, "run_task": RunTask}` (`ECSWorker._prepare_task_definition`
  and `_prepare_task_run_request`; the default VPC's subnets, which Prefect reads from EC2, are the case's
  `default_subnets`);
- `cloud-run-v2`: `{"job": the Cloud Run job body}` after `prepare_for_flow_run`;
- `process`: `{"command": ..., "env": ..., "working_dir": ...}` after `prepare_for_flow_run`.

A case is `{"type", "template" (null: the worker's default), "values", "run": {"id", "name", "flow_id",
"flow_name", "pool", "pool_id", "worker", "region", "default_subnets"}}`. Block and variable references are not
resolved (there is no API here)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import prefect.workers.base as worker_base
from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
from prefect.workers.process import ProcessWorker
from prefect_aws.workers.ecs_worker import ECSWorker
from prefect_gcp.credentials import GcpCredentials
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

WORKERS: dict[str, Any] = {w.type: w for w in (ProcessWorker, ECSWorker, CloudRunWorkerV2)}
TASK_DEFINITION_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/registered:1"


async def unresolved(template: dict[str, Any], client: Any = None) -> dict[str, Any]:
    return template


async def requests(case: dict[str, Any]) -> dict[str, Any]:
    worker_class = WORKERS[case["type"]]
    template = case["template"] or worker_class.get_default_base_job_template()
    run = case["run"]
    configuration = await worker_class.job_configuration.from_template_and_values(template, case["values"])
    flow = Flow(id=uuid.UUID(run["flow_id"]), name=run["flow_name"])
    flow_run = FlowRun(id=uuid.UUID(run["id"]), name=run["name"], flow_id=flow.id)
    pool = WorkPool(id=uuid.UUID(run["pool_id"]), name=run["pool"], type=case["type"], base_job_template=template)
    configuration.prepare_for_flow_run(flow_run, None, flow, pool, worker_name=run["worker"])
    if case["type"] == "process":
        working_dir = configuration.working_dir
        return {
            "template": template,
            "command": configuration.command,
            "env": configuration.env,
            "working_dir": None if working_dir is None else str(working_dir),
        }
    if case["type"] == "cloud-run-v2":
        return {
            "template": template,
            "job": configuration.job_body,
            "name": configuration.name,
            "labels": configuration.labels,
        }
    worker = ECSWorker(work_pool_name=run["pool"])
    subnets = run["default_subnets"]
    worker._load_network_configuration = lambda vpc_id, configuration: {  # type: ignore[method-assign]
        "awsvpcConfiguration": {"subnets": subnets, "assignPublicIp": "ENABLED", "securityGroups": []}
    }
    worker._custom_network_configuration = lambda vpc_id, network, configuration: {  # type: ignore[method-assign]
        "awsvpcConfiguration": network
    }
    task_definition = worker._prepare_task_definition(configuration, region=run["region"], flow_run=flow_run)
    run_task = worker._prepare_task_run_request(configuration, task_definition, TASK_DEFINITION_ARN, True)
    return {"template": template, "task_definition": task_definition, "run_task": run_task}


def main() -> None:
    worker_base.resolve_block_document_references = unresolved
    worker_base.resolve_variables = unresolved
    GcpCredentials.block_initialization = lambda self: None  # no Google credentials here; the case names the project
    results = [asyncio.run(requests(case)) for case in json.load(sys.stdin)]
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
