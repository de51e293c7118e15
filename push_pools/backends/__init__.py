"""The pool types push-pools knows, and where each one's backend lives.

Backend modules are imported only when a pool of their type is used, so one platform's function never imports
another platform's SDK. Each platform's default base job template is a JSON file in its folder, readable with no SDK.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol, cast

from push_pools.errors import ConfigurationError

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
        PoolType("ecs", "aws", "aws", "ecs:push"),
        PoolType("cloud-run", "gcp", "gcp", "cloud-run-v2:push"),
        PoolType("aci", "azure", "azure", "azure-container-instance:push"),
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
    """The backend module of a pool type, imported now; a clear error when its extra is not installed."""
    known = pool_type(name)
    try:
        return cast(_BackendModule, importlib.import_module(known.module))
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith(known.package):
            raise ConfigurationError(f"pool type {known.name!r} is not available in this build") from exc
        hint = f"; install push-pools[{known.extra}]" if known.extra else ""
        raise ConfigurationError(f"pool type {known.name!r} needs {exc.name!r}{hint}") from exc
