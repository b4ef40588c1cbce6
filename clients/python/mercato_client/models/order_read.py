from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.status import Status

if TYPE_CHECKING:
    from ..models.address_model import AddressModel
    from ..models.line_read import LineRead
    from ..models.totals_read import TotalsRead


T = TypeVar("T", bound="OrderRead")


@_attrs_define
class OrderRead:
    """
    Attributes:
        id (str):
        customer_id (str):
        status (Status):
        currency (str):
        lines (list[LineRead]):
        totals (TotalsRead):
        shipping_address (AddressModel | None):
        billing_address (AddressModel | None):
        discount_code (None | str):
        discount_percent (int):
        payment_in_progress (bool):
        tracking_code (None | str):
        cancel_reason (None | str):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
        placed_at (datetime.datetime | None):
        version (int):
    """

    id: str
    customer_id: str
    status: Status
    currency: str
    lines: list[LineRead]
    totals: TotalsRead
    shipping_address: AddressModel | None
    billing_address: AddressModel | None
    discount_code: None | str
    discount_percent: int
    payment_in_progress: bool
    tracking_code: None | str
    cancel_reason: None | str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    placed_at: datetime.datetime | None
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.address_model import AddressModel  # noqa: PLC0415

        id = self.id

        customer_id = self.customer_id

        status = self.status.value

        currency = self.currency

        lines = []
        for lines_item_data in self.lines:
            lines_item = lines_item_data.to_dict()
            lines.append(lines_item)

        totals = self.totals.to_dict()

        shipping_address: dict[str, Any] | None
        if isinstance(self.shipping_address, AddressModel):
            shipping_address = self.shipping_address.to_dict()
        else:
            shipping_address = self.shipping_address

        billing_address: dict[str, Any] | None
        if isinstance(self.billing_address, AddressModel):
            billing_address = self.billing_address.to_dict()
        else:
            billing_address = self.billing_address

        discount_code: None | str
        discount_code = self.discount_code

        discount_percent = self.discount_percent

        payment_in_progress = self.payment_in_progress

        tracking_code: None | str
        tracking_code = self.tracking_code

        cancel_reason: None | str
        cancel_reason = self.cancel_reason

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        placed_at: None | str
        if isinstance(self.placed_at, datetime.datetime):
            placed_at = self.placed_at.isoformat()
        else:
            placed_at = self.placed_at

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "customer_id": customer_id,
                "status": status,
                "currency": currency,
                "lines": lines,
                "totals": totals,
                "shipping_address": shipping_address,
                "billing_address": billing_address,
                "discount_code": discount_code,
                "discount_percent": discount_percent,
                "payment_in_progress": payment_in_progress,
                "tracking_code": tracking_code,
                "cancel_reason": cancel_reason,
                "created_at": created_at,
                "updated_at": updated_at,
                "placed_at": placed_at,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.address_model import AddressModel  # noqa: PLC0415
        from ..models.line_read import LineRead  # noqa: PLC0415
        from ..models.totals_read import TotalsRead  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        customer_id = d.pop("customer_id")

        status = Status(d.pop("status"))

        currency = d.pop("currency")

        lines = []
        _lines = d.pop("lines")
        for lines_item_data in _lines:
            lines_item = LineRead.from_dict(lines_item_data)

            lines.append(lines_item)

        totals = TotalsRead.from_dict(d.pop("totals"))

        def _parse_shipping_address(data: object) -> AddressModel | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shipping_address_type_0 = AddressModel.from_dict(data)

                return shipping_address_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AddressModel | None, data)

        shipping_address = _parse_shipping_address(d.pop("shipping_address"))

        def _parse_billing_address(data: object) -> AddressModel | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                billing_address_type_0 = AddressModel.from_dict(data)

                return billing_address_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AddressModel | None, data)

        billing_address = _parse_billing_address(d.pop("billing_address"))

        def _parse_discount_code(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        discount_code = _parse_discount_code(d.pop("discount_code"))

        discount_percent = d.pop("discount_percent")

        payment_in_progress = d.pop("payment_in_progress")

        def _parse_tracking_code(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        tracking_code = _parse_tracking_code(d.pop("tracking_code"))

        def _parse_cancel_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        cancel_reason = _parse_cancel_reason(d.pop("cancel_reason"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_placed_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                placed_at_type_0 = datetime.datetime.fromisoformat(data)

                return placed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        placed_at = _parse_placed_at(d.pop("placed_at"))

        version = d.pop("version")

        order_read = cls(
            id=id,
            customer_id=customer_id,
            status=status,
            currency=currency,
            lines=lines,
            totals=totals,
            shipping_address=shipping_address,
            billing_address=billing_address,
            discount_code=discount_code,
            discount_percent=discount_percent,
            payment_in_progress=payment_in_progress,
            tracking_code=tracking_code,
            cancel_reason=cancel_reason,
            created_at=created_at,
            updated_at=updated_at,
            placed_at=placed_at,
            version=version,
        )

        order_read.additional_properties = d
        return order_read

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
