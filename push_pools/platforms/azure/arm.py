"""Reading a Prefect `azure-container-instance` ARM template as the body of one container group. Pure.

Prefect's ACI worker deploys an ARM template holding one `Microsoft.ContainerInstance/containerGroups` resource.
push-pools creates that container group directly (no ARM deployment is left behind), so only what can be said
without ARM's template engine is honoured:

- exactly one resource, a container group; its `location`, `identity`, `tags` and `properties` are used, its
  `name` is replaced by the run's deterministic name, and `apiVersion`, `dependsOn`, `outputs` are ignored;
- ARM expressions: `[parameters('x')]` is resolved to the parameter's `defaultValue` (the only value a push pool
  can give it), `[resourceGroup().location]` as `location` means the resource group's region (looked up when
  submitting), and the first container's name may be any expression (it is replaced). Any other expression is
  refused with a TemplateError naming where it is, rather than sent to Azure as a literal string;
- `restartPolicy` must be `Never` (a flow run is run once) or absent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from push_pools.errors import TemplateError

CONTAINER_GROUP_TYPE = "microsoft.containerinstance/containergroups"
RESOURCE_GROUP_LOCATION = "[resourceGroup().location]"
"""A location meaning "the resource group's region": the backend resolves it when submitting."""

_PARAMETER = re.compile(r"^\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]$", re.IGNORECASE)
_RESOURCE_GROUP_LOCATION = re.compile(r"^\[\s*resourceGroup\(\s*\)\.location\s*\]$", re.IGNORECASE)
_MAX_REPORTED = 5


@dataclass(frozen=True)
class ArmContainerGroup:
    """The parts of an ARM container group resource that become the request body."""

    location: str | None
    properties: dict[str, Any]
    identity: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)


def read_arm_template(template: Any) -> ArmContainerGroup:
    """The container group an ARM template describes, or a TemplateError saying what cannot be honoured."""
    if not isinstance(template, dict):
        raise TemplateError("arm_template must be a JSON object (an ARM deployment template)")
    resources = template.get("resources")
    if not isinstance(resources, list) or len(resources) != 1 or not isinstance(resources[0], dict):
        count = len(resources) if isinstance(resources, list) else 0
        raise TemplateError(
            f"arm_template must hold exactly one resource, a container group (it holds {count}); "
            "push-pools creates the container group directly and cannot deploy other resources"
        )
    resource = resources[0]
    if str(resource.get("type", "")).lower() != CONTAINER_GROUP_TYPE:
        raise TemplateError(
            f"arm_template's resource is of type {resource.get('type')!r}, "
            "not Microsoft.ContainerInstance/containerGroups"
        )
    parameters = template.get("parameters") or {}
    location = _location(resource.get("location"), parameters)
    properties = resource.get("properties")
    if not isinstance(properties, dict):
        raise TemplateError("arm_template's container group has no 'properties' object")
    properties = copy.deepcopy(properties)
    containers = properties.get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise TemplateError("arm_template's container group must list at least one container in properties.containers")
    containers[0].pop("name", None)  # replaced by the job container's own name, whatever expression it was
    properties = _resolve(properties, parameters, "properties")
    restart_policy = properties.get("restartPolicy", "Never")
    if restart_policy != "Never":
        raise TemplateError(
            f"restartPolicy {restart_policy!r} is not supported: a flow run's container runs once (Never)"
        )
    identity = resource.get("identity")
    if identity is not None and not isinstance(identity, dict):
        raise TemplateError("arm_template's container group 'identity' must be an object")
    tags = resource.get("tags") or {}
    if not isinstance(tags, dict):
        raise TemplateError("arm_template's container group 'tags' must be an object")
    identity = _resolve(copy.deepcopy(identity), parameters, "identity") if identity else None
    tags = _resolve(dict(tags), parameters, "tags")
    _refuse_expressions({"properties": properties, "identity": identity, "tags": tags})
    return ArmContainerGroup(
        location=location,
        properties=_unescape(properties),
        identity=_unescape(identity),
        tags={str(k): str(v) for k, v in _unescape(tags).items()},
    )


def _location(value: Any, parameters: Any) -> str | None:
    resolved = _resolve(value, parameters, "location")
    if resolved is None:
        return None
    if not isinstance(resolved, str):
        raise TemplateError("arm_template's container group 'location' must be a string")
    if _RESOURCE_GROUP_LOCATION.match(resolved):
        return RESOURCE_GROUP_LOCATION
    if _is_expression(resolved):
        raise TemplateError(
            f"arm_template's location {resolved!r} is an ARM expression push-pools cannot evaluate; "
            "set the 'location' job variable instead"
        )
    return resolved


def _resolve(node: Any, parameters: Any, path: str, depth: int = 0) -> Any:
    """Replace `[parameters('x')]` by the parameter's default value, wherever it is the whole string."""
    if isinstance(node, str):
        match = _PARAMETER.match(node)
        if match is None:
            return node
        name = match.group(1)
        spec = parameters.get(name) if isinstance(parameters, dict) else None
        if not isinstance(spec, dict) or "defaultValue" not in spec:
            raise TemplateError(f"arm_template's {path} uses parameter {name!r}, which has no defaultValue")
        if depth > 5:
            raise TemplateError(f"arm_template's {path}: parameters refer to each other too deeply")
        return _resolve(spec["defaultValue"], parameters, path, depth + 1)
    if isinstance(node, dict):
        return {key: _resolve(value, parameters, f"{path}.{key}", depth) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, parameters, f"{path}[{index}]", depth) for index, item in enumerate(node)]
    return node


def _refuse_expressions(node: Any) -> None:
    found = list(_expressions(node, ""))
    if found:
        shown = "; ".join(f"{path} = {text!r}" for path, text in found[:_MAX_REPORTED])
        more = f" (and {len(found) - _MAX_REPORTED} more)" if len(found) > _MAX_REPORTED else ""
        raise TemplateError(
            "arm_template uses ARM expressions push-pools cannot evaluate (it creates the container group "
            f"directly, without ARM's template engine): {shown}{more}; replace them with values or job variables"
        )


def _expressions(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        if _is_expression(node):
            yield path.lstrip("."), node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _expressions(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _expressions(item, f"{path}[{index}]")


def _is_expression(text: str) -> bool:
    """ARM evaluates a string in brackets; `[[` starts an escaped literal."""
    return text.startswith("[") and text.endswith("]") and not text.startswith("[[")


def _unescape(node: Any) -> Any:
    if isinstance(node, str):
        return node[1:] if node.startswith("[[") else node
    if isinstance(node, dict):
        return {key: _unescape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unescape(item) for item in node]
    return node
