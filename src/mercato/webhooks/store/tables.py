"""The webhooks tables and the mapping of their rows to domain objects."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from mercato.platform.db import Row, metadata
from mercato.webhooks.domain import (
    Delivery,
    DeliveryStatus,
    DisabledReason,
    WebhookEndpoint,
)

endpoints = sa.Table(
    "webhooks_endpoints",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event_types", sa.Text(), nullable=False),  # a JSON array
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_reason", sa.String(16), nullable=True),
    sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
)

deliveries = sa.Table(
    "webhooks_deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("endpoint_id", sa.String(36), sa.ForeignKey("webhooks_endpoints.id"), nullable=False),
    sa.Column("event_seq", sa.BigInteger(), nullable=False),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # one delivery per event and endpoint, however often the relay hands the event over
    sa.UniqueConstraint("endpoint_id", "event_seq"),
    sa.Index("ix_webhooks_deliveries_endpoint", "endpoint_id", "id"),
    sa.Index(
        "ix_webhooks_deliveries_due",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
)

attempts = sa.Table(
    "webhooks_attempts",
    metadata,
    sa.Column(
        "delivery_id", sa.String(36), sa.ForeignKey("webhooks_deliveries.id"), primary_key=True
    ),
    sa.Column("number", sa.Integer(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
)


def endpoint_row(endpoint: WebhookEndpoint) -> dict[str, object]:
    """The ``webhooks_endpoints`` row of an endpoint."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": orjson.dumps(list(endpoint.event_types)).decode(),
        "secret": endpoint.secret,
        "enabled": endpoint.enabled,
        "description": endpoint.description,
        "created_at": endpoint.created_at,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "version": endpoint.version,
    }


def endpoint_from_row(row: Row) -> WebhookEndpoint:
    """The endpoint a ``webhooks_endpoints`` row holds."""
    reason = row["disabled_reason"]
    return WebhookEndpoint(
        id=row["id"],
        url=row["url"],
        event_types=tuple(orjson.loads(row["event_types"])),
        secret=row["secret"],
        enabled=bool(row["enabled"]),
        description=row["description"],
        created_at=row["created_at"],
        disabled_reason=None if reason is None else DisabledReason(reason),
        failing_since=row["failing_since"],
        version=row["version"],
    )


def delivery_from_row(row: Row) -> Delivery:
    """The delivery a ``webhooks_deliveries`` row holds."""
    return Delivery(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_seq=row["event_seq"],
        event_type=row["event_type"],
        payload=row["payload"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
