"""Webhook persistence: endpoints (an aggregate), their deliveries and each delivery's attempts."""

from mercato.webhooks.store.deliveries import DeliveryRepository, Target
from mercato.webhooks.store.endpoints import EndpointRepository
from mercato.webhooks.store.tables import attempts, deliveries, endpoints

__all__ = [
    "DeliveryRepository",
    "EndpointRepository",
    "Target",
    "attempts",
    "deliveries",
    "endpoints",
]
