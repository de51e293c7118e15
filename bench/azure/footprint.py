"""Cold start and footprint of the Azure Functions entry point (`infra/azure/function_app.py`), in fresh processes
run from the archive `push-pool package azure` builds, with its requirements taken from this environment (Azure
installs them at deploy time). See `bench.footprint` for the method.

The cold import covers `function_app` (azure-functions, push-pools), the ACI backend and the SDK modules the first
invocation imports (azure-mgmt-containerinstance, azure-identity, azure-storage-queue); the baseline is those SDK
modules and azure-functions alone. Each scenario calls the decorated function as the host does: the webhook, the
queue trigger once per message, the timer. ARM is the local fake (`tests.fakes.arm`), reached by the real client.

    .venv/bin/python -m bench.azure.footprint [--quick]
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.azure.invoke import ARM_URL_VARIABLE, WEBHOOK_TOKEN
from bench.figures import Figure, run_alone
from bench.footprint import Cloud, EntryPoint, measure_entry_point
from push_pools.backends import default_base_job_template
from push_pools.models import Deployment, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.templating import set_variable_defaults
from tests.fakes.arm import FakeArm

SDK = ("azure.functions", "azure.mgmt.containerinstance", "azure.identity", "azure.storage.queue")
ENTRY_POINT = EntryPoint(
    platform="azure",
    handler_imports=("function_app", "push_pools.platforms.azure.backend", *SDK[1:]),
    sdk_imports=SDK,
    invoke_module="bench.azure.invoke",
)
POOL_VARIABLES = {
    "subscription_id": "00000000-0000-4000-8000-000000000001",
    "resource_group_name": "rg-bench",
    "location": "westeurope",
}


@contextmanager
def fake_arm(home: Path) -> Iterator[Cloud]:
    with FakeArm() as arm:
        store = LocalStore(home / "store.db")
        template = set_variable_defaults(default_base_job_template("aci"), POOL_VARIABLES)
        store.save_pool(WorkPool(name="aci", type="aci", base_job_template=template))
        deployment = store.save_deployment(
            Deployment(id=str(uuid.uuid4()), name="flows", pool_name="aci", image="ghcr.io/acme/flows:1")
        )
        environ = {
            ARM_URL_VARIABLE: arm.url,
            "PUSH_POOL_HOME": str(home),
            "PUSH_POOL_WEBHOOK_SECRET": WEBHOOK_TOKEN,
            # The queue client is built as on Azure; nothing is sent to it (every run is due).
            "PUSH_POOL_QUEUE__queueServiceUri": "https://127.0.0.1:9/devstoreaccount1",
            "PUSH_POOL_QUEUE_NAME": "push-pool-runs",
        }
        try:
            yield Cloud(environ, store, deployment)
        finally:
            store.close()


def measure(quick: bool = False) -> list[Figure]:
    return measure_entry_point(ENTRY_POINT, "azure-functions + ACI, identity, queue SDKs", fake_arm, quick)


if __name__ == "__main__":
    run_alone(measure, "python -m bench.azure.footprint", __doc__)
