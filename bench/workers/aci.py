"""ACI: push-pools beside Prefect's Azure Container Instances worker (prefect-azure 0.4.9), on the fake ARM server
(`tests.fakes.arm`) and one Prefect server; write calls per run (see `writes` for the set-up).

Prefect's worker deploys its ARM template (`Microsoft.Resources/deployments`, evaluated by the fake as ARM would,
see `tests.fakes.arm_templates`), reads the container group, watches it every `task_watch_poll_interval` (5 s) until
its container ends, then deletes the group. push-pools PUTs the container group itself and deletes it in a later
tick's sweep once it has ended; the bench sets its retention to 0 (default: 10 minutes) so that delete happens
within the round: the number of calls is the same, only later. The driver points the worker's clients at the fake
with a fixed bearer token. Both use Prefect's default azure-container-instance template with the same subscription,
resource group and image.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from bench.figures import Figure
from bench.workers.world import Runs, prefect_default_template
from bench.workers.writes import WORKER, Cloud, compare
from push_pools.backends.base import Backend
from push_pools.platforms.azure.backend import AciBackend
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from tests.e2e.prefect.server import PrefectServer
from tests.fakes.arm import FakeArm, fake_clients

SUBSCRIPTION = "00000000-0000-0000-0000-0000000be4c0"
RESOURCE_GROUP = "bench-flows"
IMAGE = "benchregistry.azurecr.io/flows:1"
WRITE_METHODS = frozenset({"PUT group", "DELETE group", "PUT deployment"})
OUR_GROUP_PREFIX = "pp-"


def measure(server: PrefectServer, runs: Runs, work: Path) -> list[Figure]:
    defaults = {"subscription_id": SUBSCRIPTION, "resource_group_name": RESOURCE_GROUP, "image": IMAGE}
    template = set_variable_defaults(prefect_default_template("azure-container-instance"), defaults)
    with FakeArm(resource_groups={RESOURCE_GROUP: "westeurope"}) as fake:

        def backend(settings: Settings) -> Backend:
            return AciBackend(fake_clients(fake), retention=timedelta(0))

        def leftovers(side: str) -> int:
            names = [group.name for group in list(fake.groups.values())]
            return sum(1 for name in names if name.startswith(OUR_GROUP_PREFIX) != (side == WORKER))

        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PREFECT_", "PUSH_POOL_"))}
        cloud = Cloud(
            name="aci",
            our_type="aci",
            worker_type="azure-container-instance",
            template=template,
            calls=fake.call_counts,
            write_methods=WRITE_METHODS,
            leftovers=leftovers,
            finish_all=fake.finish_all,
            backend=backend,
            worker_env={**inherited, **server.client_env(), "BENCH_FAKE_ENDPOINT": fake.url},
        )
        return compare(server, runs, cloud, work)
