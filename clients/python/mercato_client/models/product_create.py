from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.money_model import MoneyModel


T = TypeVar("T", bound="ProductCreate")


@_attrs_define
class ProductCreate:
    """
    Attributes:
        sku (str):
        name (str):
        price (MoneyModel): An amount in minor units (cents) of an ISO 4217 currency.
        description (str | Unset):  Default: ''.
        weight_grams (int | Unset):  Default: 0.
        initial_stock (int | Unset):  Default: 0.
    """

    sku: str
    name: str
    price: MoneyModel
    description: str | Unset = ""
    weight_grams: int | Unset = 0
    initial_stock: int | Unset = 0

    def to_dict(self) -> dict[str, Any]:
        sku = self.sku

        name = self.name

        price = self.price.to_dict()

        description = self.description

        weight_grams = self.weight_grams

        initial_stock = self.initial_stock

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "sku": sku,
                "name": name,
                "price": price,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description
        if weight_grams is not UNSET:
            field_dict["weight_grams"] = weight_grams
        if initial_stock is not UNSET:
            field_dict["initial_stock"] = initial_stock

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.money_model import MoneyModel  # noqa: PLC0415

        d = dict(src_dict)
        sku = d.pop("sku")

        name = d.pop("name")

        price = MoneyModel.from_dict(d.pop("price"))

        description = d.pop("description", UNSET)

        weight_grams = d.pop("weight_grams", UNSET)

        initial_stock = d.pop("initial_stock", UNSET)

        product_create = cls(
            sku=sku,
            name=name,
            price=price,
            description=description,
            weight_grams=weight_grams,
            initial_stock=initial_stock,
        )

        return product_create
