"""The webhooks module: endpoints staff register, signed deliveries of every committed event."""

from mercato.webhooks.addresses import AddressGuard
from mercato.webhooks.service import DeliveryLog, WebhooksService

__all__ = ["AddressGuard", "DeliveryLog", "WebhooksService"]
