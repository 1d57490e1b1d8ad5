"""The fitted latent prior: a Gaussian mixture fitted to the posterior means mu(x) of the training split.

Ex-post density estimation (Ghosh et al. 2020, Sec. 5; Dai & Wipf 2019): decoding z ~ N(0, I)
lands where the encoder puts no image; a mixture fitted to where it does put them samples the
data (figures: docs/benchmarks.md, "Priors"). The number of components is chosen by the
log-likelihood of a held-out tenth of the training latents (never by the evaluation images); the
chosen fit is kept, and how likely it finds that tenth's posteriors becomes the reference the
service's drift signal compares inputs with. scikit-learn fits (the [train] extra); model_core.bundle.prior holds
the result and everything the service does with it, in numpy.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from model_core.bundle import LatentPrior, Mixture, PriorInfo
from model_core.bundle.prior import from_arrays
from model_core.vaegan import VAEGAN
from trainer.evaluation import posteriors

logger = logging.getLogger(__name__)

CANDIDATES = (1, 5, 10, 20, 50)  # components of the mixture over every latent
CLASS_CANDIDATES = (1, 3, 5)  # components of each class's mixture (about a tenth of the latents each)
HELDOUT_FRACTION = 0.1
REFERENCE_QUANTILES = 101  # the reference: percentiles 0..100 of the held-out posteriors' log densities
REG_COVAR = 1e-4  # added to each covariance's diagonal: keeps small per-class fits positive definite
SELECTION = "held-out log-likelihood (a tenth of the training latents)"


def fit_mixture(latents: np.ndarray, components: int, seed: int) -> Mixture:
    """One full-covariance Gaussian mixture fitted by EM (k-means initialisation, seeded)."""
    model = GaussianMixture(components, covariance_type="full", reg_covar=REG_COVAR, max_iter=200, random_state=seed)
    # One BLAS thread: the matrices are small (Z x Z), and spinning pool threads on a CPU shared with
    # anything else made the fit ten times slower (docs/benchmarks.md, "Priors").
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few EM steps short of the tolerance is still a fit
        model.fit(latents.astype(np.float64))
    scale_tril = np.linalg.cholesky(model.covariances_)  # (M, Z, Z): Sigma = L L^T
    return Mixture(
        weights=(model.weights_ / model.weights_.sum()).astype(np.float32),
        locs=model.means_.astype(np.float32),
        scale_tril=scale_tril.astype(np.float32),
    )


def select(fit: np.ndarray, heldout: np.ndarray, candidates: tuple[int, ...], seed: int) -> tuple[Mixture, float]:
    """The candidate whose fit to ``fit`` gives ``heldout`` the highest mean log-likelihood; (mixture, that mean)."""
    best: tuple[Mixture, float] | None = None
    for components in candidates:
        if components > len(fit) // 2:  # too few latents to place this many components
            continue
        mixture = fit_mixture(fit, components, seed)
        score = float(mixture.log_density(heldout).mean())
        logger.debug("prior: %d components, held-out log-likelihood %.3f", components, score)
        if best is None or score > best[1]:
            best = (mixture, score)
    assert best is not None, "at least one candidate fits two latents"
    return best


def fit_prior(
    mu: np.ndarray,
    labels: np.ndarray | None,
    classes: int,
    seed: int,
    components: int | None = None,
    variance: np.ndarray | None = None,
) -> tuple[LatentPrior, PriorInfo]:
    """The prior of a run from its training latents ``mu`` (N, Z) and, for labelled data, their ``labels``.

    One mixture over every latent; with ``classes`` > 0 also one per class, all with the same
    number of components (chosen by the held-out log-likelihood summed over the classes).
    ``components`` (vaegan-train --prior-components) fixes every mixture's size instead of choosing.
    ``variance`` (N, Z): the posteriors' variances, for the drift reference (zeros when absent).
    """
    candidates = CANDIDATES if components is None else (components,)
    class_candidates = CLASS_CANDIDATES if components is None else (components,)
    start = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(mu))
    heldout_size = max(int(len(mu) * HELDOUT_FRACTION), 2)
    held, fit = order[:heldout_size], order[heldout_size:]
    mixture, heldout_ll = select(mu[fit], mu[held], candidates, seed)
    per_class: tuple[Mixture, ...] = ()
    if labels is not None and classes > 0:
        per_class = class_mixtures(mu, labels, classes, fit, held, seed, class_candidates)
    # The drift reference: how likely the held-out tenth's posteriors are (what the service reports per input).
    held_variance = np.zeros_like(mu[held]) if variance is None else variance[held]
    scores = mixture.posterior_log_density(mu[held], held_variance)
    reference = np.quantile(scores, np.linspace(0, 1, REFERENCE_QUANTILES))
    prior = LatentPrior(mixture, per_class, reference.astype(np.float32))
    info = PriorInfo(
        components=mixture.components,
        class_components=per_class[0].components if per_class else 0,
        selection=SELECTION if components is None else "fixed (--prior-components)",
        candidates=candidates,
        fit_size=len(fit),
        heldout_size=len(held),
        heldout_log_likelihood=round(heldout_ll, 4),
    )
    logger.info(
        "fitted prior: %d components (held-out log-likelihood %.2f)%s in %.1f s",
        *(info.components, heldout_ll, f", {info.class_components} per class" if per_class else ""),
        time.perf_counter() - start,
    )
    return prior, info


def class_mixtures(
    mu: np.ndarray,
    labels: np.ndarray,
    classes: int,
    fit: np.ndarray,
    held: np.ndarray,
    seed: int,
    candidates: tuple[int, ...] = CLASS_CANDIDATES,
) -> tuple[Mixture, ...]:
    """One mixture per class, all of the candidate size that best predicts the classes' held-out latents."""
    best: tuple[tuple[Mixture, ...], float] | None = None
    for components in candidates:
        mixtures, total = [], 0.0
        for k in range(classes):
            mine, theirs = fit[labels[fit] == k], held[labels[held] == k]
            if components > len(mine) // 2:
                break
            mixtures.append(fit_mixture(mu[mine], components, seed))
            total += float(mixtures[-1].log_density(mu[theirs]).sum()) if len(theirs) else 0.0
        else:
            if best is None or total > best[1]:
                best = (tuple(mixtures), total)
    if best is None:
        raise ValueError(f"too few training latents per class for a mixture of {candidates[0]}")
    return best[0]


def mean_by_class(mu: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(K, Z) float32: the mean of mu over each class's images (a class without images: zeros)."""
    sums = np.zeros((classes, mu.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, mu.astype(np.float64))
    counts = np.bincount(labels, minlength=classes)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def run_latents(
    model: VAEGAN, images: np.ndarray, labels: np.ndarray | None, seed: int, components: int | None = None
) -> tuple[torch.Tensor | None, dict[str, Any] | None]:
    """A finished run's latent summaries for its checkpoint: (class means (K, Z) or None, the prior or None).

    ``images``: the training split, uint8 (N, C, H, W); ``labels``: theirs, or None for unlabelled
    data. A conditional encoder sees the labels, so its classes' mixtures are fitted to mu(x, y).
    ``components``: None chooses the mixtures' sizes, 0 fits no prior, N > 0 fixes them.
    """
    classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    conditional = model.config.num_classes > 0
    label_tensor = torch.from_numpy(labels) if labels is not None and conditional else None
    mu, logvar = posteriors(model, torch.from_numpy(images), label_tensor)
    means = None if labels is None else torch.from_numpy(mean_by_class(mu, labels, classes))
    if components == 0:
        return means, None
    prior, info = fit_prior(mu, labels, classes, seed, components, np.exp(logvar))
    return means, prior_record(prior, info)


def prior_record(prior: LatentPrior, info: PriorInfo) -> dict[str, Any]:
    """The prior as a checkpoint holds it: tensors and plain types (loads with weights_only=True)."""
    return {"arrays": {k: torch.from_numpy(v) for k, v in prior.arrays().items()}, "info": info.model_dump(mode="json")}


def prior_of(record: dict[str, Any] | None) -> tuple[LatentPrior | None, PriorInfo | None]:
    """Undo ``prior_record`` (None: no prior)."""
    if record is None:
        return None, None
    arrays = {k: v.numpy() for k, v in record["arrays"].items()}
    return from_arrays(arrays), PriorInfo(**record["info"])
