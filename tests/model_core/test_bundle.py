"""The model bundle: refused when tampered with, published atomically, readable without torch."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from tiny_models import TINY

from model_core import bundle, export
from model_core.vaegan import VAEGAN

CFG = TINY


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real bundle, models/tiny/v1, exported once for the module; tests copy it before editing."""
    torch.manual_seed(0)
    return export.export_bundle(
        VAEGAN(CFG).eval(),
        tmp_path_factory.mktemp("models"),
        "tiny",
        preset="tiny",
        dataset="test",
        preprocessing={"channels": 1, "height": 8, "width": 8, "fit": (8, 8)},
        training={"epochs": 1, "steps": 1, "seed": 0, "mode": "vaegan", "gamma": 1e-6},
        version="v1",
    )


@pytest.fixture
def copy(published: Path, tmp_path: Path) -> Path:
    """A private copy of the published bundle at tmp_path/tiny/v1."""
    target = tmp_path / "tiny" / "v1"
    shutil.copytree(published, target)
    return target


def edit_manifest(path: Path, **changes: object) -> None:
    raw = json.loads((path / bundle.MANIFEST).read_text())
    raw.update(changes)
    (path / bundle.MANIFEST).write_text(json.dumps(raw))


def test_published_bundle_verifies(published: Path) -> None:
    manifest = bundle.verify(published)
    assert manifest.format_version == bundle.FORMAT_VERSION
    assert set(manifest.files) == set(bundle.NETWORK_FILES)
    assert bundle.resolve(published.parent.parent, "tiny") == published
    assert bundle.resolve(published.parent.parent, "tiny", "v1") == published
    assert bundle.list_versions(published.parent.parent, "tiny") == ["v1"]


def test_flipped_byte_is_refused(copy: Path) -> None:
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(
        bundle.BundleError, match=r"^bundle tiny/v1: decoder\.onnx has sha256 [0-9a-f]{64}, the manifest"
    ):
        bundle.load_bundle(copy)


def test_missing_file_is_refused(copy: Path) -> None:
    (copy / "encoder.onnx").unlink()
    with pytest.raises(bundle.BundleError, match=r"^bundle tiny/v1: encoder\.onnx is missing"):
        bundle.load_bundle(copy)


def test_unknown_format_version_is_refused(copy: Path) -> None:
    edit_manifest(copy, format_version=2)
    with pytest.raises(bundle.BundleError, match=r"^bundle tiny/v1: manifest\.json has format_version 2; this build"):
        bundle.load_bundle(copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latent_dim": 5}, r"manifest\.json signature of encoder\.onnx disagrees"),
        ({"image": {"height": 8, "width": 8, "channels": 3}}, r"manifest\.json signature of encoder\.onnx disagrees"),
        ({"similarity_features": 5}, r"manifest\.json signature of discriminator_features\.onnx disagrees"),
        ({"files": {}}, r"encoder\.onnx is not listed in manifest\.json"),
        ({"parity": "none"}, r"manifest\.json field 'parity'"),
        ({"surprise": 1}, r"manifest\.json field 'surprise': Extra inputs"),
    ],
)
def test_edited_manifest_is_refused(copy: Path, changes: dict[str, object], message: str) -> None:
    edit_manifest(copy, **changes)
    with pytest.raises(bundle.BundleError, match=r"^bundle tiny/v1: " + message):
        bundle.load_bundle(copy)


def test_manifest_signature_must_match_the_onnx_file(copy: Path) -> None:
    """Swapping two files and their checksums passes the checksums; the ONNX signatures catch it."""
    raw = json.loads((copy / bundle.MANIFEST).read_text())
    enc, dec = copy / "encoder.onnx", copy / "decoder.onnx"
    enc_bytes, dec_bytes = enc.read_bytes(), dec.read_bytes()
    enc.write_bytes(dec_bytes)
    dec.write_bytes(enc_bytes)
    raw["files"]["encoder.onnx"], raw["files"]["decoder.onnx"] = (
        raw["files"]["decoder.onnx"],
        raw["files"]["encoder.onnx"],
    )
    (copy / bundle.MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(bundle.BundleError, match=r"^bundle tiny/v1: encoder\.onnx inputs are \['z'\]"):
        bundle.load_bundle(copy)
    bundle.load_bundle(copy, check_graphs=False)  # what the checksums alone would accept


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "/abs", ".hidden", "a/../b", "x..y", "a\\b", "a\x00b"])
def test_bad_names_and_versions_are_refused(published: Path, bad: str) -> None:
    models = published.parent.parent
    with pytest.raises(bundle.BundleError, match="invalid model name"):
        bundle.resolve(models, bad)
    with pytest.raises(bundle.BundleError, match="invalid model version"):
        bundle.resolve(models, "tiny", bad)
    manifest = bundle.read_manifest(published).model_copy(update={"version": bad})
    contents = {f: (published / f).read_bytes() for f in bundle.NETWORK_FILES}
    with pytest.raises(bundle.BundleError, match="invalid model version"):
        bundle.write_bundle(models, manifest, contents)
    with pytest.raises(bundle.BundleError, match="invalid model name"):
        bundle.validate_name("")  # an empty version in resolve() means LATEST, an empty name nothing


def test_existing_version_is_never_overwritten(published: Path, tmp_path: Path) -> None:
    manifest = bundle.read_manifest(published)
    contents = {f: (published / f).read_bytes() for f in bundle.NETWORK_FILES}
    bundle.write_bundle(tmp_path, manifest, contents)
    with pytest.raises(bundle.BundleError, match=r"^bundle tiny/v1: version already exists"):
        bundle.write_bundle(tmp_path, manifest, {**contents, "decoder.onnx": b"other"})
    bundle.verify(tmp_path / "tiny" / "v1")
    assert [p.name for p in (tmp_path / "tiny").iterdir() if p.name.startswith(".")] == []  # no temp left


def test_reader_polling_latest_never_sees_a_partial_bundle(published: Path, tmp_path: Path) -> None:
    manifest = bundle.read_manifest(published)
    contents = {f: (published / f).read_bytes() for f in bundle.NETWORK_FILES}
    bundle.write_bundle(tmp_path, manifest.model_copy(update={"version": "v000"}), contents)
    done, seen, errors = threading.Event(), set(), []

    def reader() -> None:
        while not done.is_set():
            try:
                loaded = bundle.load_bundle(bundle.resolve(tmp_path, "tiny"))
                seen.add(loaded.manifest.version)
            except bundle.BundleError as exc:  # any refusal here is a partial bundle
                errors.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 21):
            bundle.write_bundle(tmp_path, manifest.model_copy(update={"version": f"v{i:03d}"}), contents)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert bundle.resolve(tmp_path, "tiny").name == "v020"
    assert bundle.list_versions(tmp_path, "tiny") == [f"v{i:03d}" for i in range(21)]
    assert seen <= set(bundle.list_versions(tmp_path, "tiny")) and len(seen) >= 1


def test_set_latest_and_update_latest_false(published: Path, tmp_path: Path) -> None:
    manifest = bundle.read_manifest(published)
    contents = {f: (published / f).read_bytes() for f in bundle.NETWORK_FILES}
    with pytest.raises(bundle.BundleError, match="no LATEST file"):
        bundle.resolve(tmp_path, "tiny")
    bundle.write_bundle(tmp_path, manifest.model_copy(update={"version": "a"}), contents)
    bundle.write_bundle(tmp_path, manifest.model_copy(update={"version": "b"}), contents, update_latest=False)
    assert bundle.resolve(tmp_path, "tiny").name == "a"
    bundle.set_latest(tmp_path, "tiny", "b")
    assert bundle.resolve(tmp_path, "tiny").name == "b"
    with pytest.raises(bundle.BundleError, match="tiny/c: no such version"):
        bundle.set_latest(tmp_path, "tiny", "c")


def test_default_version_sorts_by_time_and_hashes_contents() -> None:
    from datetime import UTC, datetime

    early = bundle.default_version({"a": b"1"}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = bundle.default_version({"a": b"1"}, datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    other = bundle.default_version({"a": b"2"}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert early.startswith("20260102T030405Z-") and early < late and early != other
    bundle.validate_name(early, "version")


def test_bundle_imports_without_torch() -> None:
    code = "import sys, model_core.bundle; print('torch' in sys.modules, 'model_core.export' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_bytes_verified_are_the_bytes_loaded(copy: Path) -> None:
    """load_bundle reads each file once: a file swapped on disk after the check is never what is served."""
    path = copy
    loaded = bundle.load_bundle(path)
    original = loaded.read("decoder.onnx")
    (path / "decoder.onnx").write_bytes(b"swapped after verification")
    assert loaded.read("decoder.onnx") == original
    assert hashlib.sha256(original).hexdigest() == loaded.manifest.files["decoder.onnx"]
