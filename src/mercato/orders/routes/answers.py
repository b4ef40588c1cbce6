"""The error answers of each orders operation, for the OpenAPI document (beyond the platform's
own: authentication, validation, idempotency, availability; see mercato.platform.openapi)."""

from __future__ import annotations

from typing import Any

from mercato.kernel.money import MoneyError
from mercato.kernel.values import ValueError_
from mercato.orders.domain import ErrorCode
from mercato.platform.error_codes import ErrorCode as PlatformCode
from mercato.platform.openapi import link, problems

# codes of the catalog, payments and the platform, which orders answer as they come
SWITCHED_OFF = "switched_off"
TOO_MANY_WAITING = "too_many_waiting"

_SEE = {404: [ErrorCode.ORDER_NOT_FOUND]}
_DRAFT = {
    **_SEE,
    403: [ErrorCode.NOT_OWNER],
    409: [ErrorCode.ORDER_CONFLICT, ErrorCode.ORDER_NOT_DRAFT, ErrorCode.CHECKOUT_IN_PROGRESS],
}
_PRODUCT_404 = [ErrorCode.ORDER_NOT_FOUND, "product_not_found"]
_LINE_422 = [
    ErrorCode.TOO_MANY_LINES,
    ErrorCode.CURRENCY_MISMATCH,
    ValueError_.INVALID_QUANTITY,
    MoneyError.CURRENCY_MISMATCH,
]
_CODES_429 = [PlatformCode.TOO_MANY_ATTEMPTS]


def _with(base: dict[int, list[Any]], **more: list[Any]) -> dict[str, Any]:
    codes = {status: list(found) for status, found in base.items()}
    for status, found in more.items():
        codes.setdefault(int(status.removeprefix("s")), []).extend(found)
    return problems(codes)


_ORDER_ID = "$response.body#/id"
CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The draft order",
        "links": {
            "PlaceOrder": link("place_order", "Pay for and place it", order_id=_ORDER_ID),
            "AddLine": link("add_line", "Add a product", order_id=_ORDER_ID),
            "SetAddresses": link("set_addresses", "Say where it goes", order_id=_ORDER_ID),
            "ReadOrder": link("read_order", "Follow it", order_id=_ORDER_ID),
            "CancelOrder": link("cancel_order", "Cancel it", order_id=_ORDER_ID),
        },
    }
}
PLACED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The placed order",
        "links": {
            "ListPayments": link("list_payments", "Its payment", order_id=_ORDER_ID),
            "ConfirmOrder": link("confirm_order", "Accept it (staff)", order_id=_ORDER_ID),
            "CancelOrder": link("cancel_order", "Cancel and refund it", order_id=_ORDER_ID),
        },
    }
}
SEE = problems(_SEE)
READ = _with(_SEE, s503=[TOO_MANY_WAITING, SWITCHED_OFF])
ORDER = _with(_DRAFT, s422=[ValueError_.INVALID_ADDRESS])
CREATE = _with(
    {},
    s404=["product_not_found"],
    s409=["product_inactive"],
    s422=[
        *_LINE_422,
        MoneyError.INVALID_CURRENCY,
        ValueError_.INVALID_ADDRESS,
        ErrorCode.INVALID_DISCOUNT,
    ],
    s429=_CODES_429,
    s503=[SWITCHED_OFF],
)
LINES = _with(_DRAFT, s404=_PRODUCT_404[1:], s409=["product_inactive"], s422=_LINE_422)
LINE = _with(_DRAFT, s404=[ErrorCode.LINE_NOT_FOUND], s422=[ValueError_.INVALID_QUANTITY])
DISCOUNT = _with(_DRAFT, s422=[ErrorCode.INVALID_DISCOUNT], s429=_CODES_429, s503=[SWITCHED_OFF])
PLACE = _with(
    _DRAFT,
    s402=["payment_declined"],
    s409=[
        "out_of_stock",
        "product_inactive",
        "product_not_found",
        ErrorCode.CHECKOUT_ABANDONED,
        "order_already_paid",
        "payment_conflict",
    ],
    s422=[
        ErrorCode.EMPTY_ORDER,
        ErrorCode.MISSING_ADDRESS,
        ErrorCode.CURRENCY_MISMATCH,
        "invalid_card",
        "invalid_payment_method",
        "payment_method_required",
        "payment_method_ambiguous",
    ],
    s503=["payment_provider_error", SWITCHED_OFF],
)
FULFIL = _with(
    _SEE,
    s403=["staff_only"],
    s409=[ErrorCode.ORDER_CONFLICT, ErrorCode.INVALID_TRANSITION, ErrorCode.CHECKOUT_IN_PROGRESS],
)
CANCEL = _with(
    _SEE,
    s403=[ErrorCode.NOT_OWNER],
    s409=[
        ErrorCode.ORDER_CONFLICT,
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.CHECKOUT_IN_PROGRESS,
        "invalid_payment_transition",
    ],
    s422=[ErrorCode.INVALID_REASON],
    s503=["payment_provider_error"],
)
