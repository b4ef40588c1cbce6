"""Events the webhooks module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from mercato.kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class WebhookEndpointEvent(DomainEvent):
    aggregate_type = "webhook_endpoint"
    aggregate_id_field = "endpoint_id"
    endpoint_id: str


@dataclass(frozen=True, kw_only=True)
class WebhookEndpointCreated(WebhookEndpointEvent):
    url: str
    event_types: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class WebhookEndpointChanged(WebhookEndpointEvent):
    url: str
    event_types: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True, kw_only=True)
class WebhookEndpointDeleted(WebhookEndpointEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class WebhookEndpointDisabled(WebhookEndpointEvent):
    """mercato stopped delivering to an endpoint: staff should look at it.

    ``reason`` is ``gone`` (the endpoint answered 410) or ``failing`` (every delivery failed
    since ``failing_since``, longer than the shop allows).
    """

    url: str
    reason: str
    failing_since: str | None
