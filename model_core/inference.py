"""Inference graphs: the eval-mode networks rewritten into fewer and faster ONNX ops.

Each module here computes exactly what its eval-mode original computes (model_core.export checks
the parity of every file it writes):

- batch norm is folded into the weights and bias of the conv or linear layer before it (the
  exporter leaves BN after ConvTranspose and after a Linear unfolded, which blocks Conv/Gemm+ReLU
  fusion in ONNX Runtime);
- on paper64-sized decoders, each stride-2 transposed convolution becomes four small per-phase
  convolutions whose outputs DepthToSpace interleaves (``DecoderVariant``), which ONNX Runtime
  runs faster than its ConvTranspose kernel there (bench/runtime.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from model_core import bundle
from model_core.config import ModelConfig
from model_core.networks import Decoder, Discriminator, Encoder, with_label
from model_core.vaegan import VAEGAN

DecoderVariant = Literal["phase4", "phase1", "convtranspose"]


def default_decoder_variant(cfg: ModelConfig) -> DecoderVariant:
    """The upsampling bench/runtime.py measured fastest in onnxruntime for this decoder size.

    Per-phase convolutions beat ConvTranspose on the paper64 decoder but not on the narrower
    mnist32 one (figures: docs/benchmarks.md, bench/runtime.py), so the choice follows the size.
    """
    return "phase4" if cfg.image_size >= 64 else "convtranspose"


def fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module, out_dim: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a layer followed by eval-mode batch norm, as one layer: w*s, (b-mean)*s+beta."""
    assert (
        isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d) and bn.running_var is not None and bn.running_mean is not None
    )
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * scale.view(shape), (b - bn.running_mean) * scale + bn.bias


def _load(layer: nn.Conv2d | nn.ConvTranspose2d | nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Set a freshly built layer's weight and bias."""
    assert layer.bias is not None
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)


def _folded_conv(block: nn.Sequential) -> nn.Conv2d:
    """Conv2d -> BatchNorm2d of a ``_conv_bn_relu`` block as one Conv2d with bias."""
    conv, norm = block[0], block[1]
    assert isinstance(conv, nn.Conv2d)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)  # type: ignore[arg-type]
    w, b = fold_bn(conv.weight, conv.bias, norm)
    _load(out, w, b)
    return out


def _folded_linear(block: nn.Sequential) -> nn.Linear:
    """Linear -> BatchNorm1d as one Linear with bias."""
    fc, norm = block[0], block[1]
    assert isinstance(fc, nn.Linear)
    out = nn.Linear(fc.in_features, fc.out_features)
    w, b = fold_bn(fc.weight, fc.bias, norm)
    _load(out, w, b)
    return out


class InferenceEncoder(nn.Module):
    """Enc with batch norm folded: image (N, C, H, W) [, label (N, K)] -> mu, logvar (N, Z)."""

    def __init__(self, enc: Encoder) -> None:
        super().__init__()
        self.cfg = enc.cfg
        layers: list[nn.Module] = []
        for block in enc.convs:
            assert isinstance(block, nn.Sequential)
            layers += [_folded_conv(block), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(_folded_linear(enc.fc), nn.ReLU())
        self.mu, self.logvar = enc.mu, enc.logvar

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(with_label(self.convs(image).flatten(1), label, self.cfg))  # (N, enc_fc)
        return self.mu(h), self.logvar(h)


def _phase_taps(kernel: int, padding: int, phase: int) -> list[tuple[int, int]]:
    """(input offset t, kernel index k) pairs feeding output row 2m+phase of a stride-2 transposed conv.

    Transposed conv: out[o] = sum_{o = 2i - p + k} x[i] w[k]. With o = 2m + phase and i = m + t,
    k = phase + p - 2t, so each output phase is an ordinary correlation over a few input offsets.
    """
    return [(t, phase + padding - 2 * t) for t in range(-kernel, kernel + 1) if 0 <= phase + padding - 2 * t < kernel]


class PhaseDeconv(nn.Module):
    """A stride-2 ConvTranspose2d (output_padding 1, folded BN bias, ReLU) as per-phase convs + DepthToSpace.

    Output pixel (2m+a, 2n+b) depends only on phase (a, b)'s taps of the kernel; ``four`` keeps the four
    phase kernels separate (9+6+6+4 = 25 taps for 5x5), otherwise one conv zero-pads them to a common
    3x3 window and produces all phases at once (36 taps, one op).
    """

    def __init__(self, deconv: nn.ConvTranspose2d, weight: torch.Tensor, bias: torch.Tensor, four: bool) -> None:
        super().__init__()
        assert deconv.stride == (2, 2) and deconv.output_padding == (1, 1) and deconv.groups == 1
        k, p = deconv.kernel_size[0], int(deconv.padding[0])
        self.four = four
        taps = [_phase_taps(k, p, a) for a in (0, 1)]
        lo = min(t for phase in taps for t, _ in phase)
        hi = max(t for phase in taps for t, _ in phase)
        cin, cout = weight.shape[0], weight.shape[1]  # ConvTranspose2d weight: (C_in, C_out, k, k)
        self.convs = nn.ModuleList()
        self.pads: list[tuple[int, int, int, int]] = []
        full = torch.zeros(cout, 4, cin, hi - lo + 1, hi - lo + 1)  # (C_out, phase, C_in, kh, kw) for ``four=False``
        for a in (0, 1):
            for b in (0, 1):
                ty, tx = taps[a], taps[b]
                y0, x0 = min(t for t, _ in ty), min(t for t, _ in tx)
                w = torch.zeros(cout, cin, len(ty), len(tx))
                for t, ky in ty:
                    for s, kx in tx:
                        w[:, :, t - y0, s - x0] = weight[:, :, ky, kx].T
                        full[:, 2 * a + b, :, t - lo, s - lo] = weight[:, :, ky, kx].T
                conv = nn.Conv2d(cin, cout, (len(ty), len(tx)))
                _load(conv, w, bias)
                self.convs.append(conv)
                # F.pad order: left, right, top, bottom; offsets t run from y0 to y0+len-1.
                self.pads.append((-x0, x0 + len(tx) - 1, -y0, y0 + len(ty) - 1))
        self.fused = nn.Conv2d(cin, 4 * cout, hi - lo + 1, padding=0)
        # Output channel c*4 + 2a + b: the order DepthToSpace (CRD) reads.
        _load(self.fused, full.reshape(4 * cout, cin, hi - lo + 1, hi - lo + 1), bias.repeat_interleave(4))
        self.fused_pad = (-lo, hi, -lo, hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.four:
            phases = [F.relu(conv(F.pad(x, pad))) for conv, pad in zip(self.convs, self.pads, strict=True)]
            h = torch.stack(phases, dim=2).flatten(1, 2)  # (N, C_out*4, H, W), channel c*4 + 2a + b
        else:
            h = F.relu(self.fused(F.pad(x, self.fused_pad)))  # (N, C_out*4, H, W)
        return F.pixel_shuffle(h, 2)  # DepthToSpace (CRD): (N, C_out, 2H, 2W)


class InferenceDecoder(nn.Module):
    """Dec with batch norm folded and, unless ``variant`` is "convtranspose", phase-split upsampling."""

    def __init__(self, dec: Decoder, variant: DecoderVariant) -> None:
        super().__init__()
        self.cfg = dec.cfg
        self.fc = nn.Sequential(_folded_linear(dec.fc), nn.ReLU())
        layers: list[nn.Module] = []
        for block in dec.deconvs:
            assert isinstance(block, nn.Sequential)
            deconv, norm = block[0], block[1]
            assert isinstance(deconv, nn.ConvTranspose2d)
            w, b = fold_bn(deconv.weight, deconv.bias, norm, out_dim=1)
            if variant == "convtranspose":
                folded = nn.ConvTranspose2d(
                    deconv.in_channels,
                    deconv.out_channels,
                    deconv.kernel_size,  # type: ignore[arg-type]
                    stride=deconv.stride,  # type: ignore[arg-type]
                    padding=deconv.padding,  # type: ignore[arg-type]
                    output_padding=deconv.output_padding,  # type: ignore[arg-type]
                )
                _load(folded, w, b)
                layers += [folded, nn.ReLU()]
            else:
                layers.append(PhaseDeconv(deconv, w, b, four=variant == "phase4"))
        self.deconvs = nn.Sequential(*layers)
        self.out = dec.out

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        s = self.cfg.base_size
        h = self.fc(with_label(z, label, self.cfg)).view(-1, self.cfg.dec_fc_channels, s, s)  # (N, C_dec, H/8, W/8)
        return torch.tanh(self.out(self.deconvs(h)))  # (N, C, H, W)


class InferenceFeatures(nn.Module):
    """Dis_l alone, batch norm folded: image (N, C, H, W) -> features (N, F); layers after l are dropped."""

    def __init__(self, dis: Discriminator) -> None:
        super().__init__()
        layers: list[nn.Module] = [dis.stem]
        for i, block in enumerate(dis.blocks, start=2):
            if i > dis.cfg.similarity_layer:
                break
            assert isinstance(block, nn.Sequential)
            # Dis_l is taken before the l-th layer's batch norm: that conv stays as it is.
            layers += [block[0]] if i == dis.cfg.similarity_layer else [_folded_conv(block), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image).flatten(1)  # (N, F)


@dataclass(frozen=True)
class NetworkSpec:
    """One ONNX file: its inference module, the eval-mode reference, names and an example input."""

    file: str
    module: nn.Module
    reference: Callable[..., tuple[torch.Tensor, ...]]  # takes the inputs in ``inputs`` order
    inputs: tuple[str, ...]  # "image", "z" and, for a conditional model, "label" (N, K) one-hot
    outputs: tuple[str, ...]
    signature: bundle.Signature


def network_specs(model: VAEGAN, decoder_variant: DecoderVariant | None = None) -> list[NetworkSpec]:
    """The three files of a bundle, built from an eval-mode model."""
    cfg = model.config
    decoder_variant = decoder_variant or default_decoder_variant(cfg)
    image = bundle.ImageSpec(height=cfg.image_size, width=cfg.image_size, channels=cfg.channels)  # type: ignore[arg-type]
    sigs = bundle.network_signatures(image, cfg.latent_dim, cfg.similarity_features, cfg.num_classes)
    label = ("label",) if cfg.conditional else ()

    def spec(
        network: str,
        module: nn.Module,
        reference: Callable[..., tuple[torch.Tensor, ...]],
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
    ) -> NetworkSpec:
        file = bundle.network_file(network)
        return NetworkSpec(file, module, reference, inputs, outputs, sigs[file])

    return [
        spec(
            "encoder",
            InferenceEncoder(model.encoder),
            lambda *xs: tuple(model.encoder(*xs)),
            ("image", *label),
            ("mu", "logvar"),
        ),
        spec(
            "decoder",
            InferenceDecoder(model.decoder, decoder_variant),
            lambda *xs: (model.decoder(*xs),),
            ("z", *label),
            ("image",),
        ),
        spec(
            "discriminator_features",
            InferenceFeatures(model.discriminator),
            lambda x: (model.discriminator.features(x),),
            ("image",),
            ("features",),
        ),
    ]
