"""The ``mercato db`` actions beside Alembic's: check, lint, backup and restore."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
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
    from mercato.cli.db.check import check

    return check(url, wait_s=args.wait, out=sys.stdout)


def run_backup(args: argparse.Namespace, url: str) -> int:
    """Back the database up into a folder with a checksum; keep the newest --keep backups."""
    from mercato.cli.db.backup import BackupError, backup

    try:
        made = backup(url, Path(args.dir), keep=args.keep, label=args.label, out=sys.stderr)
    except BackupError as exc:
        print(f"mercato: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup written: {made.path} ({made.size_bytes} bytes, sha256 {made.sha256})")
    return 0


def run_restore(args: argparse.Namespace, url: str) -> int:
    """Restore a backup into the database (empty unless --replace), checksum verified first."""
    from mercato.cli.db.backup import BackupError, restore

    try:
        digest = restore(Path(args.file), url, replace=args.replace, out=sys.stderr)
    except BackupError as exc:
        print(f"mercato: restore refused: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} (sha256 {digest}); next: mercato db check, mercato smoke")
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


def run_lint(args: argparse.Namespace, url: str) -> int:
    """Lint the migrations: destructive operations outside post-deploy ones, and squawk."""
    from mercato.cli.db.lint import run

    return run(sys.stdout)


def upgrade_target(url: str, *, pre_deploy: bool, script_location: Path | None = None) -> str:
    """``head``, or with ``pre_deploy`` the last revision before the first pending post-deploy
    (contract) migration: what may run before a rollout, while the previous release serves."""
    if not pre_deploy:
        return "head"
    from alembic.script import ScriptDirectory

    from mercato.cli.db.lint import is_post_deploy
    from mercato.migrations import migrate

    config = migrate.alembic_config(url)
    config.set_main_option("script_location", str(script_location or migrate.MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    current = migrate.current(url)
    target = current or "base"
    # newest first from Alembic; oldest first here
    pending = list(reversed(list(script.iterate_revisions("head", current or "base"))))
    for revision in pending:
        if revision.revision == current:
            continue
        if is_post_deploy(revision):
            break
        target = revision.revision
    return target


DBOPS_ACTIONS: dict[str, Action] = {
    "lint": run_lint,
    "check": run_check,
    "backup": run_backup,
    "restore": run_restore,
}


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
    db_sub.add_parser(
        "lint",
        help="lint the migrations (expand/contract, squawk); exit 1 on findings",
        description=run_lint.__doc__,
    )
    made = db_sub.add_parser("backup", help="back the database up", description=run_backup.__doc__)
    made.add_argument("--dir", required=True, help="folder of the backups")
    made.add_argument("--keep", type=_count, default=14, help="backups to keep (default 14)")
    made.add_argument("--label", help="added to the file name, e.g. the release's image tag")
    back = db_sub.add_parser("restore", help="restore a backup", description=run_restore.__doc__)
    back.add_argument("file", help="a backup file (its .sha256 beside it)")
    back.add_argument(
        "--replace", action="store_true", help="drop what the target database holds first"
    )
