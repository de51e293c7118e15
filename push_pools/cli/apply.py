"""`push-pool apply FILE`: pools and deployments declared in one YAML (or JSON) file, created or updated
idempotently. Applying the same file twice changes nothing the second time.

The whole file is checked first (every pool's template, every deployment against its pool); only then is it
applied, in one transaction on the embedded store: all of it, or nothing. Prefect's API has no transactions: there
a file that passes the checks is applied object by object.

    pools:
      - name: local
        type: process
        base_job_template: templates/process.json   # optional, relative to the file
        set: {stream_output: true}                   # optional variable defaults
        concurrency_limit: 4                         # optional
        paused: false                                # optional
        description: Runs on this machine            # optional
    deployments:
      - name: hello
        pool: local
        command: python -c "print('hello')"
        image: ...                                   # optional
        job_variables: {env: {GREETING: hi}}         # optional
        parameters: {}                               # optional
        flow_name: hello                             # optional
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from push_pools.backends import pool_type
from push_pools.cli import context
from push_pools.cli.documents import load_document
from push_pools.cli.output import console, warn
from push_pools.cli.parsing import MAX_COUNT
from push_pools.cli.pools import build_template
from push_pools.errors import ConfigurationError, NotFoundError
from push_pools.jobs import check_deployment
from push_pools.models import NAME_PATTERN, Deployment, WorkPool
from push_pools.orchestrators import Catalog
from push_pools.orchestrators.local import LocalStore


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    base_job_template: Path | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    paused: bool = False
    description: str | None = None


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    pool: str
    command: str | None = None
    image: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    flow_name: str | None = None


class ApplyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pools: list[PoolSpec] = Field(default_factory=list)
    deployments: list[DeploymentSpec] = Field(default_factory=list)


def apply(file: Annotated[Path, typer.Argument(help="A YAML or JSON file of pools and deployments.")]) -> None:
    """Create or update the pools and deployments a file declares: all of them, or (on any error) none."""
    try:
        spec = ApplyFile.model_validate(load_document(file) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{file}: {problems}") from None
    catalog = context.catalog()
    pools = [_pool(pool_spec, file.parent) for pool_spec in spec.pools]
    deployments = [_deployment(deployment_spec, catalog) for deployment_spec in spec.deployments]
    _check(catalog, pools, deployments)
    with catalog.atomic() if isinstance(catalog, LocalStore) else nullcontext():
        verdicts = [f"pool {pool.name}: {_save_pool(catalog, pool)}" for pool in pools]
        verdicts += [f"deployment {d.name}: {_save_deployment(catalog, d)}" for d in deployments]
    for verdict in verdicts:
        console.print(verdict, markup=False)


def _pool(spec: PoolSpec, base_dir: Path) -> WorkPool:
    template_file = base_dir / spec.base_job_template if spec.base_job_template else None
    canonical = pool_type(spec.type).name
    return WorkPool(
        name=spec.name,
        type=canonical,
        base_job_template=build_template(canonical, template_file, spec.set),
        description=spec.description,
        is_paused=spec.paused,
        concurrency_limit=spec.concurrency_limit,
    )


def _deployment(spec: DeploymentSpec, catalog: Catalog) -> Deployment:
    try:
        existing_id = catalog.get_deployment_by_name(spec.name).id
    except NotFoundError:
        existing_id = str(uuid.uuid4())
    return Deployment(
        id=existing_id,
        name=spec.name,
        pool_name=spec.pool,
        flow_name=spec.flow_name,
        image=spec.image,
        command=spec.command,
        parameters=spec.parameters,
        job_variables=spec.job_variables,
    )


def _check(catalog: Catalog, pools: list[WorkPool], deployments: list[Deployment]) -> None:
    """Refuse the file before anything is written: names given twice, a deployment that breaks its pool (from the
    file, else the orchestrator's); print the warnings."""
    for kind, names in (("pool", [p.name for p in pools]), ("deployment", [d.name for d in deployments])):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigurationError(f"{kind} {', '.join(map(repr, twice))} is declared more than once")
    declared = {pool.name: pool for pool in pools}
    for deployment in deployments:
        pool = declared.get(deployment.pool_name) or catalog.get_pool(deployment.pool_name)
        for warning in check_deployment(pool, deployment):
            warn(warning)


def _save_pool(catalog: Catalog, pool: WorkPool) -> str:
    try:
        existing = catalog.get_pool(pool.name)
    except NotFoundError:
        catalog.save_pool(pool)
        return "created"
    if existing.model_copy(update={"last_tick_at": None}) == pool:
        return "unchanged"
    catalog.save_pool(pool, overwrite=True)
    return "updated"


def _save_deployment(catalog: Catalog, deployment: Deployment) -> str:
    try:
        existing: Deployment | None = catalog.get_deployment_by_name(deployment.name)
    except NotFoundError:
        existing = None
    if existing == deployment:
        return "unchanged"
    catalog.save_deployment(deployment)
    return "updated" if existing else "created"
