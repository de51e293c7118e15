"""Reviewing an existing Prefect work pool before push-pools serves it (`push-pool import`). Pure.

Pools made for Prefect's hybrid workers, or published from an agent's infrastructure block, often carry things a
worker resolves at run time and push-pools does not: `{{ prefect.blocks... }}` and `{{ prefect.variables... }}`
placeholders, variables defaulting to block references (`{"$ref": {"block_document_id": ...}}`, typically
credentials, which the function's own cloud identity replaces), settings its backend does not read. The review
sorts them into problems (the pool cannot be served until they are fixed) and warnings (it can, but those parts
are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from push_pools.backends import POOL_TYPES, backend_module, default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.errors import ConfigurationError, TemplateError
from push_pools.orchestrators.prefect.schema import FLOW_RUN_COMMAND, UNSERVED_PREFIX, WORKER_TYPES, our_pool_type
from push_pools.templating import (
    check_base_job_template,
    find_placeholders,
    merge_job_variables,
    render_job_configuration,
    root_variable,
    schema_defaults,
)

if TYPE_CHECKING:
    from push_pools.settings import Settings

_V1_CLOUD_RUN = frozenset({"cloud-run", "cloud-run:push"})
_SAMPLE_RUN = RunContext(
    flow_run_id="00000000-0000-0000-0000-000000000000",
    flow_run_name="import-check",
    pool_name="import-check",
    idempotency_key="00000000-0000-0000-0000-000000000000-1",
)


@dataclass(frozen=True)
class PoolReview:
    """What push-pools can and cannot honour in a Prefect pool."""

    pool_name: str
    prefect_type: str
    pool_type: str | None
    """push-pools' type for it, or None when it cannot serve this kind of pool at all."""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.pool_type is not None and not self.problems


def review_pool(
    pool_name: str, prefect_type: str, template: dict[str, Any], settings: Settings | None = None
) -> PoolReview:
    """Review a Prefect pool's type and base job template; `settings` fill in what the backend reads from them
    (the default Google Cloud project), as when submitting."""
    ours = _pool_type(prefect_type)
    if ours is None:
        return PoolReview(pool_name, prefect_type, None, problems=[_unsupported_type(prefect_type)])
    problems = _placeholder_problems(template) + _block_reference_problems(template)
    if not problems:
        problems = _shape_problems(template)
    warnings = _unused_variables(template) + _unread_settings(ours, template)
    if not problems:
        warnings += _render_warnings(ours, template, settings)
    return PoolReview(pool_name, prefect_type, ours, problems, warnings)


def _pool_type(prefect_type: str) -> str | None:
    if prefect_type in _V1_CLOUD_RUN:
        return None
    ours = our_pool_type(prefect_type)
    return None if ours.startswith(UNSERVED_PREFIX) else ours


def _unsupported_type(prefect_type: str) -> str:
    if prefect_type in _V1_CLOUD_RUN:
        return (
            f"type {prefect_type!r} is Prefect's Cloud Run v1 worker; push-pools runs Cloud Run v2 jobs: create a "
            "new pool with `push-pool create NAME --type cloud-run` and move the deployments to it"
        )
    known = ", ".join(f"{prefect} ({ours})" for ours, prefect in WORKER_TYPES.items())
    return f"push-pools cannot serve pools of type {prefect_type!r}; it serves {known} and their :push variants"


def _placeholder_problems(template: dict[str, Any]) -> list[str]:
    configuration = template.get("job_configuration")
    declared = _properties(template, schemas_only=False)
    problems = []
    for placeholder in sorted(find_placeholders(configuration)):
        text = f"'{{{{ {placeholder} }}}}'"
        if placeholder.startswith("prefect."):
            problems.append(
                f"placeholder {text} reads a Prefect block or variable, which push-pools does not resolve: "
                "replace it with a job variable (credentials are not needed: the function uses its own identity)"
            )
        elif not placeholder.startswith("$") and root_variable(placeholder) not in declared:
            problems.append(f"placeholder {text} uses a variable that 'variables.properties' does not declare")
    return problems


def _block_reference_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, spec in _properties(template).items():
        if _holds_block_reference(spec.get("default")):
            problems.append(
                f"variable {name!r} defaults to a Prefect block reference, which push-pools does not resolve: "
                "remove the default (and the variable, for credentials: the function uses its own identity)"
            )
    return problems


def _holds_block_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return "$ref" in value or any(_holds_block_reference(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_block_reference(item) for item in value)
    return False


def _shape_problems(template: dict[str, Any]) -> list[str]:
    try:
        check_base_job_template(template)
    except TemplateError as exc:
        return [str(exc)]
    return []


def _unused_variables(template: dict[str, Any]) -> list[str]:
    used = {root_variable(p) for p in find_placeholders(template.get("job_configuration"))}
    return [
        f"variable {name!r} is declared but no placeholder uses it: setting it has no effect"
        for name in sorted(set(_properties(template)) - used)
    ]


def _unread_settings(pool_type: str, template: dict[str, Any]) -> list[str]:
    """Top-level job configuration keys that push-pools' own template for the type does not have."""
    configuration = template.get("job_configuration")
    try:
        known = set(default_base_job_template(pool_type)["job_configuration"])
    except (ConfigurationError, OSError, KeyError):
        return []
    if not isinstance(configuration, dict):
        return []
    return [
        f"job_configuration key {key!r} is not read by push-pools' {pool_type} backend: it is ignored"
        for key in sorted(set(configuration) - known)
    ]


def _render_warnings(pool_type: str, template: dict[str, Any], settings: Settings | None) -> list[str]:
    """Render with the pool's defaults alone, as the dispatcher would: what fails must come from every deployment."""
    values = merge_job_variables(schema_defaults(template))
    try:
        configuration = render_job_configuration(template, values)
        configuration.setdefault("env", {})
        configuration.setdefault("labels", {})
        configuration["name"] = configuration.get("name") or _SAMPLE_RUN.flow_run_name
        if not configuration.get("command"):
            configuration["command"] = FLOW_RUN_COMMAND
        backend_module(POOL_TYPES[pool_type].name).build_request(configuration, _SAMPLE_RUN, settings)
    except ConfigurationError as exc:
        return [f"could not check the rendered job here: {exc}"]
    except TemplateError as exc:
        return [f"with the pool's defaults alone the job does not render ({exc}): every deployment must supply it"]
    return []


def _properties(template: dict[str, Any], *, schemas_only: bool = True) -> dict[str, Any]:
    """The declared variables; `schemas_only` leaves out those not described by an object (a shape problem)."""
    variables = template.get("variables")
    properties = variables.get("properties") if isinstance(variables, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {name: spec for name, spec in properties.items() if isinstance(spec, dict) or not schemas_only}
