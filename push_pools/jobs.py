"""From a pool, a deployment and a run to the job configuration a backend submits. Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from push_pools.backends import pool_type
from push_pools.backends.base import RunContext
from push_pools.errors import TemplateError
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.base import RunEnvironment
from push_pools.templating import (
    expand_dotted_keys,
    merge_job_variables,
    refuse_prefect_references,
    refuse_unresolved_references,
    render_job_configuration,
    schema_defaults,
    unused_job_variables,
    validate_job_variables,
)

DEFAULT_IMAGE_KEY = "default_image"
"""Where a job configuration carries the orchestrator's image, for a container the template gives none."""


@dataclass(frozen=True)
class PreparedJob:
    """A rendered job configuration, ready for a backend, and what the template did not use."""

    configuration: dict[str, Any]
    warnings: tuple[str, ...] = ()


def prepare_job(
    pool: WorkPool,
    deployment: Deployment | None,
    run: FlowRun,
    environment: RunEnvironment,
    *,
    environ: Mapping[str, str] | None = None,
) -> PreparedJob:
    """Merge, validate and render the run's job variables, then add what its orchestrator gives every job.

    Precedence: the template's defaults < the deployment (its image, command, job variables) < the run.
    The orchestrator's env and labels come first and the job's own win over them, as in Prefect.
    """
    template = pool.base_job_template
    layers = merge_job_variables(deployment.template_values() if deployment else None, run.job_variables)
    explicit = expand_dotted_keys(layers)
    refuse_prefect_references(explicit)
    values = merge_job_variables(schema_defaults(template), explicit)
    refuse_unresolved_references(template, values)
    validate_job_variables(template, values)
    configuration = render_job_configuration(template, values, environ=environ)
    configuration["env"] = environment.env | _mapping(configuration.get("env"))
    configuration["labels"] = environment.labels | _mapping(configuration.get("labels"))
    configuration["name"] = configuration.get("name") or run.name
    if not configuration.get("command") and environment.command:
        configuration["command"] = environment.command
    if environment.default_image:
        configuration[DEFAULT_IMAGE_KEY] = environment.default_image
    return PreparedJob(configuration=configuration, warnings=_unused_warnings(pool, explicit))


def check_deployment(pool: WorkPool, deployment: Deployment) -> tuple[str, ...]:
    """Refuse a deployment of the embedded store whose job variables break the pool's schema, or that runs in a
    container pool with no image (the embedded store has no image of its own to give); warn about unused ones."""
    values = expand_dotted_keys(deployment.template_values())
    refuse_prefect_references(values)
    validate_job_variables(pool.base_job_template, values, partial=True)
    if pool_type(pool.type).name != "process" and not _names_an_image(pool.base_job_template, values):
        raise TemplateError(
            f"deployment {deployment.name!r} names no image and pool {pool.name!r} gives none: "
            "pass --image (or the 'image' job variable), or give the pool's 'image' variable a default"
        )
    return _unused_warnings(pool, values)


def _names_an_image(template: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """True when the job gets an image: the `image` variable has a value, or the template writes one literally."""
    if merge_job_variables(schema_defaults(template), values).get("image"):
        return True
    return any(_literal_images(template.get("job_configuration")))


def _literal_images(node: Any) -> Iterator[bool]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and value and "{{" not in value:
                yield True
            yield from _literal_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _literal_images(item)


def run_context(run: FlowRun, *, resubmission: bool = False) -> RunContext:
    return RunContext(
        flow_run_id=run.id,
        flow_run_name=run.name,
        pool_name=run.pool_name,
        idempotency_key=run.idempotency_key,
        deployment_name=run.deployment_name,
        deployment_id=run.deployment_id,
        flow_id=run.flow_id,
        resubmission=resubmission,
    )


def _unused_warnings(pool: WorkPool, values: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"job variable {name!r} is not used by any placeholder of the base job template of pool {pool.name!r}"
        for name in unused_job_variables(pool.base_job_template, values)
    )


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
