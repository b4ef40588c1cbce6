"""``mercato db lint``: migrations keep the previous release working and do not lock up tables.

Two checks over each revision's upgrade, as PostgreSQL SQL generated offline
(``alembic upgrade A:B --sql``):

* **expand/contract**: a destructive operation (dropping or renaming a table or column,
  changing a column's type, adding ``NOT NULL``, dropping a constraint, ``TRUNCATE``,
  ``DELETE``) breaks the release still running during a rollout, so it is refused unless the
  revision is a post-deploy (contract) migration, marked ``post_deploy = True``: those run
  after the rollout, once no release in service uses what they remove.
* **squawk** (PyPI ``squawk-cli``), for lock safety: a plain ``CREATE INDEX`` on an existing
  table, a missing ``lock_timeout`` or ``statement_timeout``, ``NOT NULL`` without a default,
  and the rest of its rules, less the few :data:`EXCLUDED` here, each with its reason.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.script import Script, ScriptDirectory

from mercato.migrations import migrate

PG_VERSION = "16"

# squawk rules mercato does not follow, and why.
EXCLUDED = {
    # String(n) is a contract the API validates first; widening a varchar is a catalog-only
    # change in PostgreSQL (no rewrite), and SQLite has no text/varchar difference to keep.
    "prefer-text-field": "lengths are part of the API's contract",
    # Integer columns hold quantities, counters and versions bounded by the domain (MAX_QUANTITY
    # and friends), never identifiers, which are UUIDs.
    "prefer-bigint-over-int": "no integer identifiers; bounded quantities and counters",
}
# Findings accepted in revisions that are already applied everywhere; never add to a new one.
ACCEPTED = {
    (
        "0001",
        "prefer-identity",
    ): "platform_outbox.seq is bigserial; changing it rewrites the outbox",
}

# squawk's rules against destroying what a running release uses: that is what a post-deploy
# migration is for, once no release in service uses it any more.
CONTRACT_RULES = frozenset(
    {
        "ban-drop-column",
        "ban-drop-table",
        "ban-drop-not-null",
        "renaming-column",
        "renaming-table",
        "changing-column-type",
        "adding-not-nullable-field",
    }
)

_DESTRUCTIVE = [
    (re.compile(r"\bDROP\s+TABLE\b", re.I), "drops a table"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.I), "drops a column"),
    (re.compile(r"\bRENAME\b", re.I), "renames"),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I), "changes a type"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "adds NOT NULL"),
    (re.compile(r"\bDROP\s+CONSTRAINT\b", re.I), "drops a constraint"),
    (re.compile(r"\bTRUNCATE\b", re.I), "truncates"),
    (re.compile(r"\bDELETE\s+FROM\b", re.I), "deletes rows"),
]


@dataclass
class RevisionReport:
    """What the lint found in one revision."""

    revision: str
    title: str
    post_deploy: bool
    findings: list[str] = field(default_factory=list)


def is_post_deploy(script: Script) -> bool:
    """Whether a revision is a post-deploy (contract) migration."""
    return bool(getattr(script.module, "post_deploy", False))


def upgrade_sql(script_location: Path, revision: Script) -> str:
    """The PostgreSQL SQL of one revision's upgrade, generated offline."""
    buffer = io.StringIO()
    config = migrate.alembic_config("postgresql://offline/mercato")
    config.set_main_option("script_location", str(script_location))
    config.output_buffer = buffer
    down = revision.down_revision
    target = f"{down}:{revision.revision}" if isinstance(down, str) else revision.revision
    command.upgrade(config, target, sql=True)
    return buffer.getvalue()


def _statements(sql: str) -> list[str]:
    """The statements of the migration itself (not Alembic's version bookkeeping)."""
    parts = [part.strip() for part in sql.split(";\n")]
    return [p for p in parts if p and "alembic_version" not in p]


def destructive(sql: str) -> list[str]:
    """Each destructive operation in ``sql``, said in words."""
    found = []
    for statement in _statements(sql):
        for pattern, what in _DESTRUCTIVE:
            if pattern.search(statement):
                first = " ".join(statement.split())[:90]
                found.append(f"{what}: {first}")
    return found


def squawk_binary() -> str:
    """squawk from the same environment as mercato, else from PATH."""
    beside = Path(sys.executable).with_name("squawk")
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if found is None:
        raise FileNotFoundError("squawk is not installed (pip install squawk-cli)")
    return found


def squawk(files: dict[str, Path]) -> dict[str, list[dict[str, object]]]:
    """squawk's findings per revision."""
    done = subprocess.run(
        [squawk_binary(), "--reporter", "json", f"--pg-version={PG_VERSION}",
         f"--exclude={','.join(EXCLUDED)}", *map(str, files.values())],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise RuntimeError(f"squawk failed ({done.returncode}): {done.stderr}") from None
    by_file = {str(path): rev for rev, path in files.items()}
    grouped: dict[str, list[dict[str, object]]] = {rev: [] for rev in files}
    for finding in findings:
        grouped[by_file[str(finding["file"])]].append(finding)
    return grouped


def lint(script_location: Path = migrate.MIGRATIONS) -> list[RevisionReport]:
    """Lint every revision in ``script_location``, oldest first."""
    config = migrate.alembic_config("postgresql://offline/mercato")
    config.set_main_option("script_location", str(script_location))
    scripts = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    reports = []
    with tempfile.TemporaryDirectory(prefix="mercato-lint-") as folder:
        files = {}
        for script in scripts:
            sql = upgrade_sql(script_location, script)
            files[script.revision] = Path(folder) / f"{script.revision}.sql"
            files[script.revision].write_text(sql)
            report = RevisionReport(script.revision, script.doc or "", is_post_deploy(script))
            if not report.post_deploy:
                report.findings += [
                    f"destructive outside a post-deploy migration: {what}"
                    for what in destructive(sql)
                ]
            reports.append(report)
        found = squawk(files)
    for report in reports:
        for item in found[report.revision]:
            rule = str(item["rule_name"])
            if report.post_deploy and rule in CONTRACT_RULES:
                continue
            if (report.revision, rule) not in ACCEPTED:
                report.findings.append(f"squawk {rule} (line {item['line']}): {item['message']}")
    return reports


def run(out: TextIO, script_location: Path = migrate.MIGRATIONS) -> int:
    """Print the lint's report; 0 when nothing was found, 1 otherwise."""
    reports = lint(script_location)
    for report in reports:
        kind = "post-deploy" if report.post_deploy else "regular"
        verdict = "ok" if not report.findings else f"{len(report.findings)} finding(s)"
        print(
            f"{report.revision} ({kind}) {report.title.splitlines()[0][:60]}: {verdict}", file=out
        )
        for finding in report.findings:
            print(f"    {finding}", file=out)
    total = sum(len(r.findings) for r in reports)
    print(f"{len(reports)} revisions, {total} finding(s)", file=out)
    return 1 if total else 0
