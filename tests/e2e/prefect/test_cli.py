"""The `push-pool` CLI with the prefect orchestrator, against a real Prefect server: pools get Prefect's push types,
`import` reviews a hybrid pool, `prefect install-automation` is idempotent and never prints the token, `run`
creates a Prefect flow run; bad input gives exit code 1 and one clear line."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from push_pools.cli import context, main
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.automation import automation_name, block_name
from tests.e2e.prefect.conftest import MakeDeployment
from tests.e2e.prefect.server import AUTH_STRING, PrefectServer

SECRET = "cli-webhook-secret-never-printed"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli(Protocol):
    def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def cli(
    prefect_server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.setenv("PUSH_POOL_ORCHESTRATOR", "prefect")
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", AUTH_STRING)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))  # no profile of the machine's
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    monkeypatch.delenv("PUSH_POOL_PREFECT_WORK_POOLS", raising=False)
    monkeypatch.setenv("PUSH_POOL_WEBHOOK_SECRET", SECRET)

    def invoke(*args: str) -> Result:
        context.reset()
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    assert SECRET not in result.out + result.err
    return result


def fails(result: Result, message: str) -> None:
    assert result.code == 1, (result.out, result.err)
    assert message in result.err
    assert "Traceback" not in result.err + result.out
    assert SECRET not in result.out + result.err


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("pool_type", "prefect_type"),
    [
        ("process", "process"),
        ("ecs", "ecs:push"),
        ("cloud-run", "cloud-run-v2:push"),
        ("aci", "azure-container-instance:push"),
    ],
)
def test_create_makes_a_prefect_push_pool(
    cli: Cli, orchestrator: PrefectOrchestrator, pool_type: str, prefect_type: str
) -> None:
    name = _name("cli")
    ok(cli("create", name, "--type", pool_type, "--concurrency-limit", "3"))

    created = orchestrator.api.get(f"work_pools/{name}")
    assert (created["type"], created["concurrency_limit"]) == (prefect_type, 3)
    assert json.loads(ok(cli("inspect", name, "--output", "json")).out)["type"] == pool_type
    ok(cli("pause", name))
    assert orchestrator.api.get(f"work_pools/{name}")["is_paused"] is True
    fails(cli("create", name, "--type", pool_type), "already exists")
    ok(cli("delete", name))
    fails(cli("inspect", name), f"no work pool named {name!r} in Prefect")


def test_ls_lists_the_pools_served_with_their_heartbeat(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    push, process = _name("push"), _name("process")
    ok(cli("create", push, "--type", "cloud-run"))
    ok(cli("create", process, "--type", "process"))

    by_default = {p["name"]: p for p in json.loads(ok(cli("ls", "--output", "json")).out)}
    assert by_default[push]["type"] == "cloud-run"
    assert process not in by_default, "a process pool may be a Prefect worker's: served only when named"

    monkeypatch.setenv("PUSH_POOL_PREFECT_WORK_POOLS", json.dumps([process]))
    ok(cli("dispatch", "--pool", process))
    named = json.loads(ok(cli("ls", "--output", "json")).out)
    assert [(p["name"], p["status"]) for p in named] == [(process, "READY")]
    inspected = json.loads(ok(cli("inspect", process, "--output", "json")).out)
    assert (inspected["status"], inspected["last_tick_at"] is not None) == ("READY", True)


def test_deployments_come_from_prefect_and_run_creates_a_prefect_flow_run(
    cli: Cli, orchestrator: PrefectOrchestrator, make_deployment: MakeDeployment, pool: Any
) -> None:
    deployment = make_deployment(pool.name, {"command": "echo hi"})
    flow_name = deployment.flow_name
    fails(cli("deployment", "create", "mine", "--pool", pool.name, "--command", "echo"), "prefect deploy")

    out = ok(cli("run", f"{flow_name}/deployment", "--in", "1h", "--output", "json")).out

    run = orchestrator.api.get(f"flow_runs/{json.loads(out)['id']}")
    assert (run["deployment_id"], run["state_type"]) == (deployment.id, "SCHEDULED")
    fails(cli("run", "no-such-flow/deployment"), "no deployment named 'no-such-flow/deployment'")


HYBRID_ECS_TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "labels": "{{ labels }}",
        "name": "{{ name }}",
        "aws_credentials": "{{ aws_credentials }}",
        "vpc_id": "{{ vpc_id }}",
        "task_definition": {"containerDefinitions": [{"image": "{{ image }}", "name": "prefect"}]},
    },
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "env": {"type": "object"},
            "labels": {"type": "object"},
            "name": {"type": "string"},
            "image": {"type": "string"},
            "vpc_id": {"type": "string"},
            "aws_credentials": {"type": "object"},
            "unused_setting": {"type": "string"},
        },
    },
}


def _secret_block(orchestrator: PrefectOrchestrator) -> str:
    """A block document to refer to, as a hybrid pool's credentials variable does."""
    block_type = orchestrator.api.get("block_types/slug/secret")
    schema = orchestrator.api.post(
        "block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )[0]
    document = {
        "name": _name("creds"),
        "data": {"value": "x"},
        "block_schema_id": schema["id"],
        "block_type_id": block_type["id"],
    }
    return str(orchestrator.api.post("block_documents/", document)["id"])


def test_import_reviews_a_hybrid_pool_and_names_what_it_cannot_honour(
    cli: Cli, orchestrator: PrefectOrchestrator
) -> None:
    name = _name("hybrid")
    template = json.loads(json.dumps(HYBRID_ECS_TEMPLATE))
    credentials = _secret_block(orchestrator)
    template["variables"]["properties"]["aws_credentials"]["default"] = {"$ref": {"block_document_id": credentials}}
    orchestrator.api.post("work_pools/", {"name": name, "type": "ecs", "base_job_template": template})

    result = cli("import", name)

    fails(result, f"work pool {name!r} cannot be served as it is")
    assert "Prefect type ecs → ecs" in result.out
    assert "variable 'aws_credentials' defaults to a Prefect block reference" in result.out
    assert "variable 'unused_setting' is declared but no placeholder uses it" in result.out
    assert "job_configuration key 'aws_credentials' is not read" in result.out


def test_import_of_a_usable_hybrid_pool_says_how_to_serve_it(cli: Cli, orchestrator: PrefectOrchestrator) -> None:
    name = _name("hybrid")
    orchestrator.api.post("work_pools/", {"name": name, "type": "process", "base_job_template": HYBRID_ECS_TEMPLATE})

    result = ok(cli("import", name, "--output", "json"))

    review = json.loads(result.out)
    assert (review["pool_type"], review["usable"], review["served"], review["problems"]) == ("process", True, False, [])
    human = ok(cli("import", name)).out
    assert f"add {name!r} to PUSH_POOL_PREFECT_WORK_POOLS" in human


def test_import_refuses_a_pool_type_it_cannot_serve(cli: Cli, orchestrator: PrefectOrchestrator) -> None:
    name = _name("k8s")
    orchestrator.api.post("work_pools/", {"name": name, "type": "kubernetes", "base_job_template": {}})
    fails(cli("import", name), "cannot be served as it is")
    fails(cli("import", _name("missing")), "in Prefect")


def test_install_automation_is_idempotent_and_keeps_the_token_secret(
    cli: Cli, orchestrator: PrefectOrchestrator, pool: Any
) -> None:
    url = "http://127.0.0.1:9/push-pools"
    first = ok(cli("prefect", "install-automation", "--pool", pool.name, "--url", url))
    second = ok(cli("prefect", "install-automation", "--pool", pool.name, "--url", url))

    assert "Created automation" in first.out
    assert "Updated automation" in second.out
    found = orchestrator.api.post(
        "automations/filter", {"automations": {"name": {"any_": [automation_name(pool.name)]}}}
    )
    assert len(found) == 1
    block = orchestrator.api.get(f"block_types/slug/webhook/block_documents/name/{block_name(pool.name)}")
    assert SECRET not in json.dumps(block), "Prefect keeps the header as a secret field"
    assert found[0]["actions"][0]["block_document_id"] == block["id"]

    ok(cli("prefect", "uninstall-automation", "--pool", pool.name))
    assert (
        orchestrator.api.post("automations/filter", {"automations": {"name": {"any_": [automation_name(pool.name)]}}})
        == []
    )
    assert "has no push-pools automation" in ok(cli("prefect", "uninstall-automation", "--pool", pool.name)).out


def test_install_automation_refuses_bad_input(cli: Cli, monkeypatch: pytest.MonkeyPatch, pool: Any) -> None:
    fails(cli("prefect", "install-automation", "--pool", pool.name, "--url", "ftp://example"), "http(s) URL")
    fails(cli("prefect", "install-automation", "--pool", _name("nope"), "--url", "http://127.0.0.1:9/"), "in Prefect")
    monkeypatch.delenv("PUSH_POOL_WEBHOOK_SECRET")
    fails(
        cli("prefect", "install-automation", "--pool", pool.name, "--url", "http://127.0.0.1:9/"),
        "PUSH_POOL_WEBHOOK_SECRET",
    )
    monkeypatch.setenv("PUSH_POOL_ORCHESTRATOR", "local")
    fails(cli("import", pool.name), "set PUSH_POOL_ORCHESTRATOR=prefect")


def test_a_missing_or_wrong_connection_is_one_clear_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "push-pools:wrong")
    fails(cli("inspect", "anything"), "refused the credentials")
    monkeypatch.delenv("PREFECT_API_URL")
    fails(cli("ls"), "needs PREFECT_API_URL")
