"""The benchmark's seed spreads drafts over the catalog, as the scenarios promise.

An earlier seed drew the products of every draft once for the whole pool, so all drafts (the
server's and pgbench's) carried the same three products and every benchmark measured waits on
three locked rows. These tests seed a scratch PostgreSQL database with ``bench/seed.sql`` and
count what the drafts really use.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from mercato.migrations import migrate
from tests.conftest import PG_URL

SEED = Path(__file__).resolve().parents[2] / "bench" / "seed.sql"
DRAFTS = 1_000  # per pool; each draft has three lines


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PG_URL:
        pytest.skip("the benchmark seed is PostgreSQL's (set MERCATO_TEST_DATABASE_URL)")
    from tests.e2e.scratch import scratch_database

    with scratch_database("postgres", tmp_path_factory.mktemp("seed"), "bench_seed") as url:
        migrate.upgrade(url)
        yield url


def seed(url: str, mode: str) -> None:
    subprocess.run(
        [
            "psql",
            "-q",
            "-d",
            url,
            "-v",
            f"mercato_orders={DRAFTS}",
            "-v",
            f"pgbench_orders={DRAFTS}",
            "-v",
            f"mode={mode}",
            "-f",
            str(SEED),
        ],
        check=True,
        capture_output=True,
    )


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def per_pool(url: str, query: str) -> dict[str, asyncpg.Record]:
    rows = asyncio.run(_fetch(url, query))
    return {row["pool"]: row for row in rows}


SPREAD = """
    SELECT left(order_id, 1) AS pool, count(DISTINCT product_id) AS products,
           count(*) AS lines, count(DISTINCT order_id) AS drafts,
           count(*) FILTER (WHERE product_id <= 'b0000000-0000-7000-8000-000000000005') AS hot
    FROM orders_lines GROUP BY 1
"""
DUPLICATES = """
    SELECT left(order_id, 1) AS pool, count(*) AS repeated FROM (
        SELECT order_id FROM orders_lines GROUP BY order_id
        HAVING count(DISTINCT product_id) <> 3) x
    GROUP BY 1
"""


def test_uniform_drafts_are_spread_over_the_whole_catalog(seeded_url: str) -> None:
    seed(seeded_url, "uniform")
    spread = per_pool(seeded_url, SPREAD)
    assert set(spread) == {"d", "e"}
    for pool in spread.values():
        assert pool["drafts"] == DRAFTS
        assert pool["lines"] == 3 * DRAFTS
        # 3,000 draws over 10,000 products give about 2,600 distinct ones
        assert pool["products"] >= 2_000, dict(pool)
    assert per_pool(seeded_url, DUPLICATES) == {}


def test_hot_drafts_put_nine_in_ten_orders_on_five_products(seeded_url: str) -> None:
    seed(seeded_url, "hot")
    spread = per_pool(seeded_url, SPREAD)
    for pool in spread.values():
        assert 0.85 * DRAFTS <= pool["hot"] <= 0.95 * DRAFTS, dict(pool)
        # the other two lines of every draft, and one in ten first lines, stay spread out
        assert pool["products"] >= 1_500, dict(pool)
    assert per_pool(seeded_url, DUPLICATES) == {}
