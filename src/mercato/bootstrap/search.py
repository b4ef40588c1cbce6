"""Wiring product search's semantic half: the model, the index, the indexer, the events."""

from __future__ import annotations

import os
from pathlib import Path

from mercato.catalog import CatalogService
from mercato.catalog.service.semantic import SearchIndexer, SemanticIndex
from mercato.config import Settings
from mercato.platform.embedder import BackgroundModel, MiniLM
from mercato.platform.outbox import EventBus
from mercato.platform.uow import Transactor
from mercato.platform.workers import Worker, WorkerRunner


def cache_dir(settings: Settings) -> Path:
    """Where the model's ONNX graph is kept (MERCATO_SEARCH_CACHE_DIR, else the user's cache)."""
    if settings.search_cache_dir:
        return Path(settings.search_cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mercato"


def semantic_index(settings: Settings, transact: Transactor) -> SemanticIndex:
    """The semantic index for these settings (nothing loads until the model is started)."""
    folder, threads = cache_dir(settings), settings.search_threads
    model = BackgroundModel(lambda: MiniLM.load(folder, threads=threads))
    return SemanticIndex(
        transact, model, batch=settings.search_batch, query_cache=settings.search_query_cache
    )


def wire(
    settings: Settings,
    transact: Transactor,
    catalog: CatalogService,
    bus: EventBus,
    workers: list[Worker],
) -> SemanticIndex | None:
    """Search by meaning as the settings want it: the index behind ``catalog.search``, asked
    to embed by product events, its worker added to ``workers``; None when
    MERCATO_SEARCH_SEMANTIC is off."""
    if not settings.search_semantic:
        return None
    index = semantic_index(settings, transact)
    catalog.search.semantic = index
    bus.subscribe("ProductCreated", index.on_product_event)
    bus.subscribe("ProductUpdated", index.on_product_event)
    workers.append(SearchIndexer(index))
    return index


def wake_with(index: SemanticIndex | None, runner: WorkerRunner) -> None:
    """A request for embeddings wakes the indexer at once rather than after its idle sleep."""
    if index is not None:
        index.on_requested = lambda: runner.wake(SearchIndexer.name)
