"""Webhook endpoints, their deliveries and the retry schedule: pure rules, no I/O."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from mercato.kernel.errors import Conflict, InvalidValue, NotFound
from mercato.kernel.events import AggregateRoot
from mercato.kernel.values import check_text
from mercato.webhooks.events import (
    WebhookEndpointChanged,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
)

MAX_URL = 2000
MAX_EVENT_TYPES = 50
ALL_EVENTS = "*"

# The retry schedule (docs/webhooks.md): the first attempt at once, then retries after about
# 1 min, 3 min, 9 min, 27 min, 1.4 h, 4 h, 12 h, 18 h, 18 h and 18 h: 11 attempts over about
# three days. Each delay is stretched or shrunk by up to JITTER, so endpoints that failed
# together are not all retried in the same second.
FIRST_RETRY = timedelta(minutes=1)
BACKOFF_FACTOR = 3
MAX_RETRY_DELAY = timedelta(hours=18)
MAX_ATTEMPTS = 11
JITTER = 0.2


class ErrorCode(StrEnum):
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    DELIVERY_NOT_FOUND = "delivery_not_found"
    INVALID_WEBHOOK_URL = "invalid_webhook_url"
    WEBHOOK_URL_NOT_PUBLIC = "webhook_url_not_public"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    WEBHOOK_CONFLICT = "webhook_conflict"


class WebhookNotFound(NotFound):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(
            ErrorCode.WEBHOOK_NOT_FOUND, "no such webhook endpoint", endpoint_id=endpoint_id
        )


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(
            ErrorCode.DELIVERY_NOT_FOUND,
            "no such delivery for this endpoint",
            delivery_id=delivery_id,
        )


class InvalidWebhookUrl(InvalidValue):
    def __init__(self, reason: str) -> None:
        super().__init__(ErrorCode.INVALID_WEBHOOK_URL, reason, field="url")


class WebhookUrlNotPublic(InvalidValue):
    """The URL's host is, or resolves to, an address mercato must not call (SSRF)."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(
            ErrorCode.WEBHOOK_URL_NOT_PUBLIC,
            f"{host} is not a public address ({address}); webhooks go to the internet only",
            field="url",
        )


class UnknownEventType(InvalidValue):
    def __init__(self, event_type: str, index: int) -> None:
        super().__init__(
            ErrorCode.UNKNOWN_EVENT_TYPE,
            f"no event is called {event_type!r}",
            field=f"event_types[{index}]",
        )


class WebhookConflict(Conflict):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(
            ErrorCode.WEBHOOK_CONFLICT,
            "the webhook endpoint changed concurrently",
            endpoint_id=endpoint_id,
        )


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    SUCCEEDED = "succeeded"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: attempts exhausted, or the endpoint is gone (410)


class DisabledReason(StrEnum):
    STAFF = "staff"
    GONE = "gone"  # the endpoint answered 410 Gone
    FAILING = "failing"  # every delivery failed for longer than the shop allows


def check_url(url: str, *, require_https: bool) -> str:
    """An absolute http(s) URL without credentials; InvalidWebhookUrl otherwise."""
    check_text(url, field="url")
    if len(url) > MAX_URL:
        raise InvalidWebhookUrl(f"url must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl("url is not a valid URL") from None
    allowed = ("https",) if require_https else ("http", "https")
    if parts.scheme not in allowed:
        raise InvalidWebhookUrl(f"url must start with {' or '.join(allowed)}://")
    if not parts.hostname:
        raise InvalidWebhookUrl("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("url must not carry credentials; use the signing secret")
    if port == 0:
        raise InvalidWebhookUrl("url must not use port 0")
    return url


def check_event_types(event_types: list[str], known: frozenset[str]) -> tuple[str, ...]:
    """The event types, de-duplicated in their order; UnknownEventType for one not in ``known``."""
    chosen: list[str] = []
    for index, event_type in enumerate(event_types):
        if event_type != ALL_EVENTS and event_type not in known:
            raise UnknownEventType(event_type, index)
        if event_type not in chosen:
            chosen.append(event_type)
    return tuple(chosen)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def retry_delay(attempts: int, *, jitter: float) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts, or None once they are all spent.

    ``jitter`` is a factor in ``[1 - JITTER, 1 + JITTER]`` chosen by the caller.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    factor: int = BACKOFF_FACTOR ** max(attempts - 1, 0)
    base = min(FIRST_RETRY * factor, MAX_RETRY_DELAY)
    return base * min(max(jitter, 1 - JITTER), 1 + JITTER)


def should_disable(failing_since: datetime | None, now: datetime, *, after: timedelta) -> bool:
    """Whether an endpoint failing since ``failing_since`` has failed for too long."""
    return failing_since is not None and now - failing_since >= after


@dataclass(eq=False)
class WebhookEndpoint(AggregateRoot):
    """Where staff want events sent, which ones, and whether mercato still sends them."""

    id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    enabled: bool
    description: str
    created_at: datetime
    disabled_reason: DisabledReason | None = None
    failing_since: datetime | None = None
    version: int = 1

    @classmethod
    def register(
        cls,
        *,
        id: str,
        url: str,
        event_types: tuple[str, ...],
        description: str,
        enabled: bool,
        now: datetime,
    ) -> WebhookEndpoint:
        """A new endpoint with a fresh signing secret."""
        reason = None if enabled else DisabledReason.STAFF
        endpoint = cls(id, url, event_types, new_secret(), enabled, description, now, reason)
        endpoint.record(WebhookEndpointCreated(endpoint_id=id, url=url, event_types=event_types))
        return endpoint

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribed to the event type."""
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def change(
        self,
        *,
        url: str | None = None,
        event_types: tuple[str, ...] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> None:
        """Apply a staff edit; enabling again forgets past failures."""
        before = (self.url, self.event_types, self.description, self.enabled)
        self.url = self.url if url is None else url
        self.event_types = self.event_types if event_types is None else event_types
        self.description = self.description if description is None else description
        if enabled is not None and enabled != self.enabled:
            self.enabled = enabled
            self.disabled_reason = None if enabled else DisabledReason.STAFF
            self.failing_since = None
        if (self.url, self.event_types, self.description, self.enabled) != before:
            self.version += 1
            self.record(
                WebhookEndpointChanged(
                    endpoint_id=self.id,
                    url=self.url,
                    event_types=self.event_types,
                    enabled=self.enabled,
                )
            )

    def delete(self) -> None:
        """Record that staff removed the endpoint (the repository deletes the rows)."""
        self.version += 1
        self.record(WebhookEndpointDeleted(endpoint_id=self.id))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request of a delivery and what came of it."""

    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint: its status and how often it was tried."""

    id: str
    endpoint_id: str
    event_seq: int
    event_type: str
    payload: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
