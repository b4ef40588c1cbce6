"""The size limits of src/: no file over 400 lines, no function over 40 (migrations excepted).

A function's length counts from its ``def`` line to its last line (decorators not included,
its docstring and comments included), as ``ast`` reports them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "mercato"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 40
# The revisions are history: a migration is written once and never refactored.
EXCLUDED = (PACKAGE / "migrations" / "versions",)

# Nothing is over the limits; an entry here would name an exception and the issue that
# removes it (the tests below fail on an entry that is no longer over its limit).
ALLOWED_FILES: set[str] = set()
ALLOWED_FUNCTIONS: set[str] = set()


def _sources() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(path.is_relative_to(excluded) for excluded in EXCLUDED):
            yield path


def _name(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _long_files() -> dict[str, int]:
    lengths = {
        _name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _sources()
    }
    return {name: lines for name, lines in lengths.items() if lines > MAX_FILE_LINES}


def _function_lengths(source: str) -> dict[str, int]:
    """Every function's lines, from its ``def`` to its last line (nested ones too); of
    functions that share a name, the longest."""
    lengths: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            lengths[node.name] = max(lines, lengths.get(node.name, 0))
    return lengths


def _long_functions() -> dict[str, int]:
    found = {}
    for path in _sources():
        for name, lines in _function_lengths(path.read_text(encoding="utf-8")).items():
            if lines > MAX_FUNCTION_LINES:
                found[f"{_name(path)}::{name}"] = lines
    return found


def test_no_file_in_src_is_over_400_lines() -> None:
    over = {name: lines for name, lines in _long_files().items() if name not in ALLOWED_FILES}
    assert over == {}, f"split these files (at most {MAX_FILE_LINES} lines): {over}"


def test_no_function_in_src_is_over_40_lines() -> None:
    over = {
        name: lines for name, lines in _long_functions().items() if name not in ALLOWED_FUNCTIONS
    }
    assert over == {}, f"split these functions (at most {MAX_FUNCTION_LINES} lines): {over}"


def test_the_allow_lists_name_only_what_is_still_over_the_limits() -> None:
    assert ALLOWED_FILES - set(_long_files()) == set(), "remove these from ALLOWED_FILES"
    assert ALLOWED_FUNCTIONS - set(_long_functions()) == set(), "remove from ALLOWED_FUNCTIONS"


def test_a_function_is_measured_from_its_def_to_its_last_line() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    source = (
        f"@decorator\ndef fits():\n{body}\n\n\n"
        f"class K:\n    async def too_long(self):\n    {body.replace(chr(10), chr(10) + '    ')}"
        "\n        return 1\n"
        "\n\ndef fits():\n    pass\n"
    )
    assert _function_lengths(source) == {
        "fits": MAX_FUNCTION_LINES,
        "too_long": MAX_FUNCTION_LINES + 1,
    }
