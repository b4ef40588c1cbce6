"""The alert drill: mercato -> Prometheus -> Alertmanager -> a webhook, with the real programs.

Prometheus scrapes and evaluates every second with the production rules (their ``for``
shortened by deploy/prometheus/tests/drill-overlay.yml); Alertmanager runs the production
routing tree and inhibitions with every receiver pointed at a webhook in this test. Faults come
from mercato's fault-injection switch. Timings from fault to notification are printed.

It runs on its own SQLite file (one server process: the fault switch is per process), in the
staging profile: Prometheus scrapes the metrics port with deploy/prometheus's scrape job, its
Kubernetes discovery stood in for by a file that lists the pod's endpoints.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mercato.customers import Role
from mercato.migrations import migrate
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import make_settings, running
from tests.e2e import monitoring as mon
from tests.e2e.helpers import ADDRESS, DECLINED_CARD, SUCCESS_CARD
from tests.e2e.scrape import private_metrics_env
from tests.e2e.server import Server, free_port, running_server

DASHBOARD = mon.DEPLOY / "grafana/mercato.json"
FIRE_TIMEOUT = 40.0


@dataclass
class Stack:
    server: Server
    prometheus: mon.Process
    alertmanager: mon.Process
    hook: mon.Webhook
    http: httpx.Client
    staff: dict[str, str]
    customer: dict[str, str]
    instance: str


async def _accounts(url: str) -> tuple[dict[str, str], dict[str, str]]:
    async with running(make_settings(url, database_pool_size=2)) as container:
        tokens = []
        for role, token_role in (
            (Role.STAFF, TokenRole.STAFF),
            (Role.CUSTOMER, TokenRole.CUSTOMER),
        ):
            account = await container.customers.register(
                email=f"{uuid.uuid4().hex[:12]}@example.com",
                password="drill password 1",
                name="Drill",
                role=role,
            )
            token, _ = container.tokens.issue(Principal(account.id, token_role))
            tokens.append({"Authorization": f"Bearer {token}"})
        return tokens[0], tokens[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mon.require_tools()
    data = tmp_path_factory.mktemp("drill")
    url = f"sqlite:///{data / 'drill.db'}"
    migrate.upgrade(url)
    staff, customer = asyncio.run(_accounts(url))
    with ExitStack() as stack:
        hook = stack.enter_context(mon.webhook_server())
        am = stack.enter_context(
            mon.alertmanager(mon.drill_alertmanager_config(data / "am.yml", hook), data)
        )
        metrics_port = free_port()
        server = stack.enter_context(
            running_server(
                url,
                data,
                MERCATO_FAULT_INJECTION="true",
                **private_metrics_env("staging", metrics_port, MERCATO_LOG_LEVEL="ERROR"),
            )
        )
        instance = f"127.0.0.1:{metrics_port}"
        prom = stack.enter_context(
            mon.prometheus(
                instance,
                mon.drill_rules(data / "rules.yml"),
                am.url,
                data,
                api=server.base_url.removeprefix("http://"),
            )
        )
        pod = ",".join(f'{k}="{v}"' for k, v in mon.DRILL_POD.items())
        mon.wait_for(
            "Prometheus's first sample of mercato's metrics port, labelled with its pod",
            lambda: mon.query(prom, f'up{{job="mercato",instance="{instance}",{pod}}} == 1'),
            timeout=30,
        )
        active, dropped = mon.wait_for(
            "the pod's two endpoints", lambda: _both_endpoints(prom), timeout=10
        )
        assert [t["labels"]["instance"] for t in active] == [instance]
        assert [t["discoveredLabels"]["__address__"] for t in dropped] == [
            server.base_url.removeprefix("http://")
        ], "the API port is no scrape target"
        http = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=30))
        yield Stack(server, prom, am, hook, http, staff, customer, instance)


def _both_endpoints(prom: mon.Process) -> tuple[list[Any], list[Any]] | None:
    """Prometheus's kept and dropped targets, once it has discovered the metrics and API ports."""
    active, dropped = mon.targets(prom)
    return (active, dropped) if len(active) + len(dropped) == 2 else None


def _shop(s: Stack) -> None:
    """Business traffic: an order placed, a card declined, a sold-out refusal, a cancellation."""
    product = s.http.post(
        "/v1/products",
        json={
            "sku": f"DRILL-{uuid.uuid4().hex[:8]}".upper(),
            "name": "Drill mug",
            "price": {"amount": 1250, "currency": "EUR"},
            "weight_grams": 300,
            "initial_stock": 1,
        },
        headers=s.staff,
    ).json()

    def order() -> str:
        body = {
            "lines": [{"product_id": product["id"], "quantity": 1}],
            "shipping_address": ADDRESS,
        }
        created = s.http.post("/v1/orders", json=body, headers=s.customer)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    first = order()
    declined = s.http.post(
        f"/v1/orders/{first}/place", json={"card_number": DECLINED_CARD}, headers=s.customer
    )
    assert declined.status_code == 402
    placed = s.http.post(
        f"/v1/orders/{first}/place", json={"card_number": SUCCESS_CARD}, headers=s.customer
    )
    assert placed.status_code == 200, placed.text
    second = order()
    sold_out = s.http.post(
        f"/v1/orders/{second}/place", json={"card_number": SUCCESS_CARD}, headers=s.customer
    )
    assert sold_out.status_code == 409
    assert s.http.post(f"/v1/orders/{second}/cancel", headers=s.customer).status_code == 200
    for _ in range(20):
        assert s.http.get("/v1/products", params={"limit": 5}).status_code == 200


def _fault(s: Stack, **fault: object) -> None:
    answer = s.http.put("/_faults", json=fault, headers=s.staff)
    assert answer.status_code == 200, answer.text


def _clear(s: Stack) -> None:
    assert s.http.delete("/_faults", headers=s.staff).status_code == 204


def _until_notified(
    s: Stack,
    alertname: str,
    status: str,
    receiver: str,
    *,
    traffic: str | None = None,
    since: float = 0.0,
) -> tuple[mon.Notification, int]:
    """Send requests (if asked) until the webhook hears of the alert; returns it and the count."""
    sent = 0
    deadline = time.monotonic() + FIRE_TIMEOUT

    def heard() -> list[mon.Notification]:
        found = s.hook.find(alertname, status=status, receiver=receiver)
        return [n for n in found if n.at > since]

    while not heard():
        assert time.monotonic() < deadline, (
            f"no {status} {alertname} at {receiver} within {FIRE_TIMEOUT}s; "
            f"got {[(n.receiver, n.status) for n in s.hook.received]}\n{s.prometheus.logs()}"
        )
        if traffic:
            s.http.get(traffic)
            sent += 1
        time.sleep(0.05)
    return heard()[0], sent


def _alert(notification: mon.Notification, alertname: str) -> dict[str, object]:
    return next(a for a in notification.alerts if a["labels"]["alertname"] == alertname)


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[alert drill] {line}", flush=True)


def test_alert_drill(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    s = stack
    _shop(s)

    # 1. Server errors: HighErrorRate pages (critical -> pager) and reaches chat (continue).
    _fault(s, status=500)
    started = time.monotonic()
    paged, faulted = _until_notified(s, "HighErrorRate", "firing", "pager", traffic="/v1/products")
    fired_after = paged.at - started
    alert = _alert(paged, "HighErrorRate")
    assert alert["labels"] == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "team": "backend",
        "job": "mercato",
        "instance": s.instance,
    }
    assert str(alert["annotations"]["runbook_url"]).endswith("/high-error-rate.md")  # type: ignore[index]
    mon.wait_for(
        "the chat copy", lambda: s.hook.find("HighErrorRate", receiver="chat-critical"), timeout=10
    )
    assert not s.hook.find("HighErrorRate", receiver="email-default")
    assert not s.hook.find("HighErrorRate", receiver="chat-warnings")

    # 2. Recovery: enough good requests bring the 5-minute ratio under 5 %; resolved arrives.
    _clear(s)
    recovered = time.monotonic()
    for _ in range(25 * faulted + 100):
        assert s.http.get("/nothing-here").status_code == 404  # cheap, counted, not a 5xx
    resolved, _ = _until_notified(s, "HighErrorRate", "resolved", "pager")
    resolved_after = resolved.at - recovered

    # 3. Every dashboard panel's query parses and returns data.
    _check_dashboard(s)

    # 4. A silenced alert fires in Prometheus but is never delivered.
    silence = mon.amtool(
        s.alertmanager,
        "silence",
        "add",
        "alertname=HighLatency",
        "--comment=drill",
        "--author=alert-drill",
        "--duration=15m",
    )
    _fault(s, delay_ms=700)
    # p95 over 5 minutes: more than 5 % of everything sent so far must be slow
    deadline = time.monotonic() + FIRE_TIMEOUT
    while not mon.prometheus_alerts(s.prometheus, "HighLatency"):
        assert time.monotonic() < deadline, "HighLatency never fired in Prometheus"
        if not mon.prometheus_alerts(s.prometheus, "HighLatency", state="pending"):
            _slow_requests(s, count=100)
        time.sleep(0.2)
    mon.wait_for(
        "Alertmanager to hold HighLatency silenced",
        lambda: any(
            silence in a["status"]["silencedBy"]
            for a in mon.alertmanager_alerts(s.alertmanager, "HighLatency")
        ),
        timeout=FIRE_TIMEOUT,
    )
    _clear(s)
    time.sleep(3)  # several group_wait/group_interval rounds (1 s each in the drill)
    assert not s.hook.find("HighLatency"), "a silenced alert was delivered"

    # 5. The server stops: ServiceDown pages and inhibits the instance's other alerts.
    _fault(s, status=500)
    _until_notified(
        s, "HighErrorRate", "firing", "pager", traffic="/v1/products", since=time.monotonic()
    )
    s.server.process.send_signal(signal.SIGTERM)
    s.server.process.wait(timeout=30)
    stopped = time.monotonic()
    down, _ = _until_notified(s, "ServiceDown", "firing", "pager")
    down_after = down.at - stopped
    assert _alert(down, "ServiceDown")["labels"]["team"] == "sre"  # type: ignore[index]
    mon.wait_for(
        "HighErrorRate to be inhibited by ServiceDown",
        lambda: _all_inhibited(mon.alertmanager_alerts(s.alertmanager, "HighErrorRate")),
        timeout=10,
    )
    assert mon.prometheus_alerts(s.prometheus, "HighErrorRate"), "still firing, only muted"
    heard = len(s.hook.find("HighErrorRate")) + len(s.hook.find("HighErrorRate", status="resolved"))
    time.sleep(3)
    assert (
        len(s.hook.find("HighErrorRate")) + len(s.hook.find("HighErrorRate", status="resolved"))
        == heard
    ), "an inhibited alert was delivered"

    _report(
        capsys,
        f"fault -> HighErrorRate firing at the webhook {fired_after:.1f}s "
        f"({faulted} faulted requests); recovery -> resolved {resolved_after:.1f}s; "
        f"server stop -> ServiceDown {down_after:.1f}s",
    )
    assert fired_after < FIRE_TIMEOUT


def _all_inhibited(alerts: list[dict[str, Any]]) -> bool:
    return bool(alerts) and all(a["status"]["inhibitedBy"] for a in alerts)


def _slow_requests(s: Stack, *, count: int) -> None:
    async def run() -> None:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(base_url=s.server.base_url, limits=limits, timeout=30) as c:
            answers = await asyncio.gather(*(c.get("/v1/products") for _ in range(count)))
        assert all(a.status_code == 200 for a in answers)

    asyncio.run(run())


def _check_dashboard(s: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 14
    empty = []
    for expr in exprs:
        concrete = expr.replace("$__rate_interval", "5m")
        if not mon.query(s.prometheus, concrete):
            empty.append(expr)
    assert not empty, f"panels without data: {empty}"
