"""The pool types push-pools knows, and where each one's backend lives.

Backend modules are imported only when a pool of their type is used, so one platform's function never imports
another platform's SDK. Each platform's default base job template is a JSON file in its folder, readable with no SDK.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol, cast

from push_pools.errors import ConfigurationError, ExecutorNotReadyError

if TYPE_CHECKING:
    from push_pools.backends.base import Backend, RunContext
    from push_pools.settings import Settings


@dataclass(frozen=True)
class PoolType:
    """One kind of infrastructure: the platform folder it lives in, the extra that installs its SDK, Prefect's name."""

    name: str
    platform: str
    """Its folder under `push_pools/platforms/`: the backend module and the default template are there."""
    extra: str | None
    prefect_type: str
    """The type Prefect gives a push pool of this kind (`ecs:push`), or the plain worker type for `process`."""
    sdk: str | None = None
    """The module its extra installs, imported by the backend only when it builds its clients."""

    @property
    def package(self) -> str:
        return f"push_pools.platforms.{self.platform}"

    @property
    def module(self) -> str:
        return f"{self.package}.backend"


POOL_TYPES: dict[str, PoolType] = {
    pool_type.name: pool_type
    for pool_type in (
        PoolType("process", "local", None, "process"),
        PoolType("ecs", "aws", "aws", "ecs:push", "boto3"),
        PoolType("cloud-run", "gcp", "gcp", "cloud-run-v2:push", "google.cloud.run_v2"),
        PoolType("aci", "azure", "azure", "azure-container-instance:push", "azure.mgmt.containerinstance"),
    )
}


class _BackendModule(Protocol):
    def build_request(
        self, configuration: dict[str, Any], run: RunContext, settings: Settings | None = None
    ) -> dict[str, Any]: ...

    def from_settings(self, settings: Settings) -> Backend: ...


def pool_type(name: str) -> PoolType:
    """The pool type called `name` (ours, or Prefect's with or without `:push`: `ecs`, `cloud-run-v2`,
    `azure-container-instance:push`), or a ConfigurationError listing the known ones."""
    for known in POOL_TYPES.values():
        if name in (known.name, known.prefect_type, known.prefect_type.removesuffix(":push")):
            return known
    prefect_names = ", ".join(known.prefect_type for known in POOL_TYPES.values())
    raise ConfigurationError(
        f"unknown pool type {name!r}; known types: {', '.join(POOL_TYPES)} (Prefect's names: {prefect_names})"
    )


def pool_type_names() -> list[str]:
    """Every name `pool_type` accepts: ours, then Prefect's without and with `:push`."""
    names = [known.name for known in POOL_TYPES.values()]
    names += [known.prefect_type.removesuffix(":push") for known in POOL_TYPES.values()]
    names += [known.prefect_type for known in POOL_TYPES.values()]
    return list(dict.fromkeys(names))


def default_base_job_template(name: str) -> dict[str, Any]:
    """A fresh copy of the pool type's default base job template."""
    text = resources.files(pool_type(name).package).joinpath("template.json").read_text()
    return cast(dict[str, Any], json.loads(text))


def backend_module(name: str) -> _BackendModule:
    """The backend module of a pool type, imported now; ExecutorNotReadyError when its extra is not installed."""
    known = pool_type(name)
    try:
        return cast(_BackendModule, importlib.import_module(known.module))
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith(known.package):
            raise ExecutorNotReadyError(f"pool type {known.name!r} is not available in this build") from exc
        raise missing_module(known.name, exc.name) from exc


def missing_module(name: str, module: str | None) -> ExecutorNotReadyError:
    """The error for a pool type whose SDK `module` cannot be imported: which extra to install."""
    known = pool_type(name)
    hint = f"; install push-pools[{known.extra}]" if known.extra else ""
    return ExecutorNotReadyError(f"pool type {known.name!r} needs {module!r}{hint}")


def unavailable_reason(name: str) -> str | None:
    """Why this installation cannot serve pools of this type (its extra is not installed), or None if it can."""
    try:
        backend_module(name)
        sdk = pool_type(name).sdk
        if sdk is not None and _find_spec(sdk) is None:
            raise missing_module(name, sdk)
    except ExecutorNotReadyError as exc:
        return str(exc)
    return None


def _find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing
        return None
