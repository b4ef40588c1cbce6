"""The outage no request sees: the database stops, every replica stays up but unready, the
Service sends them nothing, so nothing fails, and only NoReadyReplicas can tell.

A real mercato (staging profile, metrics on their own port) on a private PostgreSQL cluster,
scraped every second by a real Prometheus with deploy/prometheus's scrape job and every rule
file, their ``for`` shortened to seconds. The cluster is stopped, then started again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mercato.migrations import migrate
from tests.conftest import REQUIRE_PG
from tests.e2e import monitoring as mon
from tests.e2e.pgcluster import Cluster, postgres_bin, private_cluster
from tests.e2e.scrape import private_metrics_env
from tests.e2e.server import free_port, running_server

# (MercatoTargetsAbsent fires here for its production form: this namespace is "drill")
QUIET = ("ServiceDown", "HighErrorRate", "ErrorBudgetBurnFast", "ErrorBudgetBurnMedium")


def _rules(target: Path) -> list[Path]:
    """Every rule file, each ``for`` shortened to 2 s."""
    paths = []
    for path in sorted((mon.DEPLOY / "prometheus/rules").glob("*.yml")):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "2s"
        paths.append(target / path.name)
        paths[-1].write_text(yaml.safe_dump(rules, sort_keys=False))
    return paths


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    mon.require_tools()
    if postgres_bin() is None:
        if REQUIRE_PG:
            pytest.fail("MERCATO_TEST_REQUIRE_POSTGRES=1 but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_cluster() as made:
        migrate.upgrade(made.url)
        yield made


def test_no_ready_replicas_pages_when_the_database_stops_and_nothing_else_fires(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics_port = free_port()
    env = private_metrics_env("staging", metrics_port, MERCATO_LOG_LEVEL="ERROR")
    with running_server(cluster.url, tmp_path, MERCATO_DATABASE_TIMEOUT_S="1", **env):
        job = mon.scrape_job(f"127.0.0.1:{metrics_port}", tmp_path)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in _rules(tmp_path)],
            "scrape_configs": [job],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        args = [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with mon.running("prometheus", args, f"http://127.0.0.1:{port}", tmp_path) as prom:
            pod = 'namespace="drill",pod="mercato-drill-0"'
            mon.wait_for(
                "a ready replica in Prometheus",
                lambda: mon.query(prom, f"mercato_ready{{{pod}}} == 1"),
                timeout=30,
            )
            time.sleep(4)  # longer than the shortened `for`: nothing fires while healthy
            assert not mon.prometheus_alerts(prom, "NoReadyReplicas", "firing")

            cluster.stop()
            stopped = time.monotonic()
            (alert,) = mon.wait_for(
                "NoReadyReplicas to fire",
                lambda: mon.prometheus_alerts(prom, "NoReadyReplicas", "firing"),
                timeout=40,
            )
            fired_after = time.monotonic() - stopped
            assert alert["labels"]["namespace"] == "drill"
            assert alert["labels"]["severity"] == "critical"
            assert mon.query(prom, f"up{{{pod}}} == 1"), "the replica still answers scrapes"
            for name in QUIET:
                assert not mon.prometheus_alerts(prom, name, "firing"), name
                assert not mon.prometheus_alerts(prom, name, "pending"), name

            cluster.start()
            mon.wait_for(
                "NoReadyReplicas to resolve",
                lambda: not mon.prometheus_alerts(prom, "NoReadyReplicas", "firing"),
                timeout=60,
                every=0.5,
            )
    with capsys.disabled():
        print(
            f"\n[outage alert] NoReadyReplicas firing {fired_after:.1f}s after the database stopped"
        )
