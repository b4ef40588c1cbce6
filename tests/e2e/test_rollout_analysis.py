"""`mercato rollout analyze` against a real Prometheus scraping two real mercato processes.

One process plays a stable pod, the other the canary; Prometheus scrapes both metrics ports
with deploy/prometheus's scrape job (its Kubernetes discovery stood in for by a file that
labels the two endpoints as the endpointslices would), every second. Shoppers browse and place
orders on both all along. Faults come from the canary's fault-injection switch; each verdict
comes from the command itself, run as a process, exit status and JSON report.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mercato.customers import Role
from mercato.migrations import migrate
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import make_settings, running
from tests.e2e import monitoring as mon
from tests.e2e.helpers import ADDRESS, SUCCESS_CARD
from tests.e2e.scrape import private_metrics_env
from tests.e2e.server import Server, free_port, running_server

NAMESPACE = "drill"
WINDOW_S = 20
# named as Flagger's primary and canary pods are, so its MetricTemplates find them too
PODS = {"stable": "mercato-primary-7d9f8c6b5-x2k4q", "canary": "mercato-5c4b2d9f7-h8j3m"}
FLAGGER = mon.DEPLOY / "k8s/overlays/production/flagger"


@dataclass
class Pod:
    server: Server
    http: httpx.Client
    metrics: str


@dataclass
class Stack:
    prometheus: mon.Process
    pods: dict[str, Pod]
    staff: dict[str, str]
    report: list[str] = field(default_factory=list)


async def _accounts(url: str) -> tuple[dict[str, str], dict[str, str]]:
    async with running(make_settings(url, database_pool_size=2)) as container:
        tokens = []
        for role, token_role in (
            (Role.STAFF, TokenRole.STAFF),
            (Role.CUSTOMER, TokenRole.CUSTOMER),
        ):
            account = await container.customers.register(
                email=f"{uuid.uuid4().hex[:12]}@example.com",
                password="rollout password 1",
                name="Rollout",
                role=role,
            )
            token, _ = container.tokens.issue(Principal(account.id, token_role))
            tokens.append({"Authorization": f"Bearer {token}"})
        return tokens[0], tokens[1]


def _scrape_config(pods: dict[str, Pod], data: Path) -> Path:
    """deploy/prometheus's mercato job over both pods' metrics ports, scraped every second."""
    config = yaml.safe_load((mon.DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mercato"]
    del job["kubernetes_sd_configs"]
    endpoints = [
        {
            "targets": [pod.metrics],
            "labels": {
                "__meta_kubernetes_service_name": "mercato-metrics",
                "__meta_kubernetes_endpointslice_port_name": "metrics",
                "__meta_kubernetes_namespace": NAMESPACE,
                "__meta_kubernetes_pod_name": PODS[track],
                "__meta_kubernetes_pod_label_track": track,
            },
        }
        for track, pod in pods.items()
    ]
    (data / "targets.json").write_text(json.dumps(endpoints))
    job["file_sd_configs"] = [{"files": [str(data / "targets.json")], "refresh_interval": "1s"}]
    path = data / "prometheus.yml"
    everything = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}}
    path.write_text(yaml.safe_dump({**everything, "scrape_configs": [job]}))
    return path


def _shop(
    http: httpx.Client, customer: dict[str, str], product: str, stop: threading.Event
) -> None:
    """A shopper: browses, and places an order every tenth visit, until stopped."""
    visits = 0
    while not stop.is_set():
        visits += 1
        try:
            http.get("/v1/products", params={"limit": 5})
            if visits % 10 == 0:
                body = {
                    "lines": [{"product_id": product, "quantity": 1}],
                    "shipping_address": ADDRESS,
                }
                draft = http.post("/v1/orders", json=body, headers=customer)
                if draft.status_code == 201:
                    http.post(
                        f"/v1/orders/{draft.json()['id']}/place",
                        json={"card_number": SUCCESS_CARD},
                        headers=customer,
                    )
        except httpx.HTTPError:
            pass
        stop.wait(0.04)


def _product(http: httpx.Client, staff: dict[str, str]) -> str:
    answer = http.post(
        "/v1/products",
        json={
            "sku": f"ROLL-{uuid.uuid4().hex[:8]}".upper(),
            "name": "Rollout mug",
            "price": {"amount": 990, "currency": "EUR"},
            "weight_grams": 300,
            "initial_stock": 100_000,
        },
        headers=staff,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mon.require_tools()
    data = tmp_path_factory.mktemp("rollout")
    url = f"sqlite:///{data / 'rollout.db'}"
    migrate.upgrade(url)
    staff, customer = asyncio.run(_accounts(url))
    stop = threading.Event()
    with ExitStack() as stack:
        pods = {}
        for track in PODS:
            port = free_port()
            env = private_metrics_env("staging", port, MERCATO_LOG_LEVEL="ERROR")
            server = stack.enter_context(
                running_server(url, data, MERCATO_FAULT_INJECTION="true", **env)
            )
            http = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=30))
            pods[track] = Pod(server, http, f"127.0.0.1:{port}")
        product = _product(pods["stable"].http, staff)
        args = ["prometheus", f"--config.file={_scrape_config(pods, data)}"]
        port = free_port()
        args += [f"--storage.tsdb.path={data / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"]
        prom = stack.enter_context(
            mon.running("prometheus", args, f"http://127.0.0.1:{port}", data)
        )
        shoppers = [
            threading.Thread(target=_shop, args=(pod.http, customer, product, stop), daemon=True)
            for pod in pods.values()
        ]
        for shopper in shoppers:
            shopper.start()
        try:
            s = Stack(prom, pods, staff)
            yield s
            print("\n[rollout analysis] " + "\n[rollout analysis] ".join(s.report), flush=True)
        finally:
            stop.set()
            for shopper in shoppers:
                shopper.join(timeout=30)


def _analyze(s: Stack, *args: str, namespace: str = NAMESPACE) -> tuple[int, dict[str, Any], float]:
    """Run the command; its exit status, JSON report and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mercato",
            "rollout",
            "analyze",
            "--prometheus",
            s.prometheus.url,
            "--namespace",
            namespace,
            "--window",
            f"{WINDOW_S}s",
            "--interval",
            "1",
            "--min-requests",
            "20",
            "--min-payments",
            "3",
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), took


def _flagger_failures(s: Stack) -> set[str]:
    """The Canary's metrics that Flagger would count as failed now (no value fails, too)."""
    canary = yaml.safe_load((FLAGGER / "canary.yaml").read_text())
    templates = {
        t["metadata"]["name"]: t["spec"]["query"]
        for t in yaml.safe_load_all((FLAGGER / "metric-templates.yaml").read_text())
    }
    failed = set()
    for metric in canary["spec"]["analysis"]["metrics"]:
        query = templates[metric["templateRef"]["name"]]
        for key, value in (("namespace", NAMESPACE), ("target", "mercato"), ("interval", "20s")):
            query = query.replace(f"{{{{ {key} }}}}", value)
        result = mon.query(s.prometheus, query)
        value = float(result[0]["value"][1]) if result else float("nan")
        limits = metric["thresholdRange"]
        if not (limits.get("min", value) <= value <= limits.get("max", value)):
            failed.add(metric["name"])
    return failed


def _failed(report: dict[str, Any]) -> set[str]:
    return {c["name"] for look in report["looks"] for c in look["checks"] if c["outcome"] == "fail"}


def _warm(s: Stack) -> None:
    """Wait until Prometheus holds a window's worth of both pods' traffic, labelled by track."""

    def full() -> bool:
        for track in PODS:
            labels = f'namespace="{NAMESPACE}",track="{track}"'
            expr = f"sum(increase(http_requests_total{{{labels}}}[{WINDOW_S}s]))"
            result = mon.query(s.prometheus, expr)
            if not result or float(result[0]["value"][1]) < 40:
                return False
        return True

    mon.wait_for("a window of traffic on both tracks", full, timeout=90, every=1)
    time.sleep(WINDOW_S / 2)


def _fault(s: Stack, **fault: object) -> None:
    answer = s.pods["canary"].http.put("/_faults", json=fault, headers=s.staff)
    assert answer.status_code == 200, answer.text


def _clear(s: Stack) -> None:
    assert s.pods["canary"].http.delete("/_faults", headers=s.staff).status_code == 204


def test_a_healthy_canary_is_promoted(stack: Stack) -> None:
    _warm(stack)
    status, report, took = _analyze(stack, "--iterations", "4", "--threshold", "2")
    assert (status, report["verdict"]) == (0, "promote"), report
    assert all(look["has_data"] and not look["failed"] for look in report["looks"])
    judged = {c["name"]: c for c in report["looks"][-1]["checks"]}
    assert judged["orders per minute"]["outcome"] == "pass", judged
    assert judged["traffic"]["canary"] >= 20
    assert judged["traffic"]["stable"] >= 20
    stack.report.append(f"healthy canary: promote after 4 looks in {took:.1f}s")


def test_without_traffic_the_verdict_is_inconclusive(stack: Stack) -> None:
    status, report, _ = _analyze(stack, "--iterations", "2", namespace="elsewhere")
    assert (status, report["verdict"]) == (2, "inconclusive"), report
    assert not any(look["has_data"] for look in report["looks"])


def test_a_canary_answering_errors_is_rolled_back_within_one_window(stack: Stack) -> None:
    _warm(stack)
    _fault(stack, status=500, ratio=0.5)
    started = time.monotonic()
    try:
        status, report, _ = _analyze(stack, "--iterations", "60", "--threshold", "2")
        assert "error-ratio" in _flagger_failures(stack)
    finally:
        _clear(stack)
    verdict_after = time.monotonic() - started
    assert (status, report["verdict"]) == (1, "rollback"), report
    assert "error ratio" in _failed(report)
    assert verdict_after < WINDOW_S, f"verdict after {verdict_after:.1f}s"
    stack.report.append(f"50 % 5xx canary: rollback {verdict_after:.1f}s after the fault")


def test_a_slow_canary_is_rolled_back_within_one_window(stack: Stack) -> None:
    time.sleep(WINDOW_S)  # the errors leave the window
    _warm(stack)
    _fault(stack, delay_ms=250)
    started = time.monotonic()
    try:
        status, report, _ = _analyze(stack, "--iterations", "60", "--threshold", "2")
        assert "latency" in _flagger_failures(stack)
    finally:
        _clear(stack)
    verdict_after = time.monotonic() - started
    assert (status, report["verdict"]) == (1, "rollback"), report
    assert _failed(report) == {"p95 latency"}, report
    assert verdict_after < WINDOW_S, f"verdict after {verdict_after:.1f}s"
    stack.report.append(f"+250 ms canary: rollback {verdict_after:.1f}s after the fault")


def test_a_soak_after_promotion_rolls_back_a_release_that_degrades(stack: Stack) -> None:
    """After promotion there is no canary: the stable pods now against themselves before."""
    before = f"{WINDOW_S * 2}s"
    status, report, _ = _analyze(stack, "--iterations", "2", "--baseline-offset", before)
    assert (status, report["verdict"]) == (0, "promote"), report
    answer = stack.pods["stable"].http.put(
        "/_faults", json={"status": 503, "ratio": 0.3}, headers=stack.staff
    )
    assert answer.status_code == 200, answer.text
    try:
        status, report, _ = _analyze(
            stack, "--iterations", "30", "--threshold", "2", "--baseline-offset", before
        )
    finally:
        stack.pods["stable"].http.delete("/_faults", headers=stack.staff)
    assert (status, report["verdict"]) == (1, "rollback"), report
    assert "error ratio" in _failed(report)
    assert report["baseline_offset"] == before
