"""The Azure Functions app (Python v2 programming model): the host indexes the `app` object imported here."""

from push_pools.platforms.azure.function import app

__all__ = ["app"]
