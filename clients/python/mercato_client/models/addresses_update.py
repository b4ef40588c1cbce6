from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.address_model import AddressModel


T = TypeVar("T", bound="AddressesUpdate")


@_attrs_define
class AddressesUpdate:
    """
    Attributes:
        shipping_address (AddressModel):
        billing_address (AddressModel | None | Unset):
    """

    shipping_address: AddressModel
    billing_address: AddressModel | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.address_model import AddressModel  # noqa: PLC0415

        shipping_address = self.shipping_address.to_dict()

        billing_address: dict[str, Any] | None | Unset
        if isinstance(self.billing_address, Unset):
            billing_address = UNSET
        elif isinstance(self.billing_address, AddressModel):
            billing_address = self.billing_address.to_dict()
        else:
            billing_address = self.billing_address

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "shipping_address": shipping_address,
            }
        )
        if billing_address is not UNSET:
            field_dict["billing_address"] = billing_address

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.address_model import AddressModel  # noqa: PLC0415

        d = dict(src_dict)
        shipping_address = AddressModel.from_dict(d.pop("shipping_address"))

        def _parse_billing_address(data: object) -> AddressModel | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                billing_address_type_0 = AddressModel.from_dict(data)

                return billing_address_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AddressModel | None | Unset, data)

        billing_address = _parse_billing_address(d.pop("billing_address", UNSET))

        addresses_update = cls(
            shipping_address=shipping_address,
            billing_address=billing_address,
        )

        return addresses_update
