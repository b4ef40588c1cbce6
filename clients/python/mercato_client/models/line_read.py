from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.money_model import MoneyModel


T = TypeVar("T", bound="LineRead")


@_attrs_define
class LineRead:
    """
    Attributes:
        product_id (str):
        sku (str):
        name (str):
        unit_price (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        quantity (int):
        weight_grams (int):
        total (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
    """

    product_id: str
    sku: str
    name: str
    unit_price: MoneyModel
    quantity: int
    weight_grams: int
    total: MoneyModel
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        product_id = self.product_id

        sku = self.sku

        name = self.name

        unit_price = self.unit_price.to_dict()

        quantity = self.quantity

        weight_grams = self.weight_grams

        total = self.total.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "product_id": product_id,
                "sku": sku,
                "name": name,
                "unit_price": unit_price,
                "quantity": quantity,
                "weight_grams": weight_grams,
                "total": total,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.money_model import MoneyModel  # noqa: PLC0415

        d = dict(src_dict)
        product_id = d.pop("product_id")

        sku = d.pop("sku")

        name = d.pop("name")

        unit_price = MoneyModel.from_dict(d.pop("unit_price"))

        quantity = d.pop("quantity")

        weight_grams = d.pop("weight_grams")

        total = MoneyModel.from_dict(d.pop("total"))

        line_read = cls(
            product_id=product_id,
            sku=sku,
            name=name,
            unit_price=unit_price,
            quantity=quantity,
            weight_grams=weight_grams,
            total=total,
        )

        line_read.additional_properties = d
        return line_read

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
