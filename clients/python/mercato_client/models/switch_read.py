from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.switch import Switch

T = TypeVar("T", bound="SwitchRead")


@_attrs_define
class SwitchRead:
    """A switch: on (its part of the service runs) or off, and who changed it last, why.

    Attributes:
        name (Switch): What can be switched off.
        enabled (bool):
        reason (str):
        changed_by (str):
        changed_at (datetime.datetime | None):
    """

    name: Switch
    enabled: bool
    reason: str
    changed_by: str
    changed_at: datetime.datetime | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name.value

        enabled = self.enabled

        reason = self.reason

        changed_by = self.changed_by

        changed_at: None | str
        if isinstance(self.changed_at, datetime.datetime):
            changed_at = self.changed_at.isoformat()
        else:
            changed_at = self.changed_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "enabled": enabled,
                "reason": reason,
                "changed_by": changed_by,
                "changed_at": changed_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = Switch(d.pop("name"))

        enabled = d.pop("enabled")

        reason = d.pop("reason")

        changed_by = d.pop("changed_by")

        def _parse_changed_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                changed_at_type_0 = datetime.datetime.fromisoformat(data)

                return changed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        changed_at = _parse_changed_at(d.pop("changed_at"))

        switch_read = cls(
            name=name,
            enabled=enabled,
            reason=reason,
            changed_by=changed_by,
            changed_at=changed_at,
        )

        switch_read.additional_properties = d
        return switch_read

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
