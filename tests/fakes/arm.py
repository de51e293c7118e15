"""A local fake of Azure Resource Manager for ACI container groups, for the real `azure-mgmt-containerinstance` client.

It speaks the REST shapes the SDK uses (api-version 2023-05-01):

- `PUT .../containerGroups/NAME`: validates the body the way ACI would refuse it (400 with an ARM error code),
  creates the group (201 + `Azure-AsyncOperation`, `Retry-After: 0`), answers 200 for an identical PUT of an
  existing group and 409 `ContainerGroupUpdateConflict` for a different one (real ACI would try an update);
- `GET` a group (with instance views; secure values never come back), list a resource group's groups (paged,
  without container instance views, as ARM does), container logs, a resource group, async operation status;
- `DELETE` a group: 202 + `Location` polled until done; 204 for a group that does not exist;
- ARM deployments of container groups, as Prefect's ACI worker makes them (`PUT/GET .../providers/
  Microsoft.Resources/deployments/NAME`): the template's container groups are evaluated (`arm_templates`) and
  created as a PUT of each would create them, same checks and quotas; 201 + `Azure-AsyncOperation`, which ends
  `Failed` with the group's error if one was refused.

Limits and faults: `create_limit` creates per `create_window` seconds (ACI's 100 per 5 minutes; 429 with the
Retry-After that frees a slot), `group_limit` groups at once (409 `ContainerGroupQuotaReached`), and random
faults drawn from a seeded RNG: throttling (429), server errors (500), and lost responses (the create happens,
the client sees a 500). Every call is counted by method and kind.

Tests drive the container: `finish(name, exit_code, logs)`, `fail_provisioning(name, event)`, `stop(name)`; its
instance view lists a Normal "Started container" event, then the Warning events a failure added. `denied` kinds of
call are refused with 403 (`{"GET logs"}`: no containers/logs/read).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpRequest, HttpResponse
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from push_pools.platforms.azure.clients import ArmClients
from tests.fakes.arm_templates import InvalidTemplate, ResourceGroup, container_groups

API_VERSION = "2023-05-01"
_BASE = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerInstance"
_DEPLOYMENTS = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Resources/deployments"
_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (method, kind, re.compile(pattern + "$", re.IGNORECASE))
    for method, kind, pattern in [
        ("GET", "logs", _BASE + r"/containerGroups/(?P<name>[^/]+)/containers/(?P<container>[^/]+)/logs"),
        ("PUT", "group", _BASE + r"/containerGroups/(?P<name>[^/]+)"),
        ("GET", "group", _BASE + r"/containerGroups/(?P<name>[^/]+)"),
        ("DELETE", "group", _BASE + r"/containerGroups/(?P<name>[^/]+)"),
        ("GET", "list", _BASE + r"/containerGroups"),
        ("GET", "resource-group", r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"),
        ("GET", "operation", r"/fake-arm/operations/(?P<op>[^/]+)"),
        ("PUT", "deployment", _DEPLOYMENTS + r"/(?P<name>[^/]+)"),
        ("GET", "deployment", _DEPLOYMENTS + r"/(?P<name>[^/]+)"),
    ]
]
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z0-9]$")
FAULTABLE = ("group", "list", "logs", "resource-group")


@dataclass
class Faults:
    """Random faults, drawn per call from one seeded RNG; `kinds` limits them to some calls ("PUT group")."""

    seed: int = 0
    throttle: float = 0.0
    server_error: float = 0.0
    lost_response: float = 0.0
    """PUT only: the group is created, the client gets a 500 (as if the answer was lost)."""
    retry_after: float = 0.0
    kinds: tuple[str, ...] = ()


@dataclass
class FakeGroup:
    subscription: str
    resource_group: str
    name: str
    body: dict[str, Any]
    created_at: datetime
    provisioning: str = "Succeeded"
    container_state: str = "Running"
    exit_code: int | None = None
    detail_status: str | None = None
    finish_time: datetime | None = None
    stopped: bool = False
    logs: str = ""
    events: list[str] = field(default_factory=list)
    """Messages of the container's Warning events ("Failed")."""
    normal_events: list[str] = field(default_factory=lambda: ["Started container"])
    """Messages of its Normal events ("Started"), which ACI lists first."""
    reads_until_running: int = 0

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerInstance/containerGroups/{self.name}"
        )


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class FakeArm:
    """The fake ARM endpoint. Use as a context manager: it serves on 127.0.0.1 (port 0) until closed."""

    def __init__(
        self,
        *,
        faults: Faults | None = None,
        create_limit: int | None = None,
        create_window: float = 300.0,
        group_limit: int | None = None,
        resource_groups: dict[str, str] | None = None,
        default_location: str = "westeurope",
        operation_polls: int = 1,
        page_size: int = 100,
        starting_reads: int = 0,
        delete_missing_status: int = 204,
        decimal_retry_after: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self.create_limit = create_limit
        self.create_window = create_window
        self.group_limit = group_limit
        self.resource_groups = {k.lower(): v for k, v in (resource_groups or {}).items()}
        self.default_location = default_location
        self.operation_polls = operation_polls
        self.page_size = page_size
        self.starting_reads = starting_reads
        self.delete_missing_status = delete_missing_status
        self.decimal_retry_after = decimal_retry_after
        self.clock = clock
        self.groups: dict[str, FakeGroup] = {}
        self.calls: Counter[str] = Counter()
        """Calls by "METHOD kind" ("PUT group", "GET list", ...), faulted ones included."""
        self.responses: Counter[str] = Counter()
        """Responses by "METHOD kind STATUS"."""
        self.created: Counter[str] = Counter()
        """Container groups created, by name: more than 1 for a name means a run ran twice."""
        self.create_times: list[float] = []
        """The fake's clock at each create."""
        self.bodies: list[dict[str, Any]] = []
        """Every PUT body received, as sent (secure values included)."""
        self.denied: set[str] = set()
        """Kinds of call refused with 403 AuthorizationFailed, e.g. {"PUT group"}."""
        self.deployments: dict[str, dict[str, Any]] = {}
        """ARM deployments by "subscription/resource group/name" (lower case), as GET returns them."""
        self._operations: dict[str, list[int]] = {}
        self._failed_operations: dict[str, dict[str, str]] = {}
        self._recent_creates: deque[float] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> FakeArm:
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler)
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.02), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake ARM server is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    # ---- what tests do to containers ---------------------------------------------------------------------------

    def group(self, name: str) -> FakeGroup:
        with self._lock:
            return next(group for group in self.groups.values() if group.name == name)

    def finish(self, name: str, exit_code: int, logs: str = "", *, at: datetime | None = None) -> None:
        with self._lock:
            group = next(group for group in self.groups.values() if group.name == name)
            group.container_state, group.exit_code, group.logs = "Terminated", exit_code, logs
            group.detail_status = "Completed" if exit_code == 0 else "Error"
            group.finish_time = at or datetime.now(UTC)

    def fail_provisioning(self, name: str, event: str) -> None:
        with self._lock:
            group = next(group for group in self.groups.values() if group.name == name)
            group.provisioning, group.container_state = "Failed", "Waiting"
            group.detail_status = "ErrImagePull"
            group.events.append(event)

    def finish_all(self, exit_code: int = 0) -> None:
        """End every container still running."""
        with self._lock:
            running = [group.name for group in self.groups.values() if group.container_state == "Running"]
        for name in running:
            self.finish(name, exit_code)

    def call_counts(self) -> Counter[str]:
        """A copy of `calls`, safe to take while requests are being served."""
        with self._lock:
            return Counter(self.calls)

    def stop(self, name: str) -> None:
        with self._lock:
            next(group for group in self.groups.values() if group.name == name).stopped = True

    @contextmanager
    def faulty(self, faults: Faults) -> Iterator[None]:
        """Faults for the duration of a block."""
        before, before_rng = self.faults, self._rng
        self.faults, self._rng = faults, random.Random(faults.seed)
        try:
            yield
        finally:
            self.faults, self._rng = before, before_rng

    # ---- the WSGI application ------------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except ArmError as exc:
            body = {"error": {"code": exc.code, "message": exc.message}}
            response = Response(json.dumps(body), exc.status, exc.headers, content_type="application/json")
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        for method, kind, pattern in _ROUTES:
            match = pattern.match(request.path)
            if match is None or request.method != method:
                continue
            key = f"{method} {kind}"
            with self._lock:
                self.calls[key] += 1
            try:
                response = self._checked(request, kind, key, match.groupdict())
            except ArmError as exc:
                with self._lock:
                    self.responses[f"{key} {exc.status}"] += 1
                raise
            with self._lock:
                self.responses[f"{key} {response.status_code}"] += 1
            return response
        raise ArmError(404, "NoRegisteredProviderFound", f"no route for {request.method} {request.path}")

    def _checked(self, request: Request, kind: str, key: str, params: dict[str, str]) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            raise ArmError(401, "AuthenticationFailed", "Authentication failed: no bearer token")
        if "api-version" not in request.args:
            raise ArmError(400, "MissingApiVersionParameter", "The api-version query parameter is required")
        if key in self.denied:
            raise ArmError(403, "AuthorizationFailed", f"The client does not have authorization to {key}")
        lost = self._inject_fault(kind, key)
        response = self._handle(request, kind, params)
        if lost:
            raise ArmError(500, "InternalServerError", "the response was lost (injected)")
        return response

    def _inject_fault(self, kind: str, key: str) -> bool:
        faults = self.faults
        if kind not in FAULTABLE or (faults.kinds and key not in faults.kinds):
            return False
        with self._lock:
            draw = self._rng.random()
        if draw < faults.throttle:
            retry_after = self._seconds(faults.retry_after)
            raise ArmError(429, "TooManyRequests", "throttled (injected)", {"Retry-After": retry_after})
        draw -= faults.throttle
        if draw < faults.server_error:
            raise ArmError(500, "InternalServerError", "server error (injected)")
        draw -= faults.server_error
        return key == "PUT group" and draw < faults.lost_response

    def _handle(self, request: Request, kind: str, params: dict[str, str]) -> Response:
        if kind == "operation":
            return self._operation(params["op"], location_polling="delete" in request.args)
        if kind == "resource-group":
            return _json(self._resource_group(params["sub"], params["rg"]))
        if kind == "list":
            return self._list(request, params["sub"], params["rg"])
        if kind == "deployment":
            return self._deploy(request, params) if request.method == "PUT" else self._deployment(params)
        key = _group_key(params["sub"], params["rg"], params["name"])
        if kind == "logs":
            return self._logs(request, key, params["container"])
        if request.method == "PUT":
            return self._put(request, params)
        if request.method == "DELETE":
            return self._delete(request, key)
        with self._lock:
            group = self.groups.get(key)
            if group is None:
                raise ArmError(404, "ResourceNotFound", f"container group {params['name']} not found")
            return _json(self._render(group, instance_view=True, reading=True))

    def _put(self, request: Request, params: dict[str, str]) -> Response:
        self._resource_group(params["sub"], params["rg"])
        body = _validated(request, params["name"])
        status, rendered, operation = self._create_group(params["sub"], params["rg"], params["name"], body)
        if operation is None:
            return _json(rendered, status)
        headers = {
            "Azure-AsyncOperation": f"{request.host_url}fake-arm/operations/{operation}?api-version={API_VERSION}"
        }
        return _json(rendered, status, headers | {"Retry-After": "0"})

    def _create_group(
        self, subscription: str, resource_group: str, name: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], str | None]:
        """Create the group (201 and its operation), or find it unchanged (200, no operation)."""
        key = _group_key(subscription, resource_group, name)
        with self._lock:
            self.bodies.append(copy.deepcopy(body))
            existing = self.groups.get(key)
            if existing is not None:
                if existing.body != body:
                    raise ArmError(
                        409, "ContainerGroupUpdateConflict", f"container group {existing.name} exists with another spec"
                    )
                return 200, self._render(existing, instance_view=True), None
            self._admit_create(subscription, body["location"])
            group = FakeGroup(
                subscription,
                resource_group,
                name,
                body,
                datetime.now(UTC),
                provisioning="Pending" if self.starting_reads else "Succeeded",
                container_state="Waiting" if self.starting_reads else "Running",
                reads_until_running=self.starting_reads,
            )
            self.groups[key] = group
            self.created[group.name] += 1
            operation = self._new_operation(self.operation_polls)
            rendered = self._render(group, instance_view=False)
        return 201, rendered, operation

    def _deploy(self, request: Request, params: dict[str, str]) -> Response:
        """A deployment of container groups: each is created as its own PUT would create it."""
        resource_group = self._resource_group(params["sub"], params["rg"])
        try:
            properties = json.loads(request.get_data()).get("properties") or {}
            groups = container_groups(
                properties.get("template"),
                properties.get("parameters") or {},
                ResourceGroup(resource_group["id"], params["rg"], resource_group["location"]),
            )
        except (ValueError, AttributeError, InvalidTemplate) as exc:
            raise ArmError(400, "InvalidTemplate", f"deployment {params['name']}: {exc}") from None
        error, created = None, []
        for name, body in groups:
            try:
                _, rendered, _ = self._create_group(params["sub"], params["rg"], name, _validated_body(name, body))
                created.append({"id": rendered["id"]})
            except ArmError as exc:
                error = {"code": exc.code, "message": exc.message}
                break
        deployment = {
            "id": f"{resource_group['id']}/providers/Microsoft.Resources/deployments/{params['name']}",
            "name": params["name"],
            "type": "Microsoft.Resources/deployments",
            "properties": {
                "provisioningState": "Failed" if error else "Succeeded",
                "mode": properties.get("mode", "Incremental"),
                "timestamp": datetime.now(UTC).isoformat(),
                "outputResources": created,
                **({"error": error} if error else {}),
            },
        }
        with self._lock:
            self.deployments[_group_key(params["sub"], params["rg"], params["name"])] = deployment
            operation = self._new_operation(self.operation_polls)
            if error:
                self._failed_operations[operation] = error
        headers = {
            "Azure-AsyncOperation": f"{request.host_url}fake-arm/operations/{operation}?api-version={API_VERSION}"
        }
        return _json(deployment, 201, headers | {"Retry-After": "0"})

    def _deployment(self, params: dict[str, str]) -> Response:
        with self._lock:
            deployment = self.deployments.get(_group_key(params["sub"], params["rg"], params["name"]))
        if deployment is None:
            raise ArmError(404, "DeploymentNotFound", f"deployment {params['name']} could not be found")
        return _json(deployment)

    def _admit_create(self, subscription: str, location: str) -> None:
        """ACI's create quotas: so many creates per window, so many groups per region (caller holds the lock)."""
        now = self.clock()
        while self._recent_creates and self._recent_creates[0] <= now - self.create_window:
            self._recent_creates.popleft()
        if self.create_limit is not None and len(self._recent_creates) >= self.create_limit:
            wait = self._recent_creates[0] + self.create_window - now
            raise ArmError(
                429,
                "TooManyRequests",
                f"container group create quota of {self.create_limit} per {self.create_window:g}s reached",
                {"Retry-After": self._seconds(wait)},
            )
        in_region = sum(
            1 for g in self.groups.values() if g.subscription == subscription and g.body["location"] == location
        )
        if self.group_limit is not None and in_region >= self.group_limit:
            raise ArmError(409, "ContainerGroupQuotaReached", f"container group quota {self.group_limit} exceeded")
        self._recent_creates.append(now)
        self.create_times.append(now)

    def _delete(self, request: Request, key: str) -> Response:
        with self._lock:
            group = self.groups.pop(key, None)
            if group is None:
                if self.delete_missing_status == 404:
                    raise ArmError(404, "ResourceNotFound", "container group not found")
                return Response(status=self.delete_missing_status)
            operation = self._new_operation(self.operation_polls)
        location = f"{request.host_url}fake-arm/operations/{operation}?api-version={API_VERSION}&delete=1"
        return Response(status=202, headers={"Location": location, "Retry-After": "0"})

    def _list(self, request: Request, subscription: str, resource_group: str) -> Response:
        start = int(request.args.get("$skiptoken", "0"))
        with self._lock:
            ours = [
                g
                for g in self.groups.values()
                if g.subscription.lower() == subscription.lower() and g.resource_group.lower() == resource_group.lower()
            ]
            page = [self._render(g, instance_view=False) for g in ours[start : start + self.page_size]]
        document: dict[str, Any] = {"value": page}
        if start + self.page_size < len(ours):
            document["nextLink"] = f"{request.base_url}?api-version={API_VERSION}&$skiptoken={start + self.page_size}"
        return _json(document)

    def _logs(self, request: Request, key: str, container: str) -> Response:
        with self._lock:
            group = self.groups.get(key)
            if group is None:
                raise ArmError(404, "ResourceNotFound", "container group not found")
            tail = request.args.get("tail", type=int)
            lines = group.logs.splitlines()
        return _json({"content": "\n".join(lines[-tail:] if tail else lines)})

    def _resource_group(self, subscription: str, resource_group: str) -> dict[str, Any]:
        if self.resource_groups and resource_group.lower() not in self.resource_groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")
        location = self.resource_groups.get(resource_group.lower(), self.default_location)
        return {
            "id": f"/subscriptions/{subscription}/resourceGroups/{resource_group}",
            "name": resource_group,
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }

    def _seconds(self, value: float) -> str:
        """A Retry-After value: whole seconds as ARM sends them, or decimals when a benchmark scales time down."""
        return f"{max(value, 0.0):.3f}" if self.decimal_retry_after else str(math.ceil(max(value, 0.0)))

    def _new_operation(self, polls: int) -> str:
        operation = str(next(self._ids))
        self._operations[operation] = [polls]
        return operation

    def _operation(self, operation: str, *, location_polling: bool) -> Response:
        """An Azure-AsyncOperation status document, or for a Location URL: 202 until done, then 204."""
        with self._lock:
            left = self._operations.get(operation)
            if left is None:
                raise ArmError(404, "OperationNotFound", "no such operation")
            left[0] -= 1
            done = left[0] < 0
            error = self._failed_operations.get(operation)
        if location_polling:
            return Response(status=204) if done else Response(status=202, headers={"Retry-After": "0"})
        document: dict[str, Any] = {"id": operation, "name": operation, "status": "InProgress"}
        if done:
            document |= {"status": "Failed", "error": error} if error else {"status": "Succeeded"}
        return _json(document, headers={"Retry-After": "0"})

    def _render(self, group: FakeGroup, *, instance_view: bool, reading: bool = False) -> dict[str, Any]:
        """The group as ARM returns it (caller holds the lock): secure values hidden, instance views if asked."""
        if reading and group.reads_until_running > 0:
            group.reads_until_running -= 1
            if group.reads_until_running == 0 and group.provisioning == "Pending":
                group.provisioning, group.container_state = "Succeeded", "Running"
        body = copy.deepcopy(group.body)
        properties = body.setdefault("properties", {})
        for container in properties.get("containers", []):
            for variable in container.get("properties", {}).get("environmentVariables", []):
                variable.pop("secureValue", None)
            if instance_view and container is properties["containers"][0]:
                container["properties"]["instanceView"] = self._container_view(group)
        for credential in properties.get("imageRegistryCredentials", []):
            credential.pop("password", None)
        properties["provisioningState"] = group.provisioning
        if instance_view:
            state = "Stopped" if group.stopped else _group_state(group)
            properties["instanceView"] = {"state": state, "events": []}
        return {
            "id": group.resource_id,
            "name": group.name,
            "type": "Microsoft.ContainerInstance/containerGroups",
            **body,
        }

    @staticmethod
    def _container_view(group: FakeGroup) -> dict[str, Any]:
        state: dict[str, Any] = {"state": group.container_state, "startTime": group.created_at.isoformat()}
        if group.detail_status:
            state["detailStatus"] = group.detail_status
        if group.exit_code is not None:
            state["exitCode"] = group.exit_code
        if group.finish_time is not None:
            state["finishTime"] = group.finish_time.isoformat()
        events = [
            {"count": 1, "name": "Started", "message": message, "type": "Normal"} for message in group.normal_events
        ]
        events += [{"count": 1, "name": "Failed", "message": message, "type": "Warning"} for message in group.events]
        return {"restartCount": 0, "currentState": state, "events": events}


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: tests count calls instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _group_state(group: FakeGroup) -> str:
    if group.provisioning == "Failed":
        return "Failed"
    if group.container_state == "Terminated":
        return "Succeeded" if group.exit_code == 0 else "Failed"
    return "Running" if group.container_state == "Running" else "Pending"


def _validated(request: Request, name: str) -> dict[str, Any]:
    """The PUT body, or the 400 ACI would answer for it."""
    _check_name(name)
    try:
        body = json.loads(request.get_data())
    except ValueError:
        raise ArmError(400, "InvalidRequestContent", "the request body is not JSON") from None
    return _validated_body(name, body)


def _validated_body(name: str, body: Any) -> dict[str, Any]:
    _check_name(name)
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "the request body must be an object")
    location = body.get("location")
    if not isinstance(location, str) or not location or location.startswith("["):
        raise ArmError(400, "LocationRequired", f"the location {location!r} is not valid")
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise ArmError(400, "InvalidRequestContent", "properties are required")
    containers = properties.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ArmError(400, "InvalidContainerGroupProperties", "at least one container is required")
    for container in containers:
        _check_container(container)
    if properties.get("osType") not in ("Linux", "Windows"):
        raise ArmError(400, "InvalidOsType", "osType must be Linux or Windows")
    if properties.get("restartPolicy", "Always") not in ("Always", "Never", "OnFailure"):
        raise ArmError(400, "InvalidRestartPolicy", "invalid restartPolicy")
    identities = (body.get("identity") or {}).get("userAssignedIdentities") or {}
    for credential in properties.get("imageRegistryCredentials", []):
        identity = credential.get("identity")
        if identity is not None and identity.startswith("/subscriptions/") and identity not in identities:
            raise ArmError(400, "InvalidImageRegistryCredentialIdentity", "the registry identity is not assigned")
    for tag in body.get("tags") or {}:
        if re.search(r"[<>%&\\?/]", tag):
            raise ArmError(400, "InvalidTagNameCharacters", f"tag name {tag!r} has invalid characters")
    return body


def _check_name(name: str) -> None:
    if len(name) > 63 or not _NAME.match(name):
        raise ArmError(400, "InvalidContainerGroupName", f"container group name {name!r} is invalid")


def _check_container(container: Any) -> None:
    if not isinstance(container, dict) or not container.get("name"):
        raise ArmError(400, "InvalidContainerName", "every container needs a name")
    properties = container.get("properties") or {}
    if not properties.get("image"):
        raise ArmError(400, "InvalidImage", "every container needs an image")
    requests = (properties.get("resources") or {}).get("requests") or {}
    if not isinstance(requests.get("cpu"), int | float) or not isinstance(requests.get("memoryInGB"), int | float):
        raise ArmError(400, "InvalidResourceRequests", "cpu and memoryInGB are required numbers")
    for variable in properties.get("environmentVariables", []):
        if not variable.get("name") or ("value" in variable) == ("secureValue" in variable):
            raise ArmError(400, "InvalidEnvironmentVariable", "an environment variable needs a name and one value")
    command = properties.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(c, str) for c in command)):
        raise ArmError(400, "InvalidCommand", "command must be a list of strings")


def _group_key(subscription: str, resource_group: str, name: str) -> str:
    return f"{subscription}/{resource_group}/{name}".lower()


def _json(document: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(document), status, headers or {}, content_type="application/json")


class StaticBearerPolicy(SansIOHTTPPolicy[HttpRequest, HttpResponse]):
    """Sets a fixed bearer token: the SDK's own policy refuses to send tokens over plain http."""

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        request.http_request.headers["Authorization"] = "Bearer fake-token"


class FakeCredential:
    """A TokenCredential that is never asked for a token (the static policy replaces it)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)


def fake_clients(fake: FakeArm, **options: Any) -> ArmClients:
    """The backend's own client factory (same retry and timeout options), pointed at the fake."""
    return ArmClients(
        cast(TokenCredential, FakeCredential()),
        base_url=fake.url,
        authentication_policy=StaticBearerPolicy(),
        **options,
    )
