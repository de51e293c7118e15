"""Base job templates, rendered the way Prefect renders them. Pure functions: no I/O, no environment.

A base job template is `{"job_configuration": {...}, "variables": <JSON schema>}`. Rendering a job:

1. `merge_job_variables` — pool defaults (the schema's non-null defaults) < deployment < flow run; `env` is
   merged key by key, every other key is replaced whole. `expand_dotted_keys` reads `{"env.FOO": "1"}` as
   `{"env": {"FOO": "1"}}`, as Prefect does.
2. `validate_job_variables` — the merged values against the `variables` schema, with messages that name the
   variable and the rule.
3. `render_job_configuration` — every placeholder in `job_configuration` is replaced, in one pass:
   - a string that is exactly one placeholder (`"{{ cpu }}"`) becomes the value with its own type; if the value
     is missing, the key (or list element) is removed;
   - placeholders inside a longer string are replaced by the value's text (JSON for dicts and lists, nothing for
     a missing or null value);
   - `{{ a.b[0].c }}` reads a path into the value; `{{ $NAME }}` reads the `environ` mapping passed in;
   - values are inserted, never rendered again: a job variable containing `{{ x }}` stays literal;
   - an `env` written out as a dict in `job_configuration` gets the `env` job variable merged into it.
4. `unused_job_variables` — the job variables no placeholder reads, to warn about.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from push_pools.backends.kit.evidence import mask_secrets
from push_pools.errors import JobVariablesError, TemplateError
from push_pools.variables_schema import variables_validator

PLACEHOLDER: Final = re.compile(r"{{\s*([\w.\-\[\]$]+)\s*}}")
_PATH_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_ENV_PREFIX: Final = "$"
_PREFECT_PREFIX: Final = "prefect."
SECRET_NAME: Final = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
"""Names whose values are never repeated: in validation messages, and by the CLI's output (`DB_PASSWORD`, `API_KEY`)."""


class _Missing:
    """A placeholder with no value: its key or list element is dropped."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def find_placeholders(template: Any) -> set[str]:
    """Every placeholder name (`cpu`, `network.subnets[0]`, `$HOME`) anywhere in a template."""
    return {name for text in _strings(template) for name in PLACEHOLDER.findall(text)}


def root_variable(placeholder: str) -> str:
    """The variable a placeholder reads: `network.subnets[0]` → `network`."""
    return re.split(r"[.\[]", placeholder, maxsplit=1)[0]


def check_base_job_template(template: Any) -> None:
    """Refuse a template that cannot be used: wrong shape, a `variables` schema that would fail at run time
    (see `push_pools.variables_schema`) or that its own defaults break, placeholders that are not declared
    variables."""
    if not isinstance(template, dict):
        raise TemplateError("a base job template must be a JSON object with 'job_configuration' and 'variables'")
    unknown_keys = set(template) - {"job_configuration", "variables"}
    if unknown_keys:
        raise TemplateError(f"unknown base job template keys: {', '.join(sorted(unknown_keys))}")
    job_configuration = template.get("job_configuration")
    if not isinstance(job_configuration, dict):
        raise TemplateError("'job_configuration' must be a JSON object")
    variables = template.get("variables", {})
    if not isinstance(variables, dict):
        raise TemplateError("'variables' must be a JSON schema object")
    properties = variables.get("properties", {})
    if not isinstance(properties, dict):
        raise TemplateError("'variables.properties' must be a JSON object")
    for name, spec in properties.items():
        if isinstance(spec, bool):
            raise TemplateError(
                f"variable {name!r} is described by {json.dumps(spec)}, not a JSON schema object: push-pools reads "
                "each variable's type and default from its object ({} accepts any value)"
            )
    variables_validator(variables)  # raises on an invalid schema, or one that would fail at run time
    try:
        validate_job_variables(template, schema_defaults(template), partial=True)
    except JobVariablesError as exc:
        raise TemplateError(
            "with its own defaults alone, the template breaks its 'variables' schema: " + "; ".join(exc.problems)
        ) from exc
    problems = []
    for placeholder in sorted(find_placeholders(job_configuration)):
        if placeholder.startswith(_ENV_PREFIX):
            continue
        if placeholder.startswith(_PREFECT_PREFIX):
            problems.append(
                f"placeholder '{{{{ {placeholder} }}}}' refers to a Prefect block or variable, "
                "which push-pools does not resolve; declare a job variable for it instead"
            )
        elif root_variable(placeholder) not in properties:
            problems.append(
                f"placeholder '{{{{ {placeholder} }}}}' uses '{root_variable(placeholder)}', "
                "which is not declared in 'variables.properties'"
            )
    if problems:
        raise TemplateError("invalid base job template: " + "; ".join(problems))


def schema_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """The non-null defaults of the template's variables (a null default means "no value")."""
    properties = template.get("variables", {}).get("properties", {})
    return {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and spec.get("default") is not None
    }


def set_variable_defaults(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the template whose declared variables default to `values` (what `--set VAR=VALUE` does)."""
    properties = template.get("variables", {}).get("properties", {})
    unknown = sorted(set(values) - set(properties))
    if unknown:
        raise TemplateError(
            f"the base job template declares no variable {', '.join(map(repr, unknown))}; "
            f"declared: {', '.join(sorted(properties)) or 'none'}"
        )
    validate_job_variables(template, values, partial=True)
    updated = copy.deepcopy(dict(template))
    for name, value in values.items():
        updated["variables"]["properties"][name]["default"] = value
    return updated


def merge_job_variables(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge job variables, later layers winning; `env` merges key by key, other keys are replaced whole."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for name, value in (layer or {}).items():
            current = merged.get(name)
            if name == "env" and isinstance(current, dict) and isinstance(value, dict):
                merged[name] = current | value
            else:
                merged[name] = value
    return merged


def expand_dotted_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """`{"env.FOO": "1"}` → `{"env": {"FOO": "1"}}`, as Prefect reads job variables. Where a dotted key and a
    nested one say the same thing, the nested one wins."""
    expanded: dict[str, Any] = {}
    for key, value in values.items():
        if "." in key:
            *parents, leaf = key.split(".")
            node = expanded
            for parent in parents:
                child = node.get(parent)
                node[parent] = child = child if isinstance(child, dict) else {}
                node = child
            node[leaf] = value
    for key, value in values.items():
        if "." not in key:
            current = expanded.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                expanded[key] = _deep_merge(current, value)
            else:
                expanded[key] = value
    return expanded


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = _deep_merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged


def refuse_prefect_references(values: Mapping[str, Any]) -> None:
    """Refuse job variables that point into Prefect (`{{ prefect.blocks.secret.x }}`, `{{ prefect.variables.y }}`,
    or a block document `{"$ref": ...}`): push-pools does not resolve them, and sending them on would hand the
    container a literal placeholder instead of the secret it expects."""
    problems = [
        f"job variable '{path}' refers to a Prefect block or variable ({what}), which push-pools does not resolve; "
        "give the value itself, or a secret reference the backend supports"
        for path, what in _prefect_references(values, "")
    ]
    if problems:
        raise TemplateError("; ".join(problems))


def refuse_unresolved_references(template: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Refuse to render a job whose template or merged job variables (the template's defaults included) still
    point into Prefect: rendering them would hand the job a wrong value (`"{{ prefect.blocks.secret.r.value }}/img"`
    would become `"/img"`). The message names every reference, so the run's CRASHED state says what to fix."""
    job_configuration = template.get("job_configuration", {})
    problems = [f"job variable '{path}' refers to {what}" for path, what in _prefect_references(_used(values), "")] + [
        f"the base job template's '{path}' refers to {what}"
        for path, what in _prefect_references(_used(job_configuration), "")
    ]
    if problems:
        raise TemplateError(
            "; ".join(problems) + ": push-pools does not resolve Prefect blocks or variables here, and will not render "
            "a wrong value; put the value itself (or a secret reference the pool type supports) in the pool"
        )


CREDENTIALS_VARIABLES: Final = frozenset({"aws_credentials", "credentials", "aci_credentials"})
"""Prefect's credentials blocks (ECS, Cloud Run, ACI): never read, since the function's own cloud identity makes
the calls, so a block reference there is left alone."""


def _used(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {key: value for key, value in node.items() if key not in CREDENTIALS_VARIABLES}
    return node


def _prefect_references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        for name in PLACEHOLDER.findall(node):
            if name.startswith(_PREFECT_PREFIX):
                yield path, f"{{{{ {name} }}}}"
    elif isinstance(node, Mapping):
        if "$ref" in node:
            yield path, "a $ref block document reference"
            return
        for key, value in node.items():
            yield from _prefect_references(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _prefect_references(item, f"{path}[{index}]")


def validate_job_variables(template: Mapping[str, Any], values: Mapping[str, Any], *, partial: bool = False) -> None:
    """Check job variables against the template's `variables` schema.

    `partial=True` ignores `required` (for a deployment's own variables, completed later by the run's).
    """
    schema = template.get("variables") or {}
    if partial:
        schema = {key: value for key, value in schema.items() if key != "required"}
    errors = sorted(variables_validator(schema).iter_errors(dict(values)), key=lambda error: list(error.absolute_path))
    if errors:
        raise JobVariablesError([_describe(error) for error in errors])


def render_job_configuration(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Render a template's `job_configuration` with (already merged and validated) job variable values."""
    job_configuration = template.get("job_configuration")
    if not isinstance(job_configuration, dict):
        raise TemplateError("the base job template has no 'job_configuration' object")
    rendered: dict[str, Any] = _render(job_configuration, values, environ or {})
    literal_env, env = job_configuration.get("env"), values.get("env")
    if isinstance(literal_env, dict) and isinstance(env, dict):
        # Prefect merges the env job variable into an env written out in the template (unrendered: values are
        # never rendered again).
        rendered["env"] = rendered["env"] | env
    return rendered


def unused_job_variables(template: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The given job variables that no placeholder of the template reads: reported, never silently dropped."""
    job_configuration = template.get("job_configuration", {})
    used = {root_variable(name) for name in find_placeholders(job_configuration)}
    if isinstance(job_configuration, dict) and isinstance(job_configuration.get("env"), dict):
        used.add("env")
    return sorted(set(names) - used)


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """Read `a.b[0].c` from nested dicts and lists; MISSING where any step is absent."""
    current: Any = values
    for key, index in _PATH_PART.findall(path):
        if key:
            if not isinstance(current, Mapping) or key not in current:
                return MISSING
            current = current[key]
        else:
            position = int(index)
            if not isinstance(current, list) or position >= len(current):
                return MISSING
            current = current[position]
    return current


def _render(node: Any, values: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _render_string(node, values, environ)
    if isinstance(node, dict):
        rendered_items = ((key, _render(value, values, environ)) for key, value in node.items())
        return {key: value for key, value in rendered_items if value is not MISSING}
    if isinstance(node, list):
        rendered_list = (_render(item, values, environ) for item in node)
        return [item for item in rendered_list if item is not MISSING]
    return node


def _render_string(text: str, values: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    if "{{" not in text:
        return text
    whole = PLACEHOLDER.fullmatch(text)
    if whole is not None:
        return _value_of(whole.group(1), values, environ)

    def replace(match: re.Match[str]) -> str:
        value = _value_of(match.group(1), values, environ)
        if value is MISSING or value is None:
            return ""
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    return PLACEHOLDER.sub(replace, text)


def _value_of(name: str, values: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    if name.startswith(_ENV_PREFIX):
        return environ.get(name[len(_ENV_PREFIX) :], MISSING)
    return lookup(values, name)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _describe(error: Any) -> str:
    """`job variable 'cpu': 'abc' is not of type 'integer'` — the variable's path, then jsonschema's rule."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    if not path and error.validator == "required":
        return str(error.message).replace("is a required property", "is a required job variable")
    name = path.lstrip(".") or "(all)"
    named_secret = any(isinstance(part, str) and SECRET_NAME.search(part) for part in error.absolute_path)
    message = mask_secrets(str(error.message), _secret_values(error.instance, named_secret))
    return f"job variable '{name}': {message} (rule: {error.validator})"


def _secret_values(node: Any, secret: bool) -> Iterator[str]:
    """The values a message must not repeat: everything under a secret-named key (`DB_PASSWORD`), or named so
    in a `{"name": ..., "value": ...}` pair."""
    if isinstance(node, dict):
        named = node.get("name")
        pair = isinstance(named, str) and bool(SECRET_NAME.search(named))
        for key, value in node.items():
            is_secret = secret or SECRET_NAME.search(str(key)) is not None or (pair and key == "value")
            yield from _secret_values(value, is_secret)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_values(item, secret)
    elif secret and node is not None and not isinstance(node, bool):
        yield str(node)
