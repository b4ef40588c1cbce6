from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AdjustmentRead")


@_attrs_define
class AdjustmentRead:
    """
    Attributes:
        id (str):
        product_id (str):
        delta (int):
        reason (str):
        actor_id (str):
        available_after (int):
        created_at (datetime.datetime):
    """

    id: str
    product_id: str
    delta: int
    reason: str
    actor_id: str
    available_after: int
    created_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        product_id = self.product_id

        delta = self.delta

        reason = self.reason

        actor_id = self.actor_id

        available_after = self.available_after

        created_at = self.created_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "product_id": product_id,
                "delta": delta,
                "reason": reason,
                "actor_id": actor_id,
                "available_after": available_after,
                "created_at": created_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        product_id = d.pop("product_id")

        delta = d.pop("delta")

        reason = d.pop("reason")

        actor_id = d.pop("actor_id")

        available_after = d.pop("available_after")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        adjustment_read = cls(
            id=id,
            product_id=product_id,
            delta=delta,
            reason=reason,
            actor_id=actor_id,
            available_after=available_after,
            created_at=created_at,
        )

        adjustment_read.additional_properties = d
        return adjustment_read

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
