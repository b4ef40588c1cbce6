from enum import StrEnum


class Signal(StrEnum):
    SEMANTIC = "semantic"
    SKU = "sku"
    TRIGRAMS = "trigrams"
    WORDS = "words"

    def __str__(self) -> str:
        return str(self.value)
