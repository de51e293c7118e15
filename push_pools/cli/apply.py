"""`push-pool apply FILE`: pools and deployments declared in one YAML (or JSON) file, created or updated
idempotently. Applying the same file twice changes nothing the second time.

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
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from push_pools.backends import pool_type
from push_pools.cli import context
from push_pools.cli.deployments import save_deployment
from push_pools.cli.documents import load_document
from push_pools.cli.output import console
from push_pools.cli.pools import build_template
from push_pools.errors import ConfigurationError, NotFoundError
from push_pools.models import NAME_PATTERN, Deployment, WorkPool


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    base_job_template: Path | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int | None = Field(default=None, ge=0)
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
    """Create or update the pools and deployments a file declares."""
    try:
        spec = ApplyFile.model_validate(load_document(file) or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"{file}: {problems}") from None
    for pool_spec in spec.pools:
        console.print(f"pool {pool_spec.name}: {_apply_pool(pool_spec, file.parent)}", markup=False)
    for deployment_spec in spec.deployments:
        console.print(f"deployment {deployment_spec.name}: {_apply_deployment(deployment_spec)}", markup=False)


def _apply_pool(spec: PoolSpec, base_dir: Path) -> str:
    template_file = base_dir / spec.base_job_template if spec.base_job_template else None
    canonical = pool_type(spec.type).name
    pool = WorkPool(
        name=spec.name,
        type=canonical,
        base_job_template=build_template(canonical, template_file, spec.set),
        description=spec.description,
        is_paused=spec.paused,
        concurrency_limit=spec.concurrency_limit,
    )
    catalog = context.catalog()
    try:
        existing = catalog.get_pool(spec.name)
    except NotFoundError:
        catalog.save_pool(pool)
        return "created"
    if existing.model_copy(update={"last_tick_at": None}) == pool:
        return "unchanged"
    catalog.save_pool(pool, overwrite=True)
    return "updated"


def _apply_deployment(spec: DeploymentSpec) -> str:
    catalog = context.catalog()
    try:
        existing: Deployment | None = catalog.get_deployment_by_name(spec.name)
    except NotFoundError:
        existing = None
    deployment = Deployment(
        id=existing.id if existing else str(uuid.uuid4()),
        name=spec.name,
        pool_name=spec.pool,
        flow_name=spec.flow_name,
        image=spec.image,
        command=spec.command,
        parameters=spec.parameters,
        job_variables=spec.job_variables,
    )
    if existing == deployment:
        return "unchanged"
    save_deployment(deployment)
    return "updated" if existing else "created"
