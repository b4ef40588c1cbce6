"""The numbers the canary rules need, read from Prometheus' HTTP API (instant queries).

The series are the ones mercato exports on its metrics port, labelled by deploy/prometheus's
scrape job with ``namespace``, ``pod`` and ``track`` (stable or canary). Probe and scrape routes
are not user traffic and stay out of the request counts, as in the alert rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

from mercato.cli.rollout.rules import Track

NOT_TRAFFIC = 'route!~"/metrics|/livez|/readyz|/startupz"'


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused the query."""


@dataclass(frozen=True)
class Scope:
    """Which series belong to a track: the scrape job, the namespace and the track label."""

    namespace: str
    job: str = "mercato"
    window: str = "5m"
    # a soak: the stable pods now against the stable pods this long ago, before the release
    baseline_offset: str | None = None

    def selector(self, track: str, *extra: str) -> str:
        labels = [f'job="{self.job}"', f'namespace="{self.namespace}"', f'track="{track}"']
        return "{" + ",".join([*labels, *extra]) + "}"


def queries(scope: Scope, track: str, *, offset: str | None = None) -> dict[str, str]:
    """The PromQL for each field of :class:`Track` (``offset``: as it was that long ago)."""
    shift = f" offset {offset}" if offset else ""
    r, sel = f"[{scope.window}]{shift}", scope.selector
    served = sel(track, NOT_TRAFFIC)
    failed = sel(track, NOT_TRAFFIC, 'status=~"5.."')
    placed = sel(track, 'event="placed"')
    attempts = sel(track, 'outcome=~"captured|declined|failed"')
    captured = sel(track, 'outcome="captured"')
    requests = f"sum(increase(http_requests_total{served}{r}))"
    payments = f"sum(increase(mercato_payments_total{attempts}{r}))"
    return {
        "requests": requests,
        "errors": f"sum(increase(http_requests_total{failed}{r})) or ({requests} * 0)",
        "p95": "histogram_quantile(0.95, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{served}{r})))",
        "pods": f"count(count by (pod) (up{sel(track)}{shift}))",
        # a restart starts a new process: its start time changes (one process per pod) or,
        # with several workers, its counters start again from zero
        "restarts": f"sum(changes(process_start_time_seconds{sel(track)}{r}))"
        f" or sum(resets(http_requests_total{sel(track)}{r}))",
        "min_up": f"min(min_over_time(up{sel(track)}{r}))",
        "orders_per_minute": f"sum(rate(mercato_orders_total{placed}{r})) * 60",
        "payments": payments,
        "payments_succeeded": f"sum(increase(mercato_payments_total{captured}{r}))"
        f" or ({payments} * 0)",
    }


class Prometheus:
    """A client for instant queries against ``url`` (e.g. http://prometheus:9090)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def value(self, expr: str) -> float | None:
        """The query's single value; None when it has no result or is not a number."""
        try:
            answer = self.http.get("/api/v1/query", params={"query": expr})
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus did not answer: {exc}") from exc
        try:
            body = answer.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered {answer.status_code}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{expr}: {body.get('error', body)}")
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if math.isfinite(value) else None

    def track(self, scope: Scope, track: str, *, offset: str | None = None) -> Track:
        """Everything the rules need about one track over the scope's window."""
        found = queries(scope, track, offset=offset)
        values = {name: self.value(expr) for name, expr in found.items()}
        pods = values.pop("pods")
        return Track(pods=None if pods is None else int(pods), **values)
