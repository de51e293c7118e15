"""AWS for the integration tests: moto in-process (`mock_aws`) or as a server (`ThreadedMotoServer`), a session
for the code under test (its calls recorded as IAM actions, and, on the server, passed through the ECS fakes of
`tests.fakes`), a separate session for the test's own looks, and an ECS pool on the embedded store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.loaders
import botocore.session
import pytest
import requests

from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.backend import EcsBackend
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from tests.fakes.aws_front import ActionRecorder, AwsFront, Layer, patch_moto_fargate_memory
from tests.fakes.ecs_semantics import MOTO_ACCOUNT, EcsClientTokens, EcsMissingTasks

_L = TypeVar("_L")
REGION = "us-east-1"
CLUSTER = "push-pools"
IMAGE = "ghcr.io/example/flows:1"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "aws"
_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.session.Session:
    """A fresh session (its own event hooks) sharing one loader of service models, which is the slow part."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(
        botocore_session=core, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class AwsWorld:
    """One test's AWS: where it is, the code's session and what it called, and the test's own clients."""

    mode: str
    session: boto3.session.Session
    recorder: ActionRecorder
    endpoint: str | None = None
    front: AwsFront | None = None
    """On the moto server: the layers in front of it (tests may insert more, before the others)."""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """The test's own client (not recorded, not behind the fakes)."""
        if service not in self._clients:
            self._clients[service] = new_session().client(service, endpoint_url=self.endpoint)
        return self._clients[service]

    def backend(self, settings: Settings | None = None) -> EcsBackend:
        return EcsBackend.from_session(self.session, settings or Settings())

    def find_layer(self, kind: type[_L]) -> _L:
        layers = self.front.layers if self.front else []
        return next(layer for layer in layers if isinstance(layer, kind))

    def add_layer(self, layer: Layer) -> None:
        """Put a layer in front of the others (server mode only)."""
        if self.front is None:
            raise RuntimeError("layers need the moto server: use the aws_server fixture")
        self.front.layers.insert(0, layer)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def manual_task_states() -> Iterator[None]:
    """moto moves a task one step towards STOPPED on every DescribeTasks; keep tasks where the test puts them."""
    from moto.moto_api import state_manager

    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition(model_name="ecs::task")


def _prepare(world: AwsWorld) -> AwsWorld:
    world.client("ecs").create_cluster(clusterName=CLUSTER)
    return world


def _within_the_grants(world: AwsWorld) -> None:
    """What the code called in a test must be granted to the function by terraform/modules/aws."""
    from tests.terraform.aws_module import granted_actions

    beyond = world.recorder.actions - granted_actions()
    assert not beyond, f"the code called actions the Terraform module does not grant: {sorted(beyond)}"


@pytest.fixture
def aws_inprocess(monkeypatch: pytest.MonkeyPatch, manual_task_states: None) -> Iterator[AwsWorld]:
    from moto import mock_aws

    patch_moto_fargate_memory(monkeypatch)
    with mock_aws():
        session = new_session()
        world = _prepare(AwsWorld("in-process", session, ActionRecorder().install(session)))
        yield world
        _within_the_grants(world)


@pytest.fixture
def aws_server(monkeypatch: pytest.MonkeyPatch, moto_server: str, manual_task_states: None) -> Iterator[AwsWorld]:
    """moto as a server, with ECS's client-token idempotency and missing-task answers in front of it."""
    patch_moto_fargate_memory(monkeypatch)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    session = new_session()
    front = AwsFront(EcsClientTokens(), EcsMissingTasks(REGION)).install(session)
    world = _prepare(AwsWorld("server", session, ActionRecorder().install(session), moto_server, front))
    yield world
    _within_the_grants(world)


@pytest.fixture(params=["in-process", "server"])
def aws(request: pytest.FixtureRequest) -> AwsWorld:
    """Both ways of running moto: the behaviour under test must not depend on it."""
    fixture = "aws_inprocess" if request.param == "in-process" else "aws_server"
    world: AwsWorld = request.getfixturevalue(fixture)
    return world


@pytest.fixture
def prefect_ecs_template() -> dict[str, Any]:
    """A work pool template in the shape of Prefect's ECS worker's default one, as its documentation shows it."""
    template: dict[str, Any] = load_fixture("prefect_ecs_template.json")
    return template


def ecs_template(**defaults: Any) -> dict[str, Any]:
    """The default ECS template with what `push-pool create --type ecs --set ...` would set from Terraform."""
    return set_variable_defaults(default_base_job_template("ecs"), {"cluster": CLUSTER, **defaults})


@dataclass
class EcsPool:
    """An `ecs` pool on the embedded store, with a dispatcher over the world's ECS."""

    world: AwsWorld
    store: LocalStore
    dispatcher: Dispatcher
    backend: EcsBackend
    pool: WorkPool
    deployment: Deployment

    def schedule(self, in_seconds: float = -1, job_variables: dict[str, Any] | None = None) -> FlowRun:
        now = datetime.now(UTC)
        start = now + timedelta(seconds=in_seconds)
        return self.store.create_run(self.deployment, start, job_variables=job_variables, now=now)

    def tasks(self) -> list[dict[str, Any]]:
        """Every task in the cluster, as DescribeTasks shows it."""
        ecs = self.world.client("ecs")
        arns = [
            arn
            for status in ("RUNNING", "STOPPED")
            for arn in ecs.list_tasks(cluster=CLUSTER, desiredStatus=status)["taskArns"]
        ]
        return ecs.describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"] if arns else []

    def stop(
        self, task_arn: str, *, exit_code: int | None, stop_code: str = "EssentialContainerExited"
    ) -> dict[str, Any]:
        """End a task in moto as ECS would, and return its "ECS Task State Change" event."""
        task = moto_task(task_arn)
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = "Essential container in task exited" if exit_code is not None else "Task failed to start"
        task.containers[0].exitCode = exit_code
        return task_event(self.world, task_arn, stop_code=stop_code if exit_code is not None else "TaskFailedToStart")


def moto_task(task_arn: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[MOTO_ACCOUNT][REGION].tasks[CLUSTER][task_arn]


def task_event(world: AwsWorld, task_arn: str, *, stop_code: str | None = None) -> dict[str, Any]:
    """The EventBridge event ECS sends for the task's current state (detail = the task, as JSON)."""
    task = world.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    detail = json.loads(json.dumps(task, default=_iso))
    if stop_code and detail.get("lastStatus") == "STOPPED":
        detail["stopCode"] = stop_code
    for container in detail.get("containers", []):
        if container.get("exitCode") is None:
            container.pop("exitCode", None)
    event = load_fixture("ecs_task_state_change.json")
    event["id"] = str(uuid.uuid4())
    event["resources"] = [task_arn]
    event["detail"] = detail
    return event


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


@pytest.fixture
def ecs_pool(aws: AwsWorld, tmp_path: Path) -> Iterator[EcsPool]:
    yield from _ecs_pool(aws, tmp_path)


@pytest.fixture
def ecs_pool_server(aws_server: AwsWorld, tmp_path: Path) -> Iterator[EcsPool]:
    yield from _ecs_pool(aws_server, tmp_path)


def _ecs_pool(world: AwsWorld, tmp_path: Path) -> Iterator[EcsPool]:
    settings = Settings(
        home=tmp_path / "home", submit_attempts=6, submit_deadline_seconds=20, orphan_timeout_seconds=60
    )
    store = LocalStore(settings.store_path)
    backend = world.backend(settings)
    dispatcher = Dispatcher(store, Backends(settings, {"ecs": backend}), settings, sleep=lambda _: None)
    pool = store.save_pool(WorkPool(name="ecs-pool", type="ecs", base_job_template=ecs_template()))
    deployment = store.save_deployment(
        Deployment(
            id=str(uuid.uuid4()), name="nightly", pool_name=pool.name, image=IMAGE, command="python -m flows.nightly"
        )
    )
    yield EcsPool(world, store, dispatcher, backend, pool, deployment)
    store.close()
