"""The small part of ARM's template language a deployment of one container group uses, for the fake ARM server.

`container_groups(template, parameters, resource_group)` returns the container groups a deployment would create,
with every expression evaluated: `[parameters('x')]`, `[resourceGroup().location]`, `[resourceGroup().id]`,
`[uniqueString(...)]`, `[concat(...)]`, string and integer literals. Any other function, or a resource of another
type, is refused with `InvalidTemplate` (ARM's error code), so a template the fake cannot honour fails loudly.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CONTAINER_GROUPS = "microsoft.containerinstance/containergroups"
_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_]\w*)|(?P<punct>[(),.]))")
_UNIQUE_ALPHABET = string.ascii_lowercase + string.digits


class InvalidTemplate(Exception):
    """ARM's InvalidTemplate: the template cannot be evaluated."""


@dataclass(frozen=True)
class ResourceGroup:
    id: str
    name: str
    location: str


def container_groups(
    template: dict[str, Any], parameters: dict[str, Any], resource_group: ResourceGroup
) -> list[tuple[str, dict[str, Any]]]:
    """(name, PUT body) of each container group the template declares, expressions evaluated."""
    if not isinstance(template, dict) or not isinstance(template.get("resources"), list):
        raise InvalidTemplate("the template has no resources")
    values = _parameter_values(template, parameters, resource_group)
    groups = []
    for resource in template["resources"]:
        if not isinstance(resource, dict) or str(resource.get("type", "")).lower() != CONTAINER_GROUPS:
            raise InvalidTemplate(f"the fake deploys container groups only, not {resource.get('type')!r}")
        evaluated = _resolve(resource, lambda text: _evaluate(text, values, resource_group))
        body = {key: evaluated[key] for key in ("location", "properties", "tags", "identity") if key in evaluated}
        groups.append((str(evaluated.get("name", "")), body))
    return groups


def unique_string(*parts: str) -> str:
    """Like ARM's uniqueString: 13 characters, deterministic for its arguments."""
    digest = int.from_bytes(hashlib.sha256("-".join(parts).encode()).digest()[:16], "big")
    return "".join(_UNIQUE_ALPHABET[(digest >> (5 * i)) % 32] for i in range(13))


def _parameter_values(template: dict[str, Any], given: dict[str, Any], resource_group: ResourceGroup) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, declared in (template.get("parameters") or {}).items():
        if name in given:
            values[name] = (given[name] or {}).get("value")
        elif isinstance(declared, dict) and "defaultValue" in declared:
            values[name] = _resolve(declared["defaultValue"], lambda text: _evaluate(text, {}, resource_group))
        else:
            raise InvalidTemplate(f"parameter {name!r} has no value and no defaultValue")
    unknown = set(given) - set(values)
    if unknown:
        raise InvalidTemplate(f"parameters {sorted(unknown)} are not declared by the template")
    return values


def _resolve(value: Any, evaluate: Callable[[str], Any]) -> Any:
    if isinstance(value, dict):
        return {key: _resolve(item, evaluate) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, evaluate) for item in value]
    if isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[["):
        return evaluate(value[1:-1])
    if isinstance(value, str) and value.startswith("[["):
        return value[1:]  # "[[" escapes a literal "["
    return value


def _evaluate(text: str, values: dict[str, Any], resource_group: ResourceGroup) -> Any:
    tokens = _tokens(text)
    result, position = _expression(tokens, 0, values, resource_group)
    if position != len(tokens):
        raise InvalidTemplate(f"unexpected {tokens[position][1]!r} in [{text}]")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise InvalidTemplate(f"cannot read [{text}] at {position}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _expression(
    tokens: list[tuple[str, str]], at: int, values: dict[str, Any], resource_group: ResourceGroup
) -> tuple[Any, int]:
    if at >= len(tokens):
        raise InvalidTemplate("the expression ends too soon")
    kind, text = tokens[at]
    if kind == "string":
        return text[1:-1].replace("''", "'"), at + 1
    if kind == "number":
        return int(text), at + 1
    if kind != "name" or at + 1 >= len(tokens) or tokens[at + 1][1] != "(":
        raise InvalidTemplate(f"expected a function call at {text!r}")
    arguments, at = _arguments(tokens, at + 2, values, resource_group)
    result = _call(text, arguments, values, resource_group)
    while at < len(tokens) and tokens[at][1] == ".":
        if at + 1 >= len(tokens) or tokens[at + 1][0] != "name" or not isinstance(result, dict):
            raise InvalidTemplate(f"cannot read a property of {text}(...)")
        if tokens[at + 1][1] not in result:
            raise InvalidTemplate(f"{text}() has no property {tokens[at + 1][1]!r}")
        result, at = result[tokens[at + 1][1]], at + 2
    return result, at


def _arguments(
    tokens: list[tuple[str, str]], at: int, values: dict[str, Any], resource_group: ResourceGroup
) -> tuple[list[Any], int]:
    arguments: list[Any] = []
    while at < len(tokens) and tokens[at][1] != ")":
        argument, at = _expression(tokens, at, values, resource_group)
        arguments.append(argument)
        if at < len(tokens) and tokens[at][1] == ",":
            at += 1
    if at >= len(tokens):
        raise InvalidTemplate("a function call is not closed")
    return arguments, at + 1


def _call(name: str, arguments: list[Any], values: dict[str, Any], resource_group: ResourceGroup) -> Any:
    function = name.lower()
    if function == "parameters" and len(arguments) == 1:
        if arguments[0] not in values:
            raise InvalidTemplate(f"the template declares no parameter {arguments[0]!r}")
        return values[arguments[0]]
    if function == "resourcegroup" and not arguments:
        return {"id": resource_group.id, "name": resource_group.name, "location": resource_group.location}
    if function == "uniquestring" and arguments:
        return unique_string(*(str(argument) for argument in arguments))
    if function == "concat":
        return "".join(str(argument) for argument in arguments)
    raise InvalidTemplate(f"the fake cannot evaluate {name}() with {len(arguments)} argument(s)")
