from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.money_model import MoneyModel


T = TypeVar("T", bound="PaymentRead")


@_attrs_define
class PaymentRead:
    """
    Attributes:
        id (str):
        order_id (str):
        amount (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        status (str):
        provider (str):
        card_last4 (str):
        failure_reason (str):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
    """

    id: str
    order_id: str
    amount: MoneyModel
    status: str
    provider: str
    card_last4: str
    failure_reason: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        order_id = self.order_id

        amount = self.amount.to_dict()

        status = self.status

        provider = self.provider

        card_last4 = self.card_last4

        failure_reason = self.failure_reason

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "order_id": order_id,
                "amount": amount,
                "status": status,
                "provider": provider,
                "card_last4": card_last4,
                "failure_reason": failure_reason,
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.money_model import MoneyModel  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        order_id = d.pop("order_id")

        amount = MoneyModel.from_dict(d.pop("amount"))

        status = d.pop("status")

        provider = d.pop("provider")

        card_last4 = d.pop("card_last4")

        failure_reason = d.pop("failure_reason")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        payment_read = cls(
            id=id,
            order_id=order_id,
            amount=amount,
            status=status,
            provider=provider,
            card_last4=card_last4,
            failure_reason=failure_reason,
            created_at=created_at,
            updated_at=updated_at,
        )

        payment_read.additional_properties = d
        return payment_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
