"""``mercato rollout analyze``: look at the canary every ``interval`` until a verdict.

Each look asks Prometheus for both tracks over the window and applies the rules
(:mod:`mercato.cli.rollout.rules`); the tally decides as Flagger does. The report is printed for a
person as it goes (one line per look) and, with ``--json``, as one JSON document at the end.
A Prometheus that cannot be asked gives a look without data, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO

import orjson

from mercato.cli.rollout.prometheus import Prometheus, PrometheusError, Scope
from mercato.cli.rollout.rules import Check, Limits, Look, Outcome, Tally, Track, Verdict, judge


@dataclass(frozen=True)
class Plan:
    """How long to watch and how many failed looks are too many."""

    interval: float = 30.0
    iterations: int = 10
    threshold: int = 2


def look(prometheus: Prometheus, scope: Scope, limits: Limits) -> Look:
    """One iteration: both tracks over the window, judged."""
    try:
        if scope.baseline_offset:  # a soak: the release now against the pods before it
            canary = prometheus.track(scope, "stable")
            stable = prometheus.track(scope, "stable", offset=scope.baseline_offset)
        else:
            canary, stable = prometheus.track(scope, "canary"), prometheus.track(scope, "stable")
    except PrometheusError as exc:
        no_data = Check("prometheus", Outcome.NO_DATA, None, None, None, str(exc))
        return Look([no_data])
    return Look(judge(canary, stable, limits))


def _line(index: int, found: Look, tally: Tally) -> str:
    state = "FAILED" if found.failed else ("passed" if found.has_data else "no data")
    details = "; ".join(f"{c.name}: {c.reason}" for c in found.checks if c.outcome != "pass")
    count = f"{tally.failures}/{tally.threshold} failed"
    return f"look {index}/{tally.iterations} {state} ({count})" + (
        f": {details}" if details else ""
    )


def report(scope: Scope, tally: Tally, seconds: float) -> dict[str, object]:
    """The JSON report: the verdict, the counts, every look's checks."""
    verdict = tally.verdict()
    return {
        "verdict": verdict.name.lower(),
        "exit_status": int(verdict),
        "namespace": scope.namespace,
        "window": scope.window,
        "baseline_offset": scope.baseline_offset,
        "failures": tally.failures,
        "threshold": tally.threshold,
        "iterations": tally.iterations,
        "seconds": round(seconds, 1),
        "looks": [
            {"failed": found.failed, "has_data": found.has_data, "checks": _checks(found)}
            for found in tally.looks
        ],
    }


def _checks(found: Look) -> list[dict[str, object]]:
    return [{**asdict(c), "outcome": str(c.outcome)} for c in found.checks]


def summary(verdict: Verdict, tally: Tally, seconds: float) -> str:
    looks = len(tally.looks)
    without = sum(not found.has_data for found in tally.looks)
    why = {
        Verdict.PROMOTE: "every look had data and fewer looks failed than the threshold",
        Verdict.ROLLBACK: f"{tally.failures} looks failed, threshold {tally.threshold}",
        Verdict.INCONCLUSIVE: f"{without} of {looks} looks had no data",
    }[verdict]
    return f"verdict: {verdict.name.lower()} after {looks} looks in {seconds:.0f}s ({why})"


def analyze(
    prometheus: Prometheus,
    scope: Scope,
    *,
    limits: Limits,
    plan: Plan,
    out: TextIO,
    as_json: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Look every ``plan.interval`` seconds until the tally decides; print the report."""
    tally = Tally(threshold=plan.threshold, iterations=plan.iterations)
    started = time.monotonic()
    while True:
        found = look(prometheus, scope, limits)
        tally.add(found)
        if not as_json:
            print(_line(len(tally.looks), found, tally), file=out, flush=True)
        if tally.decided():
            break
        sleep(plan.interval)
    seconds = time.monotonic() - started
    verdict = tally.verdict()
    if as_json:
        out.write(orjson.dumps(report(scope, tally, seconds), option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
    else:
        print(summary(verdict, tally, seconds), file=out)
    return verdict


__all__ = ["Limits", "Plan", "Scope", "Track", "Verdict", "analyze"]
