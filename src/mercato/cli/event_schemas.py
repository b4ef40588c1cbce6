"""JSON schemas of the events mercato publishes to NATS, one per event type (docs/events/).

Each schema describes the whole envelope (:mod:`mercato.platform.jetstream.envelope`) with the
event's own fields under ``data``, derived from the event's dataclass so it cannot drift from
the code; the tests compare the files under docs/events/ with what this module generates.
Regenerate them after changing an event with::

    python -m mercato.cli.event_schemas docs/events/v1
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

import orjson

from mercato.catalog import events as catalog_events
from mercato.customers import events as customers_events
from mercato.kernel.events import DomainEvent
from mercato.orders import events as orders_events
from mercato.payments import events as payments_events
from mercato.platform.jetstream import ENVELOPE_VERSION

_UTC_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$"
MODULES = (customers_events, catalog_events, orders_events, payments_events)
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
    Any: {},
}


# Fields whose annotation is a loose mapping: what the producing code puts in them.
_DETAILS: dict[tuple[str, str], dict[str, Any]] = {
    ("OrderPlaced", "lines"): {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["product_id", "sku", "quantity", "unit_price"],
            "properties": {
                "product_id": {"type": "string"},
                "sku": {"type": "string"},
                "quantity": {"type": "integer", "minimum": 1},
                "unit_price": {"type": "integer", "description": "minor units of currency"},
            },
        },
    },
}


def event_types() -> list[type[DomainEvent]]:
    """Every concrete event class (a module's base event class has subclasses; events do not)."""
    found: list[type[DomainEvent]] = []
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, DomainEvent)
                and value.__module__ == module.__name__
                and not value.__subclasses__()
            ):
                found.append(value)
    return sorted(found, key=lambda kind: (kind.aggregate_type, kind.__name__))


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of one field's type annotation."""
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1]) if args else {}}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [{"type": "null"} if a is type(None) else type_schema(a) for a in args]}
    raise TypeError(f"no JSON schema for the annotation {hint!r}")


def data_schema(kind: type[DomainEvent]) -> dict[str, Any]:
    """The schema of an event's own fields (every field is always present)."""
    hints = typing.get_type_hints(kind)
    fields = [f.name for f in dataclasses.fields(kind)]
    return {
        "type": "object",
        "required": fields,
        "properties": {
            name: _DETAILS.get((kind.__name__, name)) or type_schema(hints[name]) for name in fields
        },
        "additionalProperties": True,  # fields may be added within an envelope version
    }


def schema(kind: type[DomainEvent]) -> dict[str, Any]:
    """The schema of the envelope that carries one event type."""
    name = kind.__name__
    envelope = {
        "envelope_version": {"const": ENVELOPE_VERSION},
        "id": {"type": "string", "format": "uuid"},
        "type": {"const": name},
        "aggregate_type": {"const": kind.aggregate_type},
        "aggregate_id": {"type": "string", "minLength": 1},
        "sequence": {"type": "integer", "minimum": 1},
        "occurred_at": {"type": "string", "format": "date-time", "pattern": _UTC_TIME},
        "data": data_schema(kind),
    }
    return {
        "$schema": DRAFT,
        "$id": f"https://mercato.dev/events/v{ENVELOPE_VERSION}/{name}.schema.json",
        "title": name,
        "description": (
            f"mercato event {name} of the {kind.aggregate_type} aggregate, on subject "
            f"<prefix>.{kind.aggregate_type}.{name}, envelope version {ENVELOPE_VERSION}"
        ),
        "type": "object",
        "required": list(envelope),
        "properties": envelope,
        "additionalProperties": True,
    }


def rendered() -> dict[str, bytes]:
    """File name -> content of every schema, as written under docs/events/v<version>/."""
    return {
        f"{kind.__name__}.schema.json": orjson.dumps(
            schema(kind), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
        for kind in event_types()
    }


def write(folder: Path) -> list[Path]:
    """Write every schema into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered().items():
        path = folder / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events/v1")):
        print(path)
