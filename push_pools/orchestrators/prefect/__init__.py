"""Prefect's REST API as the orchestrator: a self-hosted Prefect server (or Prefect Cloud) holds the pools and runs."""

from push_pools.orchestrators.prefect.orchestrator import PrefectOrchestrator

__all__ = ["PrefectOrchestrator"]
