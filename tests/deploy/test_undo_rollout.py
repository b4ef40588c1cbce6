"""deploy/undo-rollout.sh undoes a rollout only when the run changed it and the record allows it.

No cluster runs here: kubectl is a stand-in that answers the Deployment's revision and writes
down every command it is given, which is what the script's decisions are about.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.test_manifests import DEPLOY

SCRIPT = DEPLOY / "undo-rollout.sh"
KUBECTL = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *"get deployment/mercato"*) cat "{revision}" ;;
esac
"""


def run(tmp_path: Path, revision: str, *args: str) -> tuple[int, list[str], str]:
    log, current = tmp_path / "calls", tmp_path / "revision"
    current.write_text(revision)
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(KUBECTL.format(log=log, revision=current))
    kubectl.chmod(0o755)
    done = subprocess.run(
        [str(SCRIPT), "production", *args],
        env={"KUBECTL": str(kubectl), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls, done.stdout + done.stderr


def undone(calls: list[str]) -> bool:
    return any("rollout undo" in call for call in calls)


def test_a_failure_before_anything_was_applied_undoes_nothing(tmp_path: Path) -> None:
    status, calls, out = run(tmp_path, "7", "")
    assert (status, calls) == (0, [])
    assert "nothing was applied" in out


def test_a_rollout_this_run_did_not_change_is_left_alone(tmp_path: Path) -> None:
    status, calls, out = run(tmp_path, "7", "7")
    assert status == 0
    assert not undone(calls)
    assert "still at revision 7" in out


def test_a_rollout_this_run_changed_goes_back_to_the_revision_before(tmp_path: Path) -> None:
    status, calls, _ = run(tmp_path, "8", "7", "undo")
    assert status == 0
    assert "-n production rollout undo deployment/mercato --to-revision=7" in calls
    assert any("rollout status" in call for call in calls)


@pytest.mark.parametrize("decision", ["forward-fix", ""])
def test_a_release_record_that_says_otherwise_stops_the_undo(tmp_path: Path, decision: str) -> None:
    status, calls, out = run(tmp_path, "8", "7", decision)
    assert status == 1
    assert not undone(calls)
    assert "not undoing" in out
