"""Google Cloud Functions (2nd gen) source: deploy it twice, with entry point `webhook` (HTTP) and `pubsub`
(CloudEvent). Everything else is in `push_pools.platforms.gcp.function`."""

from push_pools.platforms.gcp.function import configure_logging, pubsub, webhook

configure_logging()

__all__ = ["pubsub", "webhook"]
