"""The ``mercato db`` actions beside Alembic's: check (and later lint, backup, restore)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

Action = Callable[[argparse.Namespace, str], int]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400")
    return value


def run_check(args: argparse.Namespace, url: str) -> int:
    """Whether this build may serve the database; 0 yes, 1 schema refused, 3 unreachable."""
    from mercato.dbops.check import check

    return check(url, wait_s=args.wait, out=sys.stdout)


DBOPS_ACTIONS: dict[str, Action] = {"check": run_check}


def add_dbops_commands(db_sub: Any) -> None:
    """Register the actions on the ``mercato db`` sub-command parser."""
    check = db_sub.add_parser(
        "check",
        help="may this build serve the database's schema? (exit 0 yes, 1 no, 3 unreachable)",
        description=run_check.__doc__,
    )
    check.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="retry until it may, for at most this long (an init container's wait)",
    )
