"""HTTP API of the customers module: registration, tokens, accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mercato.customers.domain import MAX_PASSWORD, MIN_PASSWORD, Customer, ErrorCode
from mercato.customers.service import CustomersService
from mercato.kernel.values import EMAIL_PATTERN, ValueError_
from mercato.platform.deps import CurrentUser, ResourceId, StaffUser
from mercato.platform.error_codes import ErrorCode as PlatformCode
from mercato.platform.openapi import problems
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.schemas import NOT_BLANK, Text
from mercato.platform.throttle import client_address

router = APIRouter(prefix="/v1", tags=["customers"])


async def _service(request: Request) -> CustomersService:
    service: CustomersService = request.app.state.customers
    return service


Service = Annotated[CustomersService, Depends(_service)]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The domain checks e-mail, password and name (422 invalid_email, weak_password,
    # invalid_name); the document states the same rules from the same constants.
    email: Annotated[
        Text,
        Field(
            max_length=254,
            examples=["ada@example.com"],
            json_schema_extra={"pattern": EMAIL_PATTERN},
        ),
    ]
    password: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1024,
            description="8-128 characters, not one of the most common passwords",
            json_schema_extra={"minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD},
        ),
    ]
    name: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=200,
            examples=["Ada Lovelace"],
            json_schema_extra={"pattern": NOT_BLANK},
        ),
    ]


class CustomerRead(BaseModel):
    id: str
    email: str
    name: str
    role: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, customer: Customer) -> CustomerRead:
        return cls(
            id=customer.id,
            email=str(customer.email),
            name=customer.name,
            role=customer.role.value,
            active=customer.active,
            created_at=customer.created_at,
        )


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[Text, Field(max_length=254)]
    password: Annotated[str, Field(max_length=1024)]


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    customer_id: str
    role: str


_NOT_FOUND = {404: [ErrorCode.CUSTOMER_NOT_FOUND]}
_CHANGE = {**_NOT_FOUND, 409: [ErrorCode.CUSTOMER_CONFLICT]}


@router.post(
    "/customers",
    status_code=201,
    response_model=CustomerRead,
    responses={
        201: {
            "description": "The new account",
            "links": {
                "IssueToken": {
                    "operationId": "issue_token",
                    "description": "Log in with the e-mail and password just registered",
                    "requestBody": {
                        "email": "$request.body#/email",
                        "password": "$request.body#/password",
                    },
                }
            },
        }
    },
    openapi_extra=problems(
        {
            409: [ErrorCode.EMAIL_TAKEN],
            422: [
                ErrorCode.WEAK_PASSWORD,
                ErrorCode.COMMON_PASSWORD,
                ErrorCode.INVALID_NAME,
                ValueError_.INVALID_EMAIL,
            ],
        }
    ),
)
async def register(body: CustomerCreate, service: Service) -> CustomerRead:
    """Register a customer account."""
    customer = await service.register(email=body.email, password=body.password, name=body.name)
    return CustomerRead.of(customer)


@router.post(
    "/auth/token",
    response_model=TokenRead,
    openapi_extra=problems(
        {
            401: [ErrorCode.INVALID_CREDENTIALS],
            403: [ErrorCode.ACCOUNT_INACTIVE],
            429: [PlatformCode.TOO_MANY_ATTEMPTS],
        }
    ),
)
async def issue_token(
    body: TokenCreate, service: Service, request: Request, response: Response
) -> TokenRead:
    """Exchange e-mail and password for a bearer token.

    Repeated failures for one e-mail, or from one client address, answer 429 with Retry-After
    until their window ends (MERCATO_LOGIN_* settings).
    """
    issued = await service.login(
        email=body.email, password=body.password, client=client_address(request.client)
    )
    # a credential: no cache (browser, proxy) may keep it (RFC 6749, section 5.1)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenRead(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        customer_id=issued.customer.id,
        role=issued.customer.role.value,
    )


@router.get("/customers/me", response_model=CustomerRead, openapi_extra=problems(_NOT_FOUND))
async def read_me(user: CurrentUser, service: Service) -> CustomerRead:
    """The calling account."""
    return CustomerRead.of(await service.get(user.user_id))


@router.get("/customers", response_model=CustomerPage)
async def list_customers(
    _: StaffUser,
    service: Service,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> CustomerPage:
    """All accounts, oldest first (staff only)."""
    page = await service.list_accounts(after=decode_cursor(cursor), limit=limit)
    return CustomerPage(
        items=[CustomerRead.of(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/customers/{customer_id}", response_model=CustomerRead, openapi_extra=problems(_NOT_FOUND)
)
async def read_customer(customer_id: ResourceId, _: StaffUser, service: Service) -> CustomerRead:
    """One account (staff only)."""
    return CustomerRead.of(await service.get(customer_id))


@router.post(
    "/customers/{customer_id}/deactivate",
    response_model=CustomerRead,
    openapi_extra=problems(
        {
            **_CHANGE,
            409: [ErrorCode.CANNOT_DEACTIVATE_SELF, ErrorCode.LAST_ACTIVE_STAFF, *_CHANGE[409]],
        }
    ),
)
async def deactivate(customer_id: ResourceId, user: StaffUser, service: Service) -> CustomerRead:
    """Deactivate an account: it can no longer log in or order (staff only).

    Never your own account (409 ``cannot_deactivate_self``), nor the last active staff account
    (409 ``last_active_staff``).
    """
    changed = await service.set_active(customer_id, active=False, actor_id=user.user_id)
    return CustomerRead.of(changed)


@router.post(
    "/customers/{customer_id}/activate",
    response_model=CustomerRead,
    openapi_extra=problems(_CHANGE),
)
async def activate(customer_id: ResourceId, _: StaffUser, service: Service) -> CustomerRead:
    """Re-activate an account (staff only)."""
    return CustomerRead.of(await service.set_active(customer_id, active=True))
