"""The docs point at what exists: docs/architecture.md names only real paths and modules, and every
citation of a section of a Markdown file, in code, config or docs, finds that section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
PACKAGES = ("model_core", "trainer", "service", "bench", "tests")
# Files that may cite a section: sources, configs and docs, outside what is generated or vendored.
CITING_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".env", ".js", ".html", ".css", ".sh", ".txt", ".cfg"}
SKIPPED_DIRS = {".git", ".venv", "node_modules", "runs", "models", "data", "pretrained", "build"}
# docs/api.md, "Several models" | README.md, `make demo` (the comma optional): a file and a section name.
CITATION = re.compile(r"\b((?:docs/[\w/.-]+|README)\.md),?[ \t]+(\"[^\"\n]+\"|`[^`\n]+`)")


def code_spans(text: str) -> list[str]:
    """The `inline code` of a Markdown text, fenced blocks left out."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", prose)


def is_path(span: str) -> bool:
    """A repository path: has a slash, and no placeholder, space, glob or URL (a bare file name is
    one inside a run or a bundle, not in the repository)."""
    return "/" in span and not any(c in span for c in "<>*{} ") and "://" not in span


def module_problem(dotted: str) -> str | None:
    """Why ``a.b.c`` (a module, or a module and one name it defines) does not exist; None when it does."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if not source.is_file():
            continue
        rest = parts[cut:]
        if not rest:
            return None
        if len(rest) > 1:
            return f"{dotted}: {'.'.join(rest)} is not one name of {source.relative_to(REPO)}"
        tree = ast.parse(source.read_text())
        assigned = (n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign))
        names = {getattr(n, "name", None) for n in tree.body} | {
            t.id for n in assigned for t in ast.walk(n) if isinstance(t, ast.Name)
        }
        return None if rest[0] in names else f"{dotted}: no {rest[0]} in {source.relative_to(REPO)}"
    return f"{dotted}: no such module"


def test_the_architecture_page_names_only_paths_and_modules_that_exist() -> None:
    spans = code_spans(ARCHITECTURE.read_text())
    paths = [s for s in spans if is_path(s)]
    modules = [s for s in spans if re.fullmatch(rf"(?:{'|'.join(PACKAGES)})(?:\.\w+)+", s)]
    assert len(paths) > 40 and len(modules) >= 4, "the page names its concepts' homes by path and module"
    assert [p for p in paths if not (REPO / p.rstrip("/")).exists()] == []
    assert [problem for m in modules if (problem := module_problem(m))] == []


def sections(markdown: Path) -> list[str]:
    """What a citation may name: a heading (or part of one), or a bold paragraph lead such as **Drift.**"""
    text = markdown.read_text()
    headings = [m.strip() for m in re.findall(r"^#+ (.+)$", text, flags=re.M)]
    bold = re.findall(r"\*\*([^*\n]+)\*\*", text)
    return headings + [b.rstrip(".:") for b in bold]


def citations() -> list[tuple[str, str, str]]:
    """(citing file, cited file, section) for every citation in the repository's own files."""
    found = []
    for path in sorted(REPO.rglob("*")):
        parts = path.relative_to(REPO).parts
        if SKIPPED_DIRS & set(parts) or path == Path(__file__) or not path.is_file():
            continue
        if path.suffix in CITING_SUFFIXES or path.name == "Makefile":
            for cited, name in CITATION.findall(path.read_text(errors="replace")):
                found.append((str(path.relative_to(REPO)), cited, name.strip('"')))
    return found


CITATIONS = citations()


def test_citations_are_found() -> None:
    cited = {c for _, c, _ in CITATIONS}
    assert {"docs/api.md", "docs/benchmarks.md", "docs/scaling.md"} <= cited


@pytest.mark.parametrize(("source", "cited", "name"), CITATIONS, ids=lambda v: str(v))
def test_each_cited_section_exists(source: str, cited: str, name: str) -> None:
    target = REPO / cited
    assert target.is_file(), f"{source} cites {cited}, which does not exist"
    assert any(name in s for s in sections(target)), f"{source} cites {cited}, {name!r}: no such section"
