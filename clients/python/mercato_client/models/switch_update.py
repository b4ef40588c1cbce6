from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="SwitchUpdate")


@_attrs_define
class SwitchUpdate:
    """The new state of a switch and why (the reason is shown to refused clients).

    Attributes:
        enabled (bool):
        reason (str):
    """

    enabled: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        enabled = self.enabled

        reason = self.reason

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "enabled": enabled,
                "reason": reason,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        enabled = d.pop("enabled")

        reason = d.pop("reason")

        switch_update = cls(
            enabled=enabled,
            reason=reason,
        )

        return switch_update
