"""Prefect's own worker, one poll at a time. Run by the Prefect workers' Python (`.venv-prefect-workers`), not ours:

    .venv-prefect-workers/bin/python bench/workers/prefect_worker_driver.py TYPE POOL

TYPE is a Prefect worker type (`ecs`, `cloud-run-v2` or `azure-container-instance`). The worker is entered as
`prefect worker start` enters it (`async with worker`: its API client, its runs task group, its first sync with the
server, and for ECS its task observer), with Prefect's settings from the environment. Then, for each line `poll` on
stdin, it runs one iteration of the worker's polling loop (`get_and_submit_flow_runs`, what `prefect worker start`
runs every PREFECT_WORKER_QUERY_SECONDS) and waits until every run that poll took has been submitted (the worker's
own in-flight set is empty), then prints one JSON line: `{"runs": N, "seconds": S, "prefect_calls": C,
"prefect_busy": B}`, C being the requests the worker sent to the Prefect API during the poll (counted where its
HTTP client sends them, retries included) and B those answered 503 (a busy database; the client sends them again).
`quit` (or end of input) leaves the worker context as Ctrl-C would.

Only the time between polls is ours: `prefect worker start` waits 15 s (±30 % jitter) between polls and does not
wait for the previous poll's submissions.

For cloud-run-v2 and azure-container-instance, `BENCH_FAKE_ENDPOINT` names the local fake server the worker's cloud
clients are pointed at (`point_cloud_run_at`, `point_aci_at`): where its clients connect and with which credentials
are the only changes made to Prefect's code paths. The ECS worker needs none: boto3 reads AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio
import httpx

SENT = {"prefect_calls": 0, "prefect_busy": 0}
"""Requests to the Prefect API the worker sent so far, and those answered 503."""


def worker_class(worker_type: str) -> Any:
    if worker_type == "ecs":
        from prefect_aws.workers.ecs_worker import ECSWorker

        return ECSWorker
    if worker_type == "cloud-run-v2":
        from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

        point_cloud_run_at(os.environ["BENCH_FAKE_ENDPOINT"])
        return CloudRunWorkerV2
    if worker_type == "azure-container-instance":
        from prefect_azure.workers.container_instance import AzureContainerWorker

        point_aci_at(os.environ["BENCH_FAKE_ENDPOINT"])
        return AzureContainerWorker
    raise SystemExit(f"unknown worker type {worker_type!r}")


def point_cloud_run_at(endpoint: str) -> None:
    """The Cloud Run v2 worker builds its client for https://run.googleapis.com with the credentials of its
    GcpCredentials block: build it for the fake instead, with anonymous credentials (the fake checks none). The block
    asks Google for its project when it names none: take it from BENCH_GCP_PROJECT."""
    from google.auth.credentials import AnonymousCredentials
    from prefect_gcp.credentials import GcpCredentials
    from prefect_gcp.workers import cloud_run_v2

    original_options = cloud_run_v2.ClientOptions

    def options(api_endpoint: str = "", **kwargs: Any) -> Any:
        return original_options(api_endpoint=endpoint, **kwargs)

    def block_initialization(self: Any) -> None:
        self.project = self.project or os.environ["BENCH_GCP_PROJECT"]

    cloud_run_v2.ClientOptions = options
    GcpCredentials.get_credentials_from_service_account = lambda self: AnonymousCredentials()
    GcpCredentials.block_initialization = block_initialization


def point_aci_at(endpoint: str) -> None:
    """The ACI worker's clients talk to Azure Resource Manager with a token from its credentials block: make them talk
    to the fake ARM server instead, with a fixed bearer token (the fake checks only that there is one). The fake
    answers `Retry-After: 0`, which azure-core reads as "no hint" and then waits its default 30 s between polls: the
    clients poll without delay instead (polling_interval=0), as ARM's own Retry-After hints would have them do."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.resource import ResourceManagementClient
    from prefect_azure.credentials import AzureContainerInstanceCredentials

    class StaticBearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.http_request.headers["Authorization"] = "Bearer bench"

    def client_factory(client_class: Any) -> Any:
        def make(self: Any, subscription_id: str) -> Any:
            return client_class(
                object(), subscription_id, base_url=endpoint, authentication_policy=StaticBearer(), polling_interval=0
            )

        return make

    AzureContainerInstanceCredentials.get_container_client = client_factory(ContainerInstanceManagementClient)
    AzureContainerInstanceCredentials.get_resource_client = client_factory(ResourceManagementClient)


def count_prefect_requests(api_url: str) -> None:
    """Count every request the worker's HTTP clients send to the Prefect API (`SENT`)."""
    send = httpx.AsyncClient.send

    async def counting_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await send(self, request, **kwargs)
        if str(request.url).startswith(api_url):
            SENT["prefect_calls"] += 1
            SENT["prefect_busy"] += response.status_code == 503
        return response

    httpx.AsyncClient.send = counting_send  # type: ignore[method-assign]


async def poll(worker: Any) -> dict[str, float]:
    started, sent = time.monotonic(), dict(SENT)
    runs = await worker.get_and_submit_flow_runs()
    while worker._submitting_flow_run_ids:  # the worker's own set of runs it is still submitting
        await anyio.sleep(0.02)
    seconds = time.monotonic() - started
    return {"runs": len(runs), "seconds": seconds, **{key: SENT[key] - sent[key] for key in SENT}}


async def serve(worker_type: str, pool: str) -> None:
    async with worker_class(worker_type)(work_pool_name=pool, name=f"bench-{worker_type}") as worker:
        print(json.dumps({"ready": True}), flush=True)
        while True:
            line = (await anyio.to_thread.run_sync(sys.stdin.readline)).strip()
            if line != "poll":
                break
            print(json.dumps(await poll(worker)), flush=True)


if __name__ == "__main__":
    count_prefect_requests(os.environ["PREFECT_API_URL"])
    anyio.run(serve, sys.argv[1], sys.argv[2])
