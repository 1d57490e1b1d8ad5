"""The model bundle: the only contract between the trainer and the service.

    models/<name>/<version>/{encoder.onnx, decoder.onnx, discriminator_features.onnx, manifest.json}
    models/<name>/LATEST     (text: the version served by default)

A bundle is written into a temporary folder beside its target, fsynced, renamed into place, and
only then is LATEST replaced (also by rename), so a reader never sees half a bundle. Reading
verifies every checksum, the format version and the ONNX signatures. This module imports no
torch: the service image has none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "LATEST"
NETWORK_FILES = ("encoder.onnx", "decoder.onnx", "discriminator_features.onnx")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TMP_PREFIX = ".tmp-"


class BundleError(Exception):
    """A bundle is missing, incomplete, tampered with or of an unknown format."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageSpec(_Frozen):
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: Literal[1, 3]


class Preprocessing(_Frozen):
    """What the trainer did to an image before the encoder saw it; the service repeats it."""

    channels: Literal[1, 3]
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    value_range: tuple[float, float] = (-1.0, 1.0)
    fit: tuple[int, int]  # (h, w) the content is resized to before padding
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right, filled with the background
    resize_filter: Literal["bicubic", "bilinear", "lanczos", "nearest"] = "bicubic"
    crop: tuple[int, int, int, int] | None = None  # top, left, height, width
    crop_source: tuple[int, int] | None = None  # (H, W) of the images the crop applies to
    blur_sigma: float | None = None
    invert: bool = False


class Training(_Frozen):
    epochs: int
    steps: int
    seed: int
    mode: Literal["vaegan", "vae"]
    gamma: float
    batch_size: int | None = None
    lr: float | None = None
    gan_inputs: str | None = None
    generator_loss: str | None = None
    equilibrium: bool | None = None
    recipe: str | None = None  # the vaegan-train recipe ("paper", "default") the options came from
    options: dict[str, Any] | None = None  # every recipe option the run used (trainer/recipes.py)
    sampling_decoder: Literal["last", "ema"] | None = None  # which decoder weights decoder.onnx holds


class TensorSpec(_Frozen):
    name: str
    shape: tuple[int | None, ...]  # None: a dynamic axis (the batch)


class Signature(_Frozen):
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class Manifest(_Frozen):
    """manifest.json, format_version 1 (docs/bundle.md)."""

    format_version: int
    name: str
    version: str
    created_at: str
    preset: str
    image: ImageSpec
    latent_dim: int = Field(gt=0)
    similarity_features: int = Field(gt=0)
    dataset: str
    preprocessing: Preprocessing
    training: Training
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    metrics: dict[str, float] = Field(default_factory=dict)
    parity: dict[str, float]  # file -> max |onnxruntime - PyTorch|
    export: dict[str, Any] = Field(default_factory=dict)  # exporter, opset, variants, timings
    signatures: dict[str, Signature]  # file -> ONNX inputs and outputs
    files: dict[str, str] = Field(default_factory=dict)  # file -> sha256

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


class Bundle(_Frozen):
    """A verified bundle on disk."""

    path: Path
    manifest: Manifest

    def file(self, name: str) -> Path:
        return self.path / name


def validate_name(value: str, what: str = "name") -> str:
    """Refuse names that could leave the models folder (``/``, ``..``, hidden or empty names)."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise BundleError(
            f"invalid model {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return value


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_version(contents: Mapping[str, bytes], now: datetime | None = None) -> str:
    """A sortable version: UTC time, then a short hash of the files' contents."""
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(name.encode() + b"\0" + hashlib.sha256(contents[name]).digest())
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{digest.hexdigest()[:8]}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def set_latest(models_dir: Path, name: str, version: str) -> None:
    """Point LATEST at ``version`` atomically (write a temporary file, then rename over)."""
    root = Path(models_dir) / validate_name(name)
    validate_name(version, "version")
    if not (root / version / MANIFEST).is_file():
        raise BundleError(f"bundle {name}/{version}: no such version under {models_dir}")
    tmp = root / f"{_TMP_PREFIX}{LATEST}-{secrets.token_hex(4)}"
    _write_file(tmp, (version + "\n").encode())
    os.replace(tmp, root / LATEST)
    _fsync_dir(root)


def write_bundle(
    models_dir: Path,
    manifest: Manifest,
    contents: Mapping[str, bytes],
    update_latest: bool = True,
) -> Path:
    """Publish a bundle atomically and return its folder; an existing version is never overwritten.

    ``contents`` maps each ONNX file name to its bytes; the manifest's ``files`` are filled in here.
    """
    name, version = validate_name(manifest.name), validate_name(manifest.version, "version")
    missing = set(NETWORK_FILES) - set(contents)
    if missing:
        raise BundleError(f"bundle {name}/{version}: missing {', '.join(sorted(missing))}")
    root = Path(models_dir) / name
    target = root / version
    if target.exists():
        raise BundleError(f"bundle {name}/{version}: version already exists at {target}; never overwritten")
    root.mkdir(parents=True, exist_ok=True)

    files = {fname: hashlib.sha256(data).hexdigest() for fname, data in sorted(contents.items())}
    manifest = manifest.model_copy(update={"files": files})
    tmp = root / f"{_TMP_PREFIX}{version}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for fname, data in contents.items():
            _write_file(tmp / validate_name(fname, "file name"), data)
        _write_file(tmp / MANIFEST, manifest.to_json().encode())
        _fsync_dir(tmp)
        if target.exists():  # lost a race with another writer of the same version
            raise BundleError(f"bundle {name}/{version}: version already exists at {target}; never overwritten")
        os.rename(tmp, target)
        _fsync_dir(root)
    except BaseException:
        for leftover in tmp.glob("*") if tmp.exists() else ():
            leftover.unlink()
        if tmp.exists():
            tmp.rmdir()
        raise
    if update_latest:
        set_latest(models_dir, name, version)
    return target


def list_versions(models_dir: Path, name: str) -> list[str]:
    """Published versions of ``name``, oldest first (versions sort by time)."""
    root = Path(models_dir) / validate_name(name)
    if not root.is_dir():
        return []
    published = (p for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())
    return sorted(p.name for p in published)


def resolve(models_dir: Path, name: str, version: str | None = None) -> Path:
    """The folder of ``version`` of ``name``; LATEST (or None) reads the LATEST file."""
    root = Path(models_dir) / validate_name(name)
    if version in (None, "", LATEST):
        latest = root / LATEST
        try:
            version = latest.read_text().strip()
        except FileNotFoundError:
            raise BundleError(f"bundle {name}: no {LATEST} file at {latest} (nothing published yet?)") from None
        if not version:
            raise BundleError(f"bundle {name}: {latest} is empty")
    validate_name(version, "version")
    path = root / version
    if not (path / MANIFEST).is_file():
        raise BundleError(f"bundle {name}/{version}: {path / MANIFEST} not found")
    return path


def read_manifest(path: Path) -> Manifest:
    """Parse and validate manifest.json of the bundle at ``path`` (no checksum checks)."""
    label = f"bundle {path.parent.name}/{path.name}"
    try:
        raw = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(f"{label}: {MANIFEST} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{label}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{label}: {MANIFEST} is not a JSON object")
    if raw.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{label}: {MANIFEST} has format_version {raw.get('format_version')!r}; "
            f"this build reads format_version {FORMAT_VERSION}"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{label}: {MANIFEST} field {where!r}: {first['msg']}") from None


def verify_files(path: Path, manifest: Manifest) -> None:
    """Every network file is listed, present and matches its sha256."""
    label = f"bundle {manifest.name}/{manifest.version}"
    for fname in NETWORK_FILES:
        if fname not in manifest.files:
            raise BundleError(f"{label}: {fname} is not listed in {MANIFEST}")
    for fname, expected in manifest.files.items():
        file = path / validate_name(fname, "file name")
        if not file.is_file():
            raise BundleError(f"{label}: {fname} is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleError(f"{label}: {fname} has sha256 {actual}, the manifest says {expected}")


def check_signature(
    label: str, fname: str, expected: Signature, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> None:
    """Compare an ONNX file's actual inputs/outputs with the manifest (names, ranks, fixed dims)."""
    for kind, want, got in (("input", expected.inputs, inputs), ("output", expected.outputs, outputs)):
        if [t.name for t in want] != [t.name for t in got]:
            raise BundleError(
                f"{label}: {fname} {kind}s are {[t.name for t in got]}, the manifest says {[t.name for t in want]}"
            )
        for w, g in zip(want, got, strict=True):
            same = len(w.shape) == len(g.shape) and all(
                a is None or b is None or a == b for a, b in zip(w.shape, g.shape, strict=True)
            )
            if not same:
                raise BundleError(
                    f"{label}: {fname} {kind} {w.name!r} has shape {g.shape}, the manifest says {w.shape}"
                )


def _onnx_io(file: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX file, read with onnxruntime (present in every install)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for malformed models
        raise BundleError(f"{file}: onnxruntime cannot load it ({exc})") from None

    def spec(arg: Any) -> TensorSpec:
        return TensorSpec(name=arg.name, shape=tuple(d if isinstance(d, int) else None for d in arg.shape))

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def network_signatures(image: ImageSpec, latent_dim: int, similarity_features: int) -> dict[str, Signature]:
    """What each network file takes and returns, batch axis dynamic (DESIGN.md, Model bundle)."""
    img = (None, image.channels, image.height, image.width)

    def spec(name: str, shape: tuple[int | None, ...]) -> TensorSpec:
        return TensorSpec(name=name, shape=shape)

    return {
        "encoder.onnx": Signature(
            inputs=(spec("image", img),), outputs=(spec("mu", (None, latent_dim)), spec("logvar", (None, latent_dim)))
        ),
        "decoder.onnx": Signature(inputs=(spec("z", (None, latent_dim)),), outputs=(spec("image", img),)),
        "discriminator_features.onnx": Signature(
            inputs=(spec("image", img),), outputs=(spec("features", (None, similarity_features)),)
        ),
    }


def check_manifest(manifest: Manifest) -> None:
    """The manifest agrees with itself: each signature follows from image, latent_dim and similarity_features."""
    label = f"bundle {manifest.name}/{manifest.version}"
    expected = network_signatures(manifest.image, manifest.latent_dim, manifest.similarity_features)
    for fname in NETWORK_FILES:
        if fname not in manifest.signatures:
            raise BundleError(f"{label}: {MANIFEST} has no signature for {fname}")
        if manifest.signatures[fname] != expected[fname]:
            raise BundleError(
                f"{label}: {MANIFEST} signature of {fname} disagrees with its image, latent_dim and "
                f"similarity_features (edited?): {manifest.signatures[fname]} vs {expected[fname]}"
            )


def load_bundle(path: Path, check_graphs: bool = True) -> Bundle:
    """Read and verify the bundle at ``path``: manifest, checksums and (optionally) ONNX signatures."""
    path = Path(path)
    manifest = read_manifest(path)
    check_manifest(manifest)
    verify_files(path, manifest)
    if check_graphs:
        label = f"bundle {manifest.name}/{manifest.version}"
        for fname in NETWORK_FILES:
            inputs, outputs = _onnx_io(path / fname)
            check_signature(label, fname, manifest.signatures[fname], inputs, outputs)
    return Bundle(path=path, manifest=manifest)


def verify(path: Path) -> Manifest:
    """Verify the bundle at ``path`` completely and return its manifest; raise BundleError if not."""
    return load_bundle(path, check_graphs=True).manifest
