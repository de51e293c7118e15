"""Run by `bench.azure.footprint` in a fresh process from the unpacked Azure Functions archive: import
`function_app` as the Functions host's Python worker does, call the decorated function of one scenario with the
objects the host builds (HttpRequest, QueueMessage, TimerRequest), print the cost (`bench.fresh_process`).
Configured like the deployed app (PUSH_POOL_* app settings), except that the ARM client reaches the local fake at
$BENCH_ARM_URL with a static token (DefaultAzureCredential is still built, as on Azure, and never asked).

    python -m bench.azure.invoke webhook|batch|tick RUN_ID...
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from bench.fresh_process import run_child

WEBHOOK_TOKEN = "bench-webhook-secret"
ARM_URL_VARIABLE = "BENCH_ARM_URL"
FUNCTIONS = {"webhook": "webhook", "batch": "run_queue", "tick": "tick"}


def load(scenario: str) -> Callable[[Any], Any]:
    importlib.import_module("function_app")
    from push_pools.platforms.azure import function as azure_functions

    use_the_fake()
    function: Callable[[Any], Any] = getattr(azure_functions, FUNCTIONS[scenario]).build().get_user_function()
    return function


def use_the_fake() -> None:
    """What `FunctionRuntime.from_environment` builds on the first invocation, with the ARM client at the fake."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.identity import DefaultAzureCredential

    from push_pools.dispatcher import Dispatcher
    from push_pools.platforms.azure import function as azure_functions
    from push_pools.platforms.azure.backend import AciBackend
    from push_pools.platforms.azure.clients import ArmClients
    from push_pools.settings import Settings

    class StaticToken(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.http_request.headers["Authorization"] = "Bearer bench"

    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = Settings()
    clients = ArmClients(
        DefaultAzureCredential(), base_url=os.environ[ARM_URL_VARIABLE], authentication_policy=StaticToken()
    )
    backend = AciBackend(clients)
    dispatcher = Dispatcher.from_settings(settings, {"aci": backend})
    enqueue = azure_functions.StorageQueueEnqueue.from_environment(os.environ)
    azure_functions.use_runtime(azure_functions.FunctionRuntime.build(dispatcher, enqueue))


def events(scenario: str, run_ids: list[str]) -> list[Any]:
    import azure.functions as func
    from azure.functions.queue import QueueMessage
    from azure.functions.timer import TimerRequest

    if scenario == "webhook":
        body = json.dumps({"flow_run_id": run_ids[0]}).encode()
        headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
        return [func.HttpRequest("POST", "/api/runs", headers=headers, body=body)]
    if scenario == "batch":  # the host hands the function one message per invocation
        return [
            QueueMessage(id=f"m-{i}", body=json.dumps({"flow_run_id": run_id}).encode(), dequeue_count=1)  # type: ignore[no-untyped-call]
            for i, run_id in enumerate(run_ids)
        ]
    return [TimerRequest(past_due=False)]


if __name__ == "__main__":
    run_child(load, events)
