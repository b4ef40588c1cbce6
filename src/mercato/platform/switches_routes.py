"""Staff API of the kill switches: read them all, turn one off or on again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from mercato.platform.appstate import platform_state
from mercato.platform.deps import StaffUser
from mercato.platform.schemas import Text
from mercato.platform.switches import Switch, Switches, SwitchState

router = APIRouter(prefix="/v1/admin/switches", tags=["operations"])


class SwitchRead(BaseModel):
    """A switch: on (its part of the service runs) or off, and who changed it last, why."""

    name: Switch
    enabled: Annotated[bool, Field(strict=True)]  # true or false, not 0 or "off"
    reason: str
    changed_by: str
    changed_at: datetime | None

    @classmethod
    def of(cls, state: SwitchState) -> SwitchRead:
        return cls(
            name=state.name,
            enabled=state.enabled,
            reason=state.reason,
            changed_by=state.changed_by,
            changed_at=state.changed_at,
        )


class SwitchUpdate(BaseModel):
    """The new state of a switch and why (the reason is shown to refused clients)."""

    model_config = ConfigDict(extra="forbid")
    enabled: Annotated[bool, Field(strict=True)]  # true or false, not 0 or "off"
    reason: Annotated[Text, Field(min_length=1, max_length=200)]


def _switches(request: Request) -> Switches:
    return platform_state(request).switches


@router.get("", response_model=list[SwitchRead])
async def list_switches(_: StaffUser, request: Request) -> list[SwitchRead]:
    """Every kill switch and its state as stored now (staff only)."""
    states = await _switches(request).states(fresh=True)
    return [SwitchRead.of(state) for state in states.values()]


@router.put("/{name}", response_model=SwitchRead)
async def set_switch(
    name: Annotated[Switch, Path(description="checkout, discount_codes or realtime")],
    body: SwitchUpdate,
    staff: StaffUser,
    request: Request,
) -> SwitchRead:
    """Turn a switch off or on; every replica follows within two seconds (staff only)."""
    state = await _switches(request).set(
        name, enabled=body.enabled, reason=body.reason, actor=f"staff:{staff.user_id}"
    )
    return SwitchRead.of(state)
