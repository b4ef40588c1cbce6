from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.order_create_currency import OrderCreateCurrency
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.address_model import AddressModel
    from ..models.line_create import LineCreate


T = TypeVar("T", bound="OrderCreate")


@_attrs_define
class OrderCreate:
    """
    Attributes:
        currency (OrderCreateCurrency | Unset):
        lines (list[LineCreate] | Unset):
        shipping_address (AddressModel | None | Unset):
        billing_address (AddressModel | None | Unset):
        discount_code (None | str | Unset):
    """

    currency: OrderCreateCurrency | Unset = UNSET
    lines: list[LineCreate] | Unset = UNSET
    shipping_address: AddressModel | None | Unset = UNSET
    billing_address: AddressModel | None | Unset = UNSET
    discount_code: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.address_model import AddressModel  # noqa: PLC0415

        currency: str | Unset = UNSET
        if not isinstance(self.currency, Unset):
            currency = self.currency.value

        lines: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.lines, Unset):
            lines = []
            for lines_item_data in self.lines:
                lines_item = lines_item_data.to_dict()
                lines.append(lines_item)

        shipping_address: dict[str, Any] | None | Unset
        if isinstance(self.shipping_address, Unset):
            shipping_address = UNSET
        elif isinstance(self.shipping_address, AddressModel):
            shipping_address = self.shipping_address.to_dict()
        else:
            shipping_address = self.shipping_address

        billing_address: dict[str, Any] | None | Unset
        if isinstance(self.billing_address, Unset):
            billing_address = UNSET
        elif isinstance(self.billing_address, AddressModel):
            billing_address = self.billing_address.to_dict()
        else:
            billing_address = self.billing_address

        discount_code: None | str | Unset
        if isinstance(self.discount_code, Unset):
            discount_code = UNSET
        else:
            discount_code = self.discount_code

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if currency is not UNSET:
            field_dict["currency"] = currency
        if lines is not UNSET:
            field_dict["lines"] = lines
        if shipping_address is not UNSET:
            field_dict["shipping_address"] = shipping_address
        if billing_address is not UNSET:
            field_dict["billing_address"] = billing_address
        if discount_code is not UNSET:
            field_dict["discount_code"] = discount_code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.address_model import AddressModel  # noqa: PLC0415
        from ..models.line_create import LineCreate  # noqa: PLC0415

        d = dict(src_dict)
        _currency = d.pop("currency", UNSET)
        currency: OrderCreateCurrency | Unset
        if isinstance(_currency, Unset):
            currency = UNSET
        else:
            currency = OrderCreateCurrency(_currency)

        _lines = d.pop("lines", UNSET)
        lines: list[LineCreate] | Unset = UNSET
        if _lines is not UNSET:
            lines = []
            for lines_item_data in _lines:
                lines_item = LineCreate.from_dict(lines_item_data)

                lines.append(lines_item)

        def _parse_shipping_address(data: object) -> AddressModel | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shipping_address_type_0 = AddressModel.from_dict(data)

                return shipping_address_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AddressModel | None | Unset, data)

        shipping_address = _parse_shipping_address(d.pop("shipping_address", UNSET))

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

        def _parse_discount_code(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        discount_code = _parse_discount_code(d.pop("discount_code", UNSET))

        order_create = cls(
            currency=currency,
            lines=lines,
            shipping_address=shipping_address,
            billing_address=billing_address,
            discount_code=discount_code,
        )

        return order_create
