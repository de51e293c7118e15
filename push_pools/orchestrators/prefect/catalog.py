"""What push-pools reads and manages in Prefect: work pools, deployments and flow runs (the Catalog protocol).

The dispatching half of the orchestrator (claims, releases, submissions, heartbeats) is `prefect.py`, built on
this class. Which pools are served, and why pools get the types they get, is explained there.
"""

from __future__ import annotations

import importlib.util
import threading
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from push_pools.backends import POOL_TYPES
from push_pools.errors import AlreadyExistsError, ConfigurationError, NotFoundError, OrchestratorError
from push_pools.models import TERMINAL_STATES, Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.prefect.api import PrefectApi
from push_pools.orchestrators.prefect.schema import (
    PUSH_TYPES,
    deployment_from_api,
    flow_run_from_api,
    parse_time,
    pool_from_api,
    pool_update,
    prefect_pool_type,
    state_request,
)

WORKER_NAME = "push-pools"
"""The worker name push-pools heartbeats and labels runs with, in every pool it serves."""
CLAIMED_ATTEMPT_LABEL = "push-pools.claimed-attempt"
"""The label a run given back carries: the attempt push-pools had claimed (an earlier try may have started)."""
_CACHE_SIZE = 10_000


class PrefectCatalog:
    """Pools, deployments and runs in Prefect, in push-pools' models."""

    def __init__(self, api: PrefectApi, *, served_pools: Sequence[str] = ()) -> None:
        self.api = api
        self.served_pools = tuple(served_pools)
        self._names: dict[str, str] = {}
        """Deployment and flow names by id: Prefect never renames either, so each is read once."""
        self._run_links: dict[str, dict[str, str]] = {}
        """Each run read: its flow id and work pool id, for its job's environment and labels, and the attempt it
        was given back at, if it was."""
        self._lock = threading.Lock()

    def close(self) -> None:
        self.api.close()

    # ---- work pools ------------------------------------------------------------------------------------------

    def list_pools(self) -> list[WorkPool]:
        """The pools this executor serves, each with the last heartbeat of push-pools' worker."""
        if self.served_pools:
            query = {"work_pools": {"name": {"any_": list(self.served_pools)}}}
        elif self.api.connection.is_cloud:
            raise ConfigurationError(
                "on Prefect Cloud, name the work pools push-pools serves in PUSH_POOL_PREFECT_WORK_POOLS (Prefect "
                "Cloud serves ':push' pools itself, and worker-type pools may have workers of their own)"
            )
        else:
            available = [push for ours, push in PUSH_TYPES.items() if _backend_available(ours)]
            query = {"work_pools": {"type": {"any_": available}}}
        pools = self.api.post("work_pools/filter", query)
        return sorted((pool_from_api(p, self._last_heartbeat(p["name"])) for p in pools), key=lambda p: p.name)

    def get_pool(self, name: str) -> WorkPool:
        return pool_from_api(self.api.get(pool_path(name), missing=no_pool(name)))

    def inspect_pool(self, name: str) -> WorkPool:
        return pool_from_api(self.api.get(pool_path(name), missing=no_pool(name)), self._last_heartbeat(name))

    def save_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool:
        """Create the pool with the type Prefect gives such pools, or update it (all but its type) when `overwrite`."""
        body = {"name": pool.name, "type": prefect_pool_type(pool.type, cloud=self.api.connection.is_cloud)}
        try:
            self.api.post("work_pools/", body | pool_update(pool))
        except AlreadyExistsError:
            if not overwrite:
                raise AlreadyExistsError(f"work pool {pool.name!r} already exists (use --overwrite)") from None
            existing = self.get_pool(pool.name)
            if existing.type != pool.type:
                raise ConfigurationError(
                    f"work pool {pool.name!r} is a {existing.type} pool in Prefect, and Prefect cannot change a "
                    f"pool's type: delete it first to make it a {pool.type} pool"
                ) from None
            self.api.patch(pool_path(pool.name), pool_update(pool), missing=no_pool(pool.name))
        return self.get_pool(pool.name)

    def delete_pool(self, name: str) -> None:
        """Delete a pool that has no deployments, as the embedded store does: their runs would go nowhere."""
        self.get_pool(name)
        deployments = self.list_deployments(name)
        if deployments:
            names = ", ".join(d.name for d in deployments)
            raise OrchestratorError(f"work pool {name!r} still has deployments ({names}); delete them first")
        self.api.delete(pool_path(name), missing=no_pool(name))

    def _last_heartbeat(self, pool_name: str) -> datetime | None:
        workers = self.api.post(f"{pool_path(pool_name)}/workers/filter", {}, missing=no_pool(pool_name))
        ours = [w for w in workers if w.get("name") == WORKER_NAME]
        return parse_time(ours[0].get("last_heartbeat_time")) if ours else None

    # ---- deployments ----------------------------------------------------------------------------------------

    def save_deployment(self, deployment: Deployment) -> Deployment:
        raise ConfigurationError(
            "with the prefect orchestrator, deployments live in Prefect: create them with `prefect deploy` or "
            f"`flow.deploy(name=..., work_pool_name={deployment.pool_name!r})`"
        )

    def get_deployment(self, deployment_id: str) -> Deployment:
        data = self.api.get(f"deployments/{as_uuid(deployment_id)}", missing=f"no deployment with id {deployment_id!r}")
        return self._deployment(data)

    def get_deployment_by_name(self, name: str) -> Deployment:
        """`FLOW/DEPLOYMENT`, as Prefect names deployments, or a deployment name that only one flow uses."""
        flow_name, _, deployment_name = name.rpartition("/")
        if flow_name:
            path = f"deployments/name/{quote(flow_name, safe='')}/{quote(deployment_name, safe='')}"
            return self._deployment(self.api.get(path, missing=f"no deployment named {name!r}"))
        found = self.api.post("deployments/filter", {"deployments": {"name": {"any_": [name]}}, "limit": 2})
        if not found:
            raise NotFoundError(f"no deployment named {name!r}")
        if len(found) > 1:
            raise ConfigurationError(f"several flows have a deployment named {name!r}: name it FLOW/{name}")
        return self._deployment(found[0])

    def list_deployments(self, pool_name: str | None = None) -> list[Deployment]:
        query: dict[str, Any] = {"sort": "NAME_ASC", "limit": 200}
        if pool_name is not None:
            query["work_pools"] = {"name": {"any_": [pool_name]}}
        return [self._deployment(data) for data in self.api.post("deployments/filter", query)]

    def delete_deployment(self, name: str) -> None:
        deployment = self.get_deployment_by_name(name)
        self.api.delete(f"deployments/{deployment.id}", missing=f"no deployment named {name!r}")

    def _deployment(self, data: dict[str, Any]) -> Deployment:
        self._remember(data["id"], data["name"])
        return deployment_from_api(data, self._name_of("flows", data.get("flow_id")))

    # ---- flow runs --------------------------------------------------------------------------------------------

    def get_run(self, flow_run_id: str, *, with_history: bool = True) -> FlowRun:
        """The run, with its state history when asked (one more call)."""
        data = self.read_run(flow_run_id)
        return self.flow_run(data, history=self.read_history(data["id"]) if with_history else None)

    def list_runs(
        self, *, pool_name: str | None = None, states: Collection[StateType] = (), limit: int = 100
    ) -> list[FlowRun]:
        return self.filter_runs(pool_name, states, limit, "EXPECTED_START_TIME_DESC")

    def create_run(
        self,
        deployment: Deployment,
        expected_start_time: datetime,
        *,
        parameters: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        job_variables: dict[str, Any] | None = None,
        now: datetime,
    ) -> FlowRun:
        """A run of the deployment, SCHEDULED for `expected_start_time`, made by Prefect (so its hooks apply; Prefect
        merges the deployment's parameters and tags with these)."""
        body = {
            "state": state_request(StateType.SCHEDULED, scheduled_time=expected_start_time)["state"],
            "parameters": parameters or {},
            "tags": list(dict.fromkeys(tags)),
            "job_variables": job_variables or {},
            # A retried request must not make a second run.
            "idempotency_key": f"push-pools-{uuid.uuid4()}",
        }
        path = f"deployments/{as_uuid(deployment.id)}/create_flow_run"
        data = self.api.post(path, body, missing=f"no deployment with id {deployment.id!r}")
        return self.flow_run(data)

    def request_cancellation(self, flow_run_id: str) -> FlowRun:
        """Propose CANCELLING; Prefect itself makes a SCHEDULED run with no infrastructure CANCELLED at once."""
        data = self.read_run(flow_run_id)
        if data.get("state_type") in {str(state) for state in TERMINAL_STATES}:
            raise OrchestratorError(f"flow run {flow_run_id} is already {data['state_type']}")
        request = state_request(StateType.CANCELLING, "Cancellation requested through push-pools")
        result = self.api.post(f"flow_runs/{data['id']}/set_state", request, missing=no_run(flow_run_id))
        if result.get("status") not in ("ACCEPT", "REJECT"):
            details = result.get("details") or {}
            raise OrchestratorError(f"Prefect refused to cancel flow run {flow_run_id}: {details.get('reason')}")
        return self.get_run(flow_run_id)

    def filter_runs(self, pool_name: str | None, states: Collection[StateType], limit: int, sort: str) -> list[FlowRun]:
        query: dict[str, Any] = {"sort": sort, "limit": limit}
        if pool_name is not None:
            query["work_pools"] = {"name": {"any_": [pool_name]}}
        if states:
            query["flow_runs"] = {"state": {"type": {"any_": [str(state) for state in states]}}}
        return [self.flow_run(data) for data in self.api.post("flow_runs/filter", query)]

    def read_run(self, flow_run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api.get(f"flow_runs/{as_uuid(flow_run_id)}", missing=no_run(flow_run_id))
        return data

    def read_history(self, flow_run_id: str) -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = self.api.get(f"flow_run_states/?flow_run_id={as_uuid(flow_run_id)}")
        return history

    def flow_run(
        self, data: dict[str, Any], *, pool_name: str | None = None, history: list[dict[str, Any]] | None = None
    ) -> FlowRun:
        """Convert a run, naming its deployment and flow (cached) and remembering the ids its job is labelled with."""
        links = {key: str(data[key]) for key in ("flow_id", "work_pool_id") if data.get(key)}
        claimed_attempt = (data.get("labels") or {}).get(CLAIMED_ATTEMPT_LABEL)
        if claimed_attempt is not None:
            links[CLAIMED_ATTEMPT_LABEL] = str(claimed_attempt)
        with self._lock:
            if len(self._run_links) >= _CACHE_SIZE:
                self._run_links.clear()
            self._run_links[data["id"]] = links
        return flow_run_from_api(
            data,
            pool_name=pool_name,
            deployment_name=self._name_of("deployments", data.get("deployment_id")),
            flow_name=self._name_of("flows", data.get("flow_id")),
            history=history,
        )

    def run_links(self, flow_run_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._run_links.get(flow_run_id, {}))

    def claimed_attempt(self, flow_run_id: str) -> str | None:
        """The attempt at which push-pools gave the run back, as last read; None when it never did."""
        return self.run_links(flow_run_id).get(CLAIMED_ATTEMPT_LABEL)

    def _name_of(self, collection: str, object_id: str | None) -> str | None:
        """A deployment's or flow's name; None when it is gone (a run can outlive its deployment)."""
        if not object_id:
            return None
        with self._lock:
            name = self._names.get(object_id)
        if name is None:
            try:
                name = str(self.api.get(f"{collection}/{as_uuid(object_id)}")["name"])
            except NotFoundError:
                return None
            self._remember(object_id, name)
        return name

    def _remember(self, object_id: str, name: str) -> None:
        with self._lock:
            if len(self._names) >= _CACHE_SIZE:
                self._names.clear()
            self._names[object_id] = name


def pool_path(name: str) -> str:
    return f"work_pools/{quote(name, safe='')}"


def no_pool(name: str) -> str:
    return f"no work pool named {name!r} in Prefect"


def no_run(flow_run_id: str) -> str:
    return f"no flow run with id {flow_run_id!r}"


def as_uuid(value: str) -> str:
    """Ids go into URL paths: anything but a UUID is refused before it gets there."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFoundError(f"{value!r} is not a Prefect id (a UUID)") from None


def _backend_available(pool_type: str) -> bool:
    """Whether this build has the pool type's backend (a cloud's package leaves the other clouds' out)."""
    return importlib.util.find_spec(POOL_TYPES[pool_type].module) is not None
