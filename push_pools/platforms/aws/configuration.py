"""ECS job configurations, and the task definition they register. Pure: no SDK, no I/O.

A rendered ECS job configuration has the shape of Prefect's ECS worker: `task_definition` (a RegisterTaskDefinition
request) and `task_run_request` (a RunTask request, see `ecs_run_task`), their placeholders already filled in,
plus settings beside them (`cluster`, `container_name`, `vpc_id`, `network_configuration`, the CloudWatch logs
options, the API-key secret). Flat keys named like Prefect's job variables (`image`, `cpu`, `memory`, `family`,
`launch_type`, `capacity_provider_strategy`, `task_role_arn`, `task_definition_arn`) are accepted as well and
fill in only what the nested requests leave unset, so a template in either style works.

The task definition is completed as Prefect completes it (the orchestration container, FARGATE compatibility,
`awsvpc`, task-level CPU and memory as strings, awslogs options), and its family gets the hash of its content
(`<family>-<16 hex>`): the same content always maps to the same family, so it is registered once rather than per
run, and a cold function finds it again with one DescribeTaskDefinition. The orchestrator's API key and auth
string are referenced as ECS `secrets` (read by the execution role) when their secret ARNs are set, and any
plaintext copy of a secret's variable is removed from the container.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from push_pools.backends.base import RunContext, parse_job_configuration
from push_pools.errors import TemplateError

DEFAULT_CONTAINER_NAME = "prefect"
DEFAULT_CPU = 1024
DEFAULT_MEMORY = 2048
DEFAULT_LOG_GROUP = "prefect"
"""The awslogs group and stream prefix are named as prefect-aws names them: users' log queries depend on them."""
FAMILY_HASH_LENGTH = 16
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
SECRET_VARIABLES = {
    "prefect_api_key_secret_arn": "PREFECT_API_KEY",
    "prefect_api_auth_string_secret_arn": "PREFECT_API_AUTH_STRING",
}
"""Job variables holding a secret's ARN, and the env variable the container receives it as."""

_FAMILY_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_FAMILY = 255


class CapacityProviderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacityProvider: str = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0, le=1000)
    base: int | None = Field(default=None, ge=0, le=100000)


class EcsJobConfiguration(BaseModel):
    """A rendered job configuration of an `ecs` pool (Prefect's ECS worker shape, or flat)."""

    model_config = ConfigDict(extra="ignore")

    env: dict[str, str | None] = {}
    labels: dict[str, Any] = {}
    name: str | None = None
    command: str | list[str] | None = None
    task_definition: dict[str, Any] = {}
    task_run_request: dict[str, Any] = {}
    cluster: str | None = None
    container_name: str | None = None
    vpc_id: str | None = None
    network_configuration: dict[str, Any] = {}
    configure_cloudwatch_logs: bool | None = None
    cloudwatch_logs_options: dict[str, str] = {}
    cloudwatch_logs_prefix: str | None = None
    execution_role_arn: str | None = None
    prefect_api_key_secret_arn: str | None = None
    prefect_api_auth_string_secret_arn: str | None = None
    image: str | None = None
    default_image: str | None = None
    """The orchestrator's image (Prefect's, in Prefect mode) for an orchestration container naming none."""
    cpu: int | str | None = None
    memory: int | str | None = None
    family: str | None = None
    launch_type: Literal["FARGATE", "FARGATE_SPOT", "EC2", "EXTERNAL"] | None = None
    capacity_provider_strategy: list[CapacityProviderItem] = []
    task_role_arn: str | None = None
    task_definition_arn: str | None = None


@dataclass(frozen=True)
class TaskDefinitionFacts:
    """What the RunTask request depends on in its task definition."""

    network_mode: str | None
    requires_compatibilities: tuple[str, ...]
    container_names: tuple[str, ...]
    secret_names: frozenset[str]

    @classmethod
    def of(cls, task_definition: Mapping[str, Any]) -> TaskDefinitionFacts:
        containers = [c for c in task_definition.get("containerDefinitions", []) if isinstance(c, Mapping)]
        return cls(
            network_mode=task_definition.get("networkMode"),
            requires_compatibilities=tuple(task_definition.get("requiresCompatibilities", ())),
            container_names=tuple(str(c["name"]) for c in containers if c.get("name")),
            secret_names=frozenset(
                str(s["name"])
                for c in containers
                for s in c.get("secrets", ())
                if isinstance(s, Mapping) and "name" in s
            ),
        )


def parse_job(configuration: Mapping[str, Any]) -> EcsJobConfiguration:
    """The configuration as a model; a TemplateError naming the first wrong field otherwise."""
    return parse_job_configuration(EcsJobConfiguration, configuration, "ecs")


# ---- the task definition ------------------------------------------------------------------------------------


def build_task_definition(job: EcsJobConfiguration, run: RunContext, *, region: str | None) -> dict[str, Any]:
    """The RegisterTaskDefinition request, its family named by the hash of everything else in it."""
    definition = drop_empty(copy.deepcopy(job.task_definition)) or {}
    containers = [c for c in definition.get("containerDefinitions", []) if isinstance(c, dict) and c]
    definition["containerDefinitions"] = containers
    container = _orchestration_container(containers, job.container_name)
    image = container.setdefault("image", job.image or job.default_image)
    if not image:
        raise TemplateError("the ECS task has no image: set the `image` job variable or the deployment's image")
    _size_task(definition, container, job)
    execution_role = definition.setdefault("executionRoleArn", job.execution_role_arn)
    if job.configure_cloudwatch_logs:
        container["logConfiguration"] = _log_configuration(job, run, region)
    secrets = _secret_references(job)
    if secrets:
        ours = {secret["name"] for secret in secrets}
        container["secrets"] = [s for s in container.get("secrets", []) if s.get("name") not in ours] + secrets
    if (secrets or job.configure_cloudwatch_logs) and not execution_role:
        needs = "read the API-key secret" if secrets else "write CloudWatch logs"
        raise TemplateError(f"the ECS task needs an execution role to {needs}: set `execution_role_arn`")
    if containers and all(c.get("essential") is False for c in containers):
        raise TemplateError("at least one container of the ECS task definition must be essential")
    _remove_plaintext_secrets(container)
    definition = dict(drop_empty(definition))
    base = str(definition.pop("family", None) or job.family or f"push-pools_{run.pool_name}")
    definition["family"] = family_name(base, content_hash(definition))
    return definition


def _orchestration_container(containers: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The container the flow runs in: named `name`, else "prefect", else the first; created when absent."""
    wanted = name or (DEFAULT_CONTAINER_NAME if named(containers, DEFAULT_CONTAINER_NAME) else None)
    if wanted is None and containers:
        wanted = containers[0].get("name") or DEFAULT_CONTAINER_NAME
    wanted = wanted or DEFAULT_CONTAINER_NAME
    found = named(containers, wanted)
    if found is not None:
        return found
    unnamed = next((c for c in containers if not c.get("name")), None)
    if unnamed is None and name is not None and containers:
        raise TemplateError(f"container {name!r} is not in the ECS task definition")
    container = unnamed if unnamed is not None else {}
    container["name"] = wanted
    if unnamed is None:
        containers.append(container)
    return container


def named(items: Iterable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((item for item in items if item.get("name") == name), None)


def _size_task(definition: dict[str, Any], container: dict[str, Any], job: EcsJobConfiguration) -> None:
    """Fargate wants task-level CPU and memory (strings) and `awsvpc`; EC2 wants them on the container."""
    cpu = definition.get("cpu") or job.cpu or DEFAULT_CPU
    memory = definition.get("memory") or job.memory or DEFAULT_MEMORY
    compatibilities = definition.get("requiresCompatibilities") or []
    if is_fargate(launch_type(job), capacity_strategy(job)) and "EC2" not in compatibilities:
        definition["cpu"], definition["memory"] = str(cpu), str(memory)
        definition["requiresCompatibilities"] = sorted({*compatibilities, "FARGATE"})
        definition.setdefault("networkMode", "awsvpc")
    else:
        container.setdefault("cpu", _integer(cpu, "cpu"))
        container.setdefault("memory", _integer(memory, "memory"))
        for key in ("cpu", "memory"):
            if definition.get(key):
                definition[key] = str(definition[key])


def _log_configuration(job: EcsJobConfiguration, run: RunContext, region: str | None) -> dict[str, Any]:
    options = {
        "awslogs-create-group": "true",
        "awslogs-group": DEFAULT_LOG_GROUP,
        "awslogs-stream-prefix": job.cloudwatch_logs_prefix or log_stream_prefix(run),
    }
    if region:
        options["awslogs-region"] = region
    return {"logDriver": "awslogs", "options": options | job.cloudwatch_logs_options}


def log_stream_prefix(run: RunContext) -> str:
    """`prefect-logs_<pool>_<deployment id, else flow id>`, as prefect-aws names it."""
    owner = run.deployment_id or run.flow_id
    return f"prefect-logs_{run.pool_name}" + (f"_{owner}" if owner else "")


def _secret_references(job: EcsJobConfiguration) -> list[dict[str, str]]:
    arns = {name: getattr(job, variable) for variable, name in SECRET_VARIABLES.items()}
    return [{"name": name, "valueFrom": arn} for name, arn in arns.items() if arn]


def secret_variable_names(job: EcsJobConfiguration) -> frozenset[str]:
    """Env names the job delivers by reference, whose plaintext must not travel in the overrides."""
    return frozenset(name for variable, name in SECRET_VARIABLES.items() if getattr(job, variable))


def _remove_plaintext_secrets(container: dict[str, Any]) -> None:
    secret_names = {s.get("name") for s in container.get("secrets", [])}
    environment = container.get("environment")
    if isinstance(environment, list):
        container["environment"] = [e for e in environment if e.get("name") not in secret_names]


def content_hash(task_definition: Mapping[str, Any]) -> str:
    """A stable digest of a task definition (its family aside): equal content, equal hash."""
    content = {key: value for key, value in task_definition.items() if key != "family"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:FAMILY_HASH_LENGTH]


def family_name(base: str, digest: str) -> str:
    """`<base>-<digest>`, with the base made of what ECS allows in a family (letters, digits, - and _)."""
    cleaned = _FAMILY_FORBIDDEN.sub("-", base).strip("-") or "push-pools"
    return f"{cleaned[: _MAX_FAMILY - len(digest) - 1]}-{digest}"


# ---- small pure helpers -------------------------------------------------------------------------------------


def launch_type(job: EcsJobConfiguration) -> str | None:
    return job.task_run_request.get("launchType") or job.launch_type


def capacity_strategy(job: EcsJobConfiguration) -> list[CapacityProviderItem]:
    nested = job.task_run_request.get("capacityProviderStrategy")
    if isinstance(nested, list) and nested:
        try:
            return [CapacityProviderItem.model_validate(item) for item in nested]
        except ValidationError as exc:
            raise TemplateError(f"capacityProviderStrategy: {exc.errors()[0]['msg']}") from None
    return list(job.capacity_provider_strategy)


def is_fargate(launch_type: str | None, strategy: list[CapacityProviderItem]) -> bool:
    if strategy:
        return all(item.capacityProvider in FARGATE_PROVIDERS for item in strategy)
    return launch_type in (None, *FARGATE_PROVIDERS)


def _integer(value: int | str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TemplateError(f"{name} must be a whole number, not {value!r}") from None


def drop_empty(value: Any) -> Any:
    """Remove None, "", [] and {} recursively (False and 0 stay): what a missing job variable leaves behind."""
    if isinstance(value, dict):
        cleaned = {k: drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != "" and v != [] and v != {}}
    if isinstance(value, list):
        items = [drop_empty(item) for item in value]
        return [item for item in items if item is not None and item != "" and item != [] and item != {}]
    return value
