"""The whole schema: importing this registers every module's tables on the shared metadata."""

from mercato.catalog import store as _catalog_store  # noqa: F401
from mercato.customers import store as _customers_store  # noqa: F401
from mercato.orders import store as _orders_store  # noqa: F401
from mercato.payments import store as _payments_store  # noqa: F401
from mercato.platform import backups as _backups  # noqa: F401
from mercato.platform import idempotency_store as _idempotency  # noqa: F401
from mercato.platform import outbox as _outbox  # noqa: F401
from mercato.platform import switches as _switches  # noqa: F401
from mercato.platform import throttle as _throttle  # noqa: F401
from mercato.platform.db import metadata
from mercato.webhooks import store as _webhooks_store  # noqa: F401

__all__ = ["metadata"]
