"""prior.npz: a bundle's fitted latent prior, a Gaussian mixture over the posterior means mu(x).

A VAE's posteriors do not fill N(0, I): decoding z ~ N(0, I) lands in the holes between them and
draws malformed images. Ex-post density estimation (Ghosh et al. 2020, "From Variational to
Deterministic Autoencoders", Sec. 5; Dai & Wipf 2019) fits a density to mu(x) of the training
images and samples that instead. The trainer fits it (trainer/prior.py, scikit-learn); this module
writes, reads, validates, samples and scores it with numpy alone, so the service needs neither.

The arrays of prior.npz (float32, read with ``allow_pickle=False``; docs/bundle.md):

    weights       (M,)          mixture weights, >= 0, summing to 1
    locs          (M, Z)        component means
    scale_tril    (M, Z, Z)     lower Cholesky factors L of the covariances (Sigma = L L^T), diagonal > 0
    class_weights, class_locs, class_scale_tril    (K, Mk), (K, Mk, Z), (K, Mk, Z, Z): one mixture
                                per class, in class_names order (labelled training data only)
    reference     (Q,)          sorted quantiles of log E_q[p(z)] over held-out training images
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from model_core.bundle.schema import PRIOR, Bundle, BundleError

WEIGHT_SUM_TOLERANCE = 1e-4
NEAREST = 4  # components in the drift score's sum (Mixture.posterior_log_density)
CHUNK = 256  # rows per batch of the drift score
MIXTURE_KEYS = ("weights", "locs", "scale_tril")
CLASS_KEYS = tuple(f"class_{k}" for k in MIXTURE_KEYS)


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture with full covariances: weights (M,), locs (M, Z), scale_tril (M, Z, Z)."""

    weights: np.ndarray
    locs: np.ndarray
    scale_tril: np.ndarray

    @property
    def components(self) -> int:
        return len(self.weights)

    def draw(self, eps: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Latents (N, Z) float32 from standard normal noise ``eps`` (N, Z) and uniforms ``u`` (N,).

        u picks the component by its weight; z = loc + L eps. The caller scales eps by the
        temperature, so the temperature widens each component without moving it.
        """
        cumulative = np.cumsum(self.weights.astype(np.float64))
        component = np.minimum(np.searchsorted(cumulative, u * cumulative[-1], side="right"), self.components - 1)
        z = self.locs[component] + np.einsum("nij,nj->ni", self.scale_tril[component], eps)  # (N, Z)
        return z.astype(np.float32)

    @cached_property
    def _whitening(self) -> tuple[np.ndarray, np.ndarray]:
        """(L^-1 (M, Z, Z), log w - log sqrt det(2 pi Sigma) (M,)), computed once per mixture."""
        tril = self.scale_tril.astype(np.float64)
        log_det = np.log(np.diagonal(tril, axis1=1, axis2=2)).sum(axis=1)  # (M,) = log sqrt det Sigma
        with np.errstate(divide="ignore"):  # a component of weight 0 never wins
            log_weights = np.log(self.weights.astype(np.float64))
        return np.linalg.inv(tril), log_weights - log_det - 0.5 * tril.shape[1] * math.log(2 * math.pi)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log p(z) (N,) float64 under the mixture: logsumexp over components of log w + log N(z; loc, L L^T)."""
        z = np.asarray(z, dtype=np.float64)
        inverse, log_norm = self._whitening
        diff = z[:, None, :] - self.locs.astype(np.float64)[None]  # (N, M, Z)
        y = np.einsum("mij,nmj->nmi", inverse, diff)  # (N, M, Z): L^-1 (z - loc), so ||y||^2 is Mahalanobis
        joint = log_norm[None] - 0.5 * (y**2).sum(axis=2)  # (N, M): log w + log N(z; loc, L L^T)
        return _logsumexp(joint)

    @cached_property
    def _covariance(self) -> np.ndarray:
        """Sigma_m = L_m L_m^T (M, Z, Z) float64, computed once per mixture."""
        tril = self.scale_tril.astype(np.float64)
        return tril @ np.transpose(tril, (0, 2, 1))

    def posterior_log_density(self, mu: np.ndarray, variance: np.ndarray, nearest: int = NEAREST) -> np.ndarray:
        """log E_q[p(z)] = log sum_m w_m N(mu; loc_m, Sigma_m + diag(variance)) (N,) for posteriors N(mu, diag(var)).

        How likely the mixture finds the input's whole posterior, its mean widened by its own
        uncertainty: an input the encoder is unsure of is not judged by its mean alone (docs/api.md,
        "Drift"). The sum runs over the ``nearest`` components that score mu highest (log w_m +
        log N(mu; loc_m, Sigma_m)), which carry it: exact when ``nearest`` >= M, and at 4 of 50 about
        ten times cheaper per request (bench/prior.py), each term needing its own Cholesky factor.
        """
        mu, variance = np.asarray(mu, np.float64), np.asarray(variance, np.float64)
        k, dim = min(nearest, self.components), mu.shape[1]
        inverse, log_norm = self._whitening
        locs = self.locs.astype(np.float64)
        out = []
        for start in range(0, len(mu), CHUNK):  # (n, k, Z, Z) per chunk: bounded memory
            m, v = mu[start : start + CHUNK], variance[start : start + CHUNK]
            y = np.einsum("mij,nmj->nmi", inverse, m[:, None, :] - locs[None])  # (n, M, Z)
            near = np.argsort(log_norm[None] - 0.5 * (y**2).sum(axis=2), axis=1)[:, -k:]  # (n, k)
            total = self._covariance[near] + v[:, None, :, None] * np.eye(dim)  # (n, k, Z, Z)
            chol = np.linalg.cholesky(total)
            diff = (m[:, None, :] - locs[near])[..., None]  # (n, k, Z, 1)
            white = np.linalg.solve(chol, diff)[..., 0]  # (n, k, Z)
            log_det = np.log(np.diagonal(chol, axis1=2, axis2=3)).sum(axis=2)  # (n, k)
            log_weights = np.log(np.maximum(self.weights.astype(np.float64), 1e-300))[near]
            joint = log_weights - log_det - 0.5 * (white**2).sum(axis=2) - 0.5 * dim * math.log(2 * math.pi)
            out.append(_logsumexp(joint))
        return np.concatenate(out) if out else np.zeros(0)


def _logsumexp(joint: np.ndarray) -> np.ndarray:
    """log sum_m exp(joint[:, m]) (N,), stable."""
    top = joint.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class LatentPrior:
    """The fitted prior of a bundle: one mixture over every latent, one per class (or none), the reference."""

    mixture: Mixture
    classes: tuple[Mixture, ...]
    reference: np.ndarray  # (Q,) sorted posterior_log_density of held-out training images

    def typicality(self, log_density: np.ndarray) -> np.ndarray:
        """The fraction of held-out training images whose posterior has a lower log density, in [0, 1] (N,)."""
        return np.searchsorted(self.reference, log_density, side="right") / len(self.reference)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of prior.npz (the module docstring), float32."""
        out = {k: getattr(self.mixture, k) for k in MIXTURE_KEYS}
        if self.classes:
            for key in MIXTURE_KEYS:
                out[f"class_{key}"] = np.stack([getattr(m, key) for m in self.classes])
        out["reference"] = self.reference
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def prior_bytes(prior: LatentPrior, latent_dim: int, classes: int) -> bytes:
    """prior.npz as bytes, checked as a reader will check it; BundleError if it would be refused."""
    arrays = prior.arrays()
    check_arrays(arrays, latent_dim, classes, "prior")
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def read_prior(loaded: Bundle) -> LatentPrior | None:
    """The bundle's fitted prior (its checksum verified already), validated; None when it has none."""
    manifest = loaded.manifest
    info = manifest.prior
    if info is None:
        return None
    label = f"bundle {manifest.name}/{manifest.version}: {PRIOR}"
    try:
        with np.load(io.BytesIO(loaded.read(PRIOR)), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise BundleError(f"{label} is no .npz archive of arrays ({exc})") from None
    classes = len(manifest.class_names) if info.class_components else 0
    check_arrays(arrays, manifest.latent_dim, classes, label)
    if arrays["weights"].shape[0] != info.components:
        raise BundleError(f"{label} holds {arrays['weights'].shape[0]} components, the manifest says {info.components}")
    if classes and arrays["class_weights"].shape[1] != info.class_components:
        raise BundleError(
            f"{label} holds {arrays['class_weights'].shape[1]} components per class, "
            f"the manifest says {info.class_components}"
        )
    return from_arrays(arrays)


def from_arrays(arrays: dict[str, np.ndarray]) -> LatentPrior:
    """A LatentPrior from checked prior.npz arrays."""
    mixture = Mixture(*(arrays[k] for k in MIXTURE_KEYS))
    per_class: tuple[Mixture, ...] = ()
    if "class_weights" in arrays:
        per_class = tuple(Mixture(*(arrays[k][i] for k in CLASS_KEYS)) for i in range(len(arrays["class_weights"])))
    return LatentPrior(mixture, per_class, np.sort(arrays["reference"]))


def check_arrays(arrays: dict[str, np.ndarray], latent_dim: int, classes: int, label: str) -> None:
    """Refuse (BundleError naming ``label``) arrays that are not a valid prior for Z = latent_dim, K = classes."""
    expected = {*MIXTURE_KEYS, "reference", *(CLASS_KEYS if classes else ())}
    if set(arrays) != expected:
        raise BundleError(f"{label} holds arrays {sorted(arrays)}, expected {sorted(expected)}")
    for key, value in arrays.items():
        if value.dtype != np.float32 or not np.isfinite(value).all():
            raise BundleError(f"{label}: {key} must be finite float32, it is {value.dtype} with non-finite values")
    m = arrays["weights"].shape[0] if arrays["weights"].ndim == 1 else -1
    _check_mixture(label, "", arrays["weights"], arrays["locs"], arrays["scale_tril"], (m,), latent_dim)
    if classes:
        weights = arrays["class_weights"]
        mk = weights.shape[1] if weights.ndim == 2 else -1
        _check_mixture(
            label, "class_", weights, arrays["class_locs"], arrays["class_scale_tril"], (classes, mk), latent_dim
        )
    if arrays["reference"].ndim != 1 or len(arrays["reference"]) < 2:
        raise BundleError(f"{label}: reference must be a vector of at least 2 log densities")


def _check_mixture(
    label: str,
    prefix: str,
    weights: np.ndarray,
    locs: np.ndarray,
    tril: np.ndarray,
    lead: tuple[int, ...],
    dim: int,
) -> None:
    """Shapes (lead), (lead, Z), (lead, Z, Z); weights a distribution; each factor lower triangular, diagonal > 0."""
    for key, value, shape in (
        ("weights", weights, lead),
        ("locs", locs, (*lead, dim)),
        ("scale_tril", tril, (*lead, dim, dim)),
    ):
        if value.shape != shape or min(shape) <= 0:
            raise BundleError(f"{label}: {prefix}{key} has shape {value.shape}, expected {shape}")
    if (weights < 0).any() or not np.allclose(weights.sum(axis=-1), 1.0, atol=WEIGHT_SUM_TOLERANCE):
        raise BundleError(f"{label}: {prefix}weights must be >= 0 and sum to 1 (sums: {weights.sum(axis=-1)})")
    if np.triu(tril, k=1).any():
        raise BundleError(f"{label}: {prefix}scale_tril must be lower triangular (Cholesky factors)")
    if not (np.diagonal(tril, axis1=-2, axis2=-1) > 0).all():
        raise BundleError(f"{label}: {prefix}scale_tril needs a positive diagonal (covariances positive definite)")
