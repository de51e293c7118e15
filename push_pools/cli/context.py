"""The CLI's settings and orchestrator, built once per invocation from the environment."""

from __future__ import annotations

from functools import cache

from push_pools.orchestrators import Catalog, orchestrator_from_settings
from push_pools.settings import Settings


@cache
def settings() -> Settings:
    return Settings()


@cache
def catalog() -> Catalog:
    """The configured orchestrator (`PUSH_POOL_ORCHESTRATOR`): the embedded store unless told otherwise."""
    return orchestrator_from_settings(settings())


@cache
def reader() -> Catalog:
    """The orchestrator for a command that only reads (ls, inspect, logs): the embedded store opened read-only, so
    it never waits behind a writer."""
    return orchestrator_from_settings(settings(), read_only=True)


def reset() -> None:
    """Forget the cached settings and orchestrator (each test invocation reads its own environment)."""
    settings.cache_clear()
    catalog.cache_clear()
    reader.cache_clear()
