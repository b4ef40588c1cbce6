"""Reading Prometheus exposition text in tests."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample, keyed by its name and labels."""
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in series.items() if n == name and wanted <= ls)


def private_metrics_env(profile: str, metrics_port: int, **extra: str) -> dict[str, str]:
    """Server variables for a staging or production process whose metrics go to
    ``metrics_port``, listening on loopback only and stopping without a drain delay."""
    return {
        "MERCATO_ENV": profile,
        "MERCATO_HOST": "127.0.0.1",
        "MERCATO_METRICS_PORT": str(metrics_port),
        "MERCATO_SHUTDOWN_DRAIN_S": "0",
        "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION": "true",
        **extra,
    }


def scrape(url: str) -> Series:
    """Every sample that ``GET url`` (a /metrics endpoint) answers, failing on anything else."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    return parse(answer.text)
