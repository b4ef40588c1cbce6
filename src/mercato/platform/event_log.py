r"""The outbox read as an event log: its rows as :class:`Change`\ s, and the history a
follower replays (:func:`history`) before it is handed live changes by
:class:`~mercato.platform.notify.Notifier`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from mercato.platform.db import Database, Row, sql
from mercato.platform.outbox import outbox


@dataclass(frozen=True, slots=True)
class Change:
    """One outbox row as handed to followers; ``data`` is its payload plus ``occurred_at``."""

    seq: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: dict[str, Any]
    data: bytes

    @classmethod
    def from_row(cls, row: Row) -> Change:
        """Map an outbox row; the JSON handed to clients is rendered here, once per process."""
        payload = orjson.loads(row["payload"])
        occurred: datetime = row["occurred_at"]
        return cls(
            seq=int(row["seq"]),
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            event_type=row["event_type"],
            payload=payload,
            data=orjson.dumps({**payload, "occurred_at": occurred}),
        )


_o = outbox.c
# what a follower is handed of each row
COLUMNS = (_o.seq, _o.aggregate_type, _o.aggregate_id, _o.event_type, _o.payload, _o.occurred_at)
_bind = sa.bindparam
_HISTORY_OF_ONE = sql(
    sa.select(*COLUMNS)
    .where(
        _o.aggregate_id == _bind("aggregate_id"),
        _o.aggregate_type == _bind("aggregate_type"),
        _o.seq > _bind("after"),
    )
    .order_by(_o.seq)
    .limit(_bind("limit"))
)
_HISTORY_OF_ALL = sql(
    sa.select(*COLUMNS)
    .where(
        _o.aggregate_type == _bind("aggregate_type"),
        _o.seq > _bind("after"),
        _o.seq <= _bind("upto"),
    )
    .order_by(_o.seq)
    .limit(_bind("limit"))
)
_LAST_SEQ = sql(sa.select(sa.func.coalesce(sa.func.max(_o.seq), 0)))
HISTORY_PAGE = 500


async def history(
    db: Database,
    *,
    aggregate_type: str,
    aggregate_id: str | None,
    after: int,
    upto: int,
    limit: int = HISTORY_PAGE,
) -> list[Change]:
    """Up to ``limit`` events after ``after`` (of one aggregate, or of all up to ``upto``)."""
    async with db.connection() as conn:
        if aggregate_id is not None:
            rows = await conn.fetch(
                _HISTORY_OF_ONE,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                after=after,
                limit=limit,
            )
        else:
            rows = await conn.fetch(
                _HISTORY_OF_ALL,
                aggregate_type=aggregate_type,
                after=after,
                upto=upto,
                limit=limit,
            )
    return [Change.from_row(row) for row in rows]


async def last_seq(db: Database) -> int:
    """The highest sequence number in the outbox (0 when it is empty)."""
    async with db.connection() as conn:
        return int(await conn.fetchval(_LAST_SEQ))
