"""Where /sample draws z: the bundle's fitted prior (prior.npz) or the paper's N(0, I), by class too.

Every draw starts from the same seeded noise (service/latents.py): eps ~ N(0, temperature^2 I),
then u ~ U(0, 1) per row. The standard prior decodes eps itself, exactly the paper's z_p; the fitted Gaussian mixture
picks a component by u and returns loc + L eps (model_core/bundle/prior.py), so one seed gives
comparable draws under both priors and the temperature widens each component without moving it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from fastapi import Query

from model_core.bundle import Bundle, LatentPrior, read_prior
from service.errors import InvalidParameter
from service.labels import Classes, Method

PriorName = Literal["fitted", "standard"]
PRIOR_HEADER = "X-Prior"
PriorQuery = Annotated[
    PriorName | None,
    Query(
        description="fitted: the Gaussian mixture fitted to the training latents (the default when the bundle has "
        "one); standard: the paper's N(0, I)"
    ),
]


@dataclass(frozen=True)
class Draw:
    """Latents to decode and how they were drawn: the prior used, and how a class was honoured."""

    z: np.ndarray  # (N, Z) float32
    prior: PriorName
    label_method: Method | None


@dataclass(frozen=True)
class Priors:
    """A bundle's fitted prior (or None) and its classes: every way /sample and /sample/grid draw z."""

    fitted: LatentPrior | None
    classes: Classes

    @classmethod
    def of(cls, bundle: Bundle, classes: Classes) -> Priors:
        """Read from a verified bundle (prior.npz is validated against the manifest)."""
        return cls(read_prior(bundle), classes)

    @property
    def default(self) -> PriorName:
        return "fitted" if self.fitted is not None else "standard"

    @property
    def label_method(self) -> Method | None:
        """How a label is honoured under the default prior (what /model reports)."""
        if self.classes.conditional:
            return "conditional"
        if self.fitted is not None and self.fitted.classes:
            return "class-prior"
        return self.classes.method

    def choose(self, requested: PriorName | None) -> PriorName:
        """The prior a request gets; 422 for ``fitted`` on a bundle without one."""
        if requested == "fitted" and self.fitted is None:
            raise InvalidParameter(
                "prior=fitted: this bundle carries no fitted prior (exported before priors, or trained with "
                "--prior-components 0); use prior=standard, or re-export it with vaegan-export"
            )
        return requested or self.default

    def draw(self, prior: PriorName, eps: np.ndarray, u: np.ndarray, indices: np.ndarray | None = None) -> Draw:
        """Latents from noise (``noise``) under ``prior``, of the classes ``indices`` (N,) when given.

        A conditional decoder gets the label besides z; under the fitted prior z comes from the
        class's own mixture when the bundle has one per class. An unconditional bundle draws a
        class from its mixture (``class-prior``) or shifts eps to the class's mean latent
        (``class-mean``, Larsen et al. 2016 Sec. 5) under the standard prior.
        """
        fitted = self.fitted if prior == "fitted" else None
        if indices is None:
            return Draw(eps if fitted is None else fitted.mixture.draw(eps, u), prior, None)
        method = self.classes.require_method()
        if fitted is not None and fitted.classes:
            z = np.empty_like(eps)
            for k in np.unique(indices):
                rows = indices == k
                z[rows] = fitted.classes[k].draw(eps[rows], u[rows])
            return Draw(z, prior, method if method == "conditional" else "class-prior")
        if method == "conditional":
            return Draw(eps if fitted is None else fitted.mixture.draw(eps, u), prior, method)
        assert self.classes.means is not None
        return Draw((self.classes.means[indices] + eps).astype(np.float32), "standard", "class-mean")

    def log_density(self, mu: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(log E_q[p(z)], typicality) per posterior N(mu, exp(logvar)) under the fitted mixture (docs/api.md,
        "Drift"); None without a fitted prior."""
        if self.fitted is None:
            return None
        log_density = self.fitted.mixture.posterior_log_density(mu, np.exp(logvar))
        return log_density, self.fitted.typicality(log_density)
