"""Cold start and footprint of the Lambda entry point (`infra/aws/lambda_function.py`), in fresh processes run
from the archive `push-pool package aws` builds (see `bench.footprint` for the method).

The cold import covers `lambda_function` (which imports boto3 and the ECS backend); the baseline is `boto3` alone.
Each event is handed to `lambda_function.handler` as Lambda hands it, in a process configured as Terraform
configures the function: the webhook secret read from Secrets Manager, the run queue's URL, ECS behind moto
(a ThreadedMotoServer in this process, reached through AWS_ENDPOINT_URL).

    .venv/bin/python -m bench.aws.footprint [--quick]
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import requests

from bench.aws.burst import CLUSTER, REGION, moto_server
from bench.aws.invoke import WEBHOOK_TOKEN
from bench.figures import Figure, run_alone
from bench.footprint import Cloud, EntryPoint, measure_entry_point
from push_pools.backends import default_base_job_template
from push_pools.models import Deployment, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.templating import set_variable_defaults
from tests.fakes.aws_front import patch_moto_fargate_memory

ENTRY_POINT = EntryPoint(
    platform="aws",
    handler_imports=("lambda_function",),
    sdk_imports=("boto3",),
    invoke_module="bench.aws.invoke",
)


@contextmanager
def moto_cloud(home: Path) -> Iterator[Cloud]:
    monkeypatch = pytest.MonkeyPatch()
    patch_moto_fargate_memory(monkeypatch)
    try:
        with moto_server() as endpoint:
            requests.post(f"{endpoint}/moto-api/reset", timeout=10)
            credentials = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
            session = boto3.session.Session(region_name=REGION, **credentials)
            session.client("ecs", endpoint_url=endpoint).create_cluster(clusterName=CLUSTER)
            secrets = session.client("secretsmanager", endpoint_url=endpoint)
            secret_arn = secrets.create_secret(Name="push-pools/webhook", SecretString=WEBHOOK_TOKEN)["ARN"]
            queue_url = session.client("sqs", endpoint_url=endpoint).create_queue(QueueName="runs")["QueueUrl"]
            store = LocalStore(home / "store.db")
            template = set_variable_defaults(default_base_job_template("ecs"), {"cluster": CLUSTER})
            store.save_pool(WorkPool(name="ecs", type="ecs", base_job_template=template))
            deployment = store.save_deployment(
                Deployment(id=str(uuid.uuid4()), name="flows", pool_name="ecs", image="ghcr.io/example/flows:1")
            )
            environ = {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": REGION,
                "PUSH_POOL_HOME": str(home),
                "PUSH_POOL_WEBHOOK_SECRET_ARN": secret_arn,
                "PUSH_POOL_QUEUE_URL": queue_url,
            }
            try:
                yield Cloud(environ, store, deployment)
            finally:
                store.close()
    finally:
        monkeypatch.undo()


def measure(quick: bool = False) -> list[Figure]:
    return measure_entry_point(ENTRY_POINT, "boto3", moto_cloud, quick)


if __name__ == "__main__":
    run_alone(measure, "python -m bench.aws.footprint", __doc__)
