"""The canary rules: what one look at the canary and the stable pods says, and what a series of
looks adds up to. Pure: the numbers come from :mod:`mercato.cli.rollout.prometheus`.

One look (an *iteration*) compares the canary with the stable pods over the same window:

- **traffic**: both tracks answered at least ``min_requests`` requests, else the look has no
  data and judges nothing (a canary nobody called is not a healthy canary);
- **errors**: the canary's 5xx ratio is at most max(1 %, 2x the stable pods');
- **latency**: the canary's p95 is at most 2x the stable pods' (and at least ``latency_slack``
  above it, so that two fast answers a histogram bucket apart are not a regression);
- **restarts**: the canary's processes did not restart and never stopped answering scrapes;
- **orders**: the canary places at least half as many orders per minute per pod as a stable
  pod does (judged only once the stable pods place some);
- **payments**: the canary's share of successful payments is at most 10 points below the
  stable pods' (judged only once both tracks saw ``min_payments`` attempts).

Over a series of looks, as Flagger counts them: every look with a failed check counts one
failure; ``threshold`` failures mean rollback, at once. A series that ends below the threshold
promotes only if every look had data; otherwise it is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Verdict(IntEnum):
    """The analysis' answer, which is also the command's exit status."""

    PROMOTE = 0
    ROLLBACK = 1
    INCONCLUSIVE = 2


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no data"
    NOT_JUDGED = "not judged"


@dataclass(frozen=True)
class Limits:
    """The rules' thresholds (defaults: the reference's rules)."""

    min_requests: int = 50
    min_error_ratio: float = 0.01
    error_factor: float = 2.0
    latency_factor: float = 2.0
    latency_slack: float = 0.025
    orders_factor: float = 0.5
    min_payments: int = 10
    payment_success_drop: float = 0.10


@dataclass(frozen=True)
class Track:
    """What Prometheus says about one track (canary or stable) over the window; None: no data."""

    requests: float | None = None
    errors: float | None = None
    p95: float | None = None
    pods: int | None = None
    restarts: float | None = None
    min_up: float | None = None
    orders_per_minute: float | None = None
    payments: float | None = None
    payments_succeeded: float | None = None

    def error_ratio(self) -> float | None:
        if not self.requests or self.errors is None:
            return None
        return self.errors / self.requests

    def orders_per_pod(self) -> float | None:
        if self.orders_per_minute is None or not self.pods:
            return None
        return self.orders_per_minute / self.pods

    def payment_success(self) -> float | None:
        if not self.payments or self.payments_succeeded is None:
            return None
        return self.payments_succeeded / self.payments


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    canary: float | None
    stable: float | None
    limit: float | None
    reason: str


def _known(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def check_traffic(canary: Track, stable: Track, limits: Limits) -> Check:
    need = float(limits.min_requests)
    if not _known(canary.requests, stable.requests):
        return Check("traffic", Outcome.NO_DATA, canary.requests, stable.requests, need, "no data")
    assert canary.requests is not None
    assert stable.requests is not None
    if min(canary.requests, stable.requests) < need:
        reason = f"fewer than {limits.min_requests} requests on a track"
        return Check("traffic", Outcome.NO_DATA, canary.requests, stable.requests, need, reason)
    return Check("traffic", Outcome.PASS, canary.requests, stable.requests, need, "enough")


def check_errors(canary: Track, stable: Track, limits: Limits) -> Check:
    ours, theirs = canary.error_ratio(), stable.error_ratio()
    if ours is None or theirs is None:
        return Check("error ratio", Outcome.NO_DATA, ours, theirs, None, "no data")
    limit = max(limits.min_error_ratio, limits.error_factor * theirs)
    outcome = Outcome.FAIL if ours > limit else Outcome.PASS
    reason = f"5xx ratio {ours:.2%} {'above' if ours > limit else 'within'} {limit:.2%}"
    return Check("error ratio", outcome, ours, theirs, limit, reason)


def check_latency(canary: Track, stable: Track, limits: Limits) -> Check:
    ours, theirs = canary.p95, stable.p95
    if ours is None or theirs is None or not _known(ours, theirs):
        return Check("p95 latency", Outcome.NO_DATA, ours, theirs, None, "no data")
    limit = max(limits.latency_factor * theirs, theirs + limits.latency_slack)
    outcome = Outcome.FAIL if ours > limit else Outcome.PASS
    reason = (
        f"p95 {ours * 1000:.0f} ms {'above' if ours > limit else 'within'} {limit * 1000:.0f} ms"
    )
    return Check("p95 latency", outcome, ours, theirs, limit, reason)


def check_restarts(canary: Track, stable: Track, limits: Limits) -> Check:
    if canary.restarts is None or canary.min_up is None:
        return Check("restarts", Outcome.NO_DATA, canary.restarts, stable.restarts, 0, "no data")
    if canary.restarts > 0:
        reason = f"canary restarted {canary.restarts:.0f} times"
        return Check("restarts", Outcome.FAIL, canary.restarts, stable.restarts, 0, reason)
    if canary.min_up < 1:
        reason = "a canary pod stopped answering scrapes"
        return Check("restarts", Outcome.FAIL, canary.restarts, stable.restarts, 0, reason)
    return Check("restarts", Outcome.PASS, canary.restarts, stable.restarts, 0, "none")


def check_orders(canary: Track, stable: Track, limits: Limits) -> Check:
    ours, theirs = canary.orders_per_pod(), stable.orders_per_pod()
    if not theirs:
        reason = "the stable pods placed no orders in the window"
        return Check("orders per minute", Outcome.NOT_JUDGED, ours, theirs, None, reason)
    ours = ours or 0.0
    limit = limits.orders_factor * theirs
    outcome = Outcome.FAIL if ours < limit else Outcome.PASS
    reason = f"{ours:.2f} orders/min per pod, {'below' if ours < limit else 'at least'} {limit:.2f}"
    return Check("orders per minute", outcome, ours, theirs, limit, reason)


def check_payments(canary: Track, stable: Track, limits: Limits) -> Check:
    ours, theirs = canary.payment_success(), stable.payment_success()
    need = limits.min_payments
    if ours is None or theirs is None or min(canary.payments or 0, stable.payments or 0) < need:
        reason = f"fewer than {need} payment attempts on a track"
        return Check("payment success", Outcome.NOT_JUDGED, ours, theirs, None, reason)
    limit = theirs - limits.payment_success_drop
    outcome = Outcome.FAIL if ours < limit else Outcome.PASS
    reason = f"{ours:.1%} succeeded, {'below' if ours < limit else 'at least'} {limit:.1%}"
    return Check("payment success", outcome, ours, theirs, limit, reason)


def judge(canary: Track, stable: Track, limits: Limits) -> list[Check]:
    """Every check of one look; without enough traffic the rest are not judged."""
    traffic = check_traffic(canary, stable, limits)
    if traffic.outcome is Outcome.NO_DATA:
        return [traffic, check_restarts(canary, stable, limits)]
    rules = (check_errors, check_latency, check_restarts, check_orders, check_payments)
    return [traffic, *(rule(canary, stable, limits) for rule in rules)]


@dataclass
class Look:
    """One iteration's checks and what it counts as."""

    checks: list[Check]

    @property
    def failed(self) -> bool:
        return any(c.outcome is Outcome.FAIL for c in self.checks)

    @property
    def has_data(self) -> bool:
        return not any(c.outcome is Outcome.NO_DATA for c in self.checks)


@dataclass
class Tally:
    """Flagger's count: looks with a failed check, against the threshold."""

    threshold: int
    iterations: int
    looks: list[Look] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(look.failed for look in self.looks)

    def add(self, look: Look) -> None:
        self.looks.append(look)

    def decided(self) -> bool:
        return self.failures >= self.threshold or len(self.looks) >= self.iterations

    def verdict(self) -> Verdict:
        if self.failures >= self.threshold:
            return Verdict.ROLLBACK
        complete = len(self.looks) >= self.iterations
        if complete and all(look.has_data for look in self.looks):
            return Verdict.PROMOTE
        return Verdict.INCONCLUSIVE
