"""ONNX export of Enc, Dec and Dis_l that verifies itself, published as a model bundle.

Each network is rebuilt as an inference graph that is mathematically identical to its eval-mode
original, then exported with a dynamic batch axis, checked with ``onnx.checker`` and run in ONNX
Runtime against PyTorch on batches of 2 and 7 (timm's principle). The rewrites:

- batch norm is folded into the weights and bias of the conv or linear layer before it (the
  exporter leaves BN after ConvTranspose and after a Linear unfolded, which blocks Conv/Gemm+ReLU
  fusion in ONNX Runtime);
- on paper64-sized decoders, each stride-2 transposed convolution becomes four small per-phase
  convolutions whose outputs DepthToSpace interleaves (``decoder_variant``), which ONNX Runtime
  runs faster than its ConvTranspose kernel there (bench/runtime.py measures it).

The measured parity, the variant and the recommended ONNX Runtime session options go into the
manifest (docs/bundle.md), so the service needs neither torch nor this module.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model_core import bundle
from model_core.config import ModelConfig
from model_core.networks import Decoder, Discriminator, Encoder
from model_core.vaegan import VAEGAN

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| accepted per file
PARITY_BATCHES = (2, 7)  # batch >= 2 on purpose: batch 1 hides broken dynamic axes
OPSET = 18
DecoderVariant = Literal["phase4", "phase1", "convtranspose"]
Exporter = Literal["torchscript", "dynamo"]
# Measured by bench/runtime.py on a 2-core CPU; the service reads them from manifest.export.
# Keys as service/runtime.py reads them; intra_op_num_threads 0 means onnxruntime's default.
RECOMMENDED_SESSION: dict[str, Any] = {
    "graph_optimization_level": "ORT_ENABLE_ALL",
    "intra_op_num_threads": 1,
    "inter_op_num_threads": 1,
    "execution_mode": "ORT_SEQUENTIAL",
    "allow_spinning": False,  # spinning pool threads steal the CPU from everything else on 2 cores
}


def default_decoder_variant(cfg: ModelConfig) -> DecoderVariant:
    """The upsampling bench/runtime.py measured fastest in onnxruntime (1 thread, n=16, 2-core CPU).

    Per-phase convolutions beat ConvTranspose on the paper64 decoder (~5-10 %) but not on the
    narrower mnist32 one (~15 % slower there), so the choice follows the decoder's size.
    """
    return "phase4" if cfg.image_size >= 64 else "convtranspose"


class ExportError(Exception):
    """An export failed a check (onnx.checker, parity, bad checkpoint); the message names the network."""


# Inference graphs: the same functions as the eval-mode networks, in fewer and faster ONNX ops.


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
    """Enc with batch norm folded: image (N, C, H, W) -> mu, logvar (N, Z)."""

    def __init__(self, enc: Encoder) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for block in enc.convs:
            assert isinstance(block, nn.Sequential)
            layers += [_folded_conv(block), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(_folded_linear(enc.fc), nn.ReLU())
        self.mu, self.logvar = enc.mu, enc.logvar

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(image).flatten(1))  # (N, enc_fc)
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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s = self.cfg.base_size
        h = self.fc(z).view(-1, self.cfg.dec_fc_channels, s, s)  # (N, C_dec, H/8, W/8)
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


# Export and verification.


@dataclass(frozen=True)
class NetworkSpec:
    """One ONNX file: its inference module, the eval-mode reference, names and an example input."""

    file: str
    module: nn.Module
    reference: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    signature: bundle.Signature


def network_specs(model: VAEGAN, decoder_variant: DecoderVariant | None = None) -> list[NetworkSpec]:
    """The three files of a bundle, built from an eval-mode model."""
    cfg = model.config
    decoder_variant = decoder_variant or default_decoder_variant(cfg)
    image = bundle.ImageSpec(height=cfg.image_size, width=cfg.image_size, channels=cfg.channels)  # type: ignore[arg-type]
    sigs = bundle.network_signatures(image, cfg.latent_dim, cfg.similarity_features)
    return [
        NetworkSpec(
            "encoder.onnx",
            InferenceEncoder(model.encoder),
            lambda x: tuple(model.encoder(x)),
            ("image",),
            ("mu", "logvar"),
            sigs["encoder.onnx"],
        ),
        NetworkSpec(
            "decoder.onnx",
            InferenceDecoder(model.decoder, decoder_variant),
            lambda x: (model.decoder(x),),
            ("z",),
            ("image",),
            sigs["decoder.onnx"],
        ),
        NetworkSpec(
            "discriminator_features.onnx",
            InferenceFeatures(model.discriminator),
            lambda x: (model.discriminator.features(x),),
            ("image",),
            ("features",),
            sigs["discriminator_features.onnx"],
        ),
    ]


def to_onnx(
    module: nn.Module,
    example: torch.Tensor,
    inputs: Sequence[str],
    outputs: Sequence[str],
    exporter: Exporter = "torchscript",
) -> bytes:
    """Serialise ``module`` (eval mode) with a dynamic batch axis on every input and output."""
    module.eval()
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            module,
            (example,),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
        assert program is not None
        return program.model_proto.SerializeToString()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream; on these plain conv graphs (BN folded by us)
        # it writes the same ops as the dynamo exporter in a fraction of the time.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,  # type: ignore[arg-type]
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (*inputs, *outputs)},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def ort_session(model: bytes | str, options: dict[str, Any] | None = None) -> Any:
    """An onnxruntime CPU session with the session options recorded in manifest.export."""
    import onnxruntime as ort

    opts = {**RECOMMENDED_SESSION, **(options or {})}
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, str(opts["graph_optimization_level"]))
    so.execution_mode = getattr(ort.ExecutionMode, str(opts["execution_mode"]))
    so.intra_op_num_threads = int(opts["intra_op_num_threads"])
    so.inter_op_num_threads = int(opts["inter_op_num_threads"])
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if opts["allow_spinning"] else "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def check_file(spec: NetworkSpec, data: bytes, batches: Sequence[torch.Tensor]) -> float:
    """onnx.checker, then the max |onnxruntime - PyTorch| over ``batches``; raise ExportError naming the network."""
    import onnx

    network = spec.file.removesuffix(".onnx")
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and friends
        raise ExportError(f"{network}: onnx.checker refused the export ({exc})") from exc
    session = ort_session(data)
    worst = 0.0
    for x in batches:
        with torch.no_grad():
            expected = [t.numpy() for t in spec.reference(x)]
        got = session.run(list(spec.outputs), {spec.inputs[0]: x.numpy()})
        for name, e, g in zip(spec.outputs, expected, got, strict=True):
            if e.shape != g.shape:
                raise ExportError(
                    f"{network}: output {name!r} has shape {g.shape} in onnxruntime, {e.shape} in PyTorch"
                )
            worst = max(worst, float(np.max(np.abs(e - g))))
    if not worst <= PARITY_TOLERANCE:  # also catches NaN
        raise ExportError(
            f"{network}: onnxruntime differs from PyTorch by {worst:.3g} (max abs), "
            f"over the tolerance {PARITY_TOLERANCE:g}"
        )
    return worst


def parity_inputs(cfg: ModelConfig, heldout: np.ndarray | None, seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """Batches of 2 and 7: latents from N(0, I); images from ``heldout`` (N, C, H, W) or uniform in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    n = sum(PARITY_BATCHES)
    if heldout is not None:
        if heldout.shape[0] < n or tuple(heldout.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
            raise ExportError(
                f"held-out images of shape {heldout.shape} do not fit "
                f"(>= {n}, {cfg.channels}, {cfg.image_size}, {cfg.image_size})"
            )
        images = torch.from_numpy(np.ascontiguousarray(heldout[:n], dtype=np.float32))
    else:
        images = torch.rand((n, cfg.channels, cfg.image_size, cfg.image_size), generator=g) * 2 - 1
    latents = torch.randn((n, cfg.latent_dim), generator=g)
    splits = list(PARITY_BATCHES)
    return {"image": list(images.split(splits)), "z": list(latents.split(splits))}


def export_files(
    model: VAEGAN,
    heldout: np.ndarray | None = None,
    decoder_variant: DecoderVariant | None = None,
    exporter: Exporter = "torchscript",
) -> tuple[dict[str, bytes], dict[str, float], dict[str, bundle.Signature]]:
    """Export and verify the three networks: (file -> bytes, file -> parity, file -> signature)."""
    was_training = model.training
    model.eval()
    try:
        batches = parity_inputs(model.config, heldout)
        contents, parity, signatures = {}, {}, {}
        with torch.no_grad():
            for spec in network_specs(model, decoder_variant):
                example = batches[spec.inputs[0]][0]
                data = to_onnx(spec.module, example, spec.inputs, spec.outputs, exporter)
                parity[spec.file] = check_file(spec, data, batches[spec.inputs[0]])
                contents[spec.file], signatures[spec.file] = data, spec.signature
        return contents, parity, signatures
    finally:
        model.train(was_training)


def export_bundle(
    model: VAEGAN,
    models_dir: Path,
    name: str,
    *,
    preset: str,
    dataset: str,
    preprocessing: dict[str, Any],
    training: dict[str, Any],
    metrics: dict[str, float] | None = None,
    version: str | None = None,
    heldout: np.ndarray | None = None,
    update_latest: bool = True,
    decoder_variant: DecoderVariant | None = None,
    exporter: Exporter = "torchscript",
) -> Path:
    """Export, verify and publish ``model`` as models_dir/name/version; return the bundle folder."""
    bundle.validate_name(name)
    if version is not None:
        bundle.validate_name(version, "version")
    cfg = model.config
    start = time.perf_counter()
    decoder_variant = decoder_variant or default_decoder_variant(cfg)
    contents, parity, signatures = export_files(model, heldout, decoder_variant, exporter)
    seconds = time.perf_counter() - start
    version = version or bundle.default_version(contents)
    manifest = bundle.Manifest(
        format_version=bundle.FORMAT_VERSION,
        name=name,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        preset=preset,
        image=bundle.ImageSpec(height=cfg.image_size, width=cfg.image_size, channels=cfg.channels),  # type: ignore[arg-type]
        latent_dim=cfg.latent_dim,
        similarity_features=cfg.similarity_features,
        dataset=dataset,
        preprocessing=bundle.Preprocessing(**preprocessing),
        training=bundle.Training(**training),
        model_config=cfg.to_dict(),
        metrics=dict(metrics or {}),
        parity=parity,
        export={
            "exporter": f"torch.onnx ({exporter})",
            "torch": torch.__version__,
            "opset": OPSET,
            "batchnorm": "folded into the preceding conv/linear weights",
            "decoder_variant": decoder_variant,
            "parity_tolerance": PARITY_TOLERANCE,
            "parity_inputs": "held-out images" if heldout is not None else "uniform random images",
            "ort_session": dict(RECOMMENDED_SESSION),
            "seconds": round(seconds, 3),
        },
        signatures=signatures,
    )
    path = bundle.write_bundle(Path(models_dir), manifest, contents, update_latest=update_latest)
    sizes = ", ".join(f"{f} {len(b) / 1e6:.2f} MB" for f, b in contents.items())
    errs = ", ".join(f"{f} {e:.2g}" for f, e in parity.items())
    log.info("exported %s/%s in %.2f s: %s; parity (max abs) %s", name, version, seconds, sizes, errs)
    return path
