from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.money_model_currency import MoneyModelCurrency

T = TypeVar("T", bound="MoneyModel")


@_attrs_define
class MoneyModel:
    """An amount in minor units (cents) of an ISO 4217 currency.

    Attributes:
        amount (int):
        currency (MoneyModelCurrency):
    """

    amount: int
    currency: MoneyModelCurrency

    def to_dict(self) -> dict[str, Any]:
        amount = self.amount

        currency = self.currency.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "amount": amount,
                "currency": currency,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        amount = d.pop("amount")

        currency = MoneyModelCurrency(d.pop("currency"))

        money_model = cls(
            amount=amount,
            currency=currency,
        )

        return money_model
