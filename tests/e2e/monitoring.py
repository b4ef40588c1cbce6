"""Real Prometheus and Alertmanager processes, and a webhook receiver, for the alert drill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.server import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TOOLS = ("prometheus", "promtool", "prometheus-alertmanager", "amtool")


def require_tools() -> None:
    """Skip without the monitoring tools, except in CI, where their absence is a failure."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"missing {', '.join(missing)}: run deploy/install-tools (make tools)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (httpx.TransportError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Notification:
    receiver: str
    status: str
    alerts: list[dict[str, Any]]
    at: float


@dataclass
class Webhook:
    """Alertmanager's receivers, all pointing here: the path names the receiver."""

    port: int
    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{receiver}"

    def find(
        self, alertname: str, *, status: str = "firing", receiver: str | None = None
    ) -> list[Notification]:
        """Notifications carrying an alert of that name in that state (to that receiver)."""
        with self.lock:
            return [
                n
                for n in self.received
                if (receiver is None or n.receiver == receiver)
                and any(
                    a["labels"].get("alertname") == alertname and a["status"] == status
                    for a in n.alerts
                )
            ]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    hook = Webhook(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.received.append(
                    Notification(
                        self.path.strip("/"), body["status"], body["alerts"], time.monotonic()
                    )
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def drill_overlay() -> dict[str, Any]:
    overlay: dict[str, Any] = yaml.safe_load(
        (DEPLOY / "prometheus/tests/drill-overlay.yml").read_text()
    )
    return overlay


def drill_rules(target: Path) -> Path:
    """The production rules with the drill's shorter ``for`` durations."""
    durations = drill_overlay()["for"]
    rules = yaml.safe_load((DEPLOY / "prometheus/rules/mercato.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = durations.get(rule["alert"], durations["default"])
    target.write_text(yaml.safe_dump(rules, sort_keys=False))
    return target


def drill_alertmanager_config(target: Path, hook: Webhook) -> Path:
    """The production routing tree and inhibitions; every receiver a webhook; short timings."""
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    timings = drill_overlay()["alertmanager"]
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [{"url": hook.url(r["name"]), "send_resolved": True}],
        }
        for r in config["receivers"]
    ]

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route or route is config["route"]:
                route[key] = timings[key]
        for child in route.get("routes", ()):
            shorten(child)

    shorten(config["route"])
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def running(name: str, args: list[str], url: str, log_dir: Path) -> Iterator[Process]:
    """Start a monitoring binary, wait until it is ready, stop it afterwards."""
    log = log_dir / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    proc = Process(name, process, log, url)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{proc.logs()}")
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200

        wait_for(f"{name} to be ready", ready, timeout=30)
        yield proc
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def alertmanager(config: Path, data: Path) -> Iterator[Process]:
    port = free_port()
    args = [
        "prometheus-alertmanager",
        f"--config.file={config}",
        f"--storage.path={data / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with running("alertmanager", args, f"http://127.0.0.1:{port}", data) as proc:
        yield proc


# What Kubernetes service discovery says of one replica's endpoints in deploy/prometheus's
# scrape job (role endpointslice, through the headless mercato-metrics Service).
DRILL_POD = {"namespace": "drill", "pod": "mercato-drill-0", "track": "stable"}


def _endpoint(target: str, *, service: str, port_name: str) -> dict[str, Any]:
    return {
        "targets": [target],
        "labels": {
            "__meta_kubernetes_service_name": service,
            "__meta_kubernetes_endpointslice_port_name": port_name,
            "__meta_kubernetes_namespace": DRILL_POD["namespace"],
            "__meta_kubernetes_pod_name": DRILL_POD["pod"],
            "__meta_kubernetes_pod_label_track": DRILL_POD["track"],
        },
    }


def scrape_job(target: str, data: Path, *, api: str | None = None) -> dict[str, Any]:
    """deploy/prometheus's mercato job, its Kubernetes discovery replaced by a file that lists
    ``target`` as the pod's metrics endpoint would be discovered (and ``api``, the same pod's
    API port, as the API Service's endpoint, which the job must leave alone)."""
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mercato"]
    del job["kubernetes_sd_configs"]
    endpoints = [_endpoint(target, service="mercato-metrics", port_name="metrics")]
    if api is not None:
        endpoints.append(_endpoint(api, service="mercato", port_name="http"))
    (data / "targets.json").write_text(json.dumps(endpoints))
    job["file_sd_configs"] = [{"files": [str(data / "targets.json")], "refresh_interval": "1s"}]
    return dict(job)


@contextmanager
def prometheus(
    target: str, rules: Path, alertmanager_url: str, data: Path, *, api: str | None = None
) -> Iterator[Process]:
    """Prometheus scraping ``target`` (a metrics port) with the production scrape job."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.split("//")[1]]}]}]
        },
        "scrape_configs": [scrape_job(target, data, api=api)],
    }
    path = data / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    args = [
        "prometheus",
        f"--config.file={path}",
        f"--storage.tsdb.path={data / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]
    with running("prometheus", args, f"http://127.0.0.1:{port}", data) as proc:
        yield proc


def query(prom: Process, expr: str) -> list[dict[str, Any]]:
    """An instant query; fails on a query Prometheus cannot parse or run."""
    answer = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=5)
    body = answer.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def targets(prom: Process) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The scrape targets Prometheus keeps (active) and those its relabelling dropped."""
    data = httpx.get(f"{prom.url}/api/v1/targets", timeout=5).json()["data"]
    return data["activeTargets"], data["droppedTargets"]


def prometheus_alerts(prom: Process, name: str, state: str = "firing") -> list[dict[str, Any]]:
    answer = httpx.get(f"{prom.url}/api/v1/alerts", timeout=5).json()
    return [
        a
        for a in answer["data"]["alerts"]
        if a["labels"]["alertname"] == name and a["state"] == state
    ]


def alertmanager_alerts(am: Process, name: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{am.url}/api/v2/alerts",
        params={"filter": f'alertname="{name}"', "silenced": "true", "inhibited": "true"},
        timeout=5,
    )
    alerts: list[dict[str, Any]] = answer.json()
    return alerts


def amtool(am: Process, *args: str) -> str:
    done = subprocess.run(
        ["amtool", f"--alertmanager.url={am.url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
