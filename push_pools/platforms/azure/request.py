"""From a rendered `aci` job configuration to the exact container group request. Pure.

Two template shapes are read: push-pools' own (`push_pools/platforms/azure/template.json`, flat variables) and Prefect's
`azure-container-instance` shape, whose `arm_template` holds the container group (see `aci_arm`). The top-level
variables Prefect's worker applies on top of the ARM template (image, command, entrypoint, cpu, memory, env,
identities, image_registry, subnet_ids, dns_servers) are applied the same way here. Ignored, because a push pool
has no use for them: `aci_credentials` (the executor's own managed identity is used), `stream_output`,
`task_start_timeout_seconds`, `task_watch_poll_interval` (nothing waits for the container: the tick follows up).

Secret values (`secureValue` entries, a registry password) are `pydantic.SecretStr` in the returned request, so
printing it (`json.dumps(request, default=str)`) shows `**********`; `request_body_bytes` reveals them to send.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from push_pools.backends.base import RunContext, parse_job_configuration
from push_pools.errors import ConfigurationError, TemplateError
from push_pools.platforms.azure.arm import RESOURCE_GROUP_LOCATION, ArmContainerGroup, read_arm_template

JOB_CONTAINER_NAME = "flow-run"
DEFAULT_IMAGE = "prefecthq/prefect:3-latest"
"""When neither the job nor its ARM template names an image, as Prefect's worker defaults to a Prefect image."""
ALWAYS_SECURE_ENV = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
"""Sent as secure values whatever the template says: they give access to the orchestrator."""

MANAGED_TAG = "push-pools-managed"
KEY_TAG = "push-pools-idempotency-key"
FLOW_RUN_TAG = "push-pools-flow-run-id"
POOL_TAG = "push-pools-pool"
KEEP_TAG = "push-pools-keep"
MAX_TAGS = 50
_TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/]")
_MAX_TAG_NAME = 512
_MAX_TAG_VALUE = 256
_MAX_GROUP_NAME = 63
_GROUP_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups/([^/]+)$",
    re.IGNORECASE,
)
_SUBSCRIPTION = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")


class ManagedIdentityRegistry(BaseModel):
    """Pull images with a user-assigned managed identity (Prefect's ACRManagedIdentity)."""

    model_config = ConfigDict(extra="forbid")

    registry_url: str = Field(min_length=1)
    identity: str = Field(min_length=1)


class PasswordRegistry(BaseModel):
    """Pull images with a username and password (Prefect's DockerRegistry block, as data)."""

    model_config = ConfigDict(extra="ignore")

    registry_url: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr


class AciJobConfiguration(BaseModel):
    """The rendered job configuration of an `aci` pool (either template shape)."""

    model_config = ConfigDict(extra="ignore")

    subscription_id: str
    resource_group_name: str
    location: str | None = None
    image: str | None = None
    default_image: str | None = None
    """The orchestrator's image (Prefect's, in Prefect mode) for a job naming none."""
    command: str | list[str] | None = None
    entrypoint: str | None = None
    cpu: float | None = Field(default=None, gt=0)
    memory: float | None = Field(default=None, gt=0)
    gpu_count: int | None = Field(default=None, ge=1)
    gpu_sku: str | None = None
    env: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    name: str | None = None
    identities: list[str] | None = None
    image_registry: ManagedIdentityRegistry | PasswordRegistry | None = None
    subnet_ids: list[str] | None = None
    dns_servers: list[str] | None = None
    secure_environment_names: list[str] = []
    keep_container_group: bool = False
    arm_template: dict[str, Any] | None = None

    @field_validator("subscription_id")
    @classmethod
    def _subscription(cls, value: str) -> str:
        if not _SUBSCRIPTION.match(value):
            raise ValueError("must be a subscription id (a UUID)")
        return value

    @field_validator("resource_group_name")
    @classmethod
    def _resource_group(cls, value: str) -> str:
        if not _RESOURCE_GROUP.match(value):
            raise ValueError("must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'")
        return value

    @field_validator("image_registry", mode="before")
    @classmethod
    def _no_block_reference(cls, value: Any) -> Any:
        if isinstance(value, dict) and "$ref" in value:
            raise ValueError(
                "refers to a Prefect block, which push-pools does not resolve; give "
                "{registry_url, identity} (managed identity) or {registry_url, username, password}"
            )
        return value

    @model_validator(mode="after")
    def _gpu_complete(self) -> AciJobConfiguration:
        if (self.gpu_count is None) != (self.gpu_sku is None):
            raise ValueError("gpu_count and gpu_sku go together: set both or neither")
        return self


def parse_configuration(configuration: dict[str, Any]) -> AciJobConfiguration:
    return parse_job_configuration(AciJobConfiguration, configuration, "aci")


def build_container_group_request(configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
    """The container group to create for a run: where it goes, its deterministic name, and its body."""
    job = parse_configuration(configuration)
    arm = read_arm_template(job.arm_template) if job.arm_template is not None else None
    name = container_group_name(run.idempotency_key)
    body: dict[str, Any] = {
        "location": job.location or (arm.location if arm else None) or RESOURCE_GROUP_LOCATION,
        "tags": _tags(job, run, arm),
        "properties": _properties(job, arm),
    }
    identity = _identity(job, arm)
    if identity is not None:
        body["identity"] = identity
    return {
        "subscription_id": job.subscription_id,
        "resource_group_name": job.resource_group_name,
        "container_group_name": name,
        "resource_id": container_group_id(job.subscription_id, job.resource_group_name, name),
        "body": body,
    }


def request_body_bytes(body: dict[str, Any]) -> bytes:
    """The body as sent: JSON with secret values revealed."""
    return json.dumps(body, default=_reveal, separators=(",", ":")).encode()


def secret_values(body: dict[str, Any]) -> list[str]:
    """Every secret in a body, to scrub from error messages."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, SecretStr):
            found.append(node.get_secret_value())
        elif isinstance(node, dict):
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(body)
    return [value for value in found if value]


def container_group_name(idempotency_key: str) -> str:
    """A valid container group name (≤ 63 lowercase letters, digits and single hyphens) unique to the key."""
    slug = re.sub(r"[^a-z0-9]+", "-", idempotency_key.lower()).strip("-")
    name = f"pp-{slug}"
    if slug == idempotency_key and len(name) <= _MAX_GROUP_NAME:
        return name
    # The slug lost information (case, punctuation) or length: a digest of the exact key keeps names distinct.
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:10]
    return f"{name[: _MAX_GROUP_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def container_group_id(subscription_id: str, resource_group_name: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}"
        f"/providers/Microsoft.ContainerInstance/containerGroups/{name}"
    )


def parse_container_group_id(infrastructure_pid: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of a container group's resource id."""
    match = _GROUP_ID.match(infrastructure_pid)
    if match is None:
        raise ConfigurationError(
            f"{infrastructure_pid!r} is not a container group resource id "
            "(/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/containerGroups/NAME)"
        )
    subscription, resource_group, name = match.groups()
    return subscription, resource_group, name


def environment_variables(
    env: dict[str, str | None], secure_names: set[str], base: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """ACI's `[{"name", "value" | "secureValue"}]`: `base` entries first, `env` overriding by name; None unsets."""
    merged: dict[str, Any] = {}
    for entry in base or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TemplateError("arm_template: every environmentVariables entry needs a 'name'")
        merged[entry["name"]] = entry.get("secureValue", entry.get("value"))
        if "secureValue" in entry:
            secure_names = secure_names | {entry["name"]}
    for name, value in env.items():
        merged[name] = value
    return [
        {"name": name, "secureValue": SecretStr(str(value))} if name in secure_names else {"name": name, "value": value}
        for name, value in merged.items()
        if value is not None
    ]


def sanitise_tags(tags: dict[str, str]) -> dict[str, str]:
    """Azure tag names cannot hold `<>%&\\?/` and are at most 512 characters; values at most 256."""
    return {
        _TAG_NAME_FORBIDDEN.sub("-", name)[:_MAX_TAG_NAME]: str(value)[:_MAX_TAG_VALUE]
        for name, value in tags.items()
        if name
    }


def container_command(command: str | list[str] | None, entrypoint: str | None) -> list[str] | None:
    """The container's command: the job's, split like a shell would, after the entrypoint. None keeps the image's."""
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise TemplateError(f"aci job configuration: command cannot be split: {exc}") from None
    else:
        argv = list(command or [])
    if not argv:
        return None
    return [entrypoint, *argv] if entrypoint else argv


def _properties(job: AciJobConfiguration, arm: ArmContainerGroup | None) -> dict[str, Any]:
    properties: dict[str, Any] = dict(arm.properties) if arm else {}
    containers = list(properties.get("containers", [{}]))
    containers[0] = {"name": JOB_CONTAINER_NAME, "properties": _job_container(job, containers[0].get("properties"))}
    properties["containers"] = containers
    properties.setdefault("osType", "Linux")
    properties["restartPolicy"] = "Never"
    if job.image_registry is not None:
        properties["imageRegistryCredentials"] = [_registry_credentials(job.image_registry)]
    if job.subnet_ids:
        properties["subnetIds"] = [{"id": subnet_id} for subnet_id in job.subnet_ids]
    if job.dns_servers:
        properties["dnsConfig"] = {**properties.get("dnsConfig", {}), "nameServers": job.dns_servers}
    return properties


def _job_container(job: AciJobConfiguration, template: Any) -> dict[str, Any]:
    container: dict[str, Any] = dict(template) if isinstance(template, dict) else {}
    container["image"] = job.image or container.get("image") or job.default_image or DEFAULT_IMAGE
    template_command = container.pop("command", None)
    command = container_command(job.command if job.command else template_command, job.entrypoint)
    if command is not None:
        container["command"] = command
    secure = set(ALWAYS_SECURE_ENV) | set(job.secure_environment_names)
    container["environmentVariables"] = environment_variables(job.env, secure, container.get("environmentVariables"))
    container["resources"] = _resources(job, container.get("resources"))
    return container


def _resources(job: AciJobConfiguration, template: Any) -> dict[str, Any]:
    resources: dict[str, Any] = dict(template) if isinstance(template, dict) else {}
    requests: dict[str, Any] = dict(resources.get("requests") or {})
    requests["cpu"] = job.cpu or _number(requests.get("cpu"), "cpu") or 1.0
    requests["memoryInGB"] = job.memory or _number(requests.get("memoryInGB"), "memoryInGB") or 1.0
    if job.gpu_count is not None:
        requests["gpu"] = {"count": job.gpu_count, "sku": job.gpu_sku}
    resources["requests"] = requests
    return resources


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TemplateError(f"arm_template: resources.requests.{what} {value!r} is not a number") from None


def _registry_credentials(registry: ManagedIdentityRegistry | PasswordRegistry) -> dict[str, Any]:
    server = registry.registry_url.removeprefix("https://").removeprefix("http://").rstrip("/")
    if isinstance(registry, ManagedIdentityRegistry):
        return {"server": server, "identity": registry.identity}
    return {"server": server, "username": registry.username, "password": registry.password}


def _identity(job: AciJobConfiguration, arm: ArmContainerGroup | None) -> dict[str, Any] | None:
    base = arm.identity if arm and arm.identity else {}
    kinds = {kind.strip() for kind in str(base.get("type", "")).split(",") if kind.strip() and kind.strip() != "None"}
    users: dict[str, Any] = dict(base.get("userAssignedIdentities") or {})
    for identity in job.identities or []:
        users.setdefault(identity, {})
    registry = job.image_registry
    if isinstance(registry, ManagedIdentityRegistry) and registry.identity.startswith("/subscriptions/"):
        users.setdefault(registry.identity, {})  # ACI pulls only with an identity the group holds
    if users:
        kinds.add("UserAssigned")
    if not kinds:
        return None
    result: dict[str, Any] = {"type": ", ".join(sorted(kinds))}
    if users:
        result["userAssignedIdentities"] = users
    return result


def _tags(job: AciJobConfiguration, run: RunContext, arm: ArmContainerGroup | None) -> dict[str, str]:
    control = {
        MANAGED_TAG: "true",
        KEY_TAG: run.idempotency_key,
        FLOW_RUN_TAG: run.flow_run_id,
        POOL_TAG: run.pool_name,
    }
    if job.keep_container_group:
        control[KEEP_TAG] = "true"
    tags = sanitise_tags({**(arm.tags if arm else {}), **job.labels}) | sanitise_tags(control)
    if len(tags) > MAX_TAGS:
        raise TemplateError(
            f"a container group takes at most {MAX_TAGS} tags; labels and template tags make {len(tags)}"
        )
    return tags


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
