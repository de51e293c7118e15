"""The `variables` schema of a base job template, compiled once and checked whole before any run depends on it.

jsonschema checks a schema against its metaschema, but follows a `$ref` only when an instance reaches it. Left to
that, a template with a `$ref` to a missing definition, a `$ref` to another document, or a cycle of `$ref`s that
never steps into the instance (`a` → `b` → `a`) would be stored by `create` and then fail every run it renders
(`PointerToNowhere`, a `RecursionError`). `variables_validator` refuses all three up front, with a `TemplateError`
that names the reference; it is the one validator the CLI's checks and the dispatcher's job variables share.

References resolve inside the document only (`#/definitions/...`, `#/$defs/...`, anchors, `$id`s it declares):
a remote `$ref` is refused, never fetched (jsonschema's default would fetch it over the network, from inside the
function). A recursive schema that steps into the instance on each turn (a tree's `children` items) is fine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from push_pools.errors import TemplateError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_REFERENCES: Final = ("$ref", "$dynamicRef", "$recursiveRef")
_IN_PLACE_LISTS: Final = ("allOf", "anyOf", "oneOf")
_IN_PLACE_SCHEMAS: Final = ("not", "if", "then", "else")
_IN_PLACE_MAPS: Final = ("dependentSchemas", "dependencies")
"""Keywords that apply a subschema to the same instance: a loop through these and references never ends."""


def variables_validator(schema: Mapping[str, Any]) -> Validator:
    """A compiled validator for a `variables` schema; `TemplateError` when the schema cannot validate every run."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"'variables' is not a JSON schema: {exc}") from exc
    return _compiled(key)


@lru_cache(maxsize=64)
def _compiled(schema_json: str) -> Validator:
    """Compiling and checking cost far more than validating: once per distinct schema. jsonschema is imported
    here, not at start-up: a cold start that renders no job does not pay for it."""
    import referencing.jsonschema
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import SchemaError
    from referencing import Registry

    schema = json.loads(schema_json)
    if not isinstance(schema.get("$schema", ""), str):
        raise TemplateError("'variables' is not a valid JSON schema: '$schema' must be a URI")
    validator_class = validators.validator_for(schema, default=Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except SchemaError as exc:
        raise TemplateError(f"'variables' is not a valid JSON schema{_at(exc.absolute_path)}: {exc.message}") from exc
    except RecursionError:
        raise TemplateError("'variables' is nested too deeply to be checked") from None
    registry: Registry[Any] = Registry()  # empty: nothing outside the document is resolved, nothing is fetched
    specification = referencing.jsonschema.specification_with(
        validator_class.META_SCHEMA.get("$schema", ""), default=referencing.jsonschema.DRAFT202012
    )
    resolver = registry.resolver_with_root(specification.create_resource(schema))
    _check_references(schema, resolver, specification)
    return validator_class(schema, registry=registry)


def _check_references(schema: Any, root: Any, specification: Any) -> None:
    """Resolve every reference of the schema, then look for a cycle of references and in-place keywords."""
    in_place: dict[int, list[int]] = {}
    pending: list[tuple[Any, Any]] = [(schema, root)]
    seen: set[int] = set()
    while pending:
        node, resolver = pending.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        resource = specification.create_resource(node)
        resolver = resolver.in_subresource(resource)
        targets = []
        for keyword in _REFERENCES:
            reference = node.get(keyword)
            if isinstance(reference, str):
                resolved = _resolve(resolver, keyword, reference)
                targets.append(resolved.contents)
                pending.append((resolved.contents, resolved.resolver))
        in_place[id(node)] = [id(target) for target in (*targets, *_in_place_subschemas(node))]
        pending.extend((sub.contents, resolver) for sub in resource.subresources())
    if _has_cycle(in_place):
        raise TemplateError(
            "'variables' has a cycle of $refs that never steps into the value ($ref to itself, or a → b → a): "
            "validating any run would never end"
        )


def _resolve(resolver: Any, keyword: str, reference: str) -> Any:
    from referencing.exceptions import Unresolvable

    try:
        return resolver.lookup(reference)
    except Unresolvable:
        where = "another document, which is never fetched" if not reference.startswith("#") else "nothing"
        raise TemplateError(
            f"'variables' has a {keyword} {reference!r} that points to {where}: "
            "refer to definitions of the same schema ('#/definitions/NAME' or '#/$defs/NAME')"
        ) from None


def _in_place_subschemas(node: dict[str, Any]) -> Iterator[Any]:
    for keyword in _IN_PLACE_LISTS:
        if isinstance(node.get(keyword), list):
            yield from node[keyword]
    for keyword in _IN_PLACE_SCHEMAS:
        if keyword in node:
            yield node[keyword]
    for keyword in _IN_PLACE_MAPS:
        if isinstance(node.get(keyword), dict):
            yield from (value for value in node[keyword].values() if isinstance(value, dict))


def _has_cycle(edges: dict[int, list[int]]) -> bool:
    """Depth-first, without recursion (a schema may be deep): True when some node reaches itself."""
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        on_path = {start}
        stack = [(start, iter(edges[start]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return True
            elif child not in done and child in edges:
                on_path.add(child)
                stack.append((child, iter(edges[child])))
    return False


def _at(path: Any) -> str:
    """` at 'properties.cpu'`: where in the schema the metaschema found the fault."""
    parts = ".".join(str(part) for part in path)
    return f" at {parts!r}" if parts else ""
