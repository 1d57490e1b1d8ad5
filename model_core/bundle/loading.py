"""Loading a bundle: the manifest agrees with itself, the checksums hold, the ONNX graphs match it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_core.bundle.schema import (
    CLASS_MEANS,
    MANIFEST,
    NETWORK_FILES,
    PRIOR,
    Bundle,
    BundleError,
    Manifest,
    Signature,
    TensorSpec,
    network_signatures,
)
from model_core.bundle.store import read_manifest, verify_files


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


def _onnx_io(label: str, data: bytes) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX model's bytes, read with onnxruntime (in both the train and the serve extras)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for malformed models
        raise BundleError(f"{label}: onnxruntime cannot load it ({exc})") from None

    def spec(arg: Any) -> TensorSpec:
        return TensorSpec(name=arg.name, shape=tuple(d if isinstance(d, int) else None for d in arg.shape))

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def check_manifest(manifest: Manifest) -> None:
    """The manifest agrees with itself: each signature follows from image, latent_dim and similarity_features."""
    label = f"bundle {manifest.name}/{manifest.version}"
    check_classes(manifest)
    expected = network_signatures(
        manifest.image, manifest.latent_dim, manifest.similarity_features, manifest.num_classes
    )
    for fname in NETWORK_FILES:
        if fname not in manifest.signatures:
            raise BundleError(f"{label}: {MANIFEST} has no signature for {fname}")
        if manifest.signatures[fname] != expected[fname]:
            raise BundleError(
                f"{label}: {MANIFEST} signature of {fname} disagrees with its image, latent_dim and "
                f"similarity_features (edited?): {manifest.signatures[fname]} vs {expected[fname]}"
            )


def check_classes(manifest: Manifest) -> None:
    """num_classes, class_names, class_means and the prior agree: names for every label, unique, files listed."""
    label = f"bundle {manifest.name}/{manifest.version}"
    names = manifest.class_names
    if manifest.num_classes and len(names) != manifest.num_classes:
        raise BundleError(f"{label}: num_classes is {manifest.num_classes} but class_names has {len(names)} entries")
    if len(set(names)) != len(names):
        raise BundleError(f"{label}: class_names are not unique")
    if manifest.class_means is not None:
        if manifest.class_means != CLASS_MEANS or not names:
            raise BundleError(f"{label}: class_means must be {CLASS_MEANS!r} and come with class_names")
        if CLASS_MEANS not in manifest.files:
            raise BundleError(f"{label}: {CLASS_MEANS} is not listed in {MANIFEST} files")
    if manifest.prior is not None:
        if PRIOR not in manifest.files:
            raise BundleError(f"{label}: {PRIOR} is not listed in {MANIFEST} files")
        if manifest.prior.class_components and not names:
            raise BundleError(f"{label}: prior.class_components needs class_names")


def load_bundle(path: Path, check_graphs: bool = True) -> Bundle:
    """Read and verify the bundle at ``path``: manifest, checksums and (optionally) ONNX signatures."""
    path = Path(path)
    manifest = read_manifest(path)
    check_manifest(manifest)
    data = verify_files(path, manifest)
    if check_graphs:
        label = f"bundle {manifest.name}/{manifest.version}"
        for fname in NETWORK_FILES:
            inputs, outputs = _onnx_io(str(path / fname), data[fname])
            check_signature(label, fname, manifest.signatures[fname], inputs, outputs)
    return Bundle(path=path, manifest=manifest, data=data)


def verify(path: Path) -> Manifest:
    """Verify the bundle at ``path`` completely and return its manifest; raise BundleError if not."""
    return load_bundle(path, check_graphs=True).manifest
