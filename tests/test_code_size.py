"""The sizes docs/architecture.md states ("Layers"), held: no library file over 300 lines, no function
over 50 (a sign of two concepts in one).

bench/ is held to the same sizes: its programs read top to bottom in phases (setup, measure, report),
each phase a function, and what two benchmarks share (servers, load, the quality judge) is a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model_core", "trainer", "service")
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 50
BENCH_MAX_FILE_LINES = 300
BENCH_MAX_FUNCTION_LINES = 50


def files_of(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (REPO / package).rglob("*.py"))


def over(path: Path, max_file_lines: int, max_function_lines: int) -> dict[str, int]:
    """The file (its path) and the functions (their names) longer than allowed, with their lengths."""
    source = path.read_text()
    lengths = {str(path.relative_to(REPO)): len(source.splitlines())}
    functions = (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    found = {k: n for k, n in lengths.items() if n > max_file_lines}
    for f in functions:
        if (n := (f.end_lineno or f.lineno) - f.lineno + 1) > max_function_lines:
            found[f.name] = n
    return found


@pytest.mark.parametrize("path", files_of(*PACKAGES), ids=lambda p: str(p.relative_to(REPO)))
def test_library_file_and_function_sizes(path: Path) -> None:
    assert over(path, MAX_FILE_LINES, MAX_FUNCTION_LINES) == {}


@pytest.mark.parametrize("path", files_of("bench"), ids=lambda p: str(p.relative_to(REPO)))
def test_bench_file_and_function_sizes(path: Path) -> None:
    assert over(path, BENCH_MAX_FILE_LINES, BENCH_MAX_FUNCTION_LINES) == {}
