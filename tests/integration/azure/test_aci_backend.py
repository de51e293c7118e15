"""The ACI backend with the real azure-mgmt-containerinstance client against the fake ARM server: creates,
adoption, error mapping by status and code, status with exit codes and logs, cancellation, and the sweep."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from push_pools.backends.base import RunContext
from push_pools.backends.kit.gate import RateGate
from push_pools.errors import ConfigurationError, PermanentSubmissionError, TransientSubmissionError
from push_pools.models import InfrastructureState
from push_pools.platforms.azure.backend import AciBackend
from push_pools.platforms.azure.errors import translate_error
from push_pools.platforms.azure.request import KEY_TAG, container_group_name
from tests.fakes.arm import FakeArm, Faults, fake_clients
from tests.integration.azure.conftest import RESOURCE_GROUP, MakeBackend
from tests.unit.azure.helpers import API_KEY, SUBSCRIPTION


def configuration(**overrides: Any) -> dict[str, Any]:
    return {
        "subscription_id": SUBSCRIPTION,
        "resource_group_name": RESOURCE_GROUP,
        "location": "westeurope",
        "image": "ghcr.io/acme/etl:1",
        "command": "python -m etl",
        "env": {"PREFECT_API_KEY": API_KEY, "MODE": "full"},
        "labels": {},
        "name": "etl-run",
    } | overrides


def run_context(resubmission: bool = False, key: str | None = None) -> RunContext:
    run_id = str(uuid.uuid4())
    return RunContext(
        run_id, "quiet-fox", "azure", key or f"{run_id}-1", deployment_name="etl", resubmission=resubmission
    )


def group_name(pid: str) -> str:
    return pid.rsplit("/", 1)[1]


def test_a_submission_is_one_put_that_returns_without_waiting(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    ref = aci_backend.submit(configuration(), run)
    assert ref.adopted is False
    assert ref.infrastructure_pid.endswith(f"/containerGroups/pp-{run.idempotency_key}")
    assert arm.calls == {"PUT group": 1}, "one write call, no operation polling, no lookups"
    (body,) = arm.bodies
    assert body["properties"]["restartPolicy"] == "Never"
    assert body["tags"][KEY_TAG] == run.idempotency_key


def test_the_api_key_is_sent_as_a_secure_value_and_never_read_back(aci_backend: AciBackend, arm: FakeArm) -> None:
    ref = aci_backend.submit(configuration(), run_context())
    (body,) = arm.bodies
    variables = {v["name"]: v for v in body["properties"]["containers"][0]["properties"]["environmentVariables"]}
    assert variables["PREFECT_API_KEY"] == {"name": "PREFECT_API_KEY", "secureValue": API_KEY}
    assert variables["MODE"] == {"name": "MODE", "value": "full"}
    client = fake_clients(arm)(SUBSCRIPTION)
    read_back = client.container_groups.get(RESOURCE_GROUP, group_name(ref.infrastructure_pid))
    assert API_KEY not in json.dumps(read_back.as_dict())


def test_the_resource_group_region_is_looked_up_once(make_backend: MakeBackend, arm: FakeArm) -> None:
    backend = make_backend()
    for _ in range(3):
        backend.submit(configuration(location=None), run_context())
    assert arm.calls["GET resource-group"] == 1
    assert {body["location"] for body in arm.bodies} == {"westeurope"}


def test_a_resubmission_adopts_the_group_started_for_the_same_key(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    first = aci_backend.submit(configuration(), run)
    again = aci_backend.submit(configuration(), run_context(resubmission=True, key=run.idempotency_key))
    assert again.adopted is True
    assert again.infrastructure_pid == first.infrastructure_pid
    assert arm.calls == {"PUT group": 1, "GET group": 1}, "a GET, not a second PUT"
    assert sum(arm.created.values()) == 1


def test_a_resubmission_that_finds_nothing_creates(aci_backend: AciBackend, arm: FakeArm) -> None:
    ref = aci_backend.submit(configuration(), run_context(resubmission=True))
    assert ref.adopted is False
    assert arm.calls == {"GET group": 1, "PUT group": 1}


def test_a_group_with_our_name_but_another_key_is_not_adopted(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    aci_backend.submit(configuration(), run)
    arm.group(container_group_name(run.idempotency_key)).body["tags"][KEY_TAG] = "someone-else"
    with pytest.raises(PermanentSubmissionError, match="was not started for this run"):
        aci_backend.submit(configuration(), run_context(resubmission=True, key=run.idempotency_key))


def test_an_identical_put_of_an_existing_group_is_reported_as_adopted(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    aci_backend.submit(configuration(), run)
    assert aci_backend.submit(configuration(), run).adopted is True
    assert sum(arm.created.values()) == 1


def test_a_put_conflicting_with_another_spec_is_permanent(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    aci_backend.submit(configuration(), run)
    with pytest.raises(PermanentSubmissionError, match="HTTP 409 ContainerGroupUpdateConflict"):
        aci_backend.submit(configuration(image="other:2"), run)


def test_throttling_is_transient_with_retry_after_and_holds_further_creates(
    make_backend: MakeBackend, arm: FakeArm
) -> None:
    now = [1000.0]
    backend = make_backend(throttle=RateGate(lambda: now[0]))
    with arm.faulty(Faults(throttle=1.0, retry_after=7)), pytest.raises(TransientSubmissionError) as error:
        backend.submit(configuration(), run_context())
    assert error.value.retry_after == 7.0
    assert "HTTP 429 TooManyRequests" in str(error.value)
    now[0] += 3
    with pytest.raises(TransientSubmissionError, match="not sending") as held:
        backend.submit(configuration(), run_context())
    assert held.value.retry_after == pytest.approx(4.0)
    assert arm.calls["PUT group"] == 1, "the held create never reached ARM"
    now[0] += 4.5
    backend.submit(configuration(), run_context())
    assert arm.calls["PUT group"] == 2


def test_the_create_quota_answers_429_with_the_wait_until_a_slot_frees(make_backend: MakeBackend) -> None:
    clock = [0.0]
    with FakeArm(create_limit=2, create_window=300, clock=lambda: clock[0]) as arm:
        backend = AciBackend(fake_clients(arm))
        backend.submit(configuration(), run_context())
        clock[0] = 100
        backend.submit(configuration(), run_context())
        clock[0] = 250
        with pytest.raises(TransientSubmissionError) as error:
            backend.submit(configuration(), run_context())
        assert error.value.retry_after == 50.0
        assert sum(arm.created.values()) == 2


def test_the_group_quota_is_transient(make_backend: MakeBackend) -> None:
    with FakeArm(group_limit=1) as arm:
        backend = AciBackend(fake_clients(arm))
        backend.submit(configuration(), run_context())
        with pytest.raises(TransientSubmissionError, match="ContainerGroupQuotaReached"):
            backend.submit(configuration(), run_context())


def test_access_denied_is_permanent(aci_backend: AciBackend, arm: FakeArm) -> None:
    arm.denied.add("PUT group")
    with pytest.raises(PermanentSubmissionError, match="HTTP 403 AuthorizationFailed"):
        aci_backend.submit(configuration(), run_context())
    assert sum(arm.created.values()) == 0


def test_a_missing_resource_group_is_permanent(aci_backend: AciBackend, arm: FakeArm) -> None:
    with pytest.raises(PermanentSubmissionError, match="HTTP 404 ResourceGroupNotFound"):
        aci_backend.submit(configuration(resource_group_name="missing-rg"), run_context())
    assert sum(arm.created.values()) == 0


def test_a_body_aci_refuses_is_permanent(aci_backend: AciBackend, arm: FakeArm) -> None:
    bad = configuration(env={"PREFECT_API_KEY": API_KEY, "": "no name"})
    with pytest.raises(PermanentSubmissionError, match="HTTP 400 InvalidEnvironmentVariable"):
        aci_backend.submit(bad, run_context())


def test_error_messages_never_repeat_a_secret() -> None:
    from azure.core.exceptions import ServiceRequestError

    error = translate_error(ServiceRequestError(f"could not send header {API_KEY}"), "creating", [API_KEY])
    assert isinstance(error, TransientSubmissionError)
    assert API_KEY not in str(error)
    assert "***" in str(error)


def test_server_errors_and_network_failures_are_transient(aci_backend: AciBackend, arm: FakeArm) -> None:
    with arm.faulty(Faults(server_error=1.0)), pytest.raises(TransientSubmissionError, match="HTTP 500"):
        aci_backend.submit(configuration(), run_context())
    unreachable = AciBackend(fake_clients(arm, connection_timeout=1))
    arm.__exit__(None, None, None)
    with pytest.raises(TransientSubmissionError, match="ServiceRequestError"):
        unreachable.submit(configuration(), run_context())


def test_a_lost_answer_is_recovered_by_adopting_on_resubmission(aci_backend: AciBackend, arm: FakeArm) -> None:
    run = run_context()
    with arm.faulty(Faults(lost_response=1.0, kinds=("PUT group",))), pytest.raises(TransientSubmissionError):
        aci_backend.submit(configuration(), run)
    ref = aci_backend.submit(configuration(), run_context(resubmission=True, key=run.idempotency_key))
    assert ref.adopted is True
    assert arm.created == {container_group_name(run.idempotency_key): 1}


# ---- status -----------------------------------------------------------------------------------------------


def test_status_follows_the_container(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    assert aci_backend.status(pid).state is InfrastructureState.RUNNING
    arm.finish(group_name(pid), 0, logs="done")
    status = aci_backend.status(pid)
    assert (status.state, status.exit_code) == (InfrastructureState.SUCCEEDED, 0)
    assert arm.calls["GET logs"] == 0, "logs are read only for failures"


def test_a_non_zero_exit_reports_the_last_log_lines_masked(
    aci_backend: AciBackend, arm: FakeArm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_KEY", API_KEY)  # the function's own: ARM never returns the secure value
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    output = [f"step {i}" for i in range(50)] + [f"using {API_KEY}", "ValueError: bad row 7"]
    arm.finish(group_name(pid), 3, logs="\n".join(output))
    status = aci_backend.status(pid)
    assert (status.state, status.exit_code) == (InfrastructureState.FAILED, 3)
    tail = "\n".join([*(f"step {i}" for i in range(32, 50)), "using ********", "ValueError: bad row 7"])
    assert status.message == f"Error; last event: Started container; last log lines:\n{tail}"
    assert arm.calls["GET logs"] == 1


def test_a_failed_provisioning_is_a_failure_with_its_warning_events(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    arm.fail_provisioning(group_name(pid), "Failed to pull image ghcr.io/acme/etl:1")
    status = aci_backend.status(pid)
    assert status.state is InfrastructureState.FAILED
    assert status.message == "ErrImagePull; events: Failed to pull image ghcr.io/acme/etl:1"


def test_logs_read_the_containers_log_while_its_group_exists(
    aci_backend: AciBackend, arm: FakeArm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_KEY", API_KEY)
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    arm.group(group_name(pid)).logs = f"one\ntwo {API_KEY}\nthree"
    assert aci_backend.logs(pid).lines == ("one", "two ********", "three")
    assert aci_backend.logs(pid, tail=2).lines == ("two ********", "three")
    assert aci_backend.logs(pid, tail=0).lines == ()
    aci_backend.cancel(pid)
    with pytest.raises(ConfigurationError, match=r"no longer exists: ACI's logs go with their group"):
        aci_backend.logs(pid)


def test_where_reading_logs_is_denied_they_give_the_az_command(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    arm.denied.add("GET logs")
    found = aci_backend.logs(pid)
    assert found.lines == ()
    assert found.elsewhere == (
        f"az container logs --resource-group {RESOURCE_GROUP} --name {group_name(pid)} --container-name flow-run "
        f"--subscription {SUBSCRIPTION}"
    )
    arm.finish(group_name(pid), 1, logs="boom")
    assert aci_backend.status(pid).message == "Error; last event: Started container", "the failure still shows"


def test_a_starting_group_is_starting(make_backend: MakeBackend) -> None:
    with FakeArm(starting_reads=2) as arm:
        backend = AciBackend(fake_clients(arm))
        pid = backend.submit(configuration(), run_context()).infrastructure_pid
        assert backend.status(pid).state is InfrastructureState.STARTING
        assert backend.status(pid).state is InfrastructureState.RUNNING


def test_a_stopped_group_is_cancelled_and_a_missing_one_gone(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    arm.stop(group_name(pid))
    assert aci_backend.status(pid).state is InfrastructureState.CANCELLED
    missing = pid.replace(group_name(pid), "pp-never-made-1")
    assert aci_backend.status(missing).state is InfrastructureState.GONE


def test_logs_that_cannot_be_read_do_not_hide_the_failure(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    arm.finish(group_name(pid), 1)
    with arm.faulty(Faults(server_error=1.0, kinds=("GET logs",))):
        status = aci_backend.status(pid)
    assert (status.state, status.exit_code) == (InfrastructureState.FAILED, 1)


def test_status_errors_are_submission_errors_and_foreign_ids_configuration_errors(
    aci_backend: AciBackend, arm: FakeArm
) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    with arm.faulty(Faults(throttle=1.0, retry_after=3)), pytest.raises(TransientSubmissionError):
        aci_backend.status(pid)
    with pytest.raises(ConfigurationError):
        aci_backend.status("cluster::arn:aws:ecs:task/1")


# ---- cancellation -----------------------------------------------------------------------------------------


def test_cancel_deletes_the_group_without_waiting(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    aci_backend.cancel(pid)
    assert arm.responses["DELETE group 202"] == 1
    assert arm.calls["GET operation"] == 0
    assert aci_backend.status(pid).state is InfrastructureState.GONE


@pytest.mark.parametrize("missing_status", [204, 404])
def test_cancelling_a_group_already_gone_succeeds(missing_status: int) -> None:
    with FakeArm(delete_missing_status=missing_status) as arm:
        backend = AciBackend(fake_clients(arm))
        pid = backend.submit(configuration(), run_context()).infrastructure_pid
        backend.cancel(pid)
        backend.cancel(pid)
        assert arm.responses[f"DELETE group {missing_status}"] == 1


def test_a_throttled_cancel_is_transient(aci_backend: AciBackend, arm: FakeArm) -> None:
    pid = aci_backend.submit(configuration(), run_context()).infrastructure_pid
    with arm.faulty(Faults(throttle=1.0)), pytest.raises(TransientSubmissionError):
        aci_backend.cancel(pid)


# ---- sweep ------------------------------------------------------------------------------------------------


def test_the_sweep_deletes_our_finished_groups_after_the_retention(make_backend: MakeBackend, arm: FakeArm) -> None:
    backend = make_backend(retention=timedelta(minutes=10))
    finished, running, kept = (backend.submit(configuration(), run_context()).infrastructure_pid for _ in range(3))
    backend.submit(configuration(keep_container_group=True), run_context())
    ended = datetime.now(UTC)
    arm.finish(group_name(finished), 0, at=ended)
    arm.finish(group_name(kept), 1, at=ended)
    arm.group(group_name(kept)).body["tags"]["push-pools-keep"] = "true"
    assert backend.sweep(ended + timedelta(minutes=5)) == 0, "not yet: retention"
    assert backend.sweep(ended + timedelta(minutes=11)) == 1
    assert {g.name for g in arm.groups.values()} >= {group_name(running), group_name(kept)}
    assert group_name(finished) not in {g.name for g in arm.groups.values()}


def test_the_sweep_leaves_groups_that_are_not_ours(make_backend: MakeBackend, arm: FakeArm) -> None:
    backend = make_backend(retention=timedelta(0))
    pid = backend.submit(configuration(), run_context()).infrastructure_pid
    arm.finish(group_name(pid), 0)
    del arm.group(group_name(pid)).body["tags"]["push-pools-managed"]
    assert backend.sweep(datetime.now(UTC) + timedelta(hours=1)) == 0
    assert len(arm.groups) == 1


def test_a_finished_group_is_read_once_then_remembered(make_backend: MakeBackend, arm: FakeArm) -> None:
    backend = make_backend(retention=timedelta(minutes=10))
    pid = backend.submit(configuration(), run_context()).infrastructure_pid
    arm.finish(group_name(pid), 0)
    now = datetime.now(UTC)
    for minute in range(5):
        assert backend.sweep(now + timedelta(minutes=minute)) == 0
    assert arm.calls["GET group"] == 1, "listings do not show exit codes: one GET, then the finish time is remembered"
    assert backend.sweep(now + timedelta(minutes=11)) == 1


def test_groups_the_tick_just_read_are_not_read_again(make_backend: MakeBackend, arm: FakeArm) -> None:
    backend = make_backend()
    pids = [backend.submit(configuration(), run_context()).infrastructure_pid for _ in range(3)]
    for pid in pids:
        backend.status(pid)
    assert backend.sweep(datetime.now(UTC)) == 0
    assert arm.calls["GET group"] == 3, "only the tick's own status reads"


def test_the_sweep_covers_configured_resource_groups_a_fresh_instance_never_used(arm: FakeArm) -> None:
    first = AciBackend(fake_clients(arm))
    pid = first.submit(configuration(), run_context()).infrastructure_pid
    arm.finish(group_name(pid), 0, at=datetime.now(UTC) - timedelta(hours=1))
    fresh = AciBackend(
        fake_clients(arm), resource_groups=[f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"]
    )
    assert fresh.sweep(datetime.now(UTC)) == 1
    assert AciBackend(fake_clients(arm)).sweep(datetime.now(UTC)) == 0, "an instance that knows no scope sweeps none"


def test_the_sweep_reads_every_page() -> None:
    with FakeArm(page_size=2) as arm:
        backend = AciBackend(fake_clients(arm), retention=timedelta(0))
        pids = [backend.submit(configuration(), run_context()).infrastructure_pid for _ in range(5)]
        for pid in pids:
            arm.finish(group_name(pid), 0)
        assert backend.sweep(datetime.now(UTC) + timedelta(seconds=1)) == 5
        assert arm.calls["GET list"] == 3


@pytest.mark.parametrize("scope", ["rg-flows", "/subscriptions/x/resourceGroups", "/subscriptions/x/providers/y/z"])
def test_a_malformed_sweep_scope_is_a_configuration_error(arm: FakeArm, scope: str) -> None:
    with pytest.raises(ConfigurationError, match="PUSH_POOL_ACI_RESOURCE_GROUPS"):
        AciBackend(fake_clients(arm), resource_groups=[scope])


# ---- the fake itself, with the SDK's own long-running-operation pollers --------------------------------------


def test_the_fake_serves_the_sdk_pollers_for_create_and_delete(arm: FakeArm) -> None:
    client = fake_clients(arm)(SUBSCRIPTION)
    body = {
        "location": "westeurope",
        "properties": {
            "containers": [
                {"name": "c", "properties": {"image": "i", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}
            ],
            "osType": "Linux",
        },
    }
    # azure-core reads `Retry-After: 0` as "no hint" and would wait its default 30 s: polling_interval=0 instead.
    created = client.container_groups.begin_create_or_update(
        RESOURCE_GROUP, "lro", json.dumps(body).encode(), polling_interval=0
    )
    assert created.result().provisioning_state == "Succeeded"
    assert arm.calls["GET operation"] == 2, "Azure-AsyncOperation polled until Succeeded, with Retry-After: 0"
    client.container_groups.begin_delete(RESOURCE_GROUP, "lro", polling_interval=0).result()
    assert arm.calls["GET operation"] == 4, "Location polled until done"
    assert arm.groups == {}
