from enum import StrEnum


class Status(StrEnum):
    CANCELLED = "cancelled"
    CONFIRMED = "confirmed"
    DELIVERED = "delivered"
    DRAFT = "draft"
    PLACED = "placed"
    SHIPPED = "shipped"

    def __str__(self) -> str:
        return str(self.value)
