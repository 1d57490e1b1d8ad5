"""docker/trainer.Dockerfile and docker/service.Dockerfile: hadolint-clean, multi-stage, non-root,
pinned, CUDA 13 in both, no torch in the service; .dockerignore keeps out what must stay out."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from compose_files import REPO
from packaging.requirements import Requirement

HADOLINT = Path(sys.executable).parent / "hadolint"
TRAINER = REPO / "docker" / "trainer.Dockerfile"
SERVICE = REPO / "docker" / "service.Dockerfile"
CONSTRAINTS = REPO / "docker" / "constraints.txt"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "cmake", "python3-dev", "curl", "wget", "git")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order."""
    result: list[list[tuple[str, str]]] = []
    for op, args in instructions(path):
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, args))
    return result


def arg_default(path: Path, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name}: no ARG {name}=default"
    return match.group(1)


def pins() -> dict[str, str]:
    """docker/constraints.txt as {name: version}."""
    result = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            result[name.lower()] = version
    return result


def requirements(extra: str) -> list[Requirement]:
    """An extra of pyproject.toml, its own ``vaegan[...]`` extras expanded (``serve`` is
    ``vaegan[serve-base]`` plus onnxruntime)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = []
    for text in project["optional-dependencies"][extra]:
        requirement = Requirement(text)
        if requirement.name == project["name"]:
            found += [r for inner in sorted(requirement.extras) for r in requirements(inner)]
        else:
            found.append(requirement)
    return found


@pytest.mark.parametrize("dockerfile", [TRAINER, SERVICE], ids=lambda p: p.name)
def test_hadolint_is_clean_at_warning_level(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "warning", str(dockerfile)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", [TRAINER, SERVICE], ids=lambda p: p.name)
def test_final_stage_is_lean_and_runs_as_a_non_root_user(dockerfile: Path) -> None:
    *builders, final = stages(dockerfile)
    assert builders, "expected a builder stage and a final stage"
    final_runs = " ".join(args for op, args in final if op == "RUN")
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", final_runs), f"{tool} in the final stage"
    assert "pip install" not in final_runs
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_both_images_use_cuda_13_on_the_same_release() -> None:
    trainer_base = arg_default(TRAINER, "BASE_IMAGE")
    service_base = arg_default(SERVICE, "BASE_IMAGE")
    pattern = r"nvidia/cuda:(13\.\d+\.\d+)-(base|runtime|cudnn-runtime)-(ubuntu\d+\.\d+)"
    trainer_match, service_match = re.fullmatch(pattern, trainer_base), re.fullmatch(pattern, service_base)
    assert trainer_match and service_match, (trainer_base, service_base)
    assert trainer_match.group(1, 3) == service_match.group(1, 3)
    assert service_match.group(2) == "cudnn-runtime"  # onnxruntime-gpu loads cuDNN 9 from the system


def test_trainer_installs_the_pinned_torch_from_the_cuda_13_index() -> None:
    assert arg_default(TRAINER, "TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cu130"
    assert arg_default(TRAINER, "TORCH_VERSION") == pins()["torch"]
    runs = " ".join(args for op, args in stages(TRAINER)[0] if op == "RUN")
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in runs
    assert '--editable ".[train,tensorboard]"' in runs  # compose's tensorboard profile runs this image


def test_make_installs_the_torch_the_images_pin() -> None:
    """The Makefile's CPU torch (make demo, make test) is the version docker/constraints.txt pins."""
    [line] = [x for x in (REPO / "Makefile").read_text().splitlines() if x.startswith("TORCH_CPU ?=")]
    assert line.split("?=")[1].strip() == f"torch=={pins()['torch']}"


def test_trainer_image_carries_the_embedded_digits() -> None:
    copies = [args for op, args in stages(TRAINER)[0] if op == "COPY"]
    assert "data/mnist/ data/mnist/" in copies
    assert (REPO / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_service_installs_the_gpu_serving_extra_and_no_torch() -> None:
    assert arg_default(SERVICE, "SERVE_EXTRA") == "serve-gpu"
    text = " ".join(args for _, args in instructions(SERVICE))
    assert "torch" not in text
    assert "[train" not in text and "trainer" not in text
    for extra in ("serve", "serve-gpu"):
        assert "torch" not in {r.name for r in requirements(extra)}, extra
    assert "onnxruntime-gpu" in {r.name for r in requirements("serve-gpu")}
    assert "onnxruntime" not in {r.name for r in requirements("serve-gpu")}


def test_service_exposes_8000_checks_readyz_and_serves_on_all_interfaces() -> None:
    final = stages(SERVICE)[-1]
    assert ("EXPOSE", "8000") in final
    [healthcheck] = [args for op, args in final if op == "HEALTHCHECK"]
    assert "/readyz" in healthcheck and "urllib" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    [cmd] = [args for op, args in final if op == "CMD"]
    assert cmd == '["vaegan-serve", "--host", "0.0.0.0", "--port", "8000"]'


def test_constraints_pin_every_image_dependency_within_pyproject() -> None:
    pinned = pins()
    for extra in ("train", "tensorboard", "serve", "serve-gpu"):
        for requirement in requirements(extra):
            name = requirement.name.lower()
            assert name in pinned, f"{name} ([{extra}]) has no pin in {CONSTRAINTS.name}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{name}=={pinned[name]} is outside pyproject's {requirement.specifier}"
            )


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative, no leading ./) out of the build context."""
    excluded = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!").removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        names = parts if line.lstrip("!").startswith("**/") else []
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes + names):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_local_state_out_and_build_inputs_in() -> None:
    for path in (".git", ".venv", "runs", "models", "model_core/__pycache__", "data/fashion-mnist"):
        assert dockerignore_excludes(path), path
    for dockerfile in (TRAINER, SERVICE):
        for op, args in instructions(dockerfile):
            if op == "COPY" and not args.startswith("--from"):
                for source in args.split()[:-1]:
                    source = source.rstrip("/")
                    assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
                    assert not dockerignore_excludes(source), f"{dockerfile.name}: COPY {source} is ignored"
                    if (REPO / source).is_dir():
                        for file in (REPO / source).rglob("*"):
                            if file.is_file() and "__pycache__" not in file.parts:
                                relative = file.relative_to(REPO).as_posix()
                                assert not dockerignore_excludes(relative), f"{relative} is ignored"


def test_service_starts_without_the_training_packages() -> None:
    # The service image has only the [serve-gpu] extra: importing vaegan-serve must not need torch,
    # onnx, onnxscript, tqdm or the trainer (a None entry in sys.modules makes an import fail).
    blocked = ("torch", "onnx", "onnxscript", "tqdm", "trainer")
    code = f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); import service.__main__, service.app"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
