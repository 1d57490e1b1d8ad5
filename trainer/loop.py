"""The training run: Algorithm 1 over a dataset, with checkpoints, grids, metrics and evaluation.

``train(cfg)`` reads top to bottom: setup, resume, the loop, then the final evaluation, checkpoint
and export. Everything random is a function of the seed: the initial weights, each epoch's data
order (seed, epoch) and the z of each step (seed, rank, step), so a resumed run is exact.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from model_core.averaging import ema_model
from model_core.config import PRESETS, ModelConfig
from model_core.regularization import r1_step
from model_core.vaegan import VAEGAN, Algorithm1, algorithm1_step
from trainer import checkpoint, distributed, grids, sampling
from trainer.checkpoint import NETWORKS, TrainingState
from trainer.config import TrainConfig, TrainingError, UsageError
from trainer.datasets import (
    ImageArrayDataset,
    ImageData,
    ResumableSampler,
    load_dataset,
    make_loader,
    onehot,
    to_model_input,
)
from trainer.evaluation import evaluating, final_evaluation
from trainer.prior import run_latents
from trainer.progress import LossMeter, MetricsFile, Progress
from trainer.provenance import write_run_json
from trainer.seeding import seed_everything, step_seed
from trainer.tensorboard import TensorBoard

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOTS = "snapshots"  # snapshots/stepNNNNNN.pt: mid-run checkpoints kept for the steps curve


@dataclass
class Run:
    """One run's pieces: its config and processes, the training state, the data and its step budget."""

    cfg: TrainConfig
    processes: distributed.Processes
    state: TrainingState
    algorithm1: Algorithm1  # the networks as the step calls them (DDP-wrapped when distributed), precision
    data: ImageData
    per_rank: int  # batch of each process
    steps_per_epoch: int
    total_steps: int
    board: TensorBoard | None = None  # --tensorboard (rank 0), opened by train_epochs

    @property
    def ckpt_path(self) -> Path:
        return self.cfg.out / CHECKPOINT_NAME

    def save(self, path: Path | None = None, **final: Any) -> None:
        """Rank 0 writes the checkpoint of the current position (atomically) to ``path`` (default checkpoint.pt).

        ``final``: the finished run's eval_result, class_means and prior (trainer.checkpoint.capture).
        """
        if self.processes.is_main:
            ckpt = checkpoint.capture(
                self.state,
                self.cfg,
                self.steps_per_epoch,
                self.data.preprocessing,
                class_names=self.data.class_names,
                finished=bool(final),
                **final,
            )
            checkpoint.save_atomic(ckpt, path or self.ckpt_path)

    def summary(self) -> str:
        """One line: the preset, the data, the devices and the step budget."""
        cfg, data, processes = self.cfg, self.data, self.processes
        return (
            f"{cfg.preset} on {cfg.dataset} ({len(data.train)} train / {len(data.heldout)} held-out images, "
            f"{data.skipped} skipped) on {processes.device} x{processes.world}: {self.total_steps} steps of "
            f"{cfg.batch_size}, {self.steps_per_epoch} per epoch"
        )

    def labels(self, which: str, n: int | None = None) -> torch.Tensor | None:
        """The first ``n`` (None: all) "train" or "heldout" labels as a tensor, None for unlabelled data."""
        labels = self.data.train_labels if which == "train" else self.data.heldout_labels
        return None if labels is None else torch.from_numpy(labels[:n])


def train(cfg: TrainConfig) -> Path:
    """Train as ``cfg`` says; return the path of the final checkpoint."""
    processes = distributed.setup(cfg.device)
    try:
        return _train(cfg, processes)
    finally:
        distributed.teardown(processes)


def _train(cfg: TrainConfig, processes: distributed.Processes) -> Path:
    # Setup: seeds, output folder, data (rank 0 downloads first), model, optimizers, precision.
    run = setup(cfg, processes)

    # Resume: weights, optimizer, scaler and EMA states, random states and the data position.
    if cfg.resume is not None:
        checkpoint.restore(run.state, cfg.resume, cfg, run.steps_per_epoch)
        where = run.state.position
        logger.info("resumed %s at step %d (epoch %d, batch %d)", cfg.resume, where.step, where.epoch, where.batch)

    # Train: Algorithm 1, one step per batch, until the step budget or the last epoch ends.
    train_epochs(run)

    # Finish: held-out evaluation, eval.json, the final checkpoint, then the bundle.
    model, ema = run.state.model, run.state.ema
    if not distributed.replicas_agree({n: getattr(model, n) for n in NETWORKS}, processes):
        logger.warning("DDP: the processes' weights differ; the checkpoint holds rank 0's")
    decoder = sampling.sampling_decoder(model, ema, cfg, processes.device)
    (ema.module if ema is not None else model.decoder).load_state_dict(decoder.state_dict())
    if processes.is_main:
        heldout, labels = torch.from_numpy(run.data.heldout[: cfg.eval_images]), run.labels("heldout", cfg.eval_images)
        result = final_evaluation(model, decoder, heldout, labels, run.state.position.step, cfg.out)
        # The latents of the training split: per-class means (labelled data) and the fitted prior.
        means, prior = run_latents(model, run.data.train, run.data.train_labels, cfg.seed, cfg.prior_components)
        run.save(eval_result=result, class_means=means, prior=prior)
        logger.info("wrote %s", run.ckpt_path)
        if run.board is not None:
            run.board.close(result)
        if cfg.export_to is not None:
            export(cfg, run.ckpt_path)
    distributed.barrier(processes)
    return run.ckpt_path


def setup(cfg: TrainConfig, processes: distributed.Processes) -> Run:
    """Seeds, the run folder, the data, the model in its memory format, optimizers, EMA and precision."""
    device = processes.device
    model_config = PRESETS[cfg.preset]
    seed_everything(cfg.seed)
    if processes.is_main:
        prepare_out(cfg.out, fresh=cfg.resume is None)
        write_run_json(cfg, device, processes.world)
    data = load_data(cfg, model_config, processes)
    if cfg.conditional:
        if not data.labelled:
            raise UsageError(
                f"--conditional needs labelled data: {cfg.dataset} has none "
                "(a folder: dataset is labelled when it holds one sub-folder per class)"
            )
        model_config = replace(model_config, num_classes=len(data.class_names), dis_conditioning=cfg.dis_conditioning)
    per_rank = per_rank_batch(cfg.batch_size, processes.world)
    steps_per_epoch = (len(data.train) // processes.world) // per_rank
    if steps_per_epoch == 0:
        raise UsageError(f"{cfg.dataset}: {len(data.train)} training images, fewer than one batch of {cfg.batch_size}")
    model = VAEGAN(model_config, cfg.objective).to(device)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster convs, CPU and GPU
    torch.backends.cudnn.benchmark = device.type == "cuda"
    autocast_dtype, scaler = distributed.precision(cfg.amp, device)
    state = TrainingState(
        model=model,
        optimizers=model.make_optimizers(cfg.lr, cfg.dis_lr_scale),
        scaler=scaler,
        ema=ema_model(model.decoder, cfg.decoder_ema) if cfg.decoder_ema > 0 else None,
    )
    nets = {name: distributed.wrap(getattr(model, name), processes) for name in NETWORKS}
    discriminator = nets["discriminator"] if cfg.mode == "vaegan" else None
    algorithm1 = Algorithm1(
        nets["encoder"], nets["decoder"], discriminator, state.optimizers, cfg.objective, scaler, autocast_dtype
    )
    run = Run(cfg, processes, state, algorithm1, data, per_rank, steps_per_epoch, planned_steps(cfg, steps_per_epoch))
    logger.info("training %s", run.summary())
    return run


def train_epochs(run: Run) -> None:
    """The loop: batches in the order of (seed, epoch) from the current position on; metrics, checkpoints, grids."""
    cfg, processes, position = run.cfg, run.processes, run.state.position
    dataset = ImageArrayDataset(run.data.train, run.data.train_labels if cfg.conditional else None)
    sampler = ResumableSampler(dataset, cfg.seed, processes.rank, processes.world)
    loader = make_loader(dataset, sampler, run.per_rank, cfg.num_workers, processes.device)
    resumed_at = position.step if cfg.resume else None
    metrics = MetricsFile(cfg.out / "metrics.jsonl", resumed_at) if processes.is_main else None
    run.board = TensorBoard(cfg, resumed_at) if cfg.tensorboard and processes.is_main else None
    progress = Progress(run.total_steps, position.step, enabled=processes.is_main)
    meter = LossMeter()
    z_generator = torch.Generator(device=processes.device)
    while position.step < run.total_steps:
        sampler.set_position(position.epoch, position.batch * run.per_rank)
        for images, labels in loader:
            z_generator.manual_seed(step_seed(cfg.seed, processes.rank, position.step))
            x, y = (
                to_model_input(images, processes.device),
                onehot(labels, run.state.model.config.num_classes, processes.device),
            )
            meter.add(train_step(run, x, z_generator, y))
            position.step, position.batch = position.step + 1, position.batch + 1
            progress.advance()
            if position.step % cfg.log_every == 0 or position.step == run.total_steps:
                record = meter.take(cfg.batch_size, processes.average)  # the window's one host sync
                record = {"step": position.step, "epoch": round(position.step / run.steps_per_epoch, 4), **record}
                progress.report(record)
                if metrics is not None:
                    metrics.write(record)
                if run.board is not None:
                    run.board.scalars(record)
            if position.step == run.total_steps:
                break
            if position.step % cfg.checkpoint_every == 0:
                run.save()
            if cfg.snapshot_every and position.step % cfg.snapshot_every == 0 and processes.is_main:
                (cfg.out / SNAPSHOTS).mkdir(exist_ok=True)
                run.save(path=cfg.out / SNAPSHOTS / f"step{position.step:06d}.pt")
        if position.batch == run.steps_per_epoch:
            position.epoch, position.batch = position.epoch + 1, 0
            tag = f"epoch{position.epoch:03d}"
        else:
            tag = f"epoch{position.epoch + 1:03d}_step{position.step}"  # a partial last epoch
        if processes.is_main:
            paths = write_grids(run, tag)
            if run.board is not None:
                run.board.grids(paths, position.step)
    progress.close()


def train_step(
    run: Run, x: torch.Tensor, z_generator: torch.Generator, y: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """One step of Algorithm 1 on the batch ``x`` (labels ``y`` when conditional), a lazy R1 step when one is
    due (--r1-gamma), then the decoder's EMA follows."""
    state, cfg = run.state, run.cfg
    logs = algorithm1_step(run.algorithm1, x, y, z_generator)
    if run.algorithm1.discriminator is not None and cfg.r1_gamma and state.position.step % cfg.r1_every == 0:
        r1_step(state.model.discriminator, x, state.optimizers.dis, cfg.r1_gamma, cfg.r1_every, y)
    if state.ema is not None:
        state.ema.update_parameters(state.model.decoder)
    return logs


def write_grids(run: Run, tag: str) -> list[Path]:
    """The epoch's grids, drawn as the bundle will draw: the EMA decoder, BN recalibrated (a copy)."""
    model = run.state.model
    decoder = sampling.sampling_decoder(model, run.state.ema, run.cfg, run.processes.device)
    heldout = torch.from_numpy(run.data.heldout)
    with evaluating(model):
        return grids.write_epoch_grids(
            decoder, model.encoder, heldout, run.labels("heldout"), model.config, run.cfg.out / "samples", tag
        )


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
