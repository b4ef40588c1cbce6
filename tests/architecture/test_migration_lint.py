"""``mercato db lint``: the shipped migrations pass; the mistakes it exists for are caught."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

from mercato import migrate
from mercato.dbops import lint
from mercato.dbops.commands import upgrade_target

REVISION = '''"""{title}"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None
{marker}

def upgrade() -> None:
{upgrade}


def downgrade() -> None:
    pass
'''


DROP_COLUMN = (
    'with op.batch_alter_table("orders_orders") as batch:\n    batch.drop_column("tracking_code")'
)


def with_revision(
    folder: Path, upgrade: str, *, post_deploy: bool = False, revision: str = "9999"
) -> Path:
    """A copy of the shipped migrations plus one revision with ``upgrade``'s body."""
    scripts = folder / f"migrations-{revision}"
    if not scripts.exists():
        shutil.copytree(migrate.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    down = migrate.head()
    (scripts / "versions" / f"{revision}_extra.py").write_text(
        REVISION.format(
            title=f"extra {revision}",
            revision=revision,
            down=down,
            marker="post_deploy = True\n" if post_deploy else "",
            upgrade="\n".join(f"    {line}" for line in upgrade.splitlines()),
        )
    )
    return scripts


def findings(scripts: Path, revision: str = "9999") -> list[str]:
    (report,) = [r for r in lint.lint(scripts) if r.revision == revision]
    return report.findings


def test_the_shipped_migrations_pass_the_lint() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mercato", "db", "lint"],
        capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": str(Path(sys.executable).parent), "MERCATO_DATABASE_URL": "sqlite:///x.db"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith(f"{len(lint.lint())} revisions, 0 finding(s)")


def test_a_dropped_column_outside_a_post_deploy_migration_is_refused(tmp_path: Path) -> None:
    drop = DROP_COLUMN
    found = findings(with_revision(tmp_path, drop))
    assert any("destructive outside a post-deploy migration: drops a column" in f for f in found)
    out = io.StringIO()
    assert lint.run(out, with_revision(tmp_path, drop)) == 1
    assert "9999 (regular) extra 9999: 2 finding(s)" in out.getvalue()
    assert "squawk ban-drop-column" in out.getvalue()


def test_the_same_drop_in_a_post_deploy_migration_is_accepted(tmp_path: Path) -> None:
    drop = DROP_COLUMN
    assert findings(with_revision(tmp_path, drop, post_deploy=True)) == []


def test_renames_type_changes_and_not_null_are_destructive(tmp_path: Path) -> None:
    body = "\n".join([
        'op.alter_column("orders_orders", "tracking_code", new_column_name="tracking")',
        'op.alter_column("orders_orders", "discount_percent", type_=sa.SmallInteger())',
        'op.alter_column("orders_orders", "cancel_reason", nullable=False)',
    ])  # fmt: skip
    found = " ".join(findings(with_revision(tmp_path, body)))
    for what in ("renames", "changes a type", "adds NOT NULL"):
        assert what in found, found


def test_squawk_refuses_a_plain_index_on_an_existing_table(tmp_path: Path) -> None:
    index = 'op.create_index("ix_orders_orders_placed", "orders_orders", ["placed_at"])'
    found = findings(with_revision(tmp_path, index))
    assert any(f.startswith("squawk require-concurrent-index-creation") for f in found), found


def test_a_concurrent_index_outside_the_transaction_passes(tmp_path: Path) -> None:
    index = "\n".join([
        "with op.get_context().autocommit_block():",
        '    op.create_index("ix_orders_orders_placed", "orders_orders", ["placed_at"],',
        "                    postgresql_concurrently=True, if_not_exists=True)",
    ])  # fmt: skip
    assert findings(with_revision(tmp_path, index)) == []


def test_pre_deploy_upgrades_stop_before_the_first_post_deploy_migration(tmp_path: Path) -> None:
    scripts = with_revision(tmp_path, 'op.drop_table("platform_throttle")', post_deploy=True)
    url = f"sqlite:///{tmp_path / 'pre.db'}"
    migrate.upgrade(url, "0005")
    shipped = migrate.head()
    # the shipped (regular) revisions run before the rollout; 9999 (post-deploy) only after it
    assert upgrade_target(url, pre_deploy=True, script_location=scripts) == shipped
    assert upgrade_target(url, pre_deploy=False, script_location=scripts) == "head"
    migrate.upgrade(url)
    assert upgrade_target(url, pre_deploy=True, script_location=scripts) == shipped
