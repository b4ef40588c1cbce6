from enum import StrEnum


class FollowAllOrdersTypeItem(StrEnum):
    ORDERCANCELLED = "OrderCancelled"
    ORDERCONFIRMED = "OrderConfirmed"
    ORDERDELIVERED = "OrderDelivered"
    ORDERPLACED = "OrderPlaced"
    ORDERSHIPPED = "OrderShipped"

    def __str__(self) -> str:
        return str(self.value)
