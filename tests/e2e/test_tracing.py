"""OpenTelemetry: spans for requests and database statements, exported over OTLP/HTTP."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mercato.platform import logging as mlog
from mercato.platform.tracing import TracedDatabase
from mercato.web.app import create_app
from tests.conftest import make_settings
from tests.e2e.server import free_port

pytestmark = pytest.mark.anyio


@dataclass
class Collector:
    """An OTLP/HTTP trace receiver: decodes what the exporter posts to /v1/traces."""

    url: str
    spans: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def otlp_collector() -> Iterator[Collector]:
    port = free_port()
    collector = Collector(f"http://127.0.0.1:{port}/v1/traces")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                collector.resources.append(resource)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        collector.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "attributes": {
                                    a.key: a.value.string_value or a.value.int_value
                                    for a in span.attributes
                                },
                            }
                        )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()


async def test_requests_and_statements_are_traced_exported_and_logged_with_ids(
    database_url: str,
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mlog.configure(level="INFO", fmt="json", stream=stream)
    parent_trace = uuid.uuid4().hex
    parent = f"00-{parent_trace}-{uuid.uuid4().hex[:16]}-01"
    try:
        with otlp_collector() as collector:
            app = create_app(make_settings(database_url, otlp_endpoint=collector.url))
            assert isinstance(app.state.container.db, TracedDatabase)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://mercato.test"
                ) as http:
                    missing = await http.get(
                        f"/v1/products/{uuid.uuid4()}", headers={"traceparent": parent}
                    )
                    assert missing.status_code == 404
                    carded = await http.get("/v1/products/4242424242424242")
                    assert carded.status_code == 404
            # leaving the lifespan flushed the exporter
            mlog.shutdown()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()

    server = next(s for s in collector.spans if s["name"] == "GET /v1/products/{product_id}")
    assert server["trace_id"] == parent_trace  # continued the caller's trace
    assert server["attributes"]["http.route"] == "/v1/products/{product_id}"
    assert server["attributes"]["http.response.status_code"] == 404
    statements = [s for s in collector.spans if s["parent"] == server["span_id"]]
    assert statements, collector.spans
    assert all(s["name"].startswith("db ") for s in statements)
    assert any("SELECT" in str(s["attributes"]["db.statement"]) for s in statements)
    assert {"service.name": "mercato"}.items() <= collector.resources[0].items()
    # a card number sent in a path is masked in spans, as in log lines
    assert "4242424242424242" not in json.dumps(collector.spans)

    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = next(r for r in logged if r.get("route") == "/v1/products/{product_id}")
    assert access["trace_id"] == parent_trace
    assert access["span_id"] == server["span_id"]


async def test_without_an_endpoint_tracing_costs_nothing(app: Any) -> None:
    container = app.state.container
    assert container.tracing.tracer is None
    assert not isinstance(container.db, TracedDatabase)


async def test_a_process_wide_provider_adds_no_second_set_of_spans(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's own telemetry stays off: mercato's middleware is the one that traces requests.

    With it on, installing an OpenTelemetry provider for the whole process (as auto-instrumenting
    agents do) would make the framework trace every request a second time.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        assert (await http.get(f"/v1/products/{uuid.uuid4()}")).status_code == 404
        assert (await http.get("/v1/products")).status_code == 200
    provider.shutdown()
    assert exporter.get_finished_spans() == ()


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="otlp_endpoint"):
        make_settings("sqlite:///x.db", otlp_endpoint="grpc://collector:4317")
