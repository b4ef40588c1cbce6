"""``mercato switch``: read or flip the kill switches from a shell (platform.switches)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from typing import Any

from mercato.config import Settings
from mercato.platform.connect import create_database
from mercato.platform.switches import Switch, Switches


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    db = create_database(settings.database_url, pool_size=1, timeout=settings.database_timeout_s)
    await db.connect()
    try:
        switches = Switches(db, registry=None)
        if args.action in ("on", "off"):
            actor = f"cli:{getpass.getuser()}"
            await switches.set(
                Switch(args.name), enabled=args.action == "on", reason=args.reason, actor=actor
            )
        for state in (await switches.states(fresh=True)).values():
            shown = "on " if state.enabled else "off"
            since = f" since {state.changed_at:%Y-%m-%d %H:%M:%S}Z" if state.changed_at else ""
            why = f" ({state.changed_by}: {state.reason})" if state.reason else ""
            print(f"{state.name.value:15} {shown}{since}{why}")
    finally:
        await db.close()
    return 0


DESCRIPTION = "Show the kill switches, or turn one off or on; every replica follows within seconds."


def add_switch_command(sub: Any, settings: Callable[[], Settings]) -> None:
    """Register ``mercato switch show|off|on NAME --reason TEXT``."""

    def cmd_switch(args: argparse.Namespace) -> int:
        if args.action != "show" and not (args.name and args.reason):
            print("mercato: name a switch and give --reason to flip it", file=sys.stderr)
            return 2
        return asyncio.run(_run(settings(), args))

    parser = sub.add_parser("switch", help="kill switches", description=DESCRIPTION)
    parser.add_argument("action", choices=["show", "off", "on"])
    parser.add_argument("name", nargs="?", choices=[s.value for s in Switch])
    parser.add_argument("--reason", default="", help="why (shown to refused clients)")
    parser.set_defaults(func=cmd_switch)
