"""Trainer faults: checkpoints that cannot be written, and checkpoints that are not ours.

Related tests elsewhere: SIGKILL mid-run then ``--resume`` ends bit-identical to an uninterrupted
run (test_trainer_resume.py, slow); a full disk and a read-only file while saving keep the previous
checkpoint and stop with one line (test_trainer_run.py).
"""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import pytest
import torch
from tiny_runs import REPO, run_modules, tiny_args

from trainer import checkpoint, export
from trainer.cli import main

SOURCE_DIRS = ("model_core", "trainer", "service", "bench", "tests")


class RunsCode:
    """Unpickles as a call of os.system: what a poisoned checkpoint does to ``torch.load`` without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class Foreign:
    """An instance of a class that is no tensor, container or plain value."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def poisoned(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A checkpoint-shaped file holding ``kind`` of foreign object; (its path, the marker it would create)."""
    marker = tmp_path / "code-ran"
    payload = RunsCode(marker) if kind == "reduce" else Foreign()
    path = tmp_path / f"{kind}.pt"
    torch.save({"format_version": checkpoint.FORMAT_VERSION, "step": 1, "models": {}, "payload": payload}, path)
    return path, marker


def torch_loads(tree: ast.AST) -> list[ast.Call]:
    """Every call of ``torch.load`` (or ``torch.serialization.load``) in ``tree``."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
            root = node.func.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "torch":
                calls.append(node)
    return calls


def test_every_torch_load_is_weights_only() -> None:
    unsafe, found = [], 0
    for folder in SOURCE_DIRS:
        for file in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(file.read_text(), filename=str(file))
            for call in torch_loads(tree):
                found += 1
                flag = next((k.value for k in call.keywords if k.arg == "weights_only"), None)
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{file.relative_to(REPO)}:{call.lineno}")
            text = file.read_text()
            if folder in ("model_core", "trainer", "service") and (
                "pickle.load" in text or "allow_pickle=True" in text
            ):
                unsafe.append(f"{file.relative_to(REPO)}: unpickles")
    assert found >= 2 and unsafe == [], unsafe  # at least trainer/checkpoint.py and model_core/export.py


@pytest.mark.parametrize("kind", ["reduce", "custom-class"])
def test_resume_refuses_foreign_pickles(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path, marker = poisoned(tmp_path, kind)
    assert main(tiny_args(tmp_path / "run", "--resume", str(path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"vaegan-train: error: --resume {path}: refused: the file holds pickled Python objects")
    assert "could run code" in err[-1] and "\x1b[" not in err[-1]
    assert ("system" in err[-1]) if kind == "reduce" else ("Foreign" in err[-1])
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["reduce", "custom-class"])
def test_export_refuses_foreign_pickles(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path, marker = poisoned(tmp_path, kind)
    models = tmp_path / "models"
    assert export.main([str(path), "--models-dir", str(models), "--name", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"vaegan-export: error: {path}: refused: the file holds pickled Python objects")
    assert "could run code" in err[-1] and "\x1b[" not in err[-1]
    assert not marker.exists() and not (models / "mnist").exists()


def test_both_commands_refuse_without_a_traceback(tmp_path: Path) -> None:
    """The real console: exit status 2, one line on stderr, the payload never ran."""
    path, marker = poisoned(tmp_path, "reduce")
    resume, exporter = run_modules(
        ("trainer", tiny_args(tmp_path / "run", "--resume", str(path))),
        ("trainer.export", [str(path), "--models-dir", str(tmp_path / "models"), "--name", "m"]),
    )
    for result, prog in ((resume, "vaegan-train"), (exporter, "vaegan-export")):
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith(f"{prog}: error:"), result.stderr
        assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_checkpoint_folder_that_turned_read_only_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The temporary file cannot even be created (EROFS): one line, status 1, the last checkpoint intact."""
    real_mkstemp, calls = checkpoint.tempfile.mkstemp, []

    def read_only_from_the_second(*args: object, **kwargs: object) -> tuple[int, str]:
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))
        return real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", read_only_from_the_second)
    assert main(tiny_args(tmp_path, "--max-steps", "3", "--checkpoint-every", "1")) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"vaegan-train: error: cannot write checkpoint {tmp_path / 'checkpoint.pt'}: [Errno 30]")
    assert last.endswith("the previous one is intact")
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left behind
