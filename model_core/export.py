"""ONNX export of Enc, Dec and Dis_l that verifies itself, published as a model bundle.

Each network is rebuilt as its inference graph (model_core.inference: BN folded, the decoder's
upsampling variant), exported with a dynamic batch axis, checked with ``onnx.checker`` and run in
ONNX Runtime against the eval-mode PyTorch network on batches of 2 and 7 (timm's principle).

The measured parity, the variant and the recommended ONNX Runtime session options go into the
manifest (docs/bundle.md), so the service needs neither torch nor this module.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from model_core import bundle
from model_core.config import ModelConfig
from model_core.images import one_hot
from model_core.inference import DecoderVariant, NetworkSpec, default_decoder_variant, network_specs
from model_core.vaegan import VAEGAN

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| accepted per file
PARITY_BATCHES = (2, 7)  # batch >= 2 on purpose: batch 1 hides broken dynamic axes
OPSET = 18
Exporter = Literal["torchscript", "dynamo"]


class ExportError(Exception):
    """An export failed a check (onnx.checker, parity, bad checkpoint); the message names the network."""


# Export and verification.


def to_onnx(
    module: nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    inputs: Sequence[str],
    outputs: Sequence[str],
    exporter: Exporter = "torchscript",
) -> bytes:
    """Serialise ``module`` (eval mode) with a dynamic batch axis on every input and output."""
    module.eval()
    examples = example if isinstance(example, tuple) else (example,)
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            module,
            examples,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=tuple({0: batch} for _ in examples),
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
            examples,
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

    so = bundle.OrtSessionOptions(**(options or {})).to_ort()
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def check_file(spec: NetworkSpec, data: bytes, batches: Sequence[tuple[torch.Tensor, ...]]) -> float:
    """onnx.checker, then the max |onnxruntime - PyTorch| over ``batches``; raise ExportError naming the network."""
    import onnx

    network = bundle.network_of(spec.file)
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and friends
        raise ExportError(f"{network}: onnx.checker refused the export ({exc})") from exc
    session = ort_session(data)
    worst = 0.0
    for xs in batches:
        with torch.no_grad():
            expected = [t.numpy() for t in spec.reference(*xs)]
        got = session.run(list(spec.outputs), {name: x.numpy() for name, x in zip(spec.inputs, xs, strict=True)})
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
    """Batches of 2 and 7 per input name: latents from N(0, I); images from ``heldout`` (N, C, H, W) or
    uniform in [-1, 1]; one-hot labels of random classes for a conditional model."""
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
    batches = {"image": list(images.split(splits)), "z": list(latents.split(splits))}
    if cfg.conditional:
        classes = torch.randint(cfg.num_classes, (n,), generator=g)
        labels = torch.from_numpy(one_hot(classes.numpy(), cfg.num_classes))  # (n, K)
        batches["label"] = list(labels.split(splits))
    return batches


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
                per_batch = list(zip(*(batches[name] for name in spec.inputs), strict=True))  # [(x, y), ...]
                data = to_onnx(spec.module, per_batch[0], spec.inputs, spec.outputs, exporter)
                parity[spec.file] = check_file(spec, data, per_batch)
                contents[spec.file], signatures[spec.file] = data, spec.signature
        return contents, parity, signatures
    finally:
        model.train(was_training)


def class_files(cfg: ModelConfig, names: Sequence[str], means: np.ndarray | None) -> dict[str, bytes]:
    """class_means.npy when there are class means; ExportError when names or means do not fit the model."""
    if cfg.conditional and len(names) != cfg.num_classes:
        raise ExportError(f"a conditional model of {cfg.num_classes} classes needs as many class names")
    if means is None:
        return {}
    try:
        return {bundle.CLASS_MEANS: bundle.class_means_bytes(means, len(names), cfg.latent_dim)}
    except bundle.BundleError as exc:
        raise ExportError(str(exc)) from None


def prior_files(
    cfg: ModelConfig, names: Sequence[str], fitted: tuple[bundle.LatentPrior, bundle.PriorInfo] | None
) -> dict[str, bytes]:
    """prior.npz when there is a fitted prior; ExportError when it does not fit the model or its manifest entry."""
    if fitted is None:
        return {}
    prior, info = fitted
    if info.components != prior.mixture.components:
        raise ExportError("a fitted prior needs its manifest entry (PriorInfo) with the same number of components")
    if bool(prior.classes) != bool(info.class_components) or (prior.classes and len(prior.classes) != len(names)):
        raise ExportError(f"the prior's per-class mixtures ({len(prior.classes)}) do not fit {len(names)} class names")
    try:
        return {bundle.PRIOR: bundle.prior_bytes(prior, cfg.latent_dim, len(prior.classes))}
    except bundle.BundleError as exc:
        raise ExportError(str(exc)) from None


def export_record(exporter: Exporter, decoder_variant: DecoderVariant, heldout: bool, seconds: float) -> dict[str, Any]:
    """manifest.export: how the files were made, and the session options the service reads back."""
    return {
        "exporter": f"torch.onnx ({exporter})",
        "torch": torch.__version__,
        "opset": OPSET,
        "batchnorm": "folded into the preceding conv/linear weights",
        "decoder_variant": decoder_variant,
        "parity_tolerance": PARITY_TOLERANCE,
        "parity_inputs": "held-out images" if heldout else "uniform random images",
        "ort_session": bundle.OrtSessionOptions().model_dump(),
        "seconds": round(seconds, 3),
    }


def network_fields(cfg: ModelConfig) -> dict[str, Any]:
    """What manifest.json says of the networks: image and latent sizes, Dis_l's width, the config, the classes."""
    image = bundle.ImageSpec(height=cfg.image_size, width=cfg.image_size, channels=cfg.channels)  # type: ignore[arg-type]
    return {
        "image": image,
        "latent_dim": cfg.latent_dim,
        "similarity_features": cfg.similarity_features,
        "model_config": cfg.to_dict(),
        "num_classes": cfg.num_classes,
    }


def verified_files(
    model: VAEGAN,
    heldout: np.ndarray | None,
    decoder_variant: DecoderVariant | None,
    exporter: Exporter,
    class_names: Sequence[str],
    class_means: np.ndarray | None,
    prior: tuple[bundle.LatentPrior, bundle.PriorInfo] | None,
) -> tuple[dict[str, bytes], dict[str, float], dict[str, bundle.Signature], dict[str, Any]]:
    """The bundle's files, each checked (networks, class means, prior): contents, parity, signatures, export record."""
    start = time.perf_counter()
    decoder_variant = decoder_variant or default_decoder_variant(model.config)
    extra = {**class_files(model.config, class_names, class_means), **prior_files(model.config, class_names, prior)}
    contents, parity, signatures = export_files(model, heldout, decoder_variant, exporter)
    contents.update(extra)
    record = export_record(exporter, decoder_variant, heldout is not None, time.perf_counter() - start)
    return contents, parity, signatures, record


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
    class_names: Sequence[str] = (),
    class_means: np.ndarray | None = None,
    prior: tuple[bundle.LatentPrior, bundle.PriorInfo] | None = None,
) -> Path:
    """Export, verify and publish ``model`` as models_dir/name/version; return the bundle folder.

    ``class_names``: the labels of labelled training data (one per class of a conditional model);
    ``class_means`` (K, Z): the mean posterior latents of its training images per class;
    ``prior``: the fitted latent prior (prior.npz) and its manifest entry."""
    bundle.validate_name(name)
    if version is not None:
        bundle.validate_name(version, "version")
    files = verified_files(model, heldout, decoder_variant, exporter, class_names, class_means, prior)
    contents, parity, signatures, record = files
    manifest = bundle.Manifest(
        format_version=bundle.FORMAT_VERSION,
        name=name,
        version=version or bundle.default_version(contents),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        preset=preset,
        **network_fields(model.config),
        dataset=dataset,
        preprocessing=bundle.Preprocessing(**preprocessing),
        training=bundle.Training(**training),
        metrics=dict(metrics or {}),
        parity=parity,
        export=record,
        signatures=signatures,
        class_names=tuple(class_names),
        class_means=bundle.CLASS_MEANS if class_means is not None else None,
        prior=prior[1] if prior is not None else None,
    )
    path = bundle.write_bundle(Path(models_dir), manifest, contents, update_latest=update_latest)
    log.info("exported %s in %.2f s: %s; parity (max abs) %s", path, record["seconds"], [*contents], parity)
    return path
