"""Run by the Prefect workers' own Python (`.venv-prefect-workers`, not ours): for each case on stdin
(`[{"type": ..., "values": {...}}]`), print Prefect's default base job template for that worker type and the
job configuration Prefect itself renders from it with those job variables, captured inside Prefect's own
`BaseJobConfiguration.from_template_and_values`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import prefect.workers.base as worker_base
from prefect.workers.process import ProcessWorker
from prefect_aws.workers.ecs_worker import ECSWorker
from prefect_azure.workers.container_instance import AzureContainerWorker
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

WORKERS = {w.type: w for w in (ProcessWorker, ECSWorker, CloudRunWorkerV2, AzureContainerWorker)}


async def prefect_rendering(worker: Any, template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    captured: list[dict[str, Any]] = []

    async def capture(template: dict[str, Any], client: Any = None) -> dict[str, Any]:
        captured.append(template)
        raise LookupError("captured")

    worker_base.resolve_variables = capture
    with contextlib.suppress(LookupError):
        await worker.job_configuration.from_template_and_values(template, values, client=object())
    return captured[0]


def main() -> None:
    results = []
    for case in json.load(sys.stdin):
        worker = WORKERS[case["type"]]
        template = worker.get_default_base_job_template()
        rendered = asyncio.run(prefect_rendering(worker, template, case["values"]))
        results.append({"template": template, "rendered": rendered})
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
