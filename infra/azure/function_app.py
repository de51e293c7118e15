"""The Azure Functions app (Python v2 programming model): the host indexes the `app` object imported here."""

from push_pools.triggers.azure_functions import app

__all__ = ["app"]
