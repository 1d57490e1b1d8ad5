"""The diagonal Gaussian posterior q(z|x) = N(mu, diag(sigma^2))."""

from __future__ import annotations

import torch


class DiagonalGaussian:
    """q(z|x) with ``sample`` (reparameterised), ``mode`` and ``kl`` against N(0, I)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu = mu  # (B, Z)
        # Clamped so exp() stays finite in fp16/bf16 and a diverging encoder cannot produce inf.
        self.logvar = logvar.clamp(-30.0, 20.0)  # (B, Z)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): the reparameterisation trick (Kingma & Welling 2014)."""
        eps = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mu

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per example, (B,): Kingma & Welling 2014, Appendix B."""
        return 0.5 * torch.sum(self.mu.pow(2) + self.logvar.exp() - 1.0 - self.logvar, dim=1)
