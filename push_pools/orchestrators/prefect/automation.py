"""The Prefect automation that calls push-pools' webhook when a pool's runs are scheduled, late or cancelled.

`install_automation` makes (or updates, found by name, so it can run any number of times):

- a Webhook block document `push-pools-<pool>` holding the URL and an `Authorization: Bearer <token>` header.
  Both are secret fields of the block: Prefect stores them encrypted and never shows them again;
- an automation `push-pools: <pool>` whose trigger matches `prefect.flow-run.Scheduled`, `...Late` and
  `...Cancelling` events of runs related to the pool, and whose `call-webhook` action posts
  `{"flow_run_id": "<id>", "event": "<event name>"}`, the payload documented in `push_pools.triggers.payloads`.

Scheduled fires when a run is created, usually before it is due: the function then queues it with a delay. Late
fires about 15 s after a due run was not started, a second chance for runs scheduled beyond the queue's horizon.
Prefect sends each call once and does not retry it, so the tick stays the safety net.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from push_pools.errors import ConfigurationError, NotFoundError, OrchestratorError
from push_pools.orchestrators.prefect.api import PrefectApi

EVENTS = ("prefect.flow-run.Scheduled", "prefect.flow-run.Late", "prefect.flow-run.Cancelling")
PAYLOAD_TEMPLATE = (
    '{"flow_run_id": "{{ event.resource.id | replace(\'prefect.flow-run.\', \'\') }}", "event": "{{ event.event }}"}'
)
_WEBHOOK_BLOCK_TYPE = "webhook"


@dataclass(frozen=True)
class InstalledAutomation:
    """What `install_automation` did. Holds no secret."""

    automation_id: str
    automation_name: str
    block_document_id: str
    block_name: str
    created: bool
    """False when an automation of that name existed and was updated."""


def automation_name(pool_name: str) -> str:
    return f"push-pools: {pool_name}"


def block_name(pool_name: str) -> str:
    """Block document names are lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9-]+", "-", pool_name.lower()).strip("-")
    return f"push-pools-{slug or 'pool'}"


def webhook_block_data(url: str, token: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": url,
        # Prefect's call-webhook sends no Content-Type of its own.
        "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        "allow_private_urls": True,
        "verify": True,
    }


def automation_body(pool_name: str, pool_id: str, block_document_id: str) -> dict[str, Any]:
    """The automation: one webhook call per matching event of a run in this pool."""
    return {
        "name": automation_name(pool_name),
        "description": f"Calls push-pools' webhook when a run of work pool {pool_name!r} is scheduled, late or "
        "cancelled, so it is submitted or stopped at once. Installed by `push-pool prefect install-automation`.",
        "enabled": True,
        "tags": ["push-pools"],
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.id": f"prefect.work-pool.{pool_id}"},
            "after": [],
            "expect": list(EVENTS),
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "call-webhook", "block_document_id": block_document_id, "payload": PAYLOAD_TEMPLATE}],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


def check_webhook_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"the webhook URL must be an http(s) URL, not {url!r}")
    return url


def install_automation(api: PrefectApi, pool_name: str, url: str, token: str) -> InstalledAutomation:
    """Create or update the pool's webhook block and automation (see the module docstring)."""
    if not token:
        raise ConfigurationError("the webhook token is empty: set PUSH_POOL_WEBHOOK_SECRET")
    check_webhook_url(url)
    pool = api.get(f"work_pools/{quote(pool_name, safe='')}", missing=f"no work pool named {pool_name!r} in Prefect")
    block_id = _save_webhook_block(api, block_name(pool_name), webhook_block_data(url, token))
    body = automation_body(pool_name, str(pool["id"]), block_id)
    existing = find_automation(api, pool_name)
    if existing is None:
        automation_id = str(api.post("automations/", body)["id"])
    else:
        automation_id = existing
        api.put(f"automations/{automation_id}", body, missing=f"automation {automation_name(pool_name)!r} vanished")
    return InstalledAutomation(
        automation_id=automation_id,
        automation_name=automation_name(pool_name),
        block_document_id=block_id,
        block_name=block_name(pool_name),
        created=existing is None,
    )


def uninstall_automation(api: PrefectApi, pool_name: str) -> bool:
    """Delete the pool's automation and webhook block; False when there was none."""
    automation_id = find_automation(api, pool_name)
    if automation_id is not None:
        api.delete(f"automations/{automation_id}")
    block = _find_block(api, block_name(pool_name))
    if block is not None:
        api.delete(f"block_documents/{block['id']}")
    return automation_id is not None or block is not None


def find_automation(api: PrefectApi, pool_name: str) -> str | None:
    name = automation_name(pool_name)
    found = api.post("automations/filter", {"automations": {"name": {"any_": [name]}}, "limit": 2})
    matching = [a for a in found if a.get("name") == name]
    return str(matching[0]["id"]) if matching else None


def _save_webhook_block(api: PrefectApi, name: str, data: dict[str, Any]) -> str:
    existing = _find_block(api, name)
    if existing is not None:
        update = {"data": data, "merge_existing_data": False}
        api.patch(f"block_documents/{existing['id']}", update, missing=f"block {name!r} vanished")
        return str(existing["id"])
    block_type = api.get(
        f"block_types/slug/{_WEBHOOK_BLOCK_TYPE}", missing="this Prefect server has no Webhook block type"
    )
    schemas = api.post("block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}})
    if not schemas:
        raise OrchestratorError("this Prefect server has no schema for its Webhook block type")
    document = {
        "name": name,
        "data": data,
        "block_schema_id": schemas[0]["id"],
        "block_type_id": block_type["id"],
        "is_anonymous": False,
    }
    return str(api.post("block_documents/", document)["id"])


def _find_block(api: PrefectApi, name: str) -> dict[str, Any] | None:
    path = f"block_types/slug/{_WEBHOOK_BLOCK_TYPE}/block_documents/name/{quote(name, safe='')}"
    try:
        block: dict[str, Any] = api.get(path)
    except NotFoundError:
        return None
    return block
