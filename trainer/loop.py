"""The training run: Algorithm 1 over a dataset, with checkpoints, grids, metrics and evaluation.

``train(cfg)`` reads top to bottom: setup, resume, the loop, then the final evaluation, checkpoint
and export. Everything random is a function of the seed: the initial weights, each epoch's data
order (seed, epoch) and the z of each step (seed, rank, step), so a resumed run is exact.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from model_core.averaging import ema_model
from model_core.config import PRESETS, ModelConfig
from model_core.vaegan import VAEGAN, Optimizers, algorithm1_step, recalibrate_batchnorm
from trainer import checkpoint, distributed, grids
from trainer.config import TrainConfig, TrainingError, UsageError
from trainer.datasets import ImageArrayDataset, ImageData, ResumableSampler, keep_batch, load_dataset
from trainer.evaluation import evaluate
from trainer.progress import LossMeter, MetricsFile, Progress

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
NETWORKS = ("encoder", "decoder", "discriminator")


@dataclass
class Position:
    """Where the run stands: optimizer steps done, and batches done in the current epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


def train(cfg: TrainConfig) -> Path:
    """Train as ``cfg`` says; return the path of the final checkpoint."""
    processes = distributed.setup(cfg.device)
    try:
        return _train(cfg, processes)
    finally:
        distributed.teardown(processes)


def _train(cfg: TrainConfig, processes: distributed.Processes) -> Path:
    device = processes.device
    model_config = PRESETS[cfg.preset]
    ckpt_path = cfg.out / CHECKPOINT_NAME

    # Setup: seeds, output folder, data (rank 0 downloads first), model, optimizers, precision.
    seed_everything(cfg.seed)
    if processes.is_main:
        prepare_out(cfg.out, fresh=cfg.resume is None)
    data = load_data(cfg, model_config, processes)
    per_rank = per_rank_batch(cfg.batch_size, processes.world)
    steps_per_epoch = (len(data.train) // processes.world) // per_rank
    if steps_per_epoch == 0:
        raise UsageError(f"{cfg.dataset}: {len(data.train)} training images, fewer than one batch of {cfg.batch_size}")
    model = VAEGAN(model_config, cfg.objective).to(device)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster convs on CPU and GPU
    torch.backends.cudnn.benchmark = device.type == "cuda"
    optimizers = model.make_optimizers(cfg.lr, cfg.dis_lr_scale)
    ema = ema_model(model.decoder, cfg.decoder_ema) if cfg.decoder_ema > 0 else None
    autocast_dtype, scaler = precision(cfg.amp, device)
    nets = {name: distributed.wrap(getattr(model, name), processes) for name in NETWORKS}
    discriminator = nets["discriminator"] if cfg.mode == "vaegan" else None

    # Resume: weights, optimizer and scaler states, random states and the data position.
    position = Position()
    if cfg.resume is not None:
        position = resume(cfg, model_config, model, optimizers, scaler, ema, steps_per_epoch)
        logger.info(
            "resumed %s at step %d (epoch %d, batch %d)", cfg.resume, position.step, position.epoch, position.batch
        )

    # Data order: a function of (seed, epoch); this rank's share, from the resumed position on.
    dataset = ImageArrayDataset(data.train)
    sampler = ResumableSampler(dataset, cfg.seed, processes.rank, processes.world)
    loader = make_loader(dataset, sampler, per_rank, cfg.num_workers, device)
    total_steps = planned_steps(cfg, steps_per_epoch)
    heldout = torch.from_numpy(data.heldout)
    metrics = (
        MetricsFile(cfg.out / "metrics.jsonl", position.step if cfg.resume else None) if processes.is_main else None
    )
    progress = Progress(total_steps, position.step, enabled=processes.is_main)
    meter = LossMeter()
    z_generator = torch.Generator(device=device)
    logger.info(
        "training %s on %s (%d train / %d held-out images, %d skipped) on %s x%d: %d steps of %d, %d per epoch",
        cfg.preset,
        cfg.dataset,
        len(data.train),
        len(data.heldout),
        data.skipped,
        device,
        processes.world,
        total_steps,
        cfg.batch_size,
        steps_per_epoch,
    )

    def save(eval_result: dict[str, Any] | None = None) -> None:
        """Rank 0 writes the checkpoint of the current position (atomically)."""
        if processes.is_main:
            state = build_checkpoint(
                cfg, model_config, model, optimizers, scaler, ema, position, steps_per_epoch, data, eval_result
            )
            checkpoint.save_atomic(state, ckpt_path)

    # Train: Algorithm 1, one step per batch, until the step budget or the last epoch ends.
    while position.step < total_steps:
        sampler.set_position(position.epoch, position.batch * per_rank)
        for batch in loader:
            x = to_model_input(batch, device)
            z_generator.manual_seed(step_seed(cfg.seed, processes.rank, position.step))
            logs = algorithm1_step(
                nets["encoder"],
                nets["decoder"],
                discriminator,
                x,
                optimizers,
                cfg.objective,
                z_generator,
                scaler,
                autocast_dtype,
            )
            if ema is not None:
                ema.update_parameters(model.decoder)
            position.step += 1
            position.batch += 1
            meter.add(logs)
            progress.advance()
            if position.step % cfg.log_every == 0 or position.step == total_steps:
                record = meter.take(cfg.batch_size, processes.average)  # the window's one host sync
                record = {"step": position.step, "epoch": round(position.step / steps_per_epoch, 4), **record}
                progress.report(record)
                if metrics is not None:
                    metrics.write(record)
            if position.step == total_steps:
                break
            if position.step % cfg.checkpoint_every == 0:
                save()
        if position.batch == steps_per_epoch:
            position.epoch, position.batch = position.epoch + 1, 0
            tag = f"epoch{position.epoch:03d}"
        else:
            tag = f"epoch{position.epoch + 1:03d}_step{position.step}"  # a partial last epoch
        if processes.is_main:  # drawn as the bundle will draw: the EMA decoder, BN recalibrated (a copy)
            decoder = sampling_decoder(model, ema, cfg, device)
            with evaluating(model):
                grids.write_epoch_grids(
                    decoder, model.encoder, heldout, model_config.latent_dim, cfg.out / "samples", tag
                )
    progress.close()

    # Finish: held-out evaluation, eval.json, the final checkpoint, then the bundle.
    if not distributed.replicas_agree({n: getattr(model, n) for n in NETWORKS}, processes):
        logger.warning("DDP: the processes' weights differ; the checkpoint holds rank 0's")
    decoder = sampling_decoder(model, ema, cfg, device)
    (ema.module if ema is not None else model.decoder).load_state_dict(decoder.state_dict())
    if processes.is_main:
        eval_result = final_evaluation(model, decoder, heldout[: cfg.eval_images], position.step, cfg.out)
        save(eval_result)
        logger.info("wrote %s", ckpt_path)
        if cfg.export_to is not None:
            export(cfg, ckpt_path)
    distributed.barrier(processes)
    return ckpt_path


def sampling_decoder(model: VAEGAN, ema: AveragedModel | None, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """A copy of the decoder the bundle samples with: the EMA (if any), BN statistics recalibrated, eval mode.

    The running statistics training leaves mix Dec(z) and Dec(z_p) batches of moving weights; eval
    mode and the exported graph would sample grey checkerboards from them (docs/benchmarks.md). So
    they are replaced by their exact average over Dec(z_p), z_p ~ N(0, I) (seeded, the same every time).
    """
    decoder = copy.deepcopy(ema.module if ema is not None else model.decoder)
    if cfg.recalibrate_bn > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(cfg.seed + 0x5EED)
        shape = (max(cfg.batch_size, 2), model.config.latent_dim)
        z_batches = (torch.randn(shape, generator=generator, device=device) for _ in range(cfg.recalibrate_bn))
        recalibrate_batchnorm(decoder, z_batches)
    return decoder.eval()


def final_evaluation(model: VAEGAN, decoder: nn.Module, heldout: torch.Tensor, step: int, out: Path) -> dict[str, Any]:
    """Evaluate on held-out images in eval mode, write eval.json, log the figures."""
    discriminator = model.discriminator if model.objective.mode == "vaegan" else None
    with evaluating(model):
        result = {"step": step, **evaluate(model.encoder, decoder, discriminator, heldout)}
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    logger.info(
        "held-out (%d images): reconstruction mse %.5f, kl %.3f, Dis_l distance %s",
        result["images"],
        result["mse"],
        result["kl"],
        "-" if result["dis_l_distance"] is None else f"{result['dis_l_distance']:.4g}",
    )
    return result


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (the initial weights come from torch's global generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one step's z draws: a fixed function of (seed, rank, step)."""
    return ((seed * 1_000_003 + rank) * 1_000_033 + step) % 2**63


def prepare_out(out: Path, fresh: bool) -> None:
    """Create the run folder; UsageError when it cannot be."""
    try:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc})") from exc
    if fresh and (out / CHECKPOINT_NAME).exists():
        logger.warning("%s already holds a run; starting afresh replaces it (--resume continues it)", out)


def load_data(cfg: TrainConfig, model_config: ModelConfig, processes: distributed.Processes) -> ImageData:
    """Every rank loads the dataset; rank 0 first, so only it downloads."""
    workers = cfg.num_workers if cfg.num_workers is not None else (os.cpu_count() or 1)  # decoding files

    def load() -> ImageData:
        return load_dataset(cfg.dataset, model_config.channels, model_config.image_size, cfg.data_dir, workers)

    data = load() if processes.is_main else None
    distributed.barrier(processes)
    return data if data is not None else load()


def per_rank_batch(batch_size: int, world: int) -> int:
    """--batch-size is the global batch; each of ``world`` processes takes an equal share."""
    if batch_size % world:
        raise UsageError(f"--batch-size {batch_size} does not split evenly over {world} processes")
    return batch_size // world


def planned_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The step the run ends at: --max-steps or the end of the last epoch, whichever comes first."""
    by_epochs = cfg.epochs * steps_per_epoch if cfg.epochs is not None else None
    candidates = [s for s in (by_epochs, cfg.max_steps) if s is not None]
    return min(candidates)


def precision(amp: bool, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """--amp: bf16 autocast on CPU and on GPUs that support it, else fp16 with a GradScaler.

    On a CPU with AVX512-BF16 a mnist32 VAE-GAN step runs ~2.5x faster (docs/benchmarks.md).
    """
    if not amp:
        return None, None
    if device.type != "cuda":
        return torch.bfloat16, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def make_loader(
    dataset: ImageArrayDataset, sampler: ResumableSampler, per_rank: int, workers: int | None, device: torch.device
) -> DataLoader:
    """Whole uint8 batches; workers and pinned memory on CUDA (auto: 4 workers there, none on CPU)."""
    cuda = device.type == "cuda"
    n_workers = workers if workers is not None else (4 if cuda else 0)
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=True,
        num_workers=n_workers,
        pin_memory=cuda,
        collate_fn=keep_batch,
        persistent_workers=n_workers > 0,
        generator=torch.Generator().manual_seed(0),  # leaves the global generator untouched
    )


def to_model_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1] on the device (converted there: 4x less to copy), channels last."""
    x = batch.to(device, non_blocking=True).float() / 127.5 - 1.0
    return x.contiguous(memory_format=torch.channels_last)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm on its running statistics) for the block, then back to training."""
    model.eval()
    try:
        yield
    finally:
        model.train()


def build_checkpoint(
    cfg: TrainConfig,
    model_config: ModelConfig,
    model: VAEGAN,
    optimizers: Optimizers,
    scaler: torch.amp.GradScaler | None,
    ema: AveragedModel | None,
    position: Position,
    steps_per_epoch: int,
    data: ImageData,
    eval_result: dict[str, Any] | None,
) -> dict[str, Any]:
    """The checkpoint dict: plain types and tensors only (loads with weights_only=True)."""
    epoch, batch = position.epoch, position.batch
    if batch == steps_per_epoch:  # saved on an epoch's last step: the next epoch starts at 0
        epoch, batch = epoch + 1, 0
    return {
        "format_version": checkpoint.FORMAT_VERSION,
        "step": position.step,
        "epoch": epoch,
        "preset": cfg.preset,
        "model_config": model_config.to_dict(),
        "objective": cfg.objective.to_dict(),
        "train_config": cfg.to_dict(),
        "dataset": cfg.dataset,
        "preprocessing": data.preprocessing,
        "models": {name: getattr(model, name).state_dict() for name in NETWORKS},
        "optimizers": optimizers.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "decoder_ema": None if ema is None else {"updates": int(ema.n_averaged), "state": ema.module.state_dict()},
        "rng": checkpoint.capture_rng(),
        "data_position": {"epoch": epoch, "batch": batch, "index": batch * cfg.batch_size},
        "eval": eval_result,
    }


def resume(
    cfg: TrainConfig,
    model_config: ModelConfig,
    model: VAEGAN,
    optimizers: Optimizers,
    scaler: torch.amp.GradScaler | None,
    ema: AveragedModel | None,
    steps_per_epoch: int,
) -> Position:
    """Load ``cfg.resume`` into the model, optimizers, scaler and random generators."""
    assert cfg.resume is not None
    state = checkpoint.load(cfg.resume)
    checkpoint.check_resumable(state, cfg.to_dict(), model_config.to_dict())
    for name in NETWORKS:
        getattr(model, name).load_state_dict(state["models"][name])
    optimizers.load_state_dict(state["optimizers"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    if ema is not None and state.get("decoder_ema"):
        ema.module.load_state_dict(state["decoder_ema"]["state"])
        ema.n_averaged.fill_(state["decoder_ema"]["updates"])
    checkpoint.restore_rng(state["rng"])
    where = state["data_position"]
    if where["batch"] >= steps_per_epoch:
        raise UsageError(f"--resume {cfg.resume}: data position {where} does not fit this dataset")
    return Position(step=state["step"], epoch=where["epoch"], batch=where["batch"])


def export(cfg: TrainConfig, ckpt_path: Path) -> Path:
    """Write the bundle with trainer.export (imported here: it pulls in onnx)."""
    assert cfg.export_to is not None and cfg.name is not None
    try:
        from trainer.export import export_checkpoint
    except ImportError as exc:
        raise TrainingError(f"--export-to: trainer.export is not available ({exc})") from exc
    bundle = export_checkpoint(ckpt_path, cfg.export_to, cfg.name, cfg.version)
    logger.info("exported %s", bundle)
    return bundle
