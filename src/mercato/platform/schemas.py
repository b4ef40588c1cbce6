"""Pydantic models shared by every module's API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mercato.kernel.money import MAX_AMOUNT, Money


class MoneyModel(BaseModel):
    """An amount in minor units (cents) of an ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[int, Field(ge=0, le=MAX_AMOUNT, examples=[1999], strict=True)]
    currency: Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"])]

    @classmethod
    def of(cls, money: Money) -> MoneyModel:
        return cls(amount=money.amount, currency=money.currency)
