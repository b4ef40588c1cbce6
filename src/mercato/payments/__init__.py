"""The payments module: payment records, the provider protocol, the sandbox and Stripe."""

from mercato.payments.domain import (
    CARD_NUMBER_PATTERN,
    DECLINED_CARD,
    ERROR_CARD,
    PAYMENT_METHOD_PATTERN,
    SUCCESS_CARD,
    AlreadyPaid,
    ChargeRequest,
    ChargeResult,
    Outcome,
    Payment,
    PaymentDeclined,
    PaymentMeans,
    PaymentOpening,
    PaymentProvider,
    ProviderError,
    Status,
    check_card,
    check_payment,
)
from mercato.payments.protocols import PaymentsForOrders
from mercato.payments.sandbox import SandboxProvider
from mercato.payments.service import PaymentsService
from mercato.payments.stripe import StripeProvider

__all__ = [
    "CARD_NUMBER_PATTERN",
    "DECLINED_CARD",
    "ERROR_CARD",
    "PAYMENT_METHOD_PATTERN",
    "SUCCESS_CARD",
    "AlreadyPaid",
    "ChargeRequest",
    "ChargeResult",
    "Outcome",
    "Payment",
    "PaymentDeclined",
    "PaymentMeans",
    "PaymentOpening",
    "PaymentProvider",
    "PaymentsForOrders",
    "PaymentsService",
    "ProviderError",
    "SandboxProvider",
    "Status",
    "StripeProvider",
    "check_card",
    "check_payment",
]
