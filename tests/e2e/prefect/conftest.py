"""Fixtures of the Prefect e2e tests: one real Prefect server per test session (per xdist worker), pools and
deployments made through its API, and dispatchers over it.

The server comes from `.venv-prefect` (built by `make test`); starting it takes about ten seconds, once.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.api import PrefectApi
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from push_pools.testing import InMemoryBackend
from tests.e2e.prefect.server import PREFECT_BIN, PrefectServer

NOT_A_POOL = "no-pool-is-served-by-default-in-these-tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
    server.start()
    yield server
    server.stop()


def make_orchestrator(server: PrefectServer, **overrides: Any) -> PrefectOrchestrator:
    """An orchestrator of its own (own HTTP client), as each function instance has. Serves no pool by default:
    tests tick their own pool by name, so one test's runs never reach another's tick. A `transport` goes to its
    HTTP client (the retries keep their jittered waits: without them, writes that met a busy database retry into
    each other until they give up)."""
    connection = server.connection(overrides.pop("auth_string", server.connection().auth_string))
    api = PrefectApi(connection, transport=overrides.pop("transport", None))
    return PrefectOrchestrator(api, served_pools=overrides.pop("served_pools", [NOT_A_POOL]), **overrides)


@pytest.fixture
def orchestrator(prefect_server: PrefectServer) -> Iterator[PrefectOrchestrator]:
    orchestrator = make_orchestrator(prefect_server)
    yield orchestrator
    orchestrator.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        orchestrator="prefect",
        submit_attempts=3,
        submit_deadline_seconds=5,
        orphan_timeout_seconds=60,
        prefect_work_pools=[NOT_A_POOL],
    )


@pytest.fixture
def backend() -> InMemoryBackend:
    return InMemoryBackend()


@pytest.fixture
def dispatcher(orchestrator: PrefectOrchestrator, backend: InMemoryBackend, settings: Settings) -> Dispatcher:
    """A dispatcher whose `process` pools go to the in-memory backend: Prefect is real, the cloud is not."""
    return Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)


@pytest.fixture
def pool(orchestrator: PrefectOrchestrator) -> WorkPool:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    return orchestrator.save_pool(WorkPool(name=name, type="process", base_job_template=process_template()))


def process_template(**defaults: Any) -> dict[str, Any]:
    template = default_base_job_template("process")
    return set_variable_defaults(template, defaults) if defaults else template


MakeDeployment = Callable[..., Deployment]


@pytest.fixture
def make_deployment(orchestrator: PrefectOrchestrator) -> MakeDeployment:
    """A flow and a deployment in a pool, made with Prefect's REST API as `prefect deploy` would."""

    def make(pool_name: str, job_variables: dict[str, Any] | None = None) -> Deployment:
        flow = orchestrator.api.post("flows/", {"name": f"flow-{uuid.uuid4().hex[:8]}"})
        body = {
            "name": "deployment",
            "flow_id": flow["id"],
            "work_pool_name": pool_name,
            "entrypoint": "hello.py:hello",
            "job_variables": job_variables or {},
        }
        return orchestrator.get_deployment(orchestrator.api.post("deployments/", body)["id"])

    return make


@pytest.fixture
def deployment(pool: WorkPool, make_deployment: MakeDeployment) -> Deployment:
    return make_deployment(pool.name, {"command": "echo hello"})


ScheduleRun = Callable[..., FlowRun]


@pytest.fixture
def schedule_run(orchestrator: PrefectOrchestrator, deployment: Deployment) -> ScheduleRun:
    """A run of `deployment` created by Prefect, due `in_seconds` from now (negative: overdue)."""

    def schedule(in_seconds: float = -1, target: Deployment | None = None) -> FlowRun:
        now = datetime.now(UTC)
        return orchestrator.create_run(target or deployment, now + timedelta(seconds=in_seconds), now=now)

    return schedule


@pytest.fixture(scope="session")
def hello_pool(prefect_server: PrefectServer) -> str:
    """A `process` pool whose runs execute a real flow with `prefect flow-run execute` from `.venv-prefect`,
    deployed with Prefect's own `flow.from_source(...).deploy(...)`."""
    orchestrator = make_orchestrator(prefect_server)
    name = f"hello-{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{PREFECT_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **_client_settings(prefect_server)}
    orchestrator.save_pool(WorkPool(name=name, type="process", base_job_template=process_template(env=env)))
    prefect_server.deploy_hello_flow(name, "hello")
    orchestrator.close()
    return name


def _client_settings(server: PrefectServer) -> dict[str, str]:
    """The flow process's own Prefect home; its API URL and credentials come from push-pools' run environment."""
    from_push_pools = ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")
    return {key: value for key, value in server.client_env().items() if key not in from_push_pools}


def wait_for_state(
    orchestrator: PrefectOrchestrator, flow_run_id: str, states: set[StateType], timeout: float = 60
) -> FlowRun:
    """Poll Prefect until the run reaches one of `states` (the flow reports them itself)."""
    deadline = time.monotonic() + timeout
    while True:
        run = orchestrator.get_run(flow_run_id)
        if run.state.type in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {flow_run_id} is {run.state.type} ({run.state.message}), not {states}")
        time.sleep(0.25)
