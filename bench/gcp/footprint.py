"""Cold start and footprint of the Cloud Functions entry point (`infra/gcp/main.py`), in fresh processes run from
the archive `push-pool package gcp` builds, with its requirements taken from this environment (Cloud Functions
installs them at deploy time). See `bench.footprint` for the method.

The cold import covers `main` (functions-framework, Flask, push-pools), the Cloud Run backend and
`google.cloud.run_v2`, which the first request imports; the baseline is functions-framework and
`google.cloud.run_v2` alone. Requests go through functions-framework's own Flask app: a webhook to the `webhook`
function; Pub/Sub CloudEvents (one message per invocation, the tick being Cloud Scheduler's message) to `pubsub`.
Cloud Run is the local fake (`tests.fakes.cloud_run`), reached by the real client.

    .venv/bin/python -m bench.gcp.footprint [--quick]
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.figures import Figure, run_alone
from bench.footprint import Cloud, EntryPoint, measure_entry_point
from bench.gcp.invoke import ENDPOINT_VARIABLE, WEBHOOK_TOKEN
from push_pools.backends import default_base_job_template
from push_pools.models import Deployment, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.templating import set_variable_defaults
from tests.fakes.cloud_run import FakeCloudRun

ENTRY_POINT = EntryPoint(
    platform="gcp",
    handler_imports=("main", "push_pools.platforms.gcp.backend", "google.cloud.run_v2"),
    sdk_imports=("functions_framework", "google.cloud.run_v2"),
    invoke_module="bench.gcp.invoke",
)


@contextmanager
def fake_cloud_run(home: Path) -> Iterator[Cloud]:
    with FakeCloudRun(seed=1) as fake:
        store = LocalStore(home / "store.db")
        variables = {"project": "bench-project", "image": "us-docker.pkg.dev/bench/flows:1"}
        template = set_variable_defaults(default_base_job_template("cloud-run"), variables)
        store.save_pool(WorkPool(name="cloud-run", type="cloud-run", base_job_template=template))
        deployment = store.save_deployment(Deployment(id=str(uuid.uuid4()), name="flows", pool_name="cloud-run"))
        environ = {
            ENDPOINT_VARIABLE: fake.endpoint,
            "PUSH_POOL_HOME": str(home),
            "PUSH_POOL_WEBHOOK_SECRET": WEBHOOK_TOKEN,
        }
        try:
            yield Cloud(environ, store, deployment)
        finally:
            store.close()


def measure(quick: bool = False) -> list[Figure]:
    return measure_entry_point(ENTRY_POINT, "functions-framework + run_v2", fake_cloud_run, quick)


if __name__ == "__main__":
    run_alone(measure, "python -m bench.gcp.footprint", __doc__)
