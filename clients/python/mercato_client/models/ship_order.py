from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ShipOrder")


@_attrs_define
class ShipOrder:
    """
    Attributes:
        tracking_code (str | Unset):  Default: ''.
    """

    tracking_code: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        tracking_code = self.tracking_code

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if tracking_code is not UNSET:
            field_dict["tracking_code"] = tracking_code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        tracking_code = d.pop("tracking_code", UNSET)

        ship_order = cls(
            tracking_code=tracking_code,
        )

        return ship_order
