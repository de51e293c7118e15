"""The requests one flow run makes, from Prefect's own worker code and from ours, on the same template and job
variables, compared field by field (ECS RegisterTaskDefinition and RunTask).

Prefect's side runs in `.venv-prefect-workers` (tests/compat/prefect_worker_requests.py). Only what push-pools does
differently on purpose (docs/prefect.md, "What push-pools does differently from a Prefect worker") is set aside
before comparing, by `ours_as_prefect`; every other field must be equal."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from push_pools.backends.kit import secrets
from push_pools.jobs import prepare_job, run_context
from push_pools.models import Deployment, FlowRun, State, StateType, WorkPool
from push_pools.orchestrators.base import RunEnvironment
from push_pools.orchestrators.prefect.orchestrator import prefect_image
from push_pools.platforms.aws.configuration import parse_job
from push_pools.platforms.aws.request import KEY_TAG, RUN_TAG, build_requests, with_network
from tests.compat.prefect_workers import PREFECT_PYTHON
from tests.compat.requests_cases import ECS_CASES, ON_PURPOSE, RUN

EXPORTER = os.path.join(os.path.dirname(__file__), "prefect_worker_requests.py")
API_URL = "http://127.0.0.1:4200/api"
API_KEY = "pnu_compat"
PREFECT_VERSION = "3.6.29"
"""The Prefect version of `.venv-prefect-workers`: the version label Prefect's worker sets, and ours from the server."""
PREFECT_PYTHON_VERSION = (3, 11)
"""The Python of `.venv-prefect-workers`, in the name of the image Prefect's worker gives a job naming none."""

CASES = ECS_CASES


def prefect_requests(cases: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Prefect's requests for each case, from its own worker code in its own environment."""
    if not PREFECT_PYTHON.exists():
        pytest.fail(f"{PREFECT_PYTHON} is missing: `make test` builds it (Prefect and its worker integrations)")
    request = json.dumps(
        [{"type": kind, "template": template, "values": values, "run": RUN} for _, kind, template, values in cases]
    )
    # Prefect's worker passes its whole profile on; here it has only the API URL and key, which ours passes too.
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PREFECT_API_URL": API_URL,
        "PREFECT_API_KEY": API_KEY,
    }
    result = subprocess.run(
        [str(PREFECT_PYTHON), EXPORTER],
        input=request,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environ,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    renderings: list[dict[str, Any]] = json.loads(result.stdout)
    return renderings


def prefect_environment() -> RunEnvironment:
    """What push-pools' Prefect orchestrator gives this run's job (tests/unit/prefect pins how it builds it)."""
    return RunEnvironment(
        env={
            "PREFECT_API_URL": API_URL,
            "PREFECT_API_KEY": API_KEY,
            "PREFECT__FLOW_RUN_ID": RUN["id"],
            "PREFECT__WORKER_NAME": RUN["worker"],
            "PREFECT__FLOW_ID": RUN["flow_id"],
            "PREFECT__FLOW_NAME": RUN["flow_name"],
        },
        labels={
            "prefect.io/flow-run-id": RUN["id"],
            "prefect.io/flow-run-name": RUN["name"],
            "prefect.io/version": PREFECT_VERSION,
            "prefect.io/work-pool-name": RUN["pool"],
            "prefect.io/work-pool-id": RUN["pool_id"],
            "prefect.io/worker-name": RUN["worker"],
            "prefect.io/flow-id": RUN["flow_id"],
            "prefect.io/flow-name": RUN["flow_name"],
        },
        command="prefect flow-run execute",
        default_image=prefect_image(PREFECT_VERSION, PREFECT_PYTHON_VERSION),
    )


def our_configuration(kind: str, template: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any], FlowRun]:
    """The job configuration our dispatcher renders for the run, with these job variables on its deployment."""
    pool = WorkPool(name=RUN["pool"], type=f"{kind}:push", base_job_template=template)
    deployment = Deployment(id="d-1", name="nightly", pool_name=pool.name, job_variables=values)
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    run = FlowRun(
        id=RUN["id"],
        name=RUN["name"],
        pool_name=pool.name,
        flow_id=RUN["flow_id"],
        flow_name=RUN["flow_name"],
        state=State(type=StateType.SCHEDULED, name="Scheduled", timestamp=now),
        expected_start_time=now,
    )
    return prepare_job(pool, deployment, run, prefect_environment()).configuration, run


def our_ecs_requests(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    configuration, run = our_configuration("ecs", template, values)
    job = parse_job(configuration)
    requests = build_requests(job, run_context(run), region=RUN["region"])
    run_task = requests.run_task
    if requests.needs_network:
        run_task = with_network(run_task, RUN["default_subnets"], public_ip=requests.fargate)
    return {"task_definition": requests.task_definition, "run_task": secrets.reveal(run_task)}  # as sent


def ecs_as_prefect(ours: dict[str, Any], prefect: dict[str, Any]) -> dict[str, Any]:
    """Our ECS requests with what differs on purpose set to Prefect's value (or removed), and lists whose order
    ECS ignores (tags, env) as mappings."""
    ours = copy.deepcopy(ours)
    definition, run_task = ours["task_definition"], ours["run_task"]
    # The family names the content's hash, so one registration serves every run with the same content.
    definition["family"] = prefect["task_definition"]["family"]
    run_task["taskDefinition"] = prefect["run_task"]["taskDefinition"]
    # Idempotent submission and event matching.
    del run_task["clientToken"], run_task["startedBy"]
    run_task["tags"] = [tag for tag in run_task["tags"] if tag["key"] not in (RUN_TAG, KEY_TAG)]
    return ours


WORKER_PROFILE = {"PREFECT_SERVER_EPHEMERAL_ENABLED"}
"""Settings of the worker's own Prefect profile that Prefect's worker passes on to every job; push-pools passes
only the API URL, key and auth string."""


def comparable(requests: dict[str, Any]) -> dict[str, Any]:
    """Order-free views of the lists whose order ECS ignores."""
    requests = copy.deepcopy(requests)
    run_task = requests["run_task"]
    run_task["tags"] = {tag["key"]: tag["value"] for tag in run_task.get("tags", [])}
    for container in run_task.get("overrides", {}).get("containerOverrides", []):
        environment = container.get("environment", [])
        container["environment"] = {e["name"]: e["value"] for e in environment if e["name"] not in WORKER_PROFILE}
    for container in requests["task_definition"].get("containerDefinitions", []):
        if "environment" in container:
            container["environment"] = {e["name"]: e["value"] for e in container["environment"]}
    if "requiresCompatibilities" in requests["task_definition"]:
        requests["task_definition"]["requiresCompatibilities"].sort()
    return requests


def field_differences(ours: Any, prefect: Any, path: str = "") -> list[str]:
    """Every field where the two differ, as `path: ours != prefect` (absent fields as <absent>)."""
    if isinstance(ours, dict) and isinstance(prefect, dict):
        return [
            line
            for key in sorted(set(ours) | set(prefect), key=str)
            for line in field_differences(ours.get(key, ABSENT), prefect.get(key, ABSENT), f"{path}.{key}")
        ]
    if isinstance(ours, list) and isinstance(prefect, list) and len(ours) == len(prefect):
        return [
            line
            for i, (a, b) in enumerate(zip(ours, prefect, strict=True))
            for line in field_differences(a, b, f"{path}[{i}]")
        ]
    return [] if ours == prefect else [f"{path.lstrip('.')}: {ours!r} != {prefect!r}"]


ABSENT = "<absent>"


@pytest.fixture(scope="module")
def prefect_results() -> list[dict[str, Any]]:
    return prefect_requests(CASES)


@pytest.mark.slow  # one process of Prefect's own workers for the whole table
@pytest.mark.parametrize("index", range(len(CASES)), ids=[case[0] for case in CASES])
def test_our_requests_equal_prefects(prefect_results: list[dict[str, Any]], index: int) -> None:
    prefect = prefect_results[index]
    ours = our_ecs_requests(prefect["template"], CASES[index][3])
    expected = {"task_definition": prefect["task_definition"], "run_task": prefect["run_task"]}
    differences = field_differences(comparable(ecs_as_prefect(ours, expected)), comparable(expected))
    on_purpose = ON_PURPOSE.get(CASES[index][0], set())
    assert [line for line in differences if line.split(":")[0] not in on_purpose] == []
    assert {line.split(":")[0] for line in differences} == on_purpose, "a difference on purpose is gone: update"
