"""The event schemas under docs/events/ are what the code publishes, and they mean something."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from mercato.cli import event_schemas
from mercato.kernel.events import DomainEvent
from mercato.platform import outbox
from mercato.platform.jetstream import envelope
from mercato.platform.outbox import OutboxEvent

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events" / "v1"
LINE = {"product_id": "p1", "sku": "MUG-1", "quantity": 2, "unit_price": 1250}


def sample(kind: type[DomainEvent]) -> DomainEvent:
    """An instance of the event with a plausible value in every field."""
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):
        hint = hints[field.name]
        origin = typing.get_origin(hint)
        if field.name == "lines":
            values[field.name] = [LINE]
        elif origin is list:
            values[field.name] = ["name"]
        elif origin is dict:
            values[field.name] = {"city": "Berlin"}
        else:
            values[field.name] = {str: "x1", int: 3, bool: True}[hint]
    return kind(**values)


def published(event: DomainEvent, seq: int = 7) -> dict[str, Any]:
    """The envelope the relay would send for this event, through JSON and back."""
    row = OutboxEvent(
        seq=seq,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        event_type=event.event_type,
        payload=orjson.loads(outbox.encode(event)),
        occurred_at=datetime(2026, 12, 5, 7, 30, 0, 123456, tzinfo=UTC),
    )
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(envelope(row)))
    return loaded


def validator(name: str) -> Draft202012Validator:
    document = orjson.loads((DOCS / f"{name}.schema.json").read_bytes())
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_documented_schemas_are_the_generated_ones_one_per_event_type() -> None:
    expected = event_schemas.rendered()
    on_disk = {path.name: path.read_bytes() for path in DOCS.glob("*.schema.json")}
    regenerate = "python -m mercato.cli.event_schemas docs/events/v1"
    assert sorted(on_disk) == sorted(expected), regenerate
    for name, content in expected.items():
        assert on_disk[name] == content, f"{name} is stale: {regenerate}"
    assert len(expected) >= 15


@pytest.mark.parametrize("kind", event_schemas.event_types(), ids=lambda k: k.__name__)
def test_every_event_is_stored_as_exactly_its_payload(kind: type[DomainEvent]) -> None:
    event = sample(kind)
    assert orjson.loads(outbox.encode(event)) == event.payload()
    assert outbox.encode(event) == orjson.dumps(event.payload()).decode()  # same key order


@pytest.mark.parametrize("kind", event_schemas.event_types(), ids=lambda k: k.__name__)
def test_every_event_as_published_is_valid_against_its_schema(kind: type[DomainEvent]) -> None:
    message = published(sample(kind))
    errors = list(validator(kind.__name__).iter_errors(message))
    assert errors == []
    assert message["occurred_at"] == "2026-12-05T07:30:00.123456Z"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.pop("id"), "'id' is a required property"),
        (lambda m: m.update(envelope_version=2), "1 was expected"),
        (lambda m: m.update(type="OrderShipped"), "'OrderPlaced' was expected"),
        (lambda m: m.update(id="not-a-uuid"), "is not a 'uuid'"),
        (lambda m: m.update(occurred_at="yesterday"), "does not match"),
        (lambda m: m.update(occurred_at="2026-12-05T08:30:00+01:00"), "does not match"),
        (lambda m: m["data"].pop("total"), "'total' is a required property"),
        (lambda m: m["data"].update(total="12.50"), "is not of type 'integer'"),
        (lambda m: m["data"]["lines"][0].update(quantity=0), "less than the minimum"),
    ],
)
def test_a_malformed_envelope_is_refused_by_its_schema(change: Any, why: str) -> None:
    kind = next(k for k in event_schemas.event_types() if k.__name__ == "OrderPlaced")
    message = published(sample(kind))
    change(message)
    errors = [error.message for error in validator("OrderPlaced").iter_errors(message)]
    assert any(why in error for error in errors), errors
