"""The ``mercato rollout`` command's arguments (registered by mercato.cli)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from typing import Any

import orjson

from mercato.cli.rollout.analyze import Plan, analyze
from mercato.cli.rollout.prometheus import Prometheus, Scope
from mercato.cli.rollout.rules import Limits

DURATION = re.compile(r"^[1-9][0-9]{0,4}(s|m|h)$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def cmd_analyze(args: argparse.Namespace) -> int:
    """Compare the canary with the stable pods; exit 0 promote, 1 rollback, 2 inconclusive."""
    scope = Scope(
        namespace=args.namespace,
        job=args.job,
        window=args.window,
        baseline_offset=args.baseline_offset,
    )
    limits = Limits(min_requests=args.min_requests, min_payments=args.min_payments)
    plan = Plan(interval=args.interval, iterations=args.iterations, threshold=args.threshold)
    prometheus = Prometheus(args.prometheus)
    try:
        verdict = analyze(
            prometheus, scope, limits=limits, plan=plan, out=sys.stdout, as_json=args.json
        )
    finally:
        prometheus.close()
    return int(verdict)


def cmd_record(args: argparse.Namespace) -> int:
    """Print what a release changes in the database and the rollback decision it implies."""
    from mercato.cli.rollout.record import record

    try:
        found = record(args.previous, args.release)
    except subprocess.CalledProcessError as exc:
        print(f"mercato rollout record: git failed: {exc.stderr.strip()}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(found.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _url(text: str) -> str:
    if not re.match(r"^https?://[^\s/]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


def _pattern(pattern: re.Pattern[str], what: str) -> Any:
    def parse(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text

    return parse


def _number(kind: type[int] | type[float], low: float, high: float) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def register(sub: Any) -> None:
    """Add ``rollout analyze`` to the command line's subcommands."""
    rollout = sub.add_parser("rollout", help="release analysis", description=__doc__)
    actions = rollout.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = actions.add_parser(
        "analyze",
        help="canary vs stable pods: promote, rollback or inconclusive",
        description=f"{cmd_analyze.__doc__} Rules: docs/rollback.md.",
    )
    parser.add_argument("--prometheus", required=True, type=_url, help="Prometheus base URL")
    parser.add_argument("--namespace", required=True, type=_pattern(NAME, "a Kubernetes namespace"))
    parser.add_argument("--job", default="mercato", type=_pattern(NAME, "a scrape job name"))
    parser.add_argument(
        "--window", default="5m", type=_pattern(DURATION, "a duration like 30s or 5m")
    )
    parser.add_argument("--interval", type=_number(float, 0, 3600), default=30.0, help="seconds")
    parser.add_argument("--iterations", type=_number(int, 1, 1000), default=10)
    parser.add_argument(
        "--threshold", type=_number(int, 1, 1000), default=2, help="failed looks to roll back"
    )
    parser.add_argument("--min-requests", type=_number(int, 1, 10**9), default=50)
    parser.add_argument("--min-payments", type=_number(int, 1, 10**9), default=10)
    parser.add_argument(
        "--baseline-offset",
        type=_pattern(DURATION, "a duration like 30s or 5m"),
        help="a soak after promotion: the stable pods now against themselves this long ago",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=cmd_analyze)

    rec = actions.add_parser(
        "record",
        help="what a release changes in the database; the rollback decision",
        description=cmd_record.__doc__,
    )
    rec.add_argument("--previous", required=True, type=_pattern(REF, "a git commit or tag"))
    rec.add_argument("--release", default="HEAD", type=_pattern(REF, "a git commit or tag"))
    rec.set_defaults(func=cmd_record)
