"""Rolling back after a newer release migrated: the older build still serves.

The drill: a build carrying a newer migration (an expand: a new column and a new table) migrates
the database; then this build, the older one, must pass ``mercato db check``, start, pass
``/startupz`` and its smoke journey. The previous release, named by its commit in
``deploy/previous-release``, runs its own smoke journey against this build's schema the same way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command

from mercato.migrations import migrate
from tests.e2e.scratch import scratch_database
from tests.e2e.server import running_server, server_env

REPO = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = REPO / "deploy" / "previous-release"
DEMO_STAFF = ("staff@mercato.example", "staff-demo-password")

NEWER_REVISION = '''"""a newer release's expand migration: a column, a table"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders_orders", sa.Column("gift_note", sa.Text(), nullable=True))
    op.create_table("newer_feature", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("newer_feature")
    with op.batch_alter_table("orders_orders") as batch:
        batch.drop_column("gift_note")
'''


def mercato(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mercato", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def migrate_with_a_newer_build(url: str, folder: Path) -> None:
    """Upgrade ``url`` with this build's migrations plus one revision it does not know."""
    scripts = folder / "newer-migrations"
    shutil.copytree(migrate.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_newer.py").write_text(NEWER_REVISION.format(head=migrate.head()))
    config = migrate.alembic_config(url)
    config.set_main_option("script_location", str(scripts))
    command.upgrade(config, "head")


def _smoke(base_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "MERCATO_SMOKE_STAFF_EMAIL": DEMO_STAFF[0]}
    env["MERCATO_SMOKE_STAFF_PASSWORD"] = DEMO_STAFF[1]
    return mercato("smoke", "--base-url", base_url, env=env)


def test_the_older_build_serves_a_schema_a_newer_release_migrated(
    backend: str, tmp_path: Path
) -> None:
    with scratch_database(backend, tmp_path, "drill") as url:
        env = server_env(url)
        migrate.upgrade(url)
        assert mercato("demo-data", env=env).returncode == 0
        migrate_with_a_newer_build(url, tmp_path)
        assert migrate.current(url) == "9999"

        started = time.monotonic()
        checked = mercato("db", "check", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "database at 9999, newer than this build" in checked.stdout
        with running_server(url, tmp_path) as server:
            startup = httpx.get(f"{server.base_url}/startupz", timeout=5)
            serving_after = time.monotonic() - started
            assert startup.status_code == 200, startup.text
            smoked = _smoke(server.base_url, env)
            assert smoked.returncode == 0, smoked.stdout + smoked.stderr
        print(f"\nrollback drill ({backend}): newer schema -> older build serving in "
              f"{serving_after:.2f} s (db check, serve, /startupz)")  # fmt: skip

        # the older build's own migrations cannot go back from a revision it does not know:
        # that is why pods only check and the runbook downgrades with the newer build
        refused = mercato("db", "upgrade", env=env)
        assert refused.returncode != 0
        assert "9999" in refused.stdout + refused.stderr


def test_db_check_refuses_an_empty_or_unreachable_database_and_waits_for_the_migration(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    empty = mercato("db", "check", env=server_env(url))
    assert empty.returncode == 1
    assert "no migrations applied" in empty.stdout
    unreachable = mercato("db", "check", env=server_env("postgresql://nobody@127.0.0.1:1/nothing"))
    assert unreachable.returncode == 3
    assert "database unreachable" in unreachable.stdout

    waiting = subprocess.Popen(
        [sys.executable, "-m", "mercato", "db", "check", "--wait", "60"],
        env=server_env(url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # its first answer, read before migrating: a loaded machine may start it late, and a
        # check that first looks in the middle of the migration would see a partial schema
        assert waiting.stdout is not None
        first = waiting.stdout.readline()
        time.sleep(0.5)
        assert waiting.poll() is None, "db check --wait gave up before the migration ran"
        migrate.upgrade(url)
        rest, _ = waiting.communicate(timeout=30)
        out = first + rest
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, out
    assert out.splitlines()[0].startswith("no migrations applied")
    assert out.splitlines()[-1].endswith(": serving")


def previous_release() -> str:
    lines = [line.strip() for line in PREVIOUS_RELEASE.read_text().splitlines()]
    (commit,) = [line for line in lines if line and not line.startswith("#")]
    return commit


@contextmanager
def checked_out(commit: str, folder: Path) -> Iterator[Path]:
    """The commit's tree as a detached git worktree of this clone, removed afterwards."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.fail(
            f"the previous release {commit} (deploy/previous-release) is not in this clone's "
            "history: clone with full history (git fetch --unshallow) or correct the file"
        )
    tree = folder / "previous-release"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
        capture_output=True,
        check=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
            check=False,
        )
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)


def test_the_previous_release_passes_its_smoke_journey_on_this_schema(
    backend: str, tmp_path: Path
) -> None:
    commit = previous_release()
    with (
        checked_out(commit, tmp_path) as tree,
        scratch_database(backend, tmp_path, "previous") as url,
    ):
        migrate.upgrade(url)  # this build's schema, its demo data
        assert mercato("demo-data", env=server_env(url)).returncode == 0
        old = {"PYTHONPATH": str(tree / "src")}
        env = server_env(url, **old)
        which = subprocess.run(
            [sys.executable, "-c", "import mercato; print(mercato.__file__)"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert which.stdout.strip().startswith(str(tree)), which.stdout
        with running_server(url, tmp_path, **old) as server:
            smoked = _smoke(server.base_url, env)
        assert smoked.returncode == 0, f"release {commit} on this schema:\n{smoked.stdout}"
        assert smoked.stdout.rstrip().endswith("passed")


def test_the_previous_release_file_names_one_commit() -> None:
    commit = previous_release()
    assert len(commit) >= 7
    assert all(c in "0123456789abcdef" for c in commit), commit
