"""A verified bundle written out as a Triton model repository, one model per ONNX file.

The bundle is verified first (manifest, every checksum, the ONNX signatures: ``load_bundle``),
each ONNX file's element types are read with onnxruntime, and each copied file is hashed again
against the manifest. A version folder is written under a temporary name and renamed into place,
and config.pbtxt replaced by rename, so a Triton polling the repository never loads half a model.
An existing version is never overwritten.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from model_core.bundle import (
    LATEST,
    MANIFEST,
    NETWORK_FILES,
    BundleError,
    Manifest,
    fsync_dir,
    load_bundle,
    network_of,
    resolve,
    sha256_file,
)
from service.triton.config import ConfigError, TritonOptions, interface, model_config

CONFIG = "config.pbtxt"
MODEL_FILE = "model.onnx"  # the file name Triton's onnxruntime backend loads by default


@dataclass(frozen=True)
class WrittenModel:
    """One Triton model of the repository: its folder, the version written, the file it holds."""

    name: str
    path: Path
    version: int
    source: str  # the bundle's file name, e.g. "encoder.onnx"


def bundle_folder(path: Path) -> Path:
    """``models/NAME/VERSION`` as given, or ``models/NAME``: the version its LATEST names."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if (path / LATEST).is_file():
        return resolve(path.parent, path.name)
    raise BundleError(f"{path}: neither a bundle version (no {MANIFEST}) nor a bundle name (no {LATEST})")


def element_types(file: Path) -> dict[str, str]:
    """Input and output name -> onnxruntime element type ("tensor(float)") of an ONNX file."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    return {arg.name: arg.type for arg in (*session.get_inputs(), *session.get_outputs())}


def network_model_name(bundle: str, network: str) -> str:
    """``mnist`` and ``decoder`` -> ``mnist_decoder``: the model serving one network of a bundle, in Triton
    and in the service's Open Inference Protocol routes alike (docs/api.md)."""
    return f"{bundle}_{network}"


def provenance(manifest: Manifest, fname: str, manifest_sha256: str) -> dict[str, str]:
    """The parameters that tie a Triton model version to the bundle it was made from."""
    return {
        "vaegan_bundle_name": manifest.name,
        "vaegan_bundle_version": manifest.version,
        "vaegan_bundle_file": fname,
        "vaegan_sha256": manifest.files[fname],
        "vaegan_manifest_sha256": manifest_sha256,
        "vaegan_format_version": str(manifest.format_version),
    }


def _replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(4)}")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _publish_version(bundle: Path, fname: str, manifest: Manifest, folder: Path, version: int) -> None:
    """``folder/<version>/{model.onnx, manifest.json}``, renamed into place once complete and checked."""
    target = folder / str(version)
    tmp = folder / f".tmp-{version}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(bundle / fname, tmp / MODEL_FILE)
        shutil.copyfile(bundle / MANIFEST, tmp / MANIFEST)
        if sha256_file(tmp / MODEL_FILE) != manifest.files[fname]:
            raise BundleError(f"bundle {manifest.name}/{manifest.version}: {fname} changed while it was copied")
        fsync_dir(tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(folder)


def _check_existing(folder: Path, version: int, face: str) -> None:
    """A later version may join a model folder only with the same interface, never over a version."""
    if (folder / str(version)).exists():
        raise ConfigError(f"{folder / str(version)} exists; choose another --triton-version (never overwritten)")
    config = folder / CONFIG
    if config.is_file() and face not in config.read_text():
        raise ConfigError(f"{config}: the model there has other inputs or outputs; use a new repository or model name")


def write_repository(bundle: Path, out: Path, options: TritonOptions, prefix: str | None = None) -> list[WrittenModel]:
    """Write the bundle at ``bundle`` (a version folder) as Triton models under ``out``."""
    options.check()
    manifest = load_bundle(bundle).manifest  # every checksum and ONNX signature, or BundleError
    manifest_sha256 = sha256_file(bundle / MANIFEST)
    prefix = prefix or manifest.name
    plans = []
    for fname in NETWORK_FILES:  # check everything before writing anything
        name, types = network_model_name(prefix, network_of(fname)), element_types(bundle / fname)
        config = model_config(name, manifest, fname, types, options, provenance(manifest, fname, manifest_sha256))
        _check_existing(out / name, options.version, interface(name, manifest, fname, types, options.max_batch))
        plans.append((name, fname, config))
    written = []
    for name, fname, config in plans:
        folder = out / name
        _publish_version(bundle, fname, manifest, folder, options.version)
        _replace_file(folder / CONFIG, config)
        written.append(WrittenModel(name, folder, options.version, fname))
    return written
