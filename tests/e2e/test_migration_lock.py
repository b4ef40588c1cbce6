"""Concurrent `mercato db upgrade` runs (migration Jobs of two pipelines) on one database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mercato.migrations import migrate
from tests.conftest import REQUIRE_PG
from tests.e2e.pgcluster import postgres_bin, private_cluster
from tests.e2e.server import server_env


def test_concurrent_upgrades_of_an_empty_database_all_succeed() -> None:
    if postgres_bin() is None:
        if REQUIRE_PG:
            pytest.fail("MERCATO_TEST_REQUIRE_POSTGRES=1 but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_cluster() as cluster:
        upgrades = [
            subprocess.Popen(
                [sys.executable, "-m", "mercato", "db", "upgrade"],
                env=server_env(cluster.url),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in upgrades]
        assert [p.returncode for p in upgrades] == [0, 0, 0, 0], "\n---\n".join(outputs)
        assert migrate.current(cluster.url) == migrate.head()
