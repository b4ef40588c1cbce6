"""The failure counters in the database: taken, given back, refused and purged."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.platform.db import sql
from mercato.platform.throttle import Limit, Throttle, ThrottlePurger, TooManyAttempts, throttle
from tests.conftest import unique

pytestmark = pytest.mark.anyio

_ROWS = sql(
    sa.select(throttle.c.failures).where(
        throttle.c.kind == sa.bindparam("kind"), throttle.c.subject == sa.bindparam("subject")
    )
)


class Guessed(Exception):
    pass


def _throttle(container: Container) -> Throttle:
    return container.discount_guard.throttle


async def failures(container: Container, limit: Limit, subject: str) -> int | None:
    digest = _throttle(container).digest(subject)
    async with container.db.connection() as conn:
        value = await conn.fetchval(_ROWS, kind=limit.kind, subject=digest)
    return None if value is None else int(value)


async def fail(container: Container, limit: Limit, subject: str) -> None:
    with pytest.raises(Guessed):
        async with _throttle(container).attempt(
            [(limit, subject)], failed=lambda e: isinstance(e, Guessed)
        ):
            raise Guessed


async def test_failures_count_and_successes_leave_no_row_behind(container: Container) -> None:
    limit, subject = Limit("test", 3, 60), unique()
    async with _throttle(container).attempt([(limit, subject)], failed=lambda e: False):
        assert await failures(container, limit, subject) == 1  # its place, while it runs
    assert await failures(container, limit, subject) is None
    await fail(container, limit, subject)
    await fail(container, limit, subject)
    assert await failures(container, limit, subject) == 2
    with pytest.raises(ValueError, match="unrelated"):
        async with _throttle(container).attempt([(limit, subject)], failed=lambda e: False):
            raise ValueError("unrelated")
    assert await failures(container, limit, subject) == 2


async def test_a_refused_attempt_counts_for_none_of_its_subjects(container: Container) -> None:
    tight, loose = Limit("tight", 1, 60), Limit("loose", 100, 60)
    account, address = unique(), unique()
    await fail(container, tight, account)
    with pytest.raises(TooManyAttempts) as refused:
        async with _throttle(container).attempt(
            [(tight, account), (loose, address)], failed=lambda e: True
        ):
            pytest.fail("a refused attempt must not run")
    assert 1 <= refused.value.retry_after <= 60
    assert await failures(container, tight, account) == 1
    assert await failures(container, loose, address) is None


async def test_the_purger_deletes_windows_that_have_ended_and_keeps_the_rest(
    container: Container,
) -> None:
    short, long = Limit("short", 5, 0.2), Limit("long", 5, 60)
    ended, current = unique(), unique()
    await fail(container, short, ended)
    await fail(container, long, current)
    await asyncio.sleep(0.3)
    assert await ThrottlePurger(_throttle(container)).run_once() >= 1
    assert await failures(container, short, ended) is None
    assert await failures(container, long, current) == 1


async def test_a_new_window_starts_counting_from_one(container: Container) -> None:
    limit, subject = Limit("renew", 1, 0.2), unique()
    await fail(container, limit, subject)
    with pytest.raises(TooManyAttempts):
        await fail(container, limit, subject)
    await asyncio.sleep(0.3)
    await fail(container, limit, subject)
    assert await failures(container, limit, subject) == 1


async def test_retry_after_waits_for_the_last_of_the_windows_that_refuse(
    container: Container,
) -> None:
    soon, later = Limit("early", 1, 30), Limit("late", 1, 600)
    account, address = unique(), unique()
    await fail(container, soon, account)
    await fail(container, later, address)
    with pytest.raises(TooManyAttempts) as refused:
        async with _throttle(container).attempt(
            [(soon, account), (later, address)], failed=lambda e: True
        ):
            pytest.fail("a refused attempt must not run")
    assert 590 <= refused.value.retry_after <= 600
