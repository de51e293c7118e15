"""Google Cloud Functions (2nd gen) source: deploy it twice, with entry point `webhook` (HTTP) and `pubsub`
(CloudEvent). Everything else is in `push_pools.triggers.gcp_functions`."""

from push_pools.triggers.gcp_functions import configure_logging, pubsub, webhook

configure_logging()

__all__ = ["pubsub", "webhook"]
