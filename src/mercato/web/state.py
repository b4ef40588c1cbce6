"""``app.state`` of mercato's application: one typed object, built once from the container."""

from __future__ import annotations

from mercato.bootstrap import Container
from mercato.catalog import CatalogService
from mercato.config import Settings
from mercato.customers import CustomersService
from mercato.orders import OrdersService
from mercato.platform.appstate import PlatformState
from mercato.platform.lifecycle import Lifecycle
from mercato.webhooks import WebhooksService


class AppState(PlatformState):
    """Everything the application's requests read: the platform's parts and the services."""

    container: Container  # the composition root, for tools and tests
    settings: Settings
    customers: CustomersService
    catalog: CatalogService
    orders: OrdersService
    webhooks: WebhooksService

    def __init__(self, container: Container, lifecycle: Lifecycle) -> None:
        super().__init__(
            auth=container.auth,
            lifecycle=lifecycle,
            switches=container.switches,
            metrics=container.metrics,
            notifier=container.notifier,
        )
        self.container = container
        self.settings = container.settings
        self.customers = container.customers
        self.catalog = container.catalog
        self.orders = container.orders
        self.webhooks = container.webhooks
