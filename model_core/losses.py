"""The loss terms of Larsen et al. (2016), one pure function each.

Conventions: every term is a scalar averaged over the batch and summed over its dimensions
(latents, features or pixels), as in the authors' code. ``gan_discriminator_loss`` is the
binary cross-entropy the discriminator minimises, i.e. the negative of the paper's L_GAN
(Eq. 4, extended to reconstructions in Sec. 2.2), computed on logits for stability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model_core.distributions import DiagonalGaussian


def prior_kl(posterior: DiagonalGaussian) -> torch.Tensor:
    """L_prior = KL(q(z|x) || p(z)), p(z) = N(0, I): Larsen et al. 2016, Eq. 3."""
    return posterior.kl().mean()


def feature_llike(real_features: torch.Tensor, recon_features: torch.Tensor) -> torch.Tensor:
    """L_llike^{Dis_l} = -E_q[log N(Dis_l(x) | Dis_l(x_tilde), I)] up to a constant: Eq. 5-6.

    Shapes (B, F). The Gaussian has identity covariance, so the negative log-likelihood is half
    the squared distance, summed over features.
    """
    return 0.5 * (real_features - recon_features).pow(2).sum(dim=1).mean()


def pixel_llike(x: torch.Tensor, x_tilde: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """L_llike^{pixel} = -E_q[log N(x | x_tilde, sigma^2 I)] up to a constant: the plain VAE of Eq. 1-2.

    sigma = 1 is the paper's unit-variance Gaussian; a smaller sigma weighs the pixels more
    against the KL term (sharper reconstructions, a posterior further from the prior).
    """
    return 0.5 * (x - x_tilde).pow(2).flatten(1).sum(dim=1).mean() / sigma**2


def gan_discriminator_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor) -> torch.Tensor:
    """-L_GAN = -[log Dis(x) + sum_fake log(1 - Dis(fake))]: Eq. 4 with the fakes of Sec. 2.2.

    The paper's fakes are Dec(z), z ~ q(z|x), and Dec(z_p), z_p ~ N(0, I); pass one or both.
    """
    loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    for logits in fake_logits:
        loss = loss + F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    return loss


def gan_generator_loss(*fake_logits: torch.Tensor, saturating: bool = True) -> torch.Tensor:
    """The decoder's share of the GAN game (Algorithm 1, -L_GAN term of theta_Dec).

    ``saturating`` is the paper's minimax form, sum log(1 - Dis(fake)) (the log Dis(x) term has no
    decoder gradient). The non-saturating alternative, -sum log Dis(fake) (Goodfellow et al. 2014,
    Sec. 3), has the same fixed point and stronger gradients while the discriminator wins.
    """
    loss = fake_logits[0].new_zeros(())
    for logits in fake_logits:
        if saturating:
            loss = loss - F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
        else:
            loss = loss + F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    return loss


def discriminator_accuracy(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Share of a batch the discriminator classifies correctly (logit > 0 means real)."""
    return ((logits > 0) == real).float().mean()


def class_loss(class_logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the discriminator's class head against one-hot labels (AC-GAN, Odena et al. 2017, Eq. 3)."""
    return F.cross_entropy(class_logits.float(), onehot.float().argmax(1))
