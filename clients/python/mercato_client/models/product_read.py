from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.money_model import MoneyModel


T = TypeVar("T", bound="ProductRead")


@_attrs_define
class ProductRead:
    """
    Attributes:
        id (str):
        sku (str):
        name (str):
        description (str):
        price (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        weight_grams (int):
        active (bool):
        available (int):
        version (int):
    """

    id: str
    sku: str
    name: str
    description: str
    price: MoneyModel
    weight_grams: int
    active: bool
    available: int
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        sku = self.sku

        name = self.name

        description = self.description

        price = self.price.to_dict()

        weight_grams = self.weight_grams

        active = self.active

        available = self.available

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "sku": sku,
                "name": name,
                "description": description,
                "price": price,
                "weight_grams": weight_grams,
                "active": active,
                "available": available,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.money_model import MoneyModel  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        sku = d.pop("sku")

        name = d.pop("name")

        description = d.pop("description")

        price = MoneyModel.from_dict(d.pop("price"))

        weight_grams = d.pop("weight_grams")

        active = d.pop("active")

        available = d.pop("available")

        version = d.pop("version")

        product_read = cls(
            id=id,
            sku=sku,
            name=name,
            description=description,
            price=price,
            weight_grams=weight_grams,
            active=active,
            available=available,
            version=version,
        )

        product_read.additional_properties = d
        return product_read

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
