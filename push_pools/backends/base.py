"""The one small protocol every backend implements.

A backend turns a rendered job configuration into cloud API calls. `build_request` is pure: it returns the exact
request `submit` would send, so it can be previewed and tested row by row. `submit`, `status` and `cancel` do the
I/O, on an SDK client passed to the backend's constructor.

A backend that can show a job's own output also implements `JobLogsReader` (`push-pool runs logs` uses it).

`submit` must be idempotent on `run.idempotency_key`: a second call for the same key finds the infrastructure
the first one started (and returns it with `adopted=True`) instead of starting more. `cancel` must treat
infrastructure that is already gone as success.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from push_pools.errors import TemplateError
from push_pools.models import InfrastructureRef, InfrastructureStatus

ConfigurationModel = TypeVar("ConfigurationModel", bound=BaseModel)


@dataclass(frozen=True)
class RunContext:
    """What a backend may know of the run it submits, beside the rendered configuration."""

    flow_run_id: str
    flow_run_name: str
    pool_name: str
    idempotency_key: str
    _: KW_ONLY
    deployment_name: str | None = None
    deployment_id: str | None = None
    flow_id: str | None = None
    resubmission: bool = False
    """True when an earlier submission of this key may have reached the cloud (a retry after an error, or an
    orphan being recovered): a backend without a cloud-side idempotency token looks for it before starting more."""


class Backend(Protocol):
    """A cloud (or the local machine) that runs rendered jobs."""

    pool_type: ClassVar[str]
    """The work pool type this backend serves: `process`, `ecs`, `cloud-run`, `aci`."""

    reports_infrastructure_events: ClassVar[bool]
    """True when the cloud pushes state changes (ECS task events), so the tick need not poll every run."""

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        """The exact API request `submit` would send. Pure; raises TemplateError on a bad configuration."""
        ...

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        """Start the run's infrastructure, or find the one already started under `run.idempotency_key`."""
        ...

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        """Where the infrastructure is now."""
        ...

    def cancel(self, infrastructure_pid: str) -> None:
        """Stop the infrastructure. Already stopped or gone counts as success."""
        ...

    def sweep(self, now: datetime) -> int:
        """Housekeeping the cloud needs (delete finished groups, idle jobs); returns how many were removed."""
        ...


@dataclass(frozen=True)
class JobLogs:
    """A job's own output as far as push-pools can read it, and where to read the rest."""

    lines: tuple[str, ...] = ()
    """Output lines, oldest first, with the secret values the backend knows masked."""
    elsewhere: str | None = None
    """A command or link showing the output where it cannot be read from here (no log group, no SDK access)."""

    def last(self, count: int | None) -> JobLogs:
        """These logs with only their last `count` lines (all of them when None)."""
        if count is None:
            return self
        return replace(self, lines=self.lines[-count:] if count > 0 else ())


@dataclass(frozen=True)
class RenderedJob:
    """A run's job as its pool renders it now: how a backend finds the output of a job its cloud has forgotten."""

    configuration: Mapping[str, Any]
    run: RunContext


@runtime_checkable
class JobLogsReader(Protocol):
    """The optional capability of a backend that can show a job's output."""

    def logs(self, infrastructure_pid: str, tail: int | None = None, job: RenderedJob | None = None) -> JobLogs:
        """The job's output: its last `tail` lines, or all it has when `tail` is None. `job`, when given, tells
        where the output went once the cloud no longer describes the job (a stopped ECS task after an hour)."""
        ...


def parse_job_configuration(
    model: type[ConfigurationModel], configuration: Mapping[str, Any], pool_type: str
) -> ConfigurationModel:
    """A rendered job configuration as the backend's model, or a TemplateError naming the first wrong field."""
    try:
        return model.model_validate(dict(configuration))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(configuration)"
        raise TemplateError(f"{pool_type} job configuration: {where}: {error['msg']}") from None
