"""The layering of DESIGN.md, read from the import statements of every library file (ast, no import runs).

model_core is a library: it imports nothing of trainer, service or bench. The service sees of
model_core only the two torch-free modules, the bundle format and the image preprocessing. No
library file imports bench or tests.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model_core", "trainer", "service")
SERVICE_MAY_IMPORT = ("model_core.bundle", "model_core.preprocessing")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports (``from a.b import c`` counts a.b and a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_of(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(REPO)): imported_modules(p) for p in sorted((REPO / package).rglob("*.py"))}


def within(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def offenders(package: str, allowed: Callable[[str], bool]) -> list[str]:
    """'file: module' for each import of ``package`` that ``allowed`` refuses."""
    found = imports_of(package).items()
    return [f"{file}: {name}" for file, names in found for name in sorted(names) if not allowed(name)]


def test_model_core_imports_no_trainer_service_or_bench() -> None:
    found = offenders("model_core", lambda n: not any(within(n, r) for r in ("trainer", "service", "bench", "tests")))
    assert found == []


def test_service_sees_only_the_torch_free_part_of_model_core() -> None:
    def allowed(name: str) -> bool:
        if within(name, "torch") or any(within(name, r) for r in ("trainer", "bench", "tests")):
            return False
        return (
            not within(name, "model_core") or name == "model_core" or any(within(name, m) for m in SERVICE_MAY_IMPORT)
        )

    assert offenders("service", allowed) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_library_file_imports_bench_or_tests(package: str) -> None:
    assert offenders(package, lambda n: not (within(n, "bench") or within(n, "tests"))) == []


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The walker itself: plain, dotted and from-imports are found; relative ones are not absolute names."""
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom c import d\nfrom . import e\nif True:\n    import f\n")
    assert imported_modules(source) == {"a.b", "c", "c.d", "f"}
