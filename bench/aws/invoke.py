"""Run by `bench.aws.footprint` in a fresh process from the unpacked Lambda archive: import `lambda_function` as
Lambda does, hand its handler one event, print the cost (`bench.fresh_process`). Configured like the deployed
function (PUSH_POOL_* from Terraform; secrets in Secrets Manager), with AWS_ENDPOINT_URL pointing at moto.

    python -m bench.aws.invoke webhook|batch|tick RUN_ID...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from bench.aws.events import function_url_post, run_request, scheduled_event, sqs_batch
from bench.fresh_process import run_child

WEBHOOK_TOKEN = "bench-webhook-secret"


def load(scenario: str) -> Callable[[Any], Any]:
    handler = importlib.import_module("lambda_function").handler
    return lambda event: handler(event, None)


def events(scenario: str, run_ids: list[str]) -> list[Any]:
    if scenario == "webhook":
        return [function_url_post(run_request(run_ids[0]), {"authorization": f"Bearer {WEBHOOK_TOKEN}"})]
    if scenario == "batch":
        return [sqs_batch([(f"m-{index}", run_request(run_id)) for index, run_id in enumerate(run_ids)])]
    return [scheduled_event()]


if __name__ == "__main__":
    run_child(load, events)
