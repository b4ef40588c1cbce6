from enum import StrEnum


class Switch(StrEnum):
    CHECKOUT = "checkout"
    DISCOUNT_CODES = "discount_codes"
    REALTIME = "realtime"

    def __str__(self) -> str:
        return str(self.value)
