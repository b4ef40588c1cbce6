"""The release record: which migrations a release adds, and the rollback decision they imply."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mercato.cli.rollout.record import VERSIONS, classify, record

EXPAND = """
def upgrade() -> None:
    op.add_column("orders_orders", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("orders_orders", "note")
"""

DROP = """
def upgrade() -> None:
    with op.batch_alter_table("orders_orders") as batch_op:
        batch_op.drop_column("note")


def downgrade() -> None:
    op.add_column("orders_orders", sa.Column("note", sa.Text(), nullable=True))
"""

RETYPE = """
def upgrade() -> None:
    op.alter_column("orders_orders", "note", type_=sa.String(20))


def downgrade() -> None:
    \"\"\"Nothing to do.\"\"\"
    pass
"""


def test_an_added_column_is_reversible_and_destroys_nothing() -> None:
    found = classify("0007_note.py", EXPAND)
    assert (found.reversible, found.destructive, found.post_deploy) == (True, [], False)


def test_drops_and_type_changes_are_destructive_and_an_empty_downgrade_is_irreversible() -> None:
    assert classify("0008_drop.py", DROP).destructive == ["drop_column"]
    retyped = classify("0009_retype.py", RETYPE)
    assert (retyped.destructive, retyped.reversible) == (["alter_column"], False)
    assert not classify("x.py", "def upgrade():\n    pass\n").reversible
    raising = "def downgrade():\n    raise NotImplementedError\n"
    assert not classify("x.py", raising).reversible


def test_post_deploy_is_marked_as_the_migration_lint_reads_it() -> None:
    assert classify("0008_drop.py", "post_deploy = True\n" + DROP).post_deploy
    assert not classify("0008_drop.py", "post_deploy = False\n" + DROP).post_deploy
    assert not classify("0008_drop.py", DROP).post_deploy


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / VERSIONS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    run = {"cwd": repo, "check": True, "capture_output": True, "text": True}
    subprocess.run(["git", "add", "-A"], **run)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", message], **run
    )
    done = subprocess.run(["git", "rev-parse", "HEAD"], **run)  # type: ignore[call-overload]
    return str(done.stdout.strip())


def test_the_record_of_a_release_decides_between_undo_and_a_forward_fix(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    base = _commit(tmp_path, {"0006_base.py": EXPAND}, "base")
    expand = _commit(tmp_path, {"0007_note.py": EXPAND}, "expand")
    contract = _commit(tmp_path, {"0008_drop.py": "post_deploy = True\n" + DROP}, "contract")
    breaking = _commit(tmp_path, {"0009_retype.py": RETYPE}, "retype")

    same = record(base, base, repo=tmp_path).as_dict()
    assert (same["contains_migration"], same["decision"], same["database_rollback"]) == (
        False,
        "undo",
        "none",
    )
    one = record(base, expand, repo=tmp_path).as_dict()
    assert (one["decision"], one["database_rollback"]) == ("undo", "downgrade")
    later = record(expand, contract, repo=tmp_path).as_dict()
    assert (later["post_deploy"], later["decision"], later["database_rollback"]) == (
        True,
        "undo",
        "restore",
    )
    worst = record(base, breaking, repo=tmp_path).as_dict()
    assert (worst["decision"], worst["reversible"], worst["destructive"]) == (
        "forward-fix",
        False,
        ["alter_column", "drop_column"],
    )
