"""The monitoring configuration in deploy/: checked and unit-tested by the real tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.deploy.test_manifests import one, render
from tests.e2e.monitoring import DEPLOY, require_tools

RUNBOOKS = DEPLOY.parent / "docs" / "runbooks"
REQUIRED_ALERTS = {
    "HighErrorRate",
    "HighLatency",
    "ServiceDown",
    "HighMemoryUsage",
    "OutboxBacklog",
    "PaymentFailureSpike",
    "ReadinessFlapping",
    "EventsToNatsLagging",
    "EventsToNatsFailing",
}


def _alerts() -> list[dict[str, object]]:
    alerts = []
    for path in sorted((DEPLOY / "prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts += [rule for rule in group["rules"] if "alert" in rule]
    return alerts


def test_promtool_and_amtool_accept_the_config_and_pass_their_tests() -> None:
    require_tools()
    done = subprocess.run(
        [str(DEPLOY / "check")], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout
    assert "alertmanager routes: 23 cases checked" in done.stdout


def test_every_alert_has_severity_team_summary_description_and_a_runbook() -> None:
    alerts = _alerts()
    assert {a["alert"] for a in alerts} >= REQUIRED_ALERTS
    for alert in alerts:
        labels = alert["labels"]
        annotations = alert["annotations"]
        assert isinstance(labels, dict)
        assert isinstance(annotations, dict)
        # ticket: the queue, not a pager; none: the Watchdog, for the dead man's switch
        assert labels["severity"] in {"critical", "warning", "ticket", "info", "none"}, alert[
            "alert"
        ]
        assert labels["team"], alert["alert"]
        assert annotations["summary"], alert["alert"]
        assert annotations["description"], alert["alert"]
        runbook = Path(str(annotations["runbook_url"])).name
        assert (RUNBOOKS / runbook).is_file(), f"{alert['alert']}: no docs/runbooks/{runbook}"


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for path in sorted((DEPLOY / "prometheus/tests").glob("*.test.yml"))
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", ())
    }
    assert tested == {a["alert"] for a in _alerts()}


def test_the_dashboard_covers_what_operators_need() -> None:
    dashboard = json.loads((DEPLOY / "grafana/mercato.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "mercato_orders_total",
        "mercato_order_value_sum",
        "mercato_payments_total",
        "mercato_domain_errors_total",
        "mercato_outbox_backlog",
        "mercato_open_streams",
    ):
        assert metric in exprs, metric
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_prometheus_scrapes_each_pods_metrics_port_labelled_with_pod_and_namespace() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mercato"]
    assert job["metrics_path"] == "/metrics"
    assert job["kubernetes_sd_configs"] == [{"role": "endpointslice"}]
    keep, *labelled = job["relabel_configs"]
    service = one(render("production"), "Service", "mercato-metrics")
    (port,) = service["spec"]["ports"]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == [
        "__meta_kubernetes_service_name",
        "__meta_kubernetes_endpointslice_port_name",
    ]
    assert keep["regex"] == f"{service['metadata']['name']};{port['name']}"
    targets = {r["target_label"]: r["source_labels"] for r in labelled}
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]
