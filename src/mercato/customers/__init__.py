"""The customers module: accounts, login, activation. Its facade for other modules."""

from mercato.customers.domain import Customer, CustomerInactive, CustomerNotFound, Role
from mercato.customers.protocols import CustomersForOrders
from mercato.customers.service import CustomersService

__all__ = [
    "Customer",
    "CustomerInactive",
    "CustomerNotFound",
    "CustomersForOrders",
    "CustomersService",
    "Role",
]
