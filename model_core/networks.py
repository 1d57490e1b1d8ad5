"""The three networks of Larsen et al. (2016), Table 1: Enc, Dec and Dis.

Convolutions followed by batch norm carry no bias (the norm's shift replaces it). Inputs and
outputs are images in [-1, 1], shaped (B, C, H, W). A conditional config (``num_classes`` K > 0)
adds a one-hot label ``y`` (B, K) to every network's input, as vae-gan-tf does.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from model_core.config import ModelConfig


def _conv_bn_relu(cin: int, cout: int, cfg: ModelConfig) -> nn.Sequential:
    """5x5 conv, stride 2 (halves H and W), batch norm, ReLU."""
    k = cfg.kernel_size
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=cfg.bn_momentum),
        nn.ReLU(),
    )


def check_label(y: torch.Tensor | None, batch: int, cfg: ModelConfig) -> None:
    """A conditional config needs a one-hot label (batch, K); an unconditional one takes none."""
    if not cfg.conditional:
        if y is not None:
            raise ValueError("this model is unconditional: it takes no label")
        return
    if y is None or y.shape != (batch, cfg.num_classes):
        shape = None if y is None else tuple(y.shape)
        want = (batch, cfg.num_classes)
        raise ValueError(f"a conditional model needs a one-hot label of shape {want}, got {shape}")


def with_label(h: torch.Tensor, y: torch.Tensor | None, cfg: ModelConfig) -> torch.Tensor:
    """[h, y] for a conditional config, h unchanged otherwise; a missing or stray label is an error."""
    check_label(y, h.shape[0], cfg)
    return h if y is None else torch.cat([h, y.to(h.dtype)], dim=1)


def _deconv_bn_relu(cin: int, cout: int, cfg: ModelConfig) -> nn.Sequential:
    """5x5 transposed conv, stride 2 (doubles H and W exactly), batch norm, ReLU."""
    k = cfg.kernel_size
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1, bias=False),
        nn.BatchNorm2d(cout, momentum=cfg.bn_momentum),
        nn.ReLU(),
    )


class Encoder(nn.Module):
    """Enc: x -> (mu, log sigma^2) of the diagonal Gaussian q(z|x)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = (cfg.channels, *cfg.enc_channels)
        self.convs = nn.Sequential(*(_conv_bn_relu(a, b, cfg) for a, b in itertools.pairwise(widths)))
        flat = cfg.enc_channels[-1] * cfg.base_size**2 + cfg.num_classes  # the label joins at the fc
        self.fc = nn.Sequential(
            nn.Linear(flat, cfg.enc_fc, bias=False),
            nn.BatchNorm1d(cfg.enc_fc, momentum=cfg.bn_momentum),
            nn.ReLU(),
        )
        self.mu = nn.Linear(cfg.enc_fc, cfg.latent_dim)
        self.logvar = nn.Linear(cfg.enc_fc, cfg.latent_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(x)  # (B, C_enc, H/8, W/8)
        h = self.fc(with_label(h.flatten(1), y, self.cfg))  # (B, enc_fc)
        return self.mu(h), self.logvar(h)  # (B, Z) each


class Decoder(nn.Module):
    """Dec: z -> x_tilde, the mean of p(x|z), in [-1, 1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        flat = cfg.dec_fc_channels * cfg.base_size**2
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim + cfg.num_classes, flat, bias=False),  # input [z, y]
            nn.BatchNorm1d(flat, momentum=cfg.bn_momentum),
            nn.ReLU(),
        )
        widths = (cfg.dec_fc_channels, *cfg.dec_channels)
        self.deconvs = nn.Sequential(*(_deconv_bn_relu(a, b, cfg) for a, b in itertools.pairwise(widths)))
        k = cfg.kernel_size
        self.out = nn.Conv2d(cfg.dec_channels[-1], cfg.channels, k, padding=k // 2)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        s = self.cfg.base_size
        h = self.fc(with_label(z, y, self.cfg)).view(-1, self.cfg.dec_fc_channels, s, s)  # (B, C_dec, H/8, W/8)
        h = self.deconvs(h)  # (B, dec_channels[-1], H, W)
        return torch.tanh(self.out(h))  # (B, C, H, W)


def split_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Dis's output as (real/fake logits (B,), class logits (B, K) or None without a class head)."""
    if logits.dim() == 1:
        return logits, None
    return logits[:, 0], logits[:, 1:]


class Discriminator(nn.Module):
    """Dis: x -> (logit of p(real), Dis_l(x)).

    Dis_l is the output of the ``similarity_layer``-th convolution taken before its batch norm,
    where the authors' code takes it (the 4th conv, 256x8x8 for 64x64 inputs). A conditional Dis
    sees the label after the last conv (so after Dis_l): as K constant planes joining the fc input
    ("planes") or as a projection term <embed(y), h> added to the logit ("projection").
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel_size
        self.stem = nn.Sequential(nn.Conv2d(cfg.channels, cfg.dis_stem, k, padding=k // 2), nn.ReLU())
        widths = (cfg.dis_stem, *cfg.dis_channels)
        self.blocks = nn.ModuleList(_conv_bn_relu(a, b, cfg) for a, b in itertools.pairwise(widths))
        planes = cfg.num_classes if cfg.dis_conditioning == "planes" else 0
        flat = (cfg.dis_channels[-1] + planes) * cfg.base_size**2
        self.fc = nn.Sequential(
            nn.Linear(flat, cfg.dis_fc, bias=False),
            nn.BatchNorm1d(cfg.dis_fc, momentum=cfg.bn_momentum),
            nn.ReLU(),
        )
        self.logit = nn.Linear(cfg.dis_fc, 1)
        projection = cfg.conditional and cfg.dis_conditioning in ("projection", "auxiliary")
        self.embed = nn.Linear(cfg.num_classes, cfg.dis_fc, bias=False) if projection else None
        auxiliary = cfg.conditional and cfg.dis_conditioning == "auxiliary"
        self.classes = nn.Linear(cfg.dis_fc, cfg.num_classes) if auxiliary else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return logits (B,) and Dis_l(x) flattened to (B, F); ``y`` (B, K) one-hot when conditional.

        With a class head ("auxiliary") the logits are (B, 1 + K): the real/fake logit, then the
        class logits (``split_logits`` separates them), so one call (and one DDP forward) gives both.
        """
        h, features = self.trunk(x)
        return self.head(h, y), features.flatten(1)

    def trunk(self, x: torch.Tensor, stop_at_similarity: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The convolutions: (the last conv's output h (B, C, H/8, W/8), Dis_l(x) unflattened).

        ``stop_at_similarity`` returns as soon as Dis_l is computed (h is then Dis_l itself).
        """
        h = self.stem(x)  # (B, dis_stem, H, W)
        features = h
        if stop_at_similarity and self.cfg.similarity_layer == 1:
            return h, h
        for i, block in enumerate(self.blocks, start=2):
            assert isinstance(block, nn.Sequential)
            conv, norm, act = block[0], block[1], block[2]
            h = conv(h)  # (B, C_i, H / 2^(i-1), W / 2^(i-1))
            if i == self.cfg.similarity_layer:
                features = h  # Dis_l: before this layer's batch norm
                if stop_at_similarity:
                    return h, h
            h = act(norm(h))
        return h, features

    def head(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The logit (B,) from the last conv's output h (B, C, H/8, W/8) and, when conditional, the label."""
        check_label(y, h.shape[0], self.cfg)
        if y is not None and self.cfg.dis_conditioning == "planes":
            label_planes = y.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])  # (B, K, H/8, W/8)
            h = torch.cat([h, label_planes], dim=1)
        h = self.fc(h.flatten(1))  # (B, dis_fc)
        logits = self.logit(h).squeeze(1)  # (B,)
        if self.embed is not None and y is not None:
            logits = logits + (self.embed(y.to(h.dtype)) * h).sum(1)  # projection: <embed(y), h>
        if self.classes is not None:
            return torch.cat([logits[:, None], self.classes(h)], dim=1)  # (B, 1 + K)
        return logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dis_l(x) alone, (B, F): the learned similarity space (label-free: labels act after it)."""
        return self.trunk(x, stop_at_similarity=True)[1].flatten(1)
