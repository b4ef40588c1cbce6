"""Time-ordered ids, domain events and the aggregate's event recording."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest

from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.kernel.ids import is_id, new_id

# -- ids --------------------------------------------------------------------------------------


def test_new_ids_are_version_7_uuids_with_the_rfc_variant() -> None:
    for _ in range(200):
        value = new_id()
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert value == str(parsed)
        assert len(value) == 36


def test_new_ids_start_with_the_current_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    millis = uuid.UUID(value).int >> 80
    assert before <= millis <= after


def test_new_ids_generated_in_sequence_are_time_ordered_and_unique() -> None:
    # Thousands of ids share a millisecond here, so this also checks ordering within one.
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_is_id_accepts_only_the_canonical_36_character_form() -> None:
    value = new_id()
    assert is_id(value)
    assert is_id(value.upper())
    assert not is_id(value.replace("-", ""))
    assert not is_id("{" + value + "}")
    assert not is_id("not-an-id")
    assert not is_id("")
    assert not is_id(None)  # type: ignore[arg-type]


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ParcelWeighed(DomainEvent):
    aggregate_type = "parcel"
    aggregate_id_field = "parcel_id"
    parcel_id: str
    grams: int
    labels: list[str] = field(default_factory=list)


def test_an_events_aggregate_id_is_the_field_it_names() -> None:
    event = ParcelWeighed(parcel_id="p-1", grams=1200)
    assert event.aggregate_id == "p-1"
    assert event.aggregate_type == "parcel"
    assert event.event_type == "ParcelWeighed"


def test_an_events_payload_is_its_fields_as_a_plain_mapping() -> None:
    event = ParcelWeighed(parcel_id="p-1", grams=1200, labels=["fragile"])
    payload = event.payload()
    assert payload == {"parcel_id": "p-1", "grams": 1200, "labels": ["fragile"]}
    payload["labels"].append("changed")
    assert event.labels == ["fragile"]


def test_an_events_aggregate_id_is_always_a_string() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Counted(DomainEvent):
        aggregate_id_field = "number"
        number: int

    assert Counted(number=7).aggregate_id == "7"


def test_the_aggregate_id_need_not_be_the_first_field() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Returned(DomainEvent):
        aggregate_id_field = "parcel_id"
        reason: str
        parcel_id: str

    assert Returned(reason="damaged", parcel_id="p-9").aggregate_id == "p-9"


def test_an_event_that_names_no_id_field_fails_loudly() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Unnamed(DomainEvent):
        parcel_id: str

    @dataclass(frozen=True, kw_only=True)
    class Misnamed(DomainEvent):
        aggregate_id_field = "parcel"
        parcel_id: str

    with pytest.raises(TypeError, match="Unnamed"):
        _ = Unnamed(parcel_id="p-1").aggregate_id
    with pytest.raises(TypeError, match="'parcel'"):
        _ = Misnamed(parcel_id="p-1").aggregate_id


class Parcel(AggregateRoot):
    pass


def test_an_aggregate_hands_over_its_events_in_order_once() -> None:
    parcel = Parcel()
    assert parcel.pending_events == ()
    first = ParcelWeighed(parcel_id="p", grams=1)
    second = ParcelWeighed(parcel_id="p", grams=2)
    parcel.record(first)
    parcel.record(second)
    assert parcel.pending_events == (first, second)
    assert parcel.pull_events() == [first, second]
    assert parcel.pending_events == ()
    assert parcel.pull_events() == []
