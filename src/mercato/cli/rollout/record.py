"""``mercato rollout record``: what a release changes in the database, for the rollback decision.

Between the commit running now (``--from``) and the one being released (``--to``) it lists the
migrations the release adds and, for each, whether it is post-deploy (a contract migration,
marked by a module-level ``post_deploy = True`` as ``mercato db lint`` reads it), whether its
downgrade does anything (reversible), and which destructive operations its upgrade runs
(dropping a table or column, changing a column's type). From that it says which branch of the
decision tree (docs/rollback.md) a failure of this release takes:

- ``decision: undo``: undo the rollout; the older build serves the newer schema (``mercato db
  check``) and the schema stays. Expand migrations keep the previous release working, and
  post-deploy (contract) migrations only remove what the previous release no longer reads;
- ``decision: forward-fix``: a regular migration dropped or retyped something the previous
  release reads: rolling the code back breaks it; fix forward;
- ``database_rollback``: if the schema itself must go back, ``downgrade`` works when every
  added migration is reversible and destroys nothing; otherwise only a ``restore`` from the
  backup taken before the release brings the data back; ``none`` without migrations.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSIONS = "src/mercato/migrations/versions"
DESTRUCTIVE = {"drop_table", "drop_column", "drop_constraint", "rename_table"}


@dataclass(frozen=True)
class Migration:
    path: str
    post_deploy: bool
    reversible: bool
    destructive: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Record:
    previous: str
    release: str
    migrations: list[Migration]

    @property
    def decision(self) -> str:
        """Undo the rollout, unless a regular migration destroyed what the older build reads."""
        breaking = [m for m in self.migrations if m.destructive and not m.post_deploy]
        return "forward-fix" if breaking else "undo"

    @property
    def database_rollback(self) -> str:
        """If the schema itself must go back: none needed, a downgrade, or only a restore."""
        if not self.migrations:
            return "none"
        if all(m.reversible and not m.destructive for m in self.migrations):
            return "downgrade"
        return "restore"

    def as_dict(self) -> dict[str, object]:
        return {
            "previous": self.previous,
            "release": self.release,
            "contains_migration": bool(self.migrations),
            "reversible": all(m.reversible for m in self.migrations),
            "post_deploy": any(m.post_deploy for m in self.migrations),
            "destructive": sorted({op for m in self.migrations for op in m.destructive}),
            "decision": self.decision,
            "database_rollback": self.database_rollback,
            "migrations": [asdict(m) for m in self.migrations],
        }


def _calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return found[0] if found else None


def _does_something(function: ast.FunctionDef | None) -> bool:
    """A downgrade with a statement that is neither a docstring, ``pass`` nor ``raise``."""
    if function is None:
        return False
    return any(
        not isinstance(n, ast.Pass | ast.Raise)
        and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        for n in function.body
    )


def _post_deploy(tree: ast.Module) -> bool:
    """Whether the migration says ``post_deploy = True`` (the marker mercato db lint reads)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            if "post_deploy" in names and node.value.value is True:
                return True
    return False


def classify(path: str, source: str) -> Migration:
    """One migration file's kind, reversibility and destructive operations."""
    tree = ast.parse(source)
    upgrade = _function(tree, "upgrade")
    destructive = sorted(
        {
            _name(call)
            for call in (_calls(upgrade) if upgrade else [])
            if _name(call) in DESTRUCTIVE
            or (_name(call) == "alter_column" and any(k.arg == "type_" for k in call.keywords))
        }
    )
    downgrade = _function(tree, "downgrade")
    return Migration(path, _post_deploy(tree), _does_something(downgrade), destructive)


def record(previous: str, release: str, *, repo: Path | None = None) -> Record:
    """The migrations ``release`` adds since ``previous`` (two commits of the repository)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=60, cwd=repo
        )
        return done.stdout

    added = git("diff", "--name-only", "--diff-filter=A", previous, release, "--", VERSIONS)
    paths = sorted(p for p in added.split() if p.endswith(".py") and "__init__" not in p)
    migrations = [classify(p, git("show", f"{release}:{p}")) for p in paths]
    return Record(previous, release, migrations)
