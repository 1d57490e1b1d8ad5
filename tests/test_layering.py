"""The layering of docs/architecture.md, "Layers", read from the import statements of every library file (ast).

model_core is a library: it imports nothing of trainer, service or bench. The service sees of
model_core only its torch-free modules: the bundle format, the model configuration and its choices,
the image preprocessing and the image arrays (value range, one-hot labels, grids); those import no
torch and nothing of model_core beyond each other. No library file imports bench or tests.
Checkpoints have one home, trainer/checkpoint.py: no other library file calls torch.save or torch.load.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model_core", "trainer", "service")
SERVICE_MAY_IMPORT = ("model_core.bundle", "model_core.config", "model_core.images", "model_core.preprocessing")


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


@pytest.mark.parametrize("module", SERVICE_MAY_IMPORT)
def test_the_torch_free_modules_stay_torch_free(module: str) -> None:
    """What the service may import of model_core imports no torch, no trainer or service, and of
    model_core only the other torch-free modules: so the service never pulls torch in through them."""
    path = REPO / Path(*module.split("."))
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    assert files and all(f.is_file() for f in files)

    def allowed(name: str) -> bool:
        if any(within(name, r) for r in ("torch", "trainer", "service", "bench", "tests")):
            return False
        return not within(name, "model_core") or any(within(name, m) for m in SERVICE_MAY_IMPORT)

    found = [f"{f.relative_to(REPO)}: {n}" for f in files for n in sorted(imported_modules(f)) if not allowed(n)]
    assert found == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_library_file_imports_bench_or_tests(package: str) -> None:
    assert offenders(package, lambda n: not (within(n, "bench") or within(n, "tests"))) == []


def torch_save_and_load_calls(path: Path) -> list[str]:
    """'file:line torch.save' (or torch.load) for each such call in a file."""
    tree = ast.parse(path.read_text(), str(path))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    attributes = [(c.lineno, c.func) for c in calls if isinstance(c.func, ast.Attribute)]
    return [
        f"{path.relative_to(REPO)}:{line} torch.{func.attr}"
        for line, func in attributes
        if func.attr in ("save", "load") and isinstance(func.value, ast.Name) and func.value.id == "torch"
    ]


def test_only_trainer_checkpoint_saves_and_loads_checkpoints() -> None:
    """Save, load, build the model and read older formats live in trainer/checkpoint.py; the rest calls it."""
    files = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    found = [call for f in files for call in torch_save_and_load_calls(f)]
    assert found and all(call.startswith("trainer/checkpoint.py:") for call in found), found


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The walker itself: plain, dotted and from-imports are found; relative ones are not absolute names."""
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom c import d\nfrom . import e\nif True:\n    import f\n")
    assert imported_modules(source) == {"a.b", "c", "c.d", "f"}
