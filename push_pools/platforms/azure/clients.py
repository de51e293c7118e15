"""The ARM clients of the ACI backend, one per subscription, built once per function instance.

SDK retries are off (`retry_total=0`): the dispatcher owns retries and their deadline, and a 429's Retry-After
reaches it instead of being slept on inside the SDK. Timeouts: 10 s to connect, 30 s to read (the SDK's default
read timeout, 300 s, would outlast the function).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from push_pools.backends.kit.cache import TtlCache

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

ARM_ENDPOINT = "https://management.azure.com"
CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 30}


class ArmClients:
    """One ContainerInstanceManagementClient per subscription, built on first use and kept for the instance."""

    def __init__(self, credential: TokenCredential, *, base_url: str = ARM_ENDPOINT, **options: Any) -> None:
        self._credential = credential
        self._base_url = base_url
        self._options = CLIENT_OPTIONS | options
        self._clients: TtlCache[str, ContainerInstanceManagementClient] = TtlCache()

    def __call__(self, subscription_id: str) -> ContainerInstanceManagementClient:
        from azure.mgmt.containerinstance import ContainerInstanceManagementClient

        return self._clients.get_or_compute(
            subscription_id,
            lambda: ContainerInstanceManagementClient(
                self._credential, subscription_id, base_url=self._base_url, **self._options
            ),
        )
