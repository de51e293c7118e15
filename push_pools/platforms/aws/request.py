"""The RunTask request of one flow run, and the pair of requests a submission makes. Pure: no SDK, no I/O.

What RunTask gets beside the template's `task_run_request`:

- `clientToken`: the run's idempotency key (ECS starts at most one task per token and cluster: a retry with the
  same parameters returns the first task, different parameters get a ConflictException naming it);
- `startedBy`: `push-pools-<idempotency key>`, which ECS task state events repeat, so an event finds its run;
- tags naming the run (`push-pools.io/flow-run-id`, `push-pools.io/idempotency-key`) after the template's tags
  and the job's labels, sanitised as prefect-aws sanitises them (`Hello, World` → `Hello-World`; at most 50);
- the run's env and command as overrides of the orchestration container, checked against ECS's 8 KiB overrides
  limit before any call; env delivered by reference (ECS `secrets`) is left out of them;
- a launch type (FARGATE unless the task definition requires EC2) or a capacity provider strategy (which wins;
  FARGATE_SPOT is a strategy, not a launch type), and `awsvpc` subnets when the template gives them.
"""

from __future__ import annotations

import copy
import hashlib
import html.entities
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from push_pools.backends.base import RunContext
from push_pools.backends.kit.secrets import reveal, secret_env
from push_pools.backends.kit.shapes import TagRules, env_pairs, split_argv, string_map
from push_pools.errors import TemplateError
from push_pools.platforms.aws.configuration import (
    DEFAULT_CONTAINER_NAME,
    FARGATE_PROVIDERS,
    EcsJobConfiguration,
    TaskDefinitionFacts,
    build_task_definition,
    capacity_strategy,
    drop_empty,
    named,
    secret_variable_names,
)

DEFAULT_LAUNCH_TYPE = "FARGATE"
STARTED_BY_PREFIX = "push-pools-"
OVERRIDES_LIMIT = 8192
"""Characters ECS allows for a RunTask's overrides, JSON punctuation included."""
MAX_TAGS = 50
RUN_TAG = "push-pools.io/flow-run-id"
KEY_TAG = "push-pools.io/idempotency-key"

_TAG_FORBIDDEN = re.compile(r"[^a-zA-Z0-9_./=+:@-]")
_HTML_ENTITY = re.compile(r"&({});".format("|".join(html.entities.name2codepoint)))
_HTML_DECIMAL = re.compile(r"&#(\d+);")
_HTML_HEX = re.compile(r"&#x([\da-fA-F]+);")
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_DASHES = re.compile(r"-{2,}")
_MAX_CLIENT_TOKEN = 64
_MAX_STARTED_BY = 128


@dataclass(frozen=True)
class EcsRequests:
    """The calls one submission makes, as boto3 keyword arguments."""

    task_definition: dict[str, Any] | None
    """RegisterTaskDefinition, made only when its family does not exist yet; None for an existing ARN."""
    run_task: dict[str, Any]
    """RunTask; its `taskDefinition` is the family (resolved to its ARN on submission) or the given ARN."""
    awsvpc: bool
    """The task uses the `awsvpc` network mode, so RunTask needs subnets."""

    @property
    def needs_network(self) -> bool:
        """True when the task uses `awsvpc` and the template named no subnets: the default VPC's are used."""
        return self.awsvpc and "networkConfiguration" not in self.run_task

    @property
    def fargate(self) -> bool:
        """The task runs on Fargate (launch type or capacity providers), where a public IP can be assigned."""
        strategy = self.run_task.get("capacityProviderStrategy", [])
        if strategy:
            return all(item.get("capacityProvider") in FARGATE_PROVIDERS for item in strategy)
        return self.run_task.get("launchType") in FARGATE_PROVIDERS


def build_requests(
    job: EcsJobConfiguration, run: RunContext, *, region: str | None, facts: TaskDefinitionFacts | None = None
) -> EcsRequests:
    """The task definition to register (unless the template names one) and the RunTask request.

    `facts` describe an existing task definition the template names; without them its orchestration container is
    taken to be `container_name` (or "prefect") and `awsvpc` is assumed for Fargate.
    """
    existing = job.task_run_request.get("taskDefinition") or job.task_definition_arn
    if existing:
        run_task = build_run_task(job, run, str(existing), facts)
        awsvpc = facts.network_mode == "awsvpc" if facts else EcsRequests(None, run_task, False).fargate
        return EcsRequests(None, run_task, awsvpc)
    task_definition = build_task_definition(job, run, region=region)
    facts = TaskDefinitionFacts.of(task_definition)
    run_task = build_run_task(job, run, task_definition["family"], facts)
    return EcsRequests(task_definition, run_task, facts.network_mode == "awsvpc")


def build_run_task(
    job: EcsJobConfiguration, run: RunContext, task_definition: str, facts: TaskDefinitionFacts | None
) -> dict[str, Any]:
    """The RunTask request for one run of `task_definition` (a family, or an ARN the template names)."""
    request: dict[str, Any] = drop_empty(copy.deepcopy(job.task_run_request)) or {}
    if request.pop("count", 1) != 1:
        raise TemplateError("task_run_request.count must be 1: push-pools starts one task per flow run")
    request["taskDefinition"] = task_definition
    cluster = request.get("cluster") or job.cluster
    if cluster:
        request["cluster"] = cluster
    _choose_capacity(request, job, facts)
    if "networkConfiguration" not in request and job.network_configuration:
        request["networkConfiguration"] = {"awsvpcConfiguration": copy.deepcopy(job.network_configuration)}
    if "networkConfiguration" in request:
        request["networkConfiguration"] = _complete_network(request["networkConfiguration"])
    container = job.container_name or _default_container(facts.container_names if facts else ())
    secret_names = (facts.secret_names if facts else frozenset()) | secret_variable_names(job)
    request["overrides"] = _overrides(request.get("overrides"), job, container, secret_names)
    request["tags"] = run_tags(request.get("tags"), job.labels, run)
    request["clientToken"] = client_token(run.idempotency_key)
    request["startedBy"] = started_by(run.idempotency_key)
    check_overrides_size(request["overrides"])
    return request


def with_network(run_task: Mapping[str, Any], subnets: list[str], *, public_ip: bool) -> dict[str, Any]:
    """The request with the given subnets (the default VPC's) and the VPC's default security group."""
    awsvpc: dict[str, Any] = {"subnets": subnets, "securityGroups": []}
    if public_ip:
        awsvpc["assignPublicIp"] = "ENABLED"  # default-VPC subnets are public: the image is pulled over the internet
    return {**run_task, "networkConfiguration": {"awsvpcConfiguration": awsvpc}}


def _choose_capacity(request: dict[str, Any], job: EcsJobConfiguration, facts: TaskDefinitionFacts | None) -> None:
    """A capacity provider strategy wins over a launch type; FARGATE_SPOT is a strategy, not a launch type."""
    strategy = [item.model_dump(exclude_none=True) for item in capacity_strategy(job)]
    request.pop("capacityProviderStrategy", None)
    launch_type = request.pop("launchType", None) or job.launch_type
    if strategy:
        request["capacityProviderStrategy"] = strategy
    elif launch_type == "FARGATE_SPOT":
        request["capacityProviderStrategy"] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    elif launch_type:
        request["launchType"] = launch_type
    elif facts is None or "EC2" not in facts.requires_compatibilities:
        request["launchType"] = DEFAULT_LAUNCH_TYPE


def _complete_network(network: Any) -> dict[str, Any]:
    if not isinstance(network, dict) or not isinstance(network.get("awsvpcConfiguration"), dict):
        raise TemplateError("networkConfiguration must look like {'awsvpcConfiguration': {'subnets': [...]}}")
    awsvpc = network["awsvpcConfiguration"]
    if not awsvpc.get("subnets"):
        raise TemplateError("the network configuration names no subnets")
    awsvpc.setdefault("securityGroups", [])
    return network


def _default_container(names: tuple[str, ...]) -> str:
    return DEFAULT_CONTAINER_NAME if DEFAULT_CONTAINER_NAME in names or not names else names[0]


def _overrides(template: Any, job: EcsJobConfiguration, container_name: str, secrets: frozenset[str]) -> dict[str, Any]:
    """The run's command and env on the orchestration container; task-level CPU and memory as strings."""
    overrides: dict[str, Any] = dict(template) if isinstance(template, dict) else {}
    containers = [dict(c) for c in overrides.get("containerOverrides", []) if isinstance(c, dict) and c]
    container = named(containers, container_name) or next((c for c in containers if not c.get("name")), None)
    if container is None:
        container = {}
        containers.append(container)
    container["name"] = container_name
    containers.remove(container)
    containers.insert(0, container)  # first, so a task's first container override names its flow's container
    if job.command:
        container["command"] = job.command
    container["environment"] = _as_mapping(container.get("environment")) | job.env
    cleaned = []
    for each in containers:
        if isinstance(each.get("command"), str):
            each["command"] = split_argv(each["command"], "the ECS container command")
        env = {name: value for name, value in _as_mapping(each.pop("environment", None)).items() if name not in secrets}
        each = drop_empty(each)
        if env_pairs(env):
            each["environment"] = env_pairs(secret_env(env))  # after drop_empty: an empty value is a value
        if each:
            cleaned.append(each)
    for key in ("cpu", "memory"):
        if overrides.get(key):
            overrides[key] = str(overrides[key])
    if job.task_role_arn:
        overrides.setdefault("taskRoleArn", job.task_role_arn)
    overrides = drop_empty({key: value for key, value in overrides.items() if key != "containerOverrides"}) or {}
    if cleaned:
        overrides["containerOverrides"] = cleaned
    return overrides


def _as_mapping(environment: Any) -> dict[str, str | None]:
    """Container env as a dict, from the API's list of name/value pairs or a rendered `{{ env }}` dict."""
    if isinstance(environment, dict):
        return {str(k): None if v is None else str(v) for k, v in environment.items()}
    if isinstance(environment, list):
        return {str(e["name"]): e.get("value") for e in environment if isinstance(e, dict) and "name" in e}
    return {}


def run_tags(template_tags: Any, labels: Mapping[str, Any], run: RunContext) -> list[dict[str, str]]:
    """The task's tags: the template's, then the labels, then the run's own ids; sanitised as ECS requires."""
    if isinstance(template_tags, list):
        template_tags = {t["key"]: t.get("value", "") for t in template_tags if isinstance(t, dict) and "key" in t}
    merged = string_map(template_tags) | string_map(labels) | {RUN_TAG: run.flow_run_id, KEY_TAG: run.idempotency_key}
    tags = ECS_TAGS.clean(merged)
    ECS_TAGS.check_count(tags, "the ECS task")
    return [{"key": key, "value": value} for key, value in tags.items()]


def tag_text(text: str) -> str:
    """A tag key or value as prefect-aws writes it (python-slugify, case kept): HTML entities decoded, `1,000` →
    `1000`, each character ECS does not allow → `-`, runs of `-` collapsed and trimmed (`Hello, World` →
    `Hello-World`)."""
    text = unicodedata.normalize("NFKC", text.replace("'", "-"))
    text = _HTML_ENTITY.sub(lambda m: chr(html.entities.name2codepoint[m.group(1)]), text)
    text = _decode_numeric(_HTML_DECIMAL, 10, text)
    text = _decode_numeric(_HTML_HEX, 16, text)
    text = _DIGIT_COMMA.sub("", unicodedata.normalize("NFKC", text))
    return _DASHES.sub("-", _TAG_FORBIDDEN.sub("-", text)).strip("-")


ECS_TAGS = TagRules(
    sanitise=tag_text, max_key=128, max_value=256, max_tags=MAX_TAGS, owner="ECS", reserved_prefix="aws:"
)
"""ECS's tag rules, with keys and values written as prefect-aws writes them."""


def _decode_numeric(pattern: re.Pattern[str], base: int, text: str) -> str:
    """`&#65;` → `A`; a code point out of range leaves the text as it was (as python-slugify does)."""
    try:
        return pattern.sub(lambda m: chr(int(m.group(1), base)), text)
    except (ValueError, OverflowError):
        return text


def client_token(idempotency_key: str) -> str:
    """RunTask's clientToken: the key itself when it fits (≤ 64 printable ASCII), else its SHA-256 in hex."""
    if len(idempotency_key) <= _MAX_CLIENT_TOKEN and all(33 <= ord(c) <= 126 for c in idempotency_key):
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def started_by(idempotency_key: str) -> str:
    """`push-pools-<key>`, what task state events carry back (ECS allows letters, digits, - and _; ≤ 128)."""
    return (STARTED_BY_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", idempotency_key))[:_MAX_STARTED_BY]


def check_overrides_size(overrides: Mapping[str, Any]) -> None:
    """Refuse overrides over ECS's limit before the call, saying what to do about it."""
    size = len(json.dumps(reveal(overrides), separators=(",", ":")))
    if size > OVERRIDES_LIMIT:
        raise TemplateError(
            f"the run's ECS overrides (env and command) come to {size} characters; ECS allows {OVERRIDES_LIMIT}. "
            "Move large values into the task definition or a secret, or pass less env."
        )
