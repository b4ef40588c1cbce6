"""The JetStream stream: created at the first connection, brought to the settings, never dropped."""

from __future__ import annotations

import os
from collections.abc import Iterator

import nats
import pytest
from pydantic import ValidationError

from mercato.bootstrap import build
from mercato.config import Settings, explain
from mercato.platform.jetstream import Link, NatsRelay, StreamMismatch
from tests.conftest import make_settings
from tests.jetstream import stream_settings
from tests.natsservers import nats_cluster

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_cluster(tmp_path_factory.mktemp("nats"), size=1) as (node,):
        yield node.url


async def _config(url: str, name: str) -> object:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(name)).config
    finally:
        await nc.close()


async def test_the_stream_is_created_then_brought_to_the_settings(nats_url: str) -> None:
    first = stream_settings(nats_url, max_age_s=3600.0, duplicate_window_s=60.0)
    link = Link(first)
    await link.jetstream()
    await link.close()
    made = await _config(nats_url, first.name)
    assert made.subjects == [f"{first.subject_prefix}.>"]  # type: ignore[attr-defined]
    assert str(getattr(made.retention, "value", made.retention)) == "limits"  # type: ignore[attr-defined]
    assert made.num_replicas == 1  # type: ignore[attr-defined]
    assert made.max_age == 3600.0  # type: ignore[attr-defined]

    later = stream_settings(
        nats_url, name=first.name, subject_prefix=first.subject_prefix, max_age_s=7200.0,
        duplicate_window_s=300.0,
    )  # fmt: skip
    link = Link(later)
    await link.jetstream()
    await link.close()
    updated = await _config(nats_url, first.name)
    assert updated.max_age == 7200.0  # type: ignore[attr-defined]
    assert updated.duplicate_window == 300.0  # type: ignore[attr-defined]


async def test_a_stream_with_another_retention_is_refused_not_recreated(nats_url: str) -> None:
    first = stream_settings(nats_url)
    link = Link(first)
    js = await link.jetstream()
    await js.publish(f"{first.subject_prefix}.test.Kept", b"{}")
    await link.close()

    other = stream_settings(
        nats_url, name=first.name, subject_prefix=first.subject_prefix, retention="workqueue"
    )
    with pytest.raises(StreamMismatch, match="retention"):
        await Link(other).jetstream()
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(first.name)
    finally:
        await nc.close()
    assert info.state.messages == 1  # the stream and its message are still there


def test_the_relay_runs_only_when_a_nats_url_is_set(database_url: str) -> None:
    without = build(make_settings(database_url))
    assert without.nats_relay is None
    assert "nats-relay" not in [w.name for w in without.runner.workers]

    settings = make_settings(database_url, events_nats_url="nats://127.0.0.1:4222")
    wired = build(settings)
    assert isinstance(wired.nats_relay, NatsRelay)
    assert "nats-relay" in [w.name for w in wired.runner.workers]
    assert wired.nats_relay.link.settings.servers == ["nats://127.0.0.1:4222"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("events_nats_url", "http://127.0.0.1:4222"),
        ("events_nats_url", "nats://a:4222,redis://b:6379"),
        ("events_nats_stream", "orders.events"),
        ("events_nats_stream", "with space"),
        ("events_nats_subject_prefix", "mercato.>"),
        ("events_nats_subject_prefix", "a..b"),
        ("events_nats_replicas", "7"),
        ("events_nats_retention", "forever"),
    ],
)
def test_bad_nats_settings_are_refused_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.upper().startswith("MERCATO_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv(f"MERCATO_{name.upper()}", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert f"MERCATO_{name.upper()}" in explain(refused.value)


def test_nats_credentials_are_masked_when_settings_are_shown() -> None:
    settings = Settings(
        events_nats_url="nats://relay:s3cret@n1:4222,nats://t0ken@n2:4222,nats://n3:4222"
    )
    shown = {d.name: d.value for d in settings.describe()}["events_nats_url"]
    assert "s3cret" not in shown
    assert "t0ken" not in shown
    assert shown == ("nats://relay:**********@n1:4222,nats://**********@n2:4222,nats://n3:4222")
