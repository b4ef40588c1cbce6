"""The ``mercato`` command line and its commands: serve, db, demo data, users, workers, switches,
config, smoke and load checks, rollout analysis."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mercato import __version__
from mercato.cli.db.commands import DBOPS_ACTIONS, add_dbops_commands, upgrade_target
from mercato.cli.rollout import command as rollout
from mercato.cli.search import add_search_command
from mercato.cli.switches import add_switch_command
from mercato.config import ConfigurationError, Settings, explain

EXIT_CONFIG = 2


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except (ValidationError, ConfigurationError) as exc:
        print(f"mercato: {explain(exc)}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API: drains on SIGTERM, then stops within the grace period."""
    from mercato.web.serve import metrics_port_of, serve

    settings = _settings()
    os.environ.setdefault("MERCATO_DATABASE_URL", settings.database_url)
    workers = args.workers or settings.workers
    port = args.port or settings.port
    if port == metrics_port_of(settings):
        print(f"mercato: --port {port} is MERCATO_METRICS_PORT; choose another", file=sys.stderr)
        return EXIT_CONFIG
    with _metrics_dir(settings, workers):
        return serve(settings, host=args.host or settings.host, port=port, workers=workers)


@contextlib.contextmanager
def _metrics_dir(settings: Settings, workers: int) -> Iterator[None]:
    """With several worker processes, a folder where they share their metrics (see metrics.py)."""
    from mercato.platform.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    path = os.environ.get(MULTIPROC_ENV) or settings.metrics_dir
    if not path and workers == 1:
        yield
        return
    made = not path
    path = path or tempfile.mkdtemp(prefix="mercato-metrics-")
    prepare_multiprocess_dir(path)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        if made:
            shutil.rmtree(path, ignore_errors=True)


def cmd_db(args: argparse.Namespace) -> int:
    """Migrations: upgrade, downgrade, current, history."""
    from mercato.migrations import migrate

    url = _settings().database_url
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or upgrade_target(url, pre_deploy=args.pre_deploy))
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision or "-1")
    elif args.action == "current":
        print(migrate.current(url) or "(empty database)")
    elif args.action in DBOPS_ACTIONS:
        return DBOPS_ACTIONS[args.action](args, url)
    else:
        from alembic import command

        command.history(migrate.alembic_config(url), verbose=args.verbose)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Load the demo staff account, demo customer and products (skips what exists); with
    --catalog, also a generated catalog of that many products (the same for a --seed)."""
    from mercato.cli.demo import load_demo_data

    report = asyncio.run(load_demo_data(_settings(), catalog=args.catalog, seed=args.seed))
    print(report)
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    """Create a staff account."""
    from mercato.cli.demo import create_staff

    password = os.environ.get("MERCATO_STAFF_PASSWORD") or args.password
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password for the new staff account: ")
    staff_id = asyncio.run(
        create_staff(_settings(), email=args.email, name=args.name, password=password)
    )
    print(f"created staff account {args.email} ({staff_id})")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the background workers without the HTTP API, until SIGTERM or SIGINT. With
    MERCATO_METRICS_PORT (staging, production) their metrics are served on that port."""
    from mercato.bootstrap import build
    from mercato.platform.exposition import MetricsPortApp
    from mercato.platform.logging import configure
    from mercato.web.serve import metrics_server

    settings = _settings()
    configure(level=settings.log_level, fmt=settings.log_format)

    async def main() -> None:
        container = build(settings)
        exporter = metrics_server(settings, MetricsPortApp(container.metrics))
        # bound first: a port already taken stops the worker (status 3) before it starts work
        listener = exporter.config.bind_socket() if exporter else None
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await container.start(workers=True)  # the workers, whatever MERCATO_RUN_WORKERS says
            serving = None
            if exporter and listener:
                serving = asyncio.create_task(exporter.serve(sockets=[listener]))
            await stopping.wait()
            if exporter and serving:
                exporter.should_exit = True
                await serving
        finally:
            await container.stop()

    asyncio.run(main())
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    """Print the OpenAPI document (the one /openapi.json serves) as JSON."""
    import json

    from mercato.web.app import create_app

    document = create_app(_settings()).openapi()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective configuration, secrets redacted, and where each value came from."""
    settings = _settings()
    rows = settings.describe()
    if args.json:
        import json

        shown = {r.name: {"value": r.value, "source": r.source.value} for r in rows}
        print(json.dumps({"profile": settings.env.value, "settings": shown}, indent=2))
        return 0
    print(f"profile: {settings.env.value}")
    width = max(len(r.variable) for r in rows)
    for row in rows:
        print(f"{row.variable:{width}}  {row.source.value:11}  {row.value}")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    """Check a deployed instance end to end; non-zero with a report when anything fails."""
    from mercato.cli.smoke import run_smoke

    email = os.environ.get("MERCATO_SMOKE_STAFF_EMAIL")
    password = os.environ.get("MERCATO_SMOKE_STAFF_PASSWORD")
    passed = run_smoke(
        args.base_url,
        out=sys.stdout,
        timeout=args.timeout,
        staff=(email, password) if email and password else None,
        order=not args.skip_order,
    )
    return 0 if passed else 1


def cmd_loadcheck(args: argparse.Namespace) -> int:
    """A short read-only load test; non-zero when the thresholds are not met."""
    from mercato.cli.loadcheck import run_loadcheck

    passed = run_loadcheck(
        args.base_url,
        out=sys.stdout,
        duration=args.duration,
        concurrency=args.concurrency,
        max_error_ratio=args.max_error_ratio,
        max_p95_ms=args.max_p95_ms,
    )
    return 0 if passed else 1


def _base_url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) < 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be above 0 and at most 3600")
    return value


def _ranged(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mercato",
        description="mercato: a commerce backend. Settings come from MERCATO_* environment "
        "variables (MERCATO_DATABASE_URL first: sqlite:///./mercato.db or postgresql://...).",
    )
    parser.add_argument("--version", action="version", version=f"mercato {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_db(sub)
    _add_accounts(sub)
    add_switch_command(sub, _settings)
    add_search_command(sub, _settings)
    _add_config(sub)
    _add_checks(sub)
    rollout.register(sub)
    return parser


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the HTTP API", description=cmd_serve.__doc__)
    serve.add_argument("--host", help="interface to bind (default: MERCATO_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=_ranged(1, 65535), help="port to bind (default: MERCATO_PORT or 8000)"
    )
    serve.add_argument(
        "--workers", type=_ranged(1, 64), help="worker processes (default: MERCATO_WORKERS or 1)"
    )
    serve.set_defaults(func=cmd_serve)


def _add_db(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations", description=cmd_db.__doc__)
    db_sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="apply migrations (default: to the newest)")
    up.add_argument("revision", nargs="?", help="target revision (default: head)")
    up.add_argument(
        "--pre-deploy", action="store_true", help="stop before the first post-deploy migration"
    )
    down = db_sub.add_parser("downgrade", help="revert migrations (default: the last one)")
    down.add_argument("revision", nargs="?", help="target revision, e.g. -1 or base")
    db_sub.add_parser("current", help="print the revision the database is at")
    hist = db_sub.add_parser("history", help="list all revisions")
    hist.add_argument("--verbose", "-v", action="store_true")
    add_dbops_commands(db_sub)
    db.set_defaults(func=cmd_db)


def _add_accounts(sub: Any) -> None:
    """demo-data, users and worker."""
    demo = sub.add_parser(
        "demo-data", help="load demo accounts and products", description=cmd_demo_data.__doc__
    )
    demo.add_argument(
        "--catalog", type=_ranged(0, 1_000_000), nargs="?", const=300, default=0, metavar="N",
        help="also generate a realistic catalog of N products (300 if N is left out)",
    )  # fmt: skip
    demo.add_argument("--seed", type=_ranged(0, 2**31), default=15, help="the catalog's seed")
    demo.set_defaults(func=cmd_demo_data)

    users = sub.add_parser("users", help="manage accounts", description="Manage accounts.")
    users_sub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    staff = users_sub.add_parser(
        "create-staff",
        help="create a staff account",
        description="Create a staff account. The password comes from --password, "
        "MERCATO_STAFF_PASSWORD, standard input, or a prompt.",
    )
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", default="Staff")
    staff.add_argument("--password", help="prefer MERCATO_STAFF_PASSWORD or the prompt")
    staff.set_defaults(func=cmd_create_staff)

    worker = sub.add_parser(
        "worker", help="run background workers only", description=cmd_worker.__doc__
    )
    worker.set_defaults(func=cmd_worker)


def _add_config(sub: Any) -> None:
    config = sub.add_parser(
        "config", help="inspect configuration", description="Inspect configuration."
    )
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = config_sub.add_parser(
        "show",
        help="print the effective settings, secrets redacted",
        description="Print every setting's variable, source (argument, env, file, secrets-dir, "
        "profile, default) and value, secrets redacted.",
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_config_show)

    document = sub.add_parser(
        "openapi", help="print the OpenAPI document", description=cmd_openapi.__doc__
    )
    document.add_argument("--output", help="write it to this file instead")
    document.set_defaults(func=cmd_openapi)


def _add_checks(sub: Any) -> None:
    """smoke and loadcheck: checks of a deployed instance."""
    smoke = sub.add_parser(
        "smoke",
        help="check a deployed instance end to end",
        description=f"{cmd_smoke.__doc__} Probes, a catalog read, a customer, an order placed "
        "with the sandbox card, then cleanup (the order is cancelled; with "
        "MERCATO_SMOKE_STAFF_EMAIL and MERCATO_SMOKE_STAFF_PASSWORD the customer is deactivated).",
    )
    smoke.add_argument(
        "--base-url", required=True, type=_base_url, help="e.g. https://staging.example"
    )
    smoke.add_argument("--timeout", type=_positive, default=10.0, help="seconds per request")
    smoke.add_argument(
        "--skip-order",
        action="store_true",
        help="probes and catalog only (where the payment provider is not the sandbox)",
    )
    smoke.set_defaults(func=cmd_smoke)

    load = sub.add_parser(
        "loadcheck", help="a short read-only load test", description=cmd_loadcheck.__doc__
    )
    load.add_argument("--base-url", required=True, type=_base_url)
    load.add_argument("--duration", type=_positive, default=30.0, help="seconds (default 30)")
    load.add_argument("--concurrency", type=_ranged(1, 200), default=10, help="clients")
    load.add_argument("--max-error-ratio", type=float, default=0.01, help="default 0.01")
    load.add_argument("--max-p95-ms", type=_positive, default=500.0, help="default 500")
    load.set_defaults(func=cmd_loadcheck)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mercato`` command."""
    args = _parser().parse_args(argv)
    return int(args.func(args))
