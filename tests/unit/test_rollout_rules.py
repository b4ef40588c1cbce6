"""The canary rules and Flagger's count, on numbers (the real Prometheus runs in
tests/e2e/test_rollout_analysis.py)."""

from __future__ import annotations

import io

import pytest

from mercato.cli import main
from mercato.cli.rollout.analyze import Plan, analyze
from mercato.cli.rollout.prometheus import Prometheus, Scope, queries
from mercato.cli.rollout.rules import Limits, Look, Outcome, Tally, Track, Verdict, judge

LIMITS = Limits()


def track(**values: float) -> Track:
    base: dict[str, float] = {
        "requests": 1000,
        "errors": 0,
        "p95": 0.05,
        "pods": 1,
        "restarts": 0,
        "min_up": 1,
        "orders_per_minute": 10,
        "payments": 100,
        "payments_succeeded": 95,
    }
    base.update(values)
    pods = int(base.pop("pods"))
    return Track(pods=pods, **base)


def outcomes(canary: Track, stable: Track) -> dict[str, Outcome]:
    return {c.name: c.outcome for c in judge(canary, stable, LIMITS)}


def test_an_error_ratio_is_judged_against_twice_the_stable_pods_with_a_floor_of_one_percent() -> (
    None
):
    assert outcomes(track(errors=50), track(errors=30))["error ratio"] is Outcome.PASS
    assert outcomes(track(errors=70), track(errors=30))["error ratio"] is Outcome.FAIL
    assert outcomes(track(errors=9), track(errors=0))["error ratio"] is Outcome.PASS
    assert outcomes(track(errors=15), track(errors=0))["error ratio"] is Outcome.FAIL


def test_a_p95_above_twice_the_stable_pods_fails() -> None:
    assert outcomes(track(p95=0.3), track(p95=0.1))["p95 latency"] is Outcome.FAIL
    assert outcomes(track(p95=0.19), track(p95=0.1))["p95 latency"] is Outcome.PASS
    # a bucket apart on fast answers is noise, not a regression
    assert outcomes(track(p95=0.01), track(p95=0.004))["p95 latency"] is Outcome.PASS


def test_a_restart_or_a_missed_scrape_fails_even_without_traffic() -> None:
    quiet = {"requests": 3.0}
    assert outcomes(track(restarts=1, **quiet), track())["restarts"] is Outcome.FAIL
    assert outcomes(track(min_up=0, **quiet), track())["restarts"] is Outcome.FAIL
    assert outcomes(track(**quiet), track())["traffic"] is Outcome.NO_DATA


def test_too_little_traffic_is_no_data_not_a_pass() -> None:
    found = outcomes(track(requests=49), track())
    assert found["traffic"] is Outcome.NO_DATA
    assert "error ratio" not in found
    assert outcomes(Track(), Track())["traffic"] is Outcome.NO_DATA


def test_business_metrics_fail_a_canary_that_stops_selling_or_charging() -> None:
    assert outcomes(track(orders_per_minute=4), track())["orders per minute"] is Outcome.FAIL
    # per pod: ten stable pods placing 100 a minute are 10 each
    assert outcomes(track(), track(orders_per_minute=100, pods=10))["orders per minute"] == "pass"
    assert (
        outcomes(track(orders_per_minute=0), track(orders_per_minute=0))["orders per minute"]
        is Outcome.NOT_JUDGED
    )
    assert outcomes(track(payments_succeeded=80), track())["payment success"] is Outcome.FAIL
    assert outcomes(track(payments_succeeded=90), track())["payment success"] is Outcome.PASS
    assert outcomes(track(payments=5), track())["payment success"] is Outcome.NOT_JUDGED


def _look(canary: Track) -> Look:
    return Look(judge(canary, track(), LIMITS))


def test_failed_looks_are_counted_against_the_threshold() -> None:
    tally = Tally(threshold=2, iterations=5)
    for canary in (track(), track(errors=100), track(), track(), track()):
        tally.add(_look(canary))
    assert tally.verdict() is Verdict.PROMOTE
    tally = Tally(threshold=2, iterations=5)
    tally.add(_look(track(errors=100)))
    assert not tally.decided()
    tally.add(_look(track(p95=1.0)))
    assert tally.decided()
    assert tally.verdict() is Verdict.ROLLBACK


def test_a_series_with_a_look_without_data_never_promotes() -> None:
    tally = Tally(threshold=2, iterations=3)
    for canary in (track(), track(requests=0, errors=0), track()):
        tally.add(_look(canary))
    assert tally.verdict() is Verdict.INCONCLUSIVE


def test_an_unreachable_prometheus_is_inconclusive() -> None:
    out = io.StringIO()
    prometheus = Prometheus("http://127.0.0.1:9", timeout=1)
    plan = Plan(interval=0, iterations=2, threshold=1)
    verdict = analyze(prometheus, Scope("production"), limits=LIMITS, plan=plan, out=out)
    prometheus.close()
    assert verdict is Verdict.INCONCLUSIVE
    assert "inconclusive" in out.getvalue()


def test_queries_select_the_track_and_namespace_and_leave_probes_out() -> None:
    found = queries(Scope("production", window="2m"), "canary")
    assert 'namespace="production"' in found["requests"]
    assert 'track="canary"' in found["p95"]
    assert "/readyz" in found["requests"]
    assert "[2m]" in found["errors"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--prometheus", "ftp://x", "--namespace", "p"], "--prometheus"),
        (["--prometheus", "http://p:9090", "--namespace", "P R"], "--namespace"),
        (["--prometheus", "http://p:9090", "--namespace", "p", "--window", "5x"], "--window"),
        (["--prometheus", "http://p:9090", "--namespace", "p", "--threshold", "0"], "--threshold"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollout", "analyze", *args])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err
