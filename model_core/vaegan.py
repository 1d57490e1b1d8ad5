"""The VAE-GAN module and one step of Algorithm 1 (Larsen et al. 2016).

Algorithm 1 updates each network by its own objective, from one forward pass:

    theta_Enc <- -grad(L_prior + L_llike^{Dis_l})
    theta_Dec <- -grad(gamma * L_llike^{Dis_l} - L_GAN)
    theta_Dis <- -grad(L_GAN)          (here: Dis minimises the BCE -L_GAN, see losses.py)

All three gradients are computed before any optimizer steps, each by a backward pass restricted to
its own network's parameters (``inputs=``), so no network sees another's objective and no
parameter changes while a later backward still needs it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from model_core import losses
from model_core.config import ModelConfig, ObjectiveConfig
from model_core.distributions import DiagonalGaussian
from model_core.networks import Decoder, Discriminator, Encoder, split_logits


@dataclass
class Optimizers:
    """One optimizer per network: Algorithm 1 never mixes their updates."""

    enc: torch.optim.Optimizer
    dec: torch.optim.Optimizer
    dis: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]:
        return {"enc": self.enc.state_dict(), "dec": self.dec.state_dict(), "dis": self.dis.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.enc.load_state_dict(state["enc"])
        self.dec.load_state_dict(state["dec"])
        self.dis.load_state_dict(state["dis"])


def rmsprop(params: Any, lr: float = 3e-4) -> torch.optim.Optimizer:
    """RMSProp as in the authors' code: decay 0.9, eps 1e-8, weight decay 1e-5 (Sec. 4)."""
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-8, weight_decay=1e-5)


@dataclass
class StepLosses:
    """Each network's objective plus the terms they are made of (scalars, still on the graph)."""

    enc: torch.Tensor
    dec: torch.Tensor
    dis: torch.Tensor | None
    logs: dict[str, torch.Tensor]


def discriminate(
    discriminator: nn.Module,
    x: torch.Tensor,
    fakes: torch.Tensor,
    y: torch.Tensor | None,
    y_p: torch.Tensor | None,
    passes: str,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, torch.Tensor]]:
    """Dis on x, Dec(z) and Dec(z_p) (``fakes``, 2B): real/fake logits (B,) of each, their class logits
    (B, K) when Dis has a class head (else None), and the Dis_l features of x and Dec(z), (B, F) each."""
    b = x.shape[0]
    if passes == "separate":  # real and fake images in calls of their own
        x_tilde, x_p = fakes.split(b)
        (real, real_features), (recon, recon_features) = discriminator(x, y), discriminator(x_tilde, y)
        outputs = (real, recon, discriminator(x_p, y_p)[0])
    else:
        all_y = None if y is None or y_p is None else torch.cat([y, y, y_p])  # (3B, K)
        joint, features = discriminator(torch.cat([x, fakes]), all_y)  # (3B,) or (3B, 1 + K), (3B, F)
        outputs, (real_features, recon_features, _) = joint.split(b), features.split(b)
    logits, classes = zip(*(split_logits(o) for o in outputs), strict=True)
    return logits, None if classes[0] is None else classes, (real_features, recon_features)


def class_head_losses(
    classes: tuple[torch.Tensor, ...], y: torch.Tensor | None, y_p: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Dis's class loss on real images, Dec's on Dec(z) with y and Dec(z_p) with y_p): Odena et al. 2017, Eq. 3.

    ``classes``: the class logits (B, K) of x, Dec(z) and Dec(z_p).
    """
    assert y is not None and y_p is not None
    real, recon, prior = classes
    return losses.class_loss(real, y), losses.class_loss(recon, y) + losses.class_loss(prior, y_p)


def compute_losses(
    encoder: nn.Module,
    decoder: nn.Module,
    discriminator: nn.Module | None,
    x: torch.Tensor,
    objective: ObjectiveConfig,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
) -> StepLosses:
    """One forward pass of Algorithm 1 and the three objectives built from it. ``y`` (B, K): one-hot labels
    of a conditional model, for x and Dec(z); the z_p get them shuffled (the training label frequencies)."""
    b = x.shape[0]
    posterior = DiagonalGaussian(*encoder(x, y))  # q(z|x), mu and log sigma^2 (B, Z)
    z = posterior.sample(generator)  # (B, Z), reparameterised
    kl = losses.prior_kl(posterior)
    y_p = None if y is None else y[torch.randperm(b, generator=generator, device=y.device)]

    if objective.mode == "vae":
        x_tilde = decoder(z, y)  # (B, C, H, W)
        llike = losses.pixel_llike(x, x_tilde, objective.pixel_sigma)
        logs = {"kl": kl.detach(), "llike": llike.detach()}
        return StepLosses(enc=objective.kl_weight * kl + llike, dec=llike, dis=None, logs=logs)

    assert discriminator is not None, "mode 'vaegan' needs a discriminator"
    z_p = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)  # prior samples
    both = None if y is None or y_p is None else torch.cat([y, y_p])  # (2B, K)
    fakes = decoder(torch.cat([z, z_p]), both)  # (2B, C, H, W): x_tilde then x_p, one decoder pass
    (real_logits, recon_logits, prior_logits), classes, (real_features, recon_features) = discriminate(
        discriminator, x, fakes, y, y_p, objective.dis_passes
    )

    llike = losses.feature_llike(real_features, recon_features)
    gan_fakes = (recon_logits, prior_logits) if objective.gan_inputs == "three" else (prior_logits,)
    dis_loss = losses.gan_discriminator_loss(real_logits, *gan_fakes)
    gen_loss = losses.gan_generator_loss(*gan_fakes, saturating=objective.generator_loss == "minimax")
    logs = {"kl": kl.detach(), "llike": llike.detach(), **discriminator_logs(dis_loss, real_logits, gan_fakes)}
    if classes is not None:  # a class head (AC-GAN): Dis learns real classes, Dec must show its labels
        dis_class, dec_class = class_head_losses(classes, y, y_p)
        dis_loss = dis_loss + objective.class_weight * dis_class
        gen_loss = gen_loss + objective.class_weight * dec_class
        logs["dis_class_ce"], logs["dec_class_ce"] = dis_class.detach(), dec_class.detach()
    return StepLosses(
        enc=objective.kl_weight * kl + llike,  # theta_Enc objective (the paper: kl_weight 1)
        dec=objective.gamma * llike + gen_loss,  # theta_Dec objective
        dis=dis_loss,  # theta_Dis objective
        logs=logs,
    )


def discriminator_logs(
    dis_loss: torch.Tensor, real_logits: torch.Tensor, gan_fakes: tuple[torch.Tensor, ...]
) -> dict[str, torch.Tensor]:
    """Dis's BCE in all, on real images and per fake input (what the equilibrium rule reads), and its accuracies."""
    real_bce = losses.gan_discriminator_loss(real_logits)
    return {
        "gan": dis_loss.detach(),
        "dis_real_bce": real_bce.detach(),
        "dis_fake_bce": (dis_loss - real_bce).detach() / len(gan_fakes),
        "dis_acc_real": losses.discriminator_accuracy(real_logits.detach(), real=True),
        "dis_acc_fake": losses.discriminator_accuracy(torch.cat(gan_fakes).detach(), real=False),
    }


def equilibrium_gates(logs: dict[str, torch.Tensor], objective: ObjectiveConfig) -> tuple[bool, bool]:
    """(update Dec, update Dis) by the authors' balance rule on the discriminator's BCE.

    Dis pauses when it is too strong (a BCE below point - margin), Dec pauses when Dis is too weak
    (a BCE above point + margin); if both would pause, both train. This reads two scalars from the
    device, so it synchronises once per step (only when the rule is on).
    """
    if not objective.equilibrium or "dis_real_bce" not in logs:
        return True, True
    real, fake = float(logs["dis_real_bce"]), float(logs["dis_fake_bce"])
    low = objective.equilibrium_point - objective.equilibrium_margin
    high = objective.equilibrium_point + objective.equilibrium_margin
    train_dis = not (real < low or fake < low)
    train_dec = not (real > high or fake > high)
    if not (train_dis or train_dec):
        return True, True
    return train_dec, train_dis


@dataclass
class Algorithm1:
    """What one step of Algorithm 1 works on besides the batch: the three networks (as the caller runs them,
    e.g. DDP-wrapped), one optimizer each, the objective and the precision."""

    encoder: nn.Module
    decoder: nn.Module
    discriminator: nn.Module | None  # None in mode "vae": no adversary, no Dis update
    optimizers: Optimizers
    objective: ObjectiveConfig
    scaler: torch.amp.GradScaler | None = None  # float16 autocast's loss scaling, else None
    autocast_dtype: torch.dtype | None = None  # bfloat16 / float16 autocast, None: float32


def algorithm1_step(
    algo: Algorithm1, x: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Run one step of Algorithm 1 on the batch ``x`` in place; return detached scalar logs (no host sync).

    ``y``: one-hot labels (B, K) for a conditional model, else None; ``generator`` draws z, z_p (and y_p).
    """
    dtype = algo.autocast_dtype
    autocast = torch.autocast(device_type=x.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with autocast:
        step = compute_losses(algo.encoder, algo.decoder, algo.discriminator, x, algo.objective, generator, y)
    update_dec, update_dis = equilibrium_gates(step.logs, algo.objective)

    # Each objective is differentiated w.r.t. its own network only, before any parameter moves.
    jobs: list[tuple[torch.Tensor, nn.Module, torch.optim.Optimizer]] = [(step.enc, algo.encoder, algo.optimizers.enc)]
    if update_dec:
        jobs.append((step.dec, algo.decoder, algo.optimizers.dec))
    if step.dis is not None and algo.discriminator is not None and update_dis:
        jobs.append((step.dis, algo.discriminator, algo.optimizers.dis))
    descend(jobs, algo.scaler)

    logs = {**step.logs, "enc_loss": step.enc.detach(), "dec_loss": step.dec.detach()}
    if step.dis is not None:
        logs["dis_loss"] = step.dis.detach()
    logs["dec_updated"] = torch.tensor(float(update_dec))
    logs["dis_updated"] = torch.tensor(float(update_dis and step.dis is not None))
    return logs


def descend(
    jobs: list[tuple[torch.Tensor, nn.Module, torch.optim.Optimizer]], scaler: torch.amp.GradScaler | None
) -> None:
    """Every (loss, network, optimizer): all gradients first, each w.r.t. its own network's parameters, then
    every optimizer steps (through the scaler when there is one)."""
    for _, _, opt in jobs:
        opt.zero_grad(set_to_none=True)
    for i, (loss, net, _) in enumerate(jobs):
        scaled = scaler.scale(loss) if scaler is not None else loss
        params = [p for p in net.parameters() if p.requires_grad]
        torch.autograd.backward(scaled, inputs=params, retain_graph=i < len(jobs) - 1)
    for _, _, opt in jobs:
        if scaler is not None:
            scaler.step(opt)
        else:
            opt.step()
    if scaler is not None:
        scaler.update()


class VAEGAN(nn.Module):
    """Enc, Dec and Dis of one ``ModelConfig``, with the objective Algorithm 1 trains them by."""

    def __init__(self, config: ModelConfig, objective: ObjectiveConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.objective = objective or ObjectiveConfig()
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.discriminator = Discriminator(config)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        return DiagonalGaussian(*self.encoder(x, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct through the posterior mean: Dec(mu(x)) (with the label y when conditional)."""
        return self.decoder(self.encode(x, y).mode(), y)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Dec(z_p), z_p ~ N(0, temperature^2 I) (labels y (n, K) when conditional)."""
        device = next(self.parameters()).device
        z = torch.randn((n, self.config.latent_dim), generator=generator, device=device) * temperature
        return self.decoder(z, y)

    def make_optimizers(self, lr: float = 3e-4, dis_lr_scale: float = 1.0) -> Optimizers:
        """RMSProp per network; Dis may learn at ``dis_lr_scale`` times the rate (two time-scales)."""
        return Optimizers(
            enc=rmsprop(self.encoder.parameters(), lr),
            dec=rmsprop(self.decoder.parameters(), lr),
            dis=rmsprop(self.discriminator.parameters(), lr * dis_lr_scale),
        )

    def algorithm1(
        self,
        optimizers: Optimizers,
        scaler: torch.amp.GradScaler | None = None,
        autocast_dtype: torch.dtype | None = None,
    ) -> Algorithm1:
        """This model's networks, stepped by ``optimizers`` under its objective (no Dis in mode "vae")."""
        dis = self.discriminator if self.objective.mode == "vaegan" else None
        return Algorithm1(self.encoder, self.decoder, dis, optimizers, self.objective, scaler, autocast_dtype)

    def train_step(
        self,
        x: torch.Tensor,
        optimizers: Optimizers,
        generator: torch.Generator | None = None,
        scaler: torch.amp.GradScaler | None = None,
        autocast_dtype: torch.dtype | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One step of Algorithm 1 on this unwrapped model (``algorithm1_step`` of ``self.algorithm1(...)``)."""
        return algorithm1_step(self.algorithm1(optimizers, scaler, autocast_dtype), x, y, generator)
