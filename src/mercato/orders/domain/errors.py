"""The orders module's error codes, statuses and domain errors."""

from __future__ import annotations

from enum import StrEnum

from mercato.kernel.errors import Conflict, NotFound, PermissionDenied


class ErrorCode(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_DRAFT = "order_not_draft"
    INVALID_TRANSITION = "invalid_transition"
    EMPTY_ORDER = "empty_order"
    MISSING_ADDRESS = "missing_address"
    TOO_MANY_LINES = "too_many_lines"
    LINE_NOT_FOUND = "line_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_DISCOUNT = "invalid_discount_code"
    CHECKOUT_IN_PROGRESS = "checkout_in_progress"
    CHECKOUT_ABANDONED = "checkout_abandoned"
    ORDER_CONFLICT = "order_conflict"
    NOT_OWNER = "not_order_owner"
    INVALID_REASON = "invalid_reason"


class Status(StrEnum):
    DRAFT = "draft"
    PLACED = "placed"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


CANCELLABLE = frozenset({Status.DRAFT, Status.PLACED, Status.CONFIRMED})


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(ErrorCode.ORDER_NOT_FOUND, "no such order", order_id=order_id)


class OrderNotDraft(Conflict):
    def __init__(self, status: Status) -> None:
        super().__init__(
            ErrorCode.ORDER_NOT_DRAFT,
            f"only draft orders can be changed; this one is {status}",
            order_status=status.value,
        )


class InvalidTransition(Conflict):
    def __init__(self, action: str, status: Status) -> None:
        super().__init__(
            ErrorCode.INVALID_TRANSITION,
            f"cannot {action} an order that is {status}",
            order_status=status.value,
            action=action,
        )


class CheckoutInProgress(Conflict):
    retry_after = 1  # the checkout settles within seconds, or the reconciler settles it

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CHECKOUT_IN_PROGRESS, "the order is being paid for; try again shortly"
        )


class CheckoutAbandoned(Conflict):
    """The card was charged after the checkout had been given up as stuck; it is refunded."""

    retry_after = 1  # the draft is open again: the same request may place it now

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CHECKOUT_ABANDONED,
            "the payment arrived after the checkout had been given up; the charge is being "
            "refunded and the order is a draft again: place it again",
        )


class OrderConflict(Conflict):
    def __init__(self, order_id: str, *, current_version: int) -> None:
        super().__init__(
            ErrorCode.ORDER_CONFLICT,
            "the order was changed concurrently; reload it and retry",
            order_id=order_id,
            current_version=current_version,
        )


class NotOwner(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(ErrorCode.NOT_OWNER, "only the customer who owns the order can do this")
