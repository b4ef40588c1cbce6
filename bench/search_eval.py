"""Search relevance: nDCG@10 and recall@10 of lexical, vector and hybrid search, per query class.

    .venv/bin/python -m bench.search_eval [--catalog 2000] [--database-url URL] [--coarse-from N]

Loads `mercato demo-data --catalog N` (seed 15) into a fresh SQLite file (or the database
given, which it migrates from scratch), embeds every product, then asks each query of
bench/search_judgments.toml for its rankings (ProductSearch.rankings, the very ones the API
fuses) and scores three of them: lexical (exact SKU + words + trigrams), vector (semantic
alone) and hybrid (all of them, as served). Gains: 2 relevant, 1 partial. recall@10 counts
what the top ten hold of the relevant products, out of at most ten. A query that expects no
result scores 1 when the ranking is empty and 0 otherwise. Results go to stdout as a
Markdown table and to bench/out/search_eval.json. `--coarse-from N` lets the in-process
semantic half answer through its coarse index from N products on (default: as served, from
5,000; so the 2,000 products are scanned exactly unless N is lower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.conftest import make_settings, running

from mercato.bootstrap import Container
from mercato.catalog.domain.search import Filters, Signal, fuse, parse_query
from mercato.catalog.service.search import Rankings
from mercato.cli import catalog
from mercato.migrations import migrate
from mercato.platform.db import sql

JUDGMENTS = Path(__file__).parent / "search_judgments.toml"
OUT = Path(__file__).parent / "out"
SYSTEMS = ("lexical", "vector", "hybrid")
K = 10


def gain(sku: str, query: dict[str, Any]) -> int:
    """2 relevant, 1 partial, 0 neither: by SKU (``=SKU``) or by kind."""
    for grade, key in ((2, "relevant"), (1, "partial")):
        for item in query.get(key, ()):
            if item == f"={sku}" or catalog.kind_of(sku) == item:
                return grade
    return 0


def scores(ranked: list[str], query: dict[str, Any], ideal: list[int]) -> tuple[float, float]:
    """(nDCG@10, recall@10) of a ranking of SKUs."""
    if not ideal:
        return (1.0, 1.0) if not ranked else (0.0, 0.0)
    gains = [gain(sku, query) for sku in ranked[:K]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    best = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(ideal, reverse=True)[:K]))
    found = sum(1 for g in gains if g == 2)
    wanted = min(K, sum(1 for g in ideal if g == 2)) or 1
    return dcg / best, found / wanted


def systems(rankings: Rankings) -> dict[str, list[str]]:
    """The three rankings compared, as product ids."""
    by = rankings.by_signal
    lexical = {s: r for s, r in by.items() if s is not Signal.SEMANTIC}
    semantic = {Signal.SEMANTIC: by.get(Signal.SEMANTIC, [])}
    return {
        "lexical": [h.product_id for h in fuse(lexical, exact=rankings.exact)],
        "vector": [h.product_id for h in fuse(semantic)],
        "hybrid": [h.product_id for h in fuse(by, exact=rankings.exact)],
    }


async def load(container: Container, count: int, coarse_from: int | None) -> dict[str, str]:
    """The catalog loaded and embedded; SKU by product id."""
    for batch in catalog.batches(count):
        await container.catalog.import_products(batch, actor_id="eval")
    index = container.semantic
    assert index is not None
    if coarse_from is not None:
        index.matrix.coarse_from = coarse_from
    await index.request_all()
    while await index.index_waiting():
        pass
    await index.refresh()
    rows_sql = sql(sa.text("SELECT id, sku FROM catalog_products"))
    async with container.db.connection() as conn:
        return {r["id"]: r["sku"] for r in await conn.fetch(rows_sql)}


async def evaluate(url: str, count: int, coarse_from: int | None) -> list[dict[str, Any]]:
    queries = tomllib.loads(JUDGMENTS.read_text())["query"]
    results = []
    async with running(make_settings(url, search_semantic=True)) as container:
        skus = await load(container, count, coarse_from)
        everything = list(skus.values())
        for query in queries:
            ideal = [g for g in (gain(s, query) for s in everything) if g]
            parsed = parse_query(query["q"])
            rankings = await container.catalog.search.rankings(parsed, Filters())
            row: dict[str, Any] = {"class": query["class"], "q": query["q"]}
            for name, ids in systems(rankings).items():
                ranked = [skus[i] for i in ids]
                row[name] = scores(ranked, query, ideal)
            results.append(row)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """Mean nDCG@10 / recall@10 per class and overall, as Markdown."""
    classes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in results:
        classes[row["class"]].append(row)
    classes["all"] = results
    head = "| class | queries | " + " | ".join(f"{s} nDCG@10 / R@10" for s in SYSTEMS) + " |"
    lines = [head, "|---|---|" + "---|" * len(SYSTEMS)]
    for name, rows in classes.items():
        cells = []
        for system in SYSTEMS:
            ndcg = sum(r[system][0] for r in rows) / len(rows)
            recall = sum(r[system][1] for r in rows) / len(rows)
            cells.append(f"{ndcg:.3f} / {recall:.3f}")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--coarse-from", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/eval.db"
        if url.startswith("postgresql"):
            migrate.downgrade(url, "base")
        migrate.upgrade(url)
        results = asyncio.run(evaluate(url, args.catalog, args.coarse_from))
    OUT.mkdir(exist_ok=True)
    (OUT / "search_eval.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
