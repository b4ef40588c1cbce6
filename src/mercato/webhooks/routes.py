"""HTTP API of the webhooks module: staff manage endpoints and read or replay deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mercato.platform.deps import ResourceId, StaffUser
from mercato.platform.error_codes import ErrorCode as PlatformCode
from mercato.platform.openapi import problems
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.schemas import Text
from mercato.webhooks.domain import (
    MAX_EVENT_TYPES,
    MAX_URL,
    Attempt,
    Delivery,
    ErrorCode,
    WebhookEndpoint,
)
from mercato.webhooks.service import DeliveryLog, WebhooksService

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def _service(request: Request) -> WebhooksService:
    service: WebhooksService = request.app.state.webhooks
    return service


Service = Annotated[WebhooksService, Depends(_service)]
EventType = Annotated[Text, Field(min_length=1, max_length=60, examples=["OrderPlaced"])]
Url = Annotated[Text, Field(min_length=1, max_length=MAX_URL, examples=["https://example.com/h"])]
Description = Annotated[Text, Field(max_length=200)]
Cursor = Annotated[Text | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=MAX_EVENT_TYPES)]
    description: Description = ""
    enabled: Annotated[bool, Field(strict=True)] = True


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    event_types: Annotated[
        list[EventType] | None, Field(min_length=1, max_length=MAX_EVENT_TYPES)
    ] = None
    description: Description | None = None
    enabled: Annotated[bool | None, Field(strict=True)] = None


class EndpointRead(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointRead:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            failing_since=endpoint.failing_since,
            created_at=endpoint.created_at,
        )


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...): shown this once only."
    )


class EndpointPage(BaseModel):
    items: list[EndpointRead]
    next_cursor: str | None


class AttemptRead(BaseModel):
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptRead:
        return cls(
            number=attempt.number,
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


class DeliveryRead(BaseModel):
    id: str = Field(description="Sent as webhook-id, the same on every retry and replay")
    event_type: str
    event_sequence: int
    status: str = Field(
        description="pending (due at next_attempt_at), succeeded (the endpoint answered 2xx) "
        "or failed (given up: attempts exhausted, or the endpoint answered 410 Gone)"
    )
    attempts: int = Field(description="Requests sent so far; a replay adds to them")
    next_attempt_at: datetime | None = Field(
        description="When a pending delivery is next due; null once it succeeded or failed"
    )
    last_status_code: int | None = Field(
        description="The endpoint's HTTP status to the latest attempt; null before the first, "
        "or when that attempt got no answer (see last_error)"
    )
    last_error: str | None = Field(
        description="Why the latest attempt got no HTTP answer (a timeout, a refused connection, "
        "an address mercato will not call); null when it got one"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryRead:
        return cls(
            id=delivery.id,
            event_type=delivery.event_type,
            event_sequence=delivery.event_seq,
            status=delivery.status.value,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )


class DeliveryDetail(DeliveryRead):
    attempt_log: list[AttemptRead]

    @classmethod
    def of_log(cls, log: DeliveryLog) -> DeliveryDetail:
        base = DeliveryRead.of(log.delivery).model_dump()
        return cls(**base, attempt_log=[AttemptRead.of(a) for a in log.attempts])


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None


# The answers each operation documents beyond the platform's own (mercato.platform.openapi).
_URL_REFUSED = [
    ErrorCode.INVALID_WEBHOOK_URL,
    ErrorCode.WEBHOOK_URL_NOT_PUBLIC,
    ErrorCode.UNKNOWN_EVENT_TYPE,
]
_ENDPOINT = {404: [ErrorCode.WEBHOOK_NOT_FOUND]}
_DELIVERY = {404: [ErrorCode.WEBHOOK_NOT_FOUND, ErrorCode.DELIVERY_NOT_FOUND]}
_PAGE = {422: [PlatformCode.INVALID_CURSOR]}


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    openapi_extra=problems({422: _URL_REFUSED}),
)
async def create_endpoint(body: EndpointCreate, _: StaffUser, service: Service) -> EndpointCreated:
    """Register an endpoint (staff only). The answer holds its signing secret, shown only here.

    Outside dev and test, a URL whose host is or resolves to a loopback, private, link-local or
    otherwise non-public address is refused (422 ``webhook_url_not_public``).
    """
    endpoint = await service.create(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointCreated(**EndpointRead.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=EndpointPage, openapi_extra=problems(_PAGE))
async def list_endpoints(
    _: StaffUser, service: Service, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE
) -> EndpointPage:
    """Every endpoint, oldest first (staff only)."""
    page = await service.list_endpoints(after=decode_cursor(cursor), limit=limit)
    return EndpointPage(
        items=[EndpointRead.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.get("/{endpoint_id}", response_model=EndpointRead, openapi_extra=problems(_ENDPOINT))
async def read_endpoint(endpoint_id: ResourceId, _: StaffUser, service: Service) -> EndpointRead:
    """One endpoint, without its secret (staff only)."""
    return EndpointRead.of(await service.get(endpoint_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointRead,
    openapi_extra=problems({**_ENDPOINT, 409: [ErrorCode.WEBHOOK_CONFLICT], 422: _URL_REFUSED}),
)
async def update_endpoint(
    endpoint_id: ResourceId, body: EndpointUpdate, _: StaffUser, service: Service
) -> EndpointRead:
    """Change the URL, event types, description or whether it is enabled (staff only).

    Enabling a disabled endpoint forgets its failures; its pending deliveries are sent again.
    """
    changed = await service.update(
        endpoint_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointRead.of(changed)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    openapi_extra=problems(_ENDPOINT),
)
async def delete_endpoint(endpoint_id: ResourceId, _: StaffUser, service: Service) -> Response:
    """Remove an endpoint and its delivery log (staff only)."""
    await service.delete(endpoint_id)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    openapi_extra=problems({**_ENDPOINT, **_PAGE}),
)
async def list_deliveries(
    endpoint_id: ResourceId,
    _: StaffUser,
    service: Service,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> DeliveryPage:
    """The endpoint's delivery log, newest first (staff only)."""
    page = await service.deliveries(endpoint_id, before=decode_cursor(cursor), limit=limit)
    return DeliveryPage(
        items=[DeliveryRead.of(d) for d in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    openapi_extra=problems(_DELIVERY),
)
async def read_delivery(
    endpoint_id: ResourceId, delivery_id: ResourceId, _: StaffUser, service: Service
) -> DeliveryDetail:
    """One delivery with every attempt: when, the response code or error, how long (staff only)."""
    return DeliveryDetail.of_log(await service.delivery(endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryDetail,
    openapi_extra=problems(_DELIVERY),
)
async def replay_delivery(
    endpoint_id: ResourceId, delivery_id: ResourceId, _: StaffUser, service: Service
) -> DeliveryDetail:
    """Send a delivery again now, with the same webhook-id, whatever became of it (staff only)."""
    return DeliveryDetail.of_log(await service.replay(endpoint_id, delivery_id))
