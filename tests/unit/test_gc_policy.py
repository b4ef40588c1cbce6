"""The garbage-collector policy of a serving process (mercato.web.serve.GcPolicy)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from mercato.config import Settings
from mercato.web.serve import GcPolicy


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_apply_freezes_what_exists_and_raises_the_young_threshold(restored_gc: None) -> None:
    _, middle, old = gc.get_threshold()
    before = {"made": ["before"]}
    GcPolicy(freeze=True, threshold=12_345).apply()
    after = {"made": ["after"]}
    assert gc.get_threshold() == (12_345, middle, old)
    assert gc.get_freeze_count() > 1000
    collected = gc.get_objects()  # what collections still scan: not the frozen generation
    assert not any(o is before for o in collected)
    assert any(o is after for o in collected)


def test_without_freezing_only_the_threshold_changes(restored_gc: None) -> None:
    frozen = gc.get_freeze_count()
    GcPolicy(freeze=False, threshold=900).apply()
    assert gc.get_threshold()[0] == 900
    assert gc.get_freeze_count() == frozen


def test_the_policy_comes_from_the_settings() -> None:
    assert GcPolicy.of(Settings()) == GcPolicy(freeze=True, threshold=50_000)
    assert GcPolicy.of(Settings(gc_freeze=False, gc_threshold=700)) == GcPolicy(False, 700)


def test_a_threshold_below_100_is_refused() -> None:
    with pytest.raises(ValidationError, match="gc_threshold"):
        Settings(gc_threshold=10)
