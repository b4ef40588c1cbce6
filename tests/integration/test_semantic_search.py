"""Search by meaning: the embedder against its reference, indexing from product events, and
hybrid search on SQLite, PostgreSQL 15 (vectors scored in process) and PostgreSQL 16 with
pgvector (HNSW). The model is loaded once for the session (the ``minilm`` fixture)."""

from __future__ import annotations

import asyncio
import io
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mercato.bootstrap import Container
from mercato.catalog.domain.search import Filters
from mercato.catalog.service import ProductChanges
from mercato.catalog.service.semantic import SemanticIndex
from mercato.catalog.store import search_sql
from mercato.cli.search import reindex
from mercato.migrations import migrate
from mercato.platform.db_postgres import PgConnection
from mercato.platform.embedder import BackgroundModel, Matrix, MiniLM, cached_graph, model_dir
from tests.conftest import PG_URL, REQUIRE_PG, make_settings, running

pytestmark = pytest.mark.anyio
REFERENCE = Path(__file__).parents[1] / "fixtures" / "minilm_reference.json"
STAFF = "01900000-0000-7000-8000-000000000000"


def test_embeddings_match_sentence_transformers_reference(minilm: MiniLM) -> None:
    reference = json.loads(REFERENCE.read_text())
    mine = minilm.embed(reference["texts"])
    theirs = np.array(reference["vectors"], dtype=np.float32)
    assert mine.shape == (len(reference["texts"]), 384)
    cosines = (mine * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, dict(zip(reference["texts"], cosines.tolist(), strict=True))
    # padding to a batch's longest text changes nothing: masks, not the tokenizer's 128
    alone = minilm.embed([reference["texts"][3]])[0]
    assert float(alone @ mine[3]) > 0.99999


def test_the_graph_is_built_once_and_kept(minilm: MiniLM, tmp_path: Path) -> None:
    weights = model_dir() / "model.safetensors"
    first = cached_graph(weights, tmp_path)
    made = first.stat().st_mtime_ns
    assert cached_graph(weights, tmp_path) == first
    assert first.stat().st_mtime_ns == made
    assert not list(tmp_path.glob("*.part"))


@pytest.fixture(scope="module", params=["sqlite", "postgres", "pgvector"])
def search_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('semantic') / 'mercato.db'}"
    elif request.param == "postgres":
        if not PG_URL:
            pytest.skip("MERCATO_TEST_DATABASE_URL is not set")
        url = PG_URL
    else:
        url = str(request.getfixturevalue("pgvector_url"))
    migrate.upgrade(url)
    return url


@pytest.fixture
async def container(search_url: str, minilm: MiniLM) -> AsyncIterator[Container]:
    async with running(make_settings(search_url, search_semantic=True)) as built:
        assert built.semantic is not None
        built.semantic.model = BackgroundModel(lambda: minilm)
        yield built


async def add(container: Container, name: str, description: str, price: int) -> str:
    sku = f"SEM-{random.getrandbits(48):012X}"
    product = await container.catalog.create_product(
        actor_id=STAFF, sku=sku, name=name, description=description, price_amount=price,
        currency="EUR", weight_grams=10, initial_stock=3,
    )  # fmt: skip
    return product.id


async def settle(container: Container) -> SemanticIndex:
    """Hand the outbox to the subscribers, embed what waits, take the vectors in."""
    index = container.semantic
    assert index is not None
    for _ in range(200):
        if not await container.relay.run_once():
            break
    while await index.index_waiting():
        pass
    await index.refresh()
    return index


async def test_a_product_is_found_by_meaning_once_indexed(container: Container) -> None:
    price = random.randrange(10**8, 2 * 10**8)
    flask = await add(container, "Insulated travel flask", "Double-walled steel, 500 ml", price)
    await add(container, "Wool socks", "Merino socks for hiking", price)
    await add(container, "Desk lamp", "Dimmable LED light for reading", price)
    band = Filters(min_price=price, max_price=price)
    query = "something to keep coffee warm on the go"
    search = container.catalog.search
    before = await search.search(query, filters=band, cursor=None, limit=5)
    assert flask not in [f.product["id"] for f in before.items]  # no word of it matches
    await settle(container)
    page = await search.search(query, filters=band, cursor=None, limit=5)
    assert page.items[0].product["id"] == flask
    assert page.items[0].signals == ["semantic"]
    assert {f.product["id"] for f in page.items} >= {flask}


async def test_similar_products_are_nearest_to_the_products_own_vector(
    container: Container,
) -> None:
    price = random.randrange(10**8, 2 * 10**8)
    headphones = await add(container, "Wireless headphones", "Noise-cancelling, over-ear", price)
    earbuds = await add(container, "Bluetooth earbuds", "True wireless in-ear audio", price)
    await add(container, "Cast iron frying pan", "Sears steak evenly", price)
    index = await settle(container)
    similar = [pid for pid, _ in await index.similar(headphones, depth=50)]
    assert headphones not in similar
    mine = [pid for pid in similar if pid in {earbuds}]
    assert mine == [earbuds]


async def test_a_new_name_is_embedded_again(container: Container) -> None:
    price = random.randrange(10**8, 2 * 10**8)
    product = await add(container, "Garden hose", "Thirty metres, with a nozzle", price)
    index = await settle(container)
    before = index.matrix.get(product)
    assert before is not None
    before = before.copy()
    await container.catalog.update_product(
        product, ProductChanges(name="Sleeping bag for winter camping"), expected_version=None
    )
    await settle(container)
    after = index.matrix.get(product)
    assert after is not None
    assert float(after @ before) < 0.95


async def test_search_never_waits_for_the_model(container: Container, minilm: MiniLM) -> None:
    price = random.randrange(10**8, 2 * 10**8)
    product = await add(container, "Ceramic teapot", "Brews loose leaf tea", price)
    index = container.semantic
    assert index is not None

    loaded = threading.Event()  # the model "loads" until the test has searched

    def slow() -> MiniLM:
        loaded.wait(30)
        return minilm

    index.model = BackgroundModel(slow)
    index.model.start()
    started = time.monotonic()
    try:
        page = await container.catalog.search.search(
            "teapot", filters=Filters(min_price=price, max_price=price), cursor=None, limit=5
        )
        assert time.monotonic() - started < 1.0
        assert not index.model.ready
    finally:
        loaded.set()
    assert [f.product["id"] for f in page.items] == [product]
    assert "semantic" not in page.items[0].signals
    await index.model.loaded()


class CountingModel(BackgroundModel):
    """The model, counting the texts it is asked to embed."""

    def __init__(self, model: MiniLM) -> None:
        super().__init__(lambda: model)
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Matrix:
        self.texts.extend(texts)
        return await super().embed(texts)


async def test_a_repeated_query_is_not_embedded_again(container: Container, minilm: MiniLM) -> None:
    price = random.randrange(10**8, 2 * 10**8)
    flask = await add(container, "Insulated travel flask", "Double-walled steel, 500 ml", price)
    index = await settle(container)
    index.model = model = CountingModel(minilm)
    await model.loaded()
    index.query_cache = 2
    band = Filters(min_price=price, max_price=price)

    async def ids(text: str) -> list[str]:
        page = await container.catalog.search.search(text, filters=band, cursor=None, limit=5)
        return [f.product["id"] for f in page.items]

    first = await ids("something to keep coffee warm on the go")
    assert first == [flask]
    assert await ids("something to keep coffee warm on the go") == first
    assert model.texts == ["something to keep coffee warm on the go"]
    await ids("a hot drink while travelling")
    await ids("something to keep coffee warm on the go")  # the most recent two stay
    await ids("soup for a winter hike")  # pushes out the least recently used
    await ids("something to keep coffee warm on the go")
    await ids("a hot drink while travelling")
    assert model.texts == [
        "something to keep coffee warm on the go",
        "a hot drink while travelling",
        "soup for a winter hike",
        "a hot drink while travelling",
    ]


def test_the_pgvector_server_is_required_where_postgres_is(pgvector_url: str) -> None:
    assert pgvector_url.startswith("postgresql://") or not REQUIRE_PG


def test_reindex_embeds_every_product_and_shows_its_progress(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reindex.db'}"
    migrate.upgrade(url)
    settings = make_settings(url, search_semantic=True, search_batch=16)
    out = io.StringIO()

    async def main() -> int:
        async with running(settings) as built:
            for i in range(40):
                await add(built, f"Product {i}", "Plain", 100 + i)
        done, _ = await reindex(settings, out=out)
        async with running(settings) as built:
            assert built.semantic is not None
            assert await built.semantic.refresh() == 40
        return done

    assert asyncio.run(main()) == 40
    last = out.getvalue().rstrip().rsplit("\r", 1)[-1]
    assert last.startswith("reindex [" + "#" * 30 + "] 40/40 "), last


async def test_no_query_is_kept_when_the_cache_is_off(container: Container, minilm: MiniLM) -> None:
    index = container.semantic
    assert index is not None
    index.model = model = CountingModel(minilm)
    index.query_cache = 0
    await model.loaded()
    for _ in range(2):
        await index.nearest("a warm blanket", depth=5)
    assert model.texts == ["a warm blanket", "a warm blanket"]


async def test_a_query_differing_only_in_case_is_not_embedded_again(
    container: Container, minilm: MiniLM
) -> None:
    """The model lower-cases its input: the same embedding, so one cache entry."""
    index = container.semantic
    assert index is not None
    index.model = model = CountingModel(minilm)
    index.query_cache = 8
    await model.loaded()
    await index.nearest("Warm Blanket", depth=5)
    await index.nearest("warm blanket", depth=5)
    await index.nearest("WARM BLANKET", depth=5)
    assert model.texts == ["warm blanket"]
    upper, lower = minilm.embed(["Warm Blanket", "warm blanket"])
    assert float(upper @ lower) > 0.9999


async def test_a_popular_query_is_one_read_and_on_postgresql_one_statement(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the query's vector cached, its semantic candidates are known before the lexical
    read, which reads their products (and applies the filters to them) as well."""
    price = random.randrange(10**8, 2 * 10**8)
    flask = await add(container, "Insulated travel flask", "Double-walled steel, 500 ml", price)
    index = await settle(container)
    band = Filters(min_price=price, max_price=price)
    text = "something to keep coffee warm on the go"

    async def hits() -> list[tuple[str, list[str]]]:
        page = await container.catalog.search.search(text, filters=band, cursor=None, limit=5)
        return [(str(f.product["id"]), [str(s) for s in f.signals]) for f in page.items]

    assert await hits() == [(flask, ["semantic"])]  # embeds the query, and caches it
    if index._pgvector:
        pytest.skip("pgvector's neighbours are a statement of their own")
    searching = {
        search_sql.PG_LEXICAL_TOP, search_sql.PG_LEXICAL_FILTERED, search_sql.PG_WORDS_TOP,
        search_sql.PG_WORDS_FILTERED, search_sql.PG_BY_IDS, search_sql.BY_SKU,
    }  # fmt: skip
    statements: list[object] = []
    for name in ("fetch", "fetchrow"):

        async def counted(
            self: PgConnection, stmt: object, /, _run: Any = getattr(PgConnection, name), **kw: Any
        ) -> Any:
            if stmt in searching:
                statements.append(stmt)
            return await _run(self, stmt, **kw)

        monkeypatch.setattr(PgConnection, name, counted)
    transact = container.catalog.search._transact
    reads: list[object] = []
    read = transact.read

    async def counted_read(work: Any) -> Any:
        reads.append(work)
        return await read(work)

    monkeypatch.setattr(transact, "read", counted_read)
    assert index.answers_at_once(text)
    assert await hits() == [(flask, ["semantic"])]  # the others near it are refused
    assert len(reads) == 1
    assert len(statements) == (1 if container.db.dialect == "postgresql" else 0)
