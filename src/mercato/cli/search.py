"""``mercato search reindex``: embed every product again, with a progress bar.

Asks for every product's embedding (the rows the indexer works from), then embeds them in
batches in this process, whether or not the serving processes run the indexer too (both
take the products waiting longest; a vector stored twice is harmless). Searches meanwhile
use the vectors already there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from mercato.bootstrap import build
from mercato.bootstrap.search import semantic_index
from mercato.config import Settings

DESCRIPTION = "Product search: rebuild the embeddings (docs/search.md)."
_WIDTH = 30


def progress(out: TextIO, done: int, total: int, started: float) -> None:
    """One line of progress, redrawn in place: a bar, counts, products per second."""
    share = done / total if total else 1.0
    bar = "#" * int(share * _WIDTH) + "-" * (_WIDTH - int(share * _WIDTH))
    rate = done / max(time.monotonic() - started, 1e-9)
    out.write(f"\rreindex [{bar}] {done:,}/{total:,} {rate:,.0f}/s")
    out.flush()


async def reindex(settings: Settings, *, out: TextIO = sys.stderr) -> tuple[int, float]:
    """Embed every product again; (how many, seconds)."""
    container = build(settings)
    await container.start(workers=False)
    try:
        index = semantic_index(settings, container.transact)
        await index.model.loaded()
        total = await index.request_all()
        started, done = time.monotonic(), 0
        while batch := await index.index_waiting():
            done += batch
            progress(out, min(done, total), total, started)
        out.write("\n")
        return done, time.monotonic() - started
    finally:
        await container.stop()


def add_search_command(sub: Any, settings: Callable[[], Settings]) -> None:
    """Register ``mercato search reindex``."""

    def cmd_search(args: argparse.Namespace) -> int:
        done, seconds = asyncio.run(reindex(settings()))
        print(f"reindexed {done} products in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f}/s)")
        return 0

    parser = sub.add_parser("search", help="product search", description=DESCRIPTION)
    parser.add_argument("action", choices=["reindex"], help="embed every product again")
    parser.set_defaults(func=cmd_search)
