"""clients/python is what openapi-python-client makes of today's OpenAPI document, exactly.

A change to a route, a model or the document's completion that is not followed by
``make client`` fails here, so the client mercato smoke uses never drifts from the server.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
BIN = Path(sys.executable).parent
IGNORED = {"__pycache__", ".ruff_cache", "mercato_client.egg-info", "build"}


def _run(*command: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the generator runs ruff from PATH
    ran = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def _differences(expected: Path, actual: Path) -> list[str]:
    compared = filecmp.dircmp(expected, actual, ignore=[*IGNORED])
    found = [f"only in clients: {name}" for name in compared.left_only]
    found += [f"only generated: {name}" for name in compared.right_only]
    _, mismatch, errors = filecmp.cmpfiles(expected, actual, compared.common_files, shallow=False)
    found += [f"differs: {name}" for name in [*mismatch, *errors]]
    for folder in compared.common_dirs:
        found += [f"{folder}/{d}" for d in _differences(expected / folder, actual / folder)]
    return found


def test_the_committed_client_is_generated_from_the_current_document(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    _run(str(BIN / "mercato"), "openapi", "--output", str(document), cwd=tmp_path)
    assert document.read_text() == (CLIENTS / "openapi.json").read_text(), (
        "clients/openapi.json is not the current document: run `make client`"
    )
    _run(
        str(BIN / "openapi-python-client"),
        "generate",
        "--path",
        str(document),
        "--output-path",
        str(tmp_path / "python"),
        "--config",
        str(CLIENTS / "config.yaml"),
        "--meta",
        "setup",
        cwd=tmp_path,
    )
    drift = _differences(CLIENTS / "python", tmp_path / "python")
    assert not drift, f"clients/python is stale, run `make client`: {drift}"
