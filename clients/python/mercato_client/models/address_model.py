from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="AddressModel")


@_attrs_define
class AddressModel:
    """
    Attributes:
        street (str):
        city (str):
        country (str):
        name (str | Unset):  Default: ''.
        postal_code (str | Unset):  Default: ''.
        region (str | Unset):  Default: ''.
    """

    street: str
    city: str
    country: str
    name: str | Unset = ""
    postal_code: str | Unset = ""
    region: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        street = self.street

        city = self.city

        country = self.country

        name = self.name

        postal_code = self.postal_code

        region = self.region

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "street": street,
                "city": city,
                "country": country,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name
        if postal_code is not UNSET:
            field_dict["postal_code"] = postal_code
        if region is not UNSET:
            field_dict["region"] = region

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        street = d.pop("street")

        city = d.pop("city")

        country = d.pop("country")

        name = d.pop("name", UNSET)

        postal_code = d.pop("postal_code", UNSET)

        region = d.pop("region", UNSET)

        address_model = cls(
            street=street,
            city=city,
            country=country,
            name=name,
            postal_code=postal_code,
            region=region,
        )

        return address_model
