"""Where pools, deployments and runs live: the embedded store (default) or Prefect's API."""

from __future__ import annotations

from push_pools.orchestrators.base import Catalog, ClaimResult, Orchestrator, RunEnvironment
from push_pools.settings import Settings

__all__ = ["Catalog", "ClaimResult", "Orchestrator", "RunEnvironment", "orchestrator_from_settings"]


def orchestrator_from_settings(settings: Settings, *, read_only: bool = False) -> Catalog:
    """The orchestrator `PUSH_POOL_ORCHESTRATOR` names, built from settings and the environment; `read_only` opens
    the embedded store for reading only (Prefect's API is the same either way)."""
    if settings.orchestrator == "prefect":
        from push_pools.orchestrators.prefect import PrefectOrchestrator

        return PrefectOrchestrator.from_settings(settings)
    from push_pools.orchestrators.local import LocalStore

    return LocalStore(settings.store_path, journal_mode=settings.store_journal_mode, read_only=read_only)
