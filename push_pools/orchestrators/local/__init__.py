"""The embedded store: pools, deployments and runs in one SQLite file, no orchestrator needed."""

from push_pools.orchestrators.local.schema import NewRun
from push_pools.orchestrators.local.store import LocalStore

__all__ = ["LocalStore", "NewRun"]
