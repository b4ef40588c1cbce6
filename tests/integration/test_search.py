"""Lexical product search on both databases: words, prefixes, typos, SKUs, filters, paging.

The database is shared by the session, so each test names its products with a word of its
own (:func:`word`) and looks only at those.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.domain.search import CANDIDATES, Filters, InvalidSearch, names_every_term
from mercato.catalog.service import ProductChanges
from mercato.catalog.store import search_sql, search_store
from mercato.cli import catalog
from mercato.kernel.errors import InvalidValue
from mercato.migrations import migrate
from mercato.platform.db import sql
from mercato.platform.db_postgres import PgConnection
from tests.conftest import PG_URL
from tests.e2e.scratch import scratch_database

pytestmark = pytest.mark.anyio


def word() -> str:
    """A made-up word no other test uses (letters only, so typos of it can be made)."""
    return "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


async def add(
    container: Container,
    name: str,
    *,
    description: str = "",
    sku: str | None = None,
    price: int = 1000,
    stock: int = 5,
) -> str:
    product = await container.catalog.create_product(
        actor_id="01900000-0000-7000-8000-000000000000",
        sku=sku or f"S-{uuid.uuid4().hex[:12].upper()}",
        name=name,
        description=description,
        price_amount=price,
        currency="EUR",
        weight_grams=100,
        initial_stock=stock,
    )
    return product.id


async def found(
    container: Container, text: str, *, filters: Filters | None = None, limit: int = 20
) -> list[tuple[str, list[str]]]:
    page = await container.catalog.search.search(
        text, filters=filters or Filters(), cursor=None, limit=limit
    )
    return [(str(f.product["id"]), [str(s) for s in f.signals]) for f in page.items]


async def test_words_in_name_and_description_rank_the_name_first(container: Container) -> None:
    w = word()
    in_description = await add(container, "Plain thing", description=f"made of {w} fibre")
    in_name = await add(container, f"{w} basket")
    hits = await found(container, w)
    assert [h for h, _ in hits] == [in_name, in_description]
    assert "words" in hits[0][1]


async def test_a_word_in_the_name_outranks_a_longer_word_that_begins_with_its_stem(
    container: Container,
) -> None:
    """Each term is also a prefix, stemmed ("kettl*" for kettle): the kettlebell is found, after
    every kettle, however much shorter its row is than theirs."""
    w = word()
    about = "Brushed steel, 1.7 litres, boils in three minutes; a lid that opens with one hand."
    kettles = [await add(container, f"{w}kettle electric {i}", description=about) for i in range(3)]
    kettlebell = await add(container, f"{w}kettlebell")
    hits = [h for h, _ in await found(container, f"{w}kettle")]
    assert set(hits[:3]) == set(kettles)
    assert hits[3] == kettlebell


async def test_a_prefix_a_typo_and_a_partial_word_find_the_product(container: Container) -> None:
    w = word()
    wanted = await add(container, f"Travel {w}phones")
    assert (await found(container, f"{w}ph"))[0][0] == wanted  # prefix
    typo = w[:3] + w[4:] + "phones"  # one letter dropped
    hits = await found(container, typo)
    assert hits[0] == (wanted, ["trigrams"])
    assert (await found(container, f"{w[2:]}phones"))[0][0] == wanted  # inside a word


async def test_an_exact_sku_comes_first_whatever_the_case(container: Container) -> None:
    w = word()
    sku = f"{w[:6].upper()}-42"
    await add(container, f"{w} lamp {w[:6]}")
    wanted = await add(container, "Desk lamp", sku=sku)
    hits = await found(container, sku.lower())
    assert hits[0] == (wanted, ["sku", *hits[0][1][1:]])


def trigram_candidates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many trigram candidates (rows found by trigrams, not words) each lexical search
    fetched, appended as searches run."""
    counts: list[int] = []
    rank = search_store._rank

    def counted(rows: Any, query: Any, *, fuzzy: bool) -> Any:
        counts.append(sum(1 for r in rows if not r["words"]))
        return rank(rows, query, fuzzy=fuzzy)

    monkeypatch.setattr(search_store, "_rank", counted)
    return counts


async def test_an_exact_sku_is_not_also_looked_for_as_a_typo(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The product with the SKU is the answer; the trigrams of its parts found only noise."""
    w = word()
    sku = f"{w[:6].upper()}-42"
    lookalike = await add(container, f"{w[:6]} lamp 42")
    wanted = await add(container, "Desk lamp", sku=sku)
    counts = trigram_candidates(monkeypatch)
    hits = await found(container, sku)
    assert hits[0] == (wanted, ["sku", *hits[0][1][1:]])
    assert counts == [0]
    assert all("trigrams" not in signals for _, signals in hits)
    assert lookalike in {h for h, _ in hits}  # still found by its words
    assert "trigrams" in dict(await found(container, f"{w[:6]}-43"))[lookalike]  # no SKU: typos


async def test_a_prefix_that_starts_a_word_of_every_best_name_asks_for_no_trigrams(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When all of the words' best candidates name every term, the trigram candidates are
    those names again: they are not asked for, and typos are ranked among the words'."""
    w = word()
    kettles = {await add(container, f"{w}kettle electric {i}") for i in range(CANDIDATES)}
    counts = trigram_candidates(monkeypatch)
    hits = await found(container, f"{w}kett", limit=CANDIDATES)
    assert {h for h, _ in hits} == kettles
    assert all(signals == ["words", "trigrams"] for _, signals in hits)
    assert counts == [0]
    typo = f"{w}ketle"  # no name has it: the trigrams are asked for
    assert {h for h, _ in await found(container, typo, limit=CANDIDATES)} == kettles
    assert counts[1] > 0


async def test_a_one_word_query_is_one_statement_on_postgresql(
    container: Container, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any one-word query could be a SKU: the SKU is looked up in the lexical statement, not
    in a round trip of its own."""
    if backend != "postgres":
        pytest.skip("SQLite's statements run in process: no round trip to save")
    w = word()
    wanted = await add(container, "Desk lamp", sku=w[:8].upper())
    lamp = await add(container, f"{w[:8]} lamp")
    await found(container, w)  # the first search also asks whether pg_trgm is there
    statements: list[object] = []
    for name in ("fetch", "fetchrow", "fetchval"):

        async def counted(
            self: PgConnection, stmt: object, /, _run: Any = getattr(PgConnection, name), **kw: Any
        ) -> Any:
            statements.append(stmt)
            return await _run(self, stmt, **kw)

        monkeypatch.setattr(PgConnection, name, counted)
    hits = await found(container, w[:8])
    assert hits[0][0] == wanted
    assert hits[0][1][0] == "sku"
    assert hits[1][0] == lamp
    assert len(statements) == 1


async def test_the_name_rule_is_the_same_in_python_and_in_postgresql(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's statement decides by a pattern; SQLite's store in Python")
    cases = [
        (("kett",), "Brand Electric Kettle 1.7 l, Black"),
        (("kett", "black"), "Brand Electric Kettle 1.7 l, Black"),
        (("kett", "blue"), "Brand Electric Kettle 1.7 l, Black"),
        (("ettle",), "Brand Electric Kettle"),
        (("phones",), "Travel Headphones"),
        (("7",), "Kettle 1.7 l"),
        (("kettle",), "kettle-bell"),
    ]
    match = sql(sa.text("SELECT lower(:name) ~ :pattern"))
    async with container.db.connection() as conn:
        for terms, name in cases:
            in_sql = await conn.fetchval(match, name=name, pattern=search_sql.named_pattern(terms))
            assert in_sql == names_every_term(terms, name), (terms, name)


async def test_stop_words_alone_find_nothing_and_do_not_dilute_a_query(
    container: Container,
) -> None:
    w = word()
    wanted = await add(container, f"The {w} of the year")
    assert await found(container, "the of and") == []
    assert (await found(container, f"something for the {w}"))[0][0] == wanted


async def test_filters_keep_to_stock_and_price(container: Container) -> None:
    w = word()
    cheap = await add(container, f"{w} cheap", price=500)
    dear = await add(container, f"{w} dear", price=5000)
    gone = await add(container, f"{w} gone", price=800, stock=0)
    assert {h for h, _ in await found(container, w)} == {cheap, dear, gone}
    in_stock = await found(container, w, filters=Filters(in_stock=True))
    assert {h for h, _ in in_stock} == {cheap, dear}
    band = await found(container, w, filters=Filters(min_price=600, max_price=5000))
    assert {h for h, _ in band} == {dear, gone}
    with pytest.raises(InvalidSearch):
        await found(container, w, filters=Filters(min_price=10, max_price=1))


async def test_pages_follow_the_cursor_without_repeats(container: Container) -> None:
    w = word()
    made = {await add(container, f"{w} item {i}") for i in range(5)}
    search = container.catalog.search
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await search.search(w, filters=Filters(), cursor=cursor, limit=2)
        seen += [str(f.product["id"]) for f in page.items]
        cursor = page.next_cursor
    assert cursor is None
    assert sorted(seen) == sorted(made)
    with pytest.raises(InvalidValue):
        await search.search(w, filters=Filters(), cursor="bm90LWEtY3Vyc29y", limit=2)


async def test_a_renamed_or_deactivated_product_is_found_by_its_new_state_at_once(
    container: Container,
) -> None:
    old, new = word(), word()
    product_id = await add(container, f"{old} kettle")
    await container.catalog.update_product(
        product_id, ProductChanges(name=f"{new} kettle"), expected_version=None
    )
    assert await found(container, old) == []
    assert [h for h, _ in await found(container, new)] == [product_id]
    await container.catalog.update_product(
        product_id, ProductChanges(active=False), expected_version=None
    )
    assert await found(container, new) == []


async def test_the_search_tables_are_kept_by_triggers_at_head(
    container: Container, backend: str
) -> None:
    names = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgres": "SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal",
    }[backend]
    async with container.db.connection() as conn:
        triggers = {row["name"] for row in await conn.fetch(sql(sa.text(names)))}
    wanted = {
        "sqlite": {"catalog_search_insert", "catalog_search_update", "catalog_search_delete"},
        "postgres": {"catalog_search_doc", "catalog_search_doc_update"},
    }[backend]
    assert wanted <= triggers


DOC_VERSION = sql(
    sa.text("SELECT CAST(xmin AS text) AS v FROM catalog_search_docs WHERE product_id = :id")
)


async def test_moving_stock_never_rewrites_a_products_search_document(
    container: Container, backend: str
) -> None:
    """Stock moves on every order: it must not pay for the product's words (PostgreSQL)."""
    if backend != "postgres":
        pytest.skip("SQLite's triggers fire on name, SKU and description only (migration 0009)")
    w = word()
    product = await add(container, f"{w} kettle", description="Boils water")
    async with container.db.connection() as conn:
        before = await conn.fetchval(DOC_VERSION, id=product)
    assert before is not None
    await container.catalog.adjust_stock(
        product, delta=7, reason="delivery", actor_id="01900000-0000-7000-8000-000000000000"
    )
    await container.catalog.update_product(
        product, ProductChanges(price_amount=1234), expected_version=None
    )
    async with container.db.connection() as conn:
        assert await conn.fetchval(DOC_VERSION, id=product) == before
    await container.catalog.update_product(
        product, ProductChanges(description="Boils water, whistles"), expected_version=None
    )
    async with container.db.connection() as conn:
        assert await conn.fetchval(DOC_VERSION, id=product) != before
    assert [i for i, _ in await found(container, f"{w} whistles")] == [product]


async def test_importing_a_generated_catalog_twice_adds_it_once(container: Container) -> None:
    w = word().upper()
    batch = [
        {**catalog.product(3, i), "sku": f"{w}-{i}", "name": f"{w} {catalog.product(3, i)['name']}"}
        for i in range(40)
    ]
    actor = "01900000-0000-7000-8000-000000000000"
    assert await container.catalog.import_products(batch, actor_id=actor) == 40
    assert await container.catalog.import_products(batch[:50], actor_id=actor) == 0
    hits = await found(container, f"{w.lower()} travel flask", limit=5)
    first = await container.catalog.get_product(hits[0][0])
    assert "Travel Flask" in first.name
    assert first.available == batch[0]["initial_stock"]


_TRGM_COSTS = (
    "SELECT procost FROM pg_proc"
    " WHERE proname IN ('word_similarity_op', 'word_similarity_commutator_op')"
)


def _pg(url: str, *statements: str) -> list[str]:
    """Run ``statements`` on ``url``; the first column of the last one's rows, as text."""

    async def go() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements[:-1]:
                await conn.execute(statement)
            return [str(r[0]) for r in await conn.fetch(statements[-1])]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_migration_0011_stores_the_documents_of_products_already_there_and_reverts(
    tmp_path: Path,
) -> None:
    """Products written before the upgrade are searchable after it; the downgrade gives back
    the expression index the release before it searches with."""
    if not PG_URL:
        pytest.skip("migration 0011 changes PostgreSQL only (MERCATO_TEST_DATABASE_URL)")
    w = word()
    insert = f"""INSERT INTO catalog_products VALUES ('p-{w}', 'SKU-{w}', '{w} lantern',
        'Lights a tent', 1000, 'EUR', 100, true, 5, 0, 0, now(), now(), 1)"""
    match = f"SELECT product_id FROM catalog_search_docs WHERE doc @@ to_tsquery('{w}')"
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'catalog_products'"
    tables = "SELECT tablename FROM pg_tables WHERE tablename = 'catalog_search_docs'"

    with scratch_database("postgres", tmp_path, "search_docs") as url:
        migrate.upgrade(url, "0010")
        _pg(url, insert)
        migrate.upgrade(url)
        assert _pg(url, match) == [f"p-{w}"]
        assert "ix_catalog_products_search_doc" not in _pg(url, indexes)
        migrate.downgrade(url, "0010")
        assert "ix_catalog_products_search_doc" in _pg(url, indexes)
        assert _pg(url, tables) == []


async def test_filters_that_refuse_the_best_matches_still_find_the_rest(
    container: Container,
) -> None:
    """Each signal keeps its best CANDIDATES matches before reading their products; when the
    filters refuse some of those, the products further down are looked for too."""
    w = word()
    actor = "01900000-0000-7000-8000-000000000000"
    best = [
        {**catalog.product(5, i), "sku": f"{w.upper()}-{i}", "name": f"{w} {w} gadget {i}",
         "initial_stock": 0}
        for i in range(CANDIDATES + 5)
    ]  # fmt: skip
    await container.catalog.import_products(best, actor_id=actor)
    stocked = {await add(container, "Plain thing", description=f"goes with a {w}")}
    stocked.add(await add(container, f"{w[:-1]}x thing"))  # found by trigrams only
    hits = await found(container, w, filters=Filters(in_stock=True), limit=50)
    assert {h for h, _ in hits} == stocked
    everything = await found(container, w, limit=50)
    assert len(everything) == 50
    assert not stocked & {h for h, _ in everything[: CANDIDATES - 10]}


async def test_a_search_reads_the_database_once(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidates carry the columns the page shows: no second read for the page."""
    w = word()
    lamp = await add(container, f"{w} lamp")
    await found(container, w)  # the first search also asks whether pg_trgm is there
    transact = container.catalog.search._transact
    reads = 0
    read = transact.read

    async def counted(work: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read(work)

    monkeypatch.setattr(transact, "read", counted)
    assert (await found(container, f"{w} lamp"))[0][0] == lamp
    assert reads == 1


def test_migration_0012_costs_trigram_comparisons_so_the_index_is_used_and_reverts(
    tmp_path: Path,
) -> None:
    """At pg_trgm's default cost of 1 the planner scanned every product's name rather than use
    the trigram index (90 ms against 5 ms at 10,000 products)."""
    if not PG_URL:
        pytest.skip("migration 0012 changes PostgreSQL only (MERCATO_TEST_DATABASE_URL)")
    plan = "EXPLAIN SELECT id FROM catalog_products WHERE 'electirc kettle' <% lower(name)"
    fill = """INSERT INTO catalog_products SELECT 'p-' || i, 'SKU-' || i, 'Thing ' || md5(i::text),
        '', 1000, 'EUR', 100, true, 5, 0, 0, now(), now(), 1 FROM generate_series(1, 10000) AS i"""

    with scratch_database("postgres", tmp_path, "search_cost") as url:
        migrate.upgrade(url, "0011")
        _pg(url, fill, "ANALYZE catalog_products", "SELECT 1")
        assert "Seq Scan" in _pg(url, plan)[0]
        migrate.upgrade(url)
        assert _pg(url, _TRGM_COSTS) == ["100.0", "100.0"]
        assert "Index Scan" in "\n".join(_pg(url, plan))
        migrate.downgrade(url, "0011")
        assert _pg(url, _TRGM_COSTS) == ["1.0", "1.0"]


def test_migration_0012_by_a_role_that_does_not_own_pg_trgm_leaves_the_cost_alone(
    tmp_path: Path,
) -> None:
    """On a managed PostgreSQL the extension's functions belong to its administrator: the
    migration must not fail there (only their owner may change a cost), it keeps pg_trgm's."""
    if not PG_URL:
        pytest.skip("migration 0012 changes PostgreSQL only (MERCATO_TEST_DATABASE_URL)")
    role = f"mercato_not_owner_{os.getpid()}"

    with scratch_database("postgres", tmp_path, "search_cost_owner") as url:
        migrate.upgrade(url, "0011")
        _pg(url, f"CREATE ROLE {role} LOGIN", f"GRANT ALL ON alembic_version TO {role}", "SELECT 1")
        try:
            as_role = sa.engine.make_url(url).set(username=role, password=None)
            # to 0012 only: later migrations create objects, which this role may not
            migrate.upgrade(as_role.render_as_string(hide_password=False), "0012")
            assert _pg(url, _TRGM_COSTS) == ["1.0", "1.0"]
            assert _pg(url, "SELECT version_num FROM alembic_version") == ["0012"]
        finally:
            _pg(url, f"DROP OWNED BY {role}", f"DROP ROLE {role}", "SELECT 1")


def _nested_plans(url: str, statement: str) -> list[str]:
    """The plans of the statements ``statement`` runs inside functions (auto_explain)."""

    async def go() -> list[str]:
        conn = await asyncpg.connect(url)
        notices: list[str] = []
        conn.add_log_listener(lambda _, message: notices.append(str(message.message)))
        try:
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_level = notice",
                "SET client_min_messages = notice",
            ):
                await conn.execute(setting)
            await conn.fetch(statement)
            return notices
        finally:
            await conn.close()

    return asyncio.run(go())


def test_migration_0014_ranks_the_words_through_the_gin_index_and_reverts(
    tmp_path: Path,
) -> None:
    """PostgreSQL costs ``@@`` like a comparison, so at 10,000 documents it scanned them all
    rather than ask the GIN index (8 ms against 2.7 ms for a four-word query): the function
    of 0014 plans the same statement without the scan and answers exactly what it did."""
    if not PG_URL:
        pytest.skip("migration 0014 changes PostgreSQL only (MERCATO_TEST_DATABASE_URL)")
    fill = """INSERT INTO catalog_products SELECT 'p-' || i, 'SKU-' || i,
        (ARRAY['Kettle', 'Lamp', 'Flask', 'Chair'])[i % 4 + 1] || ' ' || md5(i::text),
        'Keeps coffee warm ' || md5((i * 7)::text), 1000, 'EUR', 100, true, 5, 0, 0, now(),
        now(), 1 FROM generate_series(1, 10000) AS i"""
    query = "kettl:* | warm:*"
    plain = f"""SELECT d.product_id, ts_rank('{{0.05, 0.2, 0.5, 1.0}}', d.doc, q) AS words
        FROM catalog_search_docs AS d, to_tsquery('english', '{query}') AS q
        WHERE d.doc @@ q ORDER BY words DESC, d.product_id LIMIT 60"""
    function = f"SELECT product_id, words FROM catalog_search_words('{query}', 60)"
    exists = "SELECT count(*) FROM pg_proc WHERE proname = 'catalog_search_words'"

    with scratch_database("postgres", tmp_path, "search_words") as url:
        migrate.upgrade(url, "0012")
        _pg(url, fill, "ANALYZE", "SELECT 1")
        assert "Seq Scan on catalog_search_docs" in "\n".join(_pg(url, f"EXPLAIN {plain}"))
        migrate.upgrade(url)
        ranked = _pg(url, function)
        assert len(ranked) == 60
        assert ranked == _pg(url, plain)
        nested = "\n".join(_nested_plans(url, function))
        assert "Bitmap Index Scan on ix_catalog_search_docs_doc" in nested
        assert "Seq Scan" not in nested
        migrate.downgrade(url, "0012")
        assert _pg(url, exists) == ["0"]
