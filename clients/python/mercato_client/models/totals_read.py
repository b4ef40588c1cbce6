from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.money_model import MoneyModel


T = TypeVar("T", bound="TotalsRead")


@_attrs_define
class TotalsRead:
    """
    Attributes:
        subtotal (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        discount (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        shipping (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        tax (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        total (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
    """

    subtotal: MoneyModel
    discount: MoneyModel
    shipping: MoneyModel
    tax: MoneyModel
    total: MoneyModel
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        subtotal = self.subtotal.to_dict()

        discount = self.discount.to_dict()

        shipping = self.shipping.to_dict()

        tax = self.tax.to_dict()

        total = self.total.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "subtotal": subtotal,
                "discount": discount,
                "shipping": shipping,
                "tax": tax,
                "total": total,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.money_model import MoneyModel  # noqa: PLC0415

        d = dict(src_dict)
        subtotal = MoneyModel.from_dict(d.pop("subtotal"))

        discount = MoneyModel.from_dict(d.pop("discount"))

        shipping = MoneyModel.from_dict(d.pop("shipping"))

        tax = MoneyModel.from_dict(d.pop("tax"))

        total = MoneyModel.from_dict(d.pop("total"))

        totals_read = cls(
            subtotal=subtotal,
            discount=discount,
            shipping=shipping,
            tax=tax,
            total=total,
        )

        totals_read.additional_properties = d
        return totals_read

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
