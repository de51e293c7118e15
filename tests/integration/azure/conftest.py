"""A fake ARM server per test, the real ACI SDK client pointed at it, and an `aci` pool in the embedded store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.azure.backend import AciBackend
from push_pools.settings import Settings
from tests.fakes.arm import FakeArm, fake_clients
from tests.unit.azure.helpers import SUBSCRIPTION

RESOURCE_GROUP = "rg-flows"
POOL_VARIABLES = {"subscription_id": SUBSCRIPTION, "resource_group_name": RESOURCE_GROUP}


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm(resource_groups={RESOURCE_GROUP: "westeurope"}) as fake:
        yield fake


MakeBackend = Callable[..., AciBackend]


@pytest.fixture
def make_backend(arm: FakeArm) -> MakeBackend:
    def make(**kwargs: Any) -> AciBackend:
        return AciBackend(fake_clients(arm), **kwargs)

    return make


@pytest.fixture
def aci_backend(make_backend: MakeBackend) -> AciBackend:
    return make_backend()


@pytest.fixture
def aci_dispatcher(store: LocalStore, aci_backend: AciBackend, settings: Settings) -> Dispatcher:
    return Dispatcher(store, Backends(settings, {"aci": aci_backend}), settings, sleep=lambda _: None)


@pytest.fixture
def aci_pool(store: LocalStore) -> WorkPool:
    template = default_base_job_template("aci")
    for name, value in POOL_VARIABLES.items():
        template["variables"]["properties"][name]["default"] = value
    return store.save_pool(WorkPool(name="azure", type="aci", base_job_template=template))


@pytest.fixture
def aci_deployment(store: LocalStore, aci_pool: WorkPool) -> Deployment:
    return store.save_deployment(
        Deployment(
            id=str(uuid.uuid4()),
            name="etl",
            pool_name=aci_pool.name,
            image="ghcr.io/acme/etl:1",
            command="python -m etl",
        )
    )


ScheduleAciRun = Callable[..., FlowRun]


@pytest.fixture
def schedule_aci_run(store: LocalStore, aci_deployment: Deployment) -> ScheduleAciRun:
    def schedule(in_seconds: float = -1, job_variables: dict[str, Any] | None = None) -> FlowRun:
        now = datetime.now(UTC)
        return store.create_run(
            aci_deployment, now + timedelta(seconds=in_seconds), job_variables=job_variables, now=now
        )

    return schedule
