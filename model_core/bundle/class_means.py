"""class_means.npy: the per-class mean posterior latents of a bundle (Larsen et al. 2016, Sec. 5).

Written by the export for every model trained on labelled data, read by the service for
/sample?label= and /edit on unconditional bundles. numpy only (no torch): float32 (K, Z), finite.
"""

from __future__ import annotations

import io

import numpy as np

from model_core.bundle.schema import CLASS_MEANS, Bundle, BundleError


def class_means_bytes(means: np.ndarray, classes: int, latent_dim: int) -> bytes:
    """The per-class mean latents as .npy bytes: float32 (classes, latent_dim), finite; BundleError if not."""
    array = np.ascontiguousarray(means, dtype=np.float32)
    if array.shape != (classes, latent_dim) or not np.isfinite(array).all():
        raise BundleError(f"class means of shape {means.shape} do not fit ({classes}, {latent_dim}) or are not finite")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_class_means(loaded: Bundle) -> np.ndarray | None:
    """The bundle's per-class mean latents (K, Z) float32 (verified by checksum already), or None."""
    manifest = loaded.manifest
    if manifest.class_means is None:
        return None
    label = f"bundle {manifest.name}/{manifest.version}"
    try:
        means = np.load(io.BytesIO(loaded.read(CLASS_MEANS)), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{label}: {CLASS_MEANS} is no .npy array ({exc})") from None
    shape = (len(manifest.class_names), manifest.latent_dim)
    if means.shape != shape or means.dtype != np.float32 or not np.isfinite(means).all():
        raise BundleError(f"{label}: {CLASS_MEANS} is {means.dtype} {means.shape}, expected finite float32 {shape}")
    return means
