"""OpenTelemetry tracing: a span per request and per database statement, exported over OTLP.

Off unless ``MERCATO_OTLP_ENDPOINT`` is set; then :class:`Tracing` owns a tracer provider (not
the process-global one, so tests and apps stay apart) whose spans a background thread batches
and posts to the collector (OTLP over HTTP/protobuf). When off, nothing is wrapped or created:
the request path and the database layer run exactly as without tracing.

Database spans come from :class:`TracedDatabase`, a wrapper around mercato's own database
layer, so both PostgreSQL and SQLite are covered through the one place every statement passes.
Span attributes carry the SQL text with its placeholders, never parameter values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from mercato.platform.db import Database, Row, Statement


class Tracing:
    """The tracer provider of one application, or nothing when tracing is off."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self.provider = provider
        self.tracer: Tracer | None = provider.get_tracer("mercato") if provider else None

    @classmethod
    def off(cls) -> Tracing:
        """Tracing disabled: no tracer, no cost."""
        return cls(None)

    @classmethod
    def create(
        cls,
        *,
        endpoint: str = "",
        exporter: SpanExporter | None = None,
        service_name: str = "mercato",
        version: str = "",
        sample_ratio: float = 1.0,
        environment: str = "",
    ) -> Tracing:
        """Tracing to an OTLP/HTTP endpoint (or, for tests, any exporter); off if neither."""
        if exporter is None and not endpoint:
            return cls.off()
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5)
        resource = Resource.create(
            {
                "service.name": service_name,
                "service.version": version,
                "deployment.environment": environment,
            }
        )
        provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio))
        )
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        """Whether spans are made at all."""
        return self.tracer is not None

    def wrap(self, db: Database) -> Database:
        """The database with a span around every statement (itself when tracing is off)."""
        if self.tracer is None:
            return db
        return TracedDatabase(db, self.tracer)

    def shutdown(self) -> None:
        """Flush pending spans and stop the export thread (blocking: call off the loop)."""
        if self.provider is not None:
            self.provider.shutdown()


class TracedConnection:
    """A :class:`mercato.platform.db.Connection` that records a client span per statement."""

    __slots__ = ("_raw", "_tracer", "dialect")

    def __init__(self, raw: Any, tracer: Tracer) -> None:
        self._raw = raw
        self._tracer = tracer
        self.dialect: str = raw.dialect

    def _span(self, operation: str, text: str) -> Any:
        return self._tracer.start_as_current_span(
            f"db {operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql" if self.dialect == "postgresql" else "sqlite",
                "db.operation": text.split(None, 1)[0].upper() if text else operation,
                "db.statement": text,
            },
        )

    async def _call(self, name: str, stmt: Statement, params: Mapping[str, Any]) -> Any:
        text = stmt.compiled(self.dialect).text
        with self._span(name, text):
            return await getattr(self._raw, name)(stmt, **params)

    async def fetch(self, stmt: Statement, /, **params: Any) -> list[Row]:
        result: list[Row] = await self._call("fetch", stmt, params)
        return result

    async def fetchrow(self, stmt: Statement, /, **params: Any) -> Row | None:
        result: Row | None = await self._call("fetchrow", stmt, params)
        return result

    async def fetchval(self, stmt: Statement, /, **params: Any) -> Any:
        return await self._call("fetchval", stmt, params)

    async def execute(self, stmt: Statement, /, **params: Any) -> int:
        result: int = await self._call("execute", stmt, params)
        return result

    async def executemany(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        text = stmt.compiled(self.dialect).text
        with self._span("executemany", text):
            await self._raw.executemany(stmt, rows)

    async def execute_text(self, text: str) -> None:
        with self._span("execute", text):
            await self._raw.execute_text(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class TracedDatabase:
    """A :class:`mercato.platform.db.Database` whose connections are traced."""

    def __init__(self, db: Database, tracer: Tracer) -> None:
        self._db = db
        self._tracer = tracer
        self.dialect = db.dialect
        self.url = db.url

    async def connect(self) -> None:
        await self._db.connect()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()

    @asynccontextmanager
    async def transaction(self, *, generic_plans: bool = False) -> AsyncIterator[TracedConnection]:
        # Not made the current span: the unit of work may leave the COMMIT to the idempotency
        # middleware, so this context can be exited far from where it was entered.
        span = self._tracer.start_span("db transaction", kind=SpanKind.CLIENT)
        try:
            async with self._db.transaction(generic_plans=generic_plans) as conn:
                yield TracedConnection(conn, self._tracer)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[TracedConnection]:
        async with self._db.connection() as conn:
            yield TracedConnection(conn, self._tracer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)
