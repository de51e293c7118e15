"""Azure Container Instances: each flow run is one container group, created directly through ARM.

- **Request**: `build_request` turns the rendered job configuration (push-pools' `aci` template, or Prefect's
  `azure-container-instance` template with its `arm_template`) into one container group body, restart policy
  `Never`, user-assigned identities for image pulls, secrets as `secureValue` (see `aci_request`).
- **Idempotency**: the group's name is derived from the run's idempotency key (`pp-<flow run id>-<attempt>`), so a
  redelivered run can only ever name the same group. A first submission PUTs at once (one write call per run);
  a resubmission (an earlier try may have reached Azure) GETs the name first and adopts a group tagged with the
  same key, rather than PUT again: a second PUT of a group holding secure values is an update that ACI cannot
  compare with what runs, and it could restart the container.
- **No waiting**: the create is sent with `polling=False` and the call returns once ARM accepts it (201). The
  tick reads the group later (`reports_infrastructure_events = False`): provisioning failures and exit codes
  come from there, with ACI's evidence in a failure's message while the group still exists (the sweep deletes it
  only after `retention`): the detail status, the warning events and the container's last log lines (one GET
  logs per failure), masked and bounded (`aci_status`).
- **Logs**: `logs()` reads the job container's log (GET logs) while its group exists; where reading is denied it
  gives the `az container logs` command. ACI keeps no log once the group is deleted.
- **Errors**, by HTTP status and ARM error code only: 408/429/5xx, `ContainerGroupQuotaReached`,
  `AnotherOperationInProgress` and network errors are transient (Retry-After is passed on); other 4xx are
  permanent. After a 429 on a create, no create is sent to that subscription until Retry-After has passed.
- **SDK retries are off** (`retry_total=0`): the dispatcher owns retries and their deadline, and a 429's
  Retry-After reaches it instead of being slept on inside the SDK. Timeouts: 10 s to connect, 30 s to read.
- **Infrastructure id**: the container group's resource id. **Cancel** deletes the group (gone = success).
- **Sweep**: finished groups tagged `push-pools-managed` are deleted `PUSH_POOL_ACI_RETENTION_SECONDS` after their
  container ended (ACI allows 100 groups per region), except those tagged `push-pools-keep`
  (`keep_container_group`). Swept resource groups: `PUSH_POOL_ACI_RESOURCE_GROUPS`, plus any this instance used.
- **Identity**: `DefaultAzureCredential` (managed identity; `AZURE_CLIENT_ID` picks the user-assigned one).
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, ClassVar, cast

from push_pools.backends.base import JobLogs, RenderedJob, RunContext
from push_pools.backends.kit.cache import TtlCache
from push_pools.backends.kit.evidence import TAIL_LINES, executor_credentials, mask_secrets, output_tail
from push_pools.backends.kit.gate import RateGate
from push_pools.backends.kit.secrets import CREDENTIAL_ENV
from push_pools.errors import (
    ConfigurationError,
    PermanentSubmissionError,
    SubmissionError,
    TransientSubmissionError,
)
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus
from push_pools.platforms.azure.arm import RESOURCE_GROUP_LOCATION
from push_pools.platforms.azure.clients import ArmClients
from push_pools.platforms.azure.errors import retry_after_of, translated
from push_pools.platforms.azure.request import (
    JOB_CONTAINER_NAME,
    KEEP_TAG,
    KEY_TAG,
    MANAGED_TAG,
    build_container_group_request,
    container_group_id,
    parse_container_group_id,
    request_body_bytes,
    sanitise_tags,
    secret_values,
)
from push_pools.platforms.azure.status import (
    GroupReading,
    infrastructure_status,
    is_finished,
    is_starting,
)
from push_pools.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient
    from azure.mgmt.containerinstance.models import ContainerGroup

logger = logging.getLogger(__name__)

RESOURCE_GROUP_API_VERSION = "2021-04-01"
REQUIRED_ACTIONS = (
    "Microsoft.ContainerInstance/containerGroups/read",  # status, resubmission lookups, sweep listings
    "Microsoft.ContainerInstance/containerGroups/write",  # submit
    "Microsoft.ContainerInstance/containerGroups/delete",  # cancel, sweep
    "Microsoft.ContainerInstance/containerGroups/containers/logs/read",  # a failed run's last log lines
    "Microsoft.Resources/subscriptions/resourceGroups/read",  # the region, for `[resourceGroup().location]`
)
"""The ARM actions the backend calls: the custom role of `terraform/modules/azure` grants exactly these."""
CONDITIONAL_ACTIONS = {
    "identities": "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "subnet_ids": "Microsoft.Network/virtualNetworks/subnets/join/action",
}
"""Checked by ARM on a create whose group holds these job variables, on the identity or subnet named."""


def build_request(configuration: dict[str, Any], run: RunContext, settings: Settings | None = None) -> dict[str, Any]:
    """The container group `submit` would create: subscription, resource group, name, resource id and body.

    Pure. Secret values are `SecretStr`. A location of `[resourceGroup().location]` (Prefect's templates) is the
    resource group's region, which only ARM can tell: `resolved_on_submission` says so instead of guessing.
    """
    request = build_container_group_request(configuration, run)
    pending = []
    if request["body"]["location"] == RESOURCE_GROUP_LOCATION:
        where = f"{request['subscription_id']}/{request['resource_group_name']}"
        pending.append(f"body.location: the region of resource group {where}, read from ARM once")
    return request | {"resolved_on_submission": pending}


class AciBackend:
    """Creates, reads, deletes and sweeps the container groups of an `aci` pool."""

    pool_type: ClassVar[str] = "aci"
    reports_infrastructure_events: ClassVar[bool] = False

    def __init__(
        self,
        clients: Callable[[str], ContainerInstanceManagementClient],
        *,
        retention: timedelta = timedelta(minutes=10),
        resource_groups: Iterable[str] = (),
        throttle: RateGate | None = None,
    ) -> None:
        self._clients = clients
        self.retention = retention
        self._throttle = throttle or RateGate()
        self._lock = threading.Lock()
        self._scopes: dict[tuple[str, str], tuple[str, str]] = {}
        self._locations: TtlCache[tuple[str, str], str] = TtlCache()
        self._finished_at: dict[str, datetime] = {}
        self._read_this_tick: set[str] = set()
        for scope in resource_groups:
            self._remember_scope(*_parse_scope(scope))

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return build_request(configuration, run)

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        request = build_request(configuration, run)
        subscription, group, name = (
            request["subscription_id"],
            request["resource_group_name"],
            request["container_group_name"],
        )
        pid = request["resource_id"]
        client = self._clients(subscription)
        self._remember_scope(subscription, group)
        with translated(f"creating container group {name}", secret_values(request["body"])):
            if run.resubmission:
                existing = _get_group(client, group, name)
                if existing is not None:
                    return _adopt(existing, pid, run)
            body = dict(request["body"])
            if body["location"] == RESOURCE_GROUP_LOCATION:
                body["location"] = self._resource_group_location(client, subscription, group)
            status_code = self._create(client, subscription, group, name, body)
        return InfrastructureRef(infrastructure_pid=pid, adopted=status_code == 200)

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        from azure.core.exceptions import ResourceNotFoundError

        subscription, group, name = parse_container_group_id(infrastructure_pid)
        client = self._clients(subscription)
        self._remember_scope(subscription, group)
        with translated(f"reading container group {name}"):
            try:
                container_group = client.container_groups.get(group, name)
            except ResourceNotFoundError:
                return InfrastructureStatus(
                    state=InfrastructureState.GONE, message=f"container group {name} no longer exists"
                )
        reading = read_group(container_group)
        self._note_reading(infrastructure_pid, reading)
        status = infrastructure_status(reading)
        if status.state is InfrastructureState.FAILED:
            status = infrastructure_status(reading, self._log_tail(client, group, name, container_group))
        return status

    def logs(self, infrastructure_pid: str, tail: int | None = None, job: RenderedJob | None = None) -> JobLogs:
        """The job container's log while its group exists (masked), or the `az` command where reading is denied."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        subscription, group, name = parse_container_group_id(infrastructure_pid)
        client = self._clients(subscription)
        container_name = JOB_CONTAINER_NAME
        with translated(f"reading the logs of container group {name}"):
            try:
                container = _job_container(client.container_groups.get(group, name))
                if container is None or tail == 0:
                    return JobLogs()
                container_name = container.name
                logs = client.containers.list_logs(group, name, container_name, tail=tail)
            except ResourceNotFoundError:
                raise ConfigurationError(
                    f"container group {name} no longer exists: ACI's logs go with their group, deleted "
                    f"{self.retention.total_seconds():g}s after its container ended (PUSH_POOL_ACI_RETENTION_SECONDS)"
                ) from None
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise
                logger.warning("cannot read the logs of container group %s: %s", name, exc.reason)
                return JobLogs(elsewhere=_az_logs_command(subscription, group, name, container_name))
        text = mask_secrets(logs.content or "", _known_secrets(container))
        return JobLogs(lines=tuple(text.splitlines())).last(tail)

    def cancel(self, infrastructure_pid: str) -> None:
        subscription, group, name = parse_container_group_id(infrastructure_pid)
        with translated(f"deleting container group {name}"):
            _delete_group(self._clients(subscription), group, name)

    def sweep(self, now: datetime) -> int:
        """Delete our finished container groups once they have been kept for the retention period."""
        removed = 0
        with self._lock:
            scopes = list(self._scopes.values())
        for subscription, group in scopes:
            removed += self._sweep_resource_group(subscription, group, now)
        with self._lock:
            self._read_this_tick.clear()
        return removed

    # ---- helpers --------------------------------------------------------------------------------------------

    def _create(
        self,
        client: ContainerInstanceManagementClient,
        subscription: str,
        group: str,
        name: str,
        body: dict[str, Any],
    ) -> int:
        from azure.core.exceptions import HttpResponseError

        wait = self._throttle.remaining(subscription)
        if wait > 0:
            raise TransientSubmissionError(
                f"ARM throttles container group creates in subscription {subscription}; not sending for {wait:.1f}s",
                retry_after=wait,
            )
        # The body goes as bytes, exactly as built: the SDK's model would drop properties it does not know.
        content = cast("IO[bytes]", request_body_bytes(body))
        try:
            poller = client.container_groups.begin_create_or_update(
                group, name, content, polling=False, cls=_status_code
            )
        except HttpResponseError as exc:
            if exc.status_code == 429:
                hint = retry_after_of(exc)
                self._throttle.hold(subscription, 1.0 if hint is None else hint)
            raise
        return cast(int, poller.result())

    def _resource_group_location(self, client: ContainerInstanceManagementClient, subscription: str, group: str) -> str:
        """The region of a resource group, read once per instance (Prefect templates say resourceGroup().location)."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        def read() -> str:
            url = f"/subscriptions/{subscription}/resourcegroups/{group}?api-version={RESOURCE_GROUP_API_VERSION}"
            response = client._send_request(HttpRequest("GET", url))
            if response.status_code != 200:
                raise HttpResponseError(response=response)
            return str(response.json()["location"])

        return self._locations.get_or_compute((subscription.lower(), group.lower()), read)

    def _log_tail(
        self, client: ContainerInstanceManagementClient, group: str, name: str, container_group: ContainerGroup
    ) -> str | None:
        """The job container's last log lines for a failure's message, masked and bounded; a failure to read them
        is only logged."""
        from azure.core.exceptions import AzureError

        container = _job_container(container_group)
        if container is None:
            return None
        try:
            logs = client.containers.list_logs(group, name, container.name, tail=TAIL_LINES)
        except AzureError as exc:
            logger.warning("cannot read the logs of container group %s: %s", name, type(exc).__name__)
            return None
        return output_tail(logs.content or "", _known_secrets(container)) or None

    def _sweep_resource_group(self, subscription: str, group: str, now: datetime) -> int:
        client = self._clients(subscription)
        with translated(f"listing container groups in {group}"):
            groups = list(client.container_groups.list_by_resource_group(group))
        removed = 0
        present: set[str] = set()
        for container_group in groups:
            tags = container_group.tags or {}
            if tags.get(MANAGED_TAG) != "true" or tags.get(KEEP_TAG) == "true" or not container_group.name:
                continue
            pid = container_group_id(subscription, group, container_group.name).lower()
            present.add(pid)
            finished_at = self._finish_time(client, group, container_group, pid, now)
            if finished_at is None or now - finished_at < self.retention:
                continue
            try:
                with translated(f"deleting container group {container_group.name}"):
                    _delete_group(client, group, container_group.name)
            except SubmissionError as exc:
                logger.warning("sweep: %s", exc)
                continue
            removed += 1
            present.discard(pid)
        with self._lock:
            prefix = container_group_id(subscription, group, "").lower()
            for pid in [pid for pid in self._finished_at if pid.startswith(prefix)]:
                if pid not in present:
                    del self._finished_at[pid]
        return removed

    def _finish_time(
        self,
        client: ContainerInstanceManagementClient,
        group: str,
        container_group: ContainerGroup,
        pid: str,
        now: datetime,
    ) -> datetime | None:
        """When the group's container ended: remembered, read from the listing, or read with one GET."""
        with self._lock:
            if pid in self._finished_at:
                return self._finished_at[pid]
            read_by_tick = pid in self._read_this_tick
        reading = read_group(container_group)
        if read_by_tick or is_starting(reading):
            return None
        if not is_finished(reading):
            from azure.core.exceptions import ResourceNotFoundError

            with translated(f"reading container group {container_group.name}"):
                try:
                    reading = read_group(client.container_groups.get(group, container_group.name or ""))
                except ResourceNotFoundError:
                    return None
        self._note_reading(pid, reading, now)
        with self._lock:
            return self._finished_at.get(pid)

    def _note_reading(self, infrastructure_pid: str, reading: GroupReading, now: datetime | None = None) -> None:
        pid = infrastructure_pid.lower()
        with self._lock:
            self._read_this_tick.add(pid)
            if is_finished(reading) and pid not in self._finished_at:
                self._finished_at[pid] = reading.finish_time or now or datetime.now(UTC)

    def _remember_scope(self, subscription: str, group: str) -> None:
        with self._lock:
            self._scopes.setdefault((subscription.lower(), group.lower()), (subscription, group))


def from_settings(settings: Settings) -> AciBackend:
    """The backend an entry point uses: DefaultAzureCredential (managed identity), clients built per subscription."""
    from azure.identity import DefaultAzureCredential

    return AciBackend(
        ArmClients(DefaultAzureCredential()),
        retention=timedelta(seconds=settings.aci_retention_seconds),
        resource_groups=settings.aci_resource_groups,
    )


def read_group(container_group: ContainerGroup) -> GroupReading:
    """The parts of an SDK ContainerGroup that say how its run goes."""
    container = _job_container(container_group)
    view = container.instance_view if container is not None else None
    current = view.current_state if view is not None else None
    group_view = container_group.instance_view
    events = [*(group_view.events or [] if group_view else []), *(view.events or [] if view else [])]
    warnings = [event for event in events if (event.type or "").lower() == "warning"]
    return GroupReading(
        provisioning_state=container_group.provisioning_state,
        group_state=group_view.state if group_view else None,
        container_state=current.state if current else None,
        exit_code=current.exit_code if current else None,
        detail_status=current.detail_status if current else None,
        finish_time=current.finish_time if current else None,
        events=tuple(event.message for event in events if event.message),
        warnings=tuple(event.message for event in warnings if event.message),
        tags=dict(container_group.tags or {}),
    )


def _get_group(client: ContainerInstanceManagementClient, group: str, name: str) -> ContainerGroup | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return client.container_groups.get(group, name)
    except ResourceNotFoundError:
        return None


def _adopt(existing: ContainerGroup, pid: str, run: RunContext) -> InfrastructureRef:
    found_key = (existing.tags or {}).get(KEY_TAG)
    expected = sanitise_tags({KEY_TAG: run.idempotency_key})[KEY_TAG]
    if found_key != expected:
        raise PermanentSubmissionError(
            f"container group {existing.name} exists but was not started for this run "
            f"(its {KEY_TAG} tag is {found_key!r}); delete it or rename it"
        )
    if (existing.provisioning_state or "").lower() == "deleting":
        raise TransientSubmissionError(f"container group {existing.name} is being deleted; it will be created again")
    return InfrastructureRef(infrastructure_pid=pid, adopted=True)


def _delete_group(client: ContainerInstanceManagementClient, group: str, name: str) -> None:
    """Ask ARM to delete the group and return once it accepted; a group already gone is success."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.container_groups.begin_delete(group, name, polling=False).result()
    except ResourceNotFoundError:
        return


def _known_secrets(container: Any) -> list[str]:
    """The orchestrator's credentials as the container's plain env values (ARM never returns secure ones) and this
    function's environment hold them."""
    variables = container.environment_variables or []
    plain = [v.value for v in variables if v.name in CREDENTIAL_ENV and v.value]
    return [*plain, *executor_credentials()]


def _az_logs_command(subscription: str, group: str, name: str, container: str) -> str:
    """The Azure CLI command that shows the container's log, for whoever cannot read it through push-pools."""
    options = {"--resource-group": group, "--name": name, "--container-name": container, "--subscription": subscription}
    return " ".join(["az container logs", *(f"{flag} {shlex.quote(value)}" for flag, value in options.items())])


def _job_container(container_group: ContainerGroup) -> Any:
    containers = container_group.containers or []
    named = [container for container in containers if container.name == JOB_CONTAINER_NAME]
    return named[0] if named else (containers[0] if containers else None)


def _status_code(pipeline_response: Any, deserialized: Any, headers: Any) -> int:
    return int(pipeline_response.http_response.status_code)


def _parse_scope(scope: str) -> tuple[str, str]:
    parts = scope.strip("/").split("/")
    if len(parts) != 4 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        raise ConfigurationError(
            f"PUSH_POOL_ACI_RESOURCE_GROUPS: {scope!r} is not a resource group id (/subscriptions/S/resourceGroups/RG)"
        )
    return parts[1], parts[3]
