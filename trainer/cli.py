"""vaegan-train: the command line. ``parse_args`` builds a TrainConfig, ``main`` runs it.

Bad input ends with one line on stderr and exit status 2; a run that cannot go on (a checkpoint
that cannot be written) with one line and status 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from model_core.config import PRESETS
from trainer.config import TrainConfig, TrainingError, UsageError
from trainer.datasets import parse_dataset
from trainer.distributed import launched_world_size
from trainer.mnist import DataError
from trainer.progress import TqdmLoggingHandler
from trainer.recipes import RECIPE_OPTIONS, RECIPES, recipe_options

PROG = "vaegan-train"
DEFAULT_EPOCHS = 10  # when neither --epochs nor --max-steps is given


class _Parser(argparse.ArgumentParser):
    """argparse that reports an error in one line (no usage block) and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type, test: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` that must pass ``test``, else '<wanted>, got <text>'."""

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    return convert


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a positive number")
non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")


def build_parser() -> argparse.ArgumentParser:
    """The flags of vaegan-train (DESIGN.md, Commands)."""
    p = _Parser(prog=PROG, description="Train a VAE-GAN (Larsen et al. 2016) and write runs/NAME.")
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="network sizes")
    p.add_argument(
        "--dataset", required=True, help="embedded-mnist[:tune] | mnist | fashion-mnist | folder:PATH | celeba:PATH"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/NAME")
    p.add_argument(
        "--mode",
        default="vaegan",
        choices=["vaegan", "vae"],
        help="vaegan (Dis_l likelihood + GAN) or the plain VAE baseline",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help=f"passes over the data (default {DEFAULT_EPOCHS}, unbounded when only --max-steps is given)",
    )
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    p.add_argument("--batch-size", type=positive_int, default=64, help="global batch (default 64)")
    p.add_argument("--lr", type=positive_float, default=3e-4, help="RMSProp learning rate (3e-4)")
    p.add_argument(
        "--recipe",
        default="default",
        choices=sorted(RECIPES),
        help="paper: the paper and its authors' settings; default: the measured best (docs/benchmarks.md). "
        "The flags below override it",
    )
    p.add_argument("--gamma", type=non_negative_float, help="weight of L_llike against L_GAN for the decoder")
    p.add_argument("--equilibrium", action=argparse.BooleanOptionalAction, help="the authors' Dec/Dis balance rule")
    p.add_argument(
        "--gan-inputs",
        choices=["three", "two"],
        help="three: x, Dec(z), Dec(z_p) (paper); two: x, Dec(z_p) (authors' code)",
    )
    p.add_argument("--generator-loss", choices=["minimax", "nonsaturating"])
    p.add_argument(
        "--dis-passes",
        choices=["joint", "separate"],
        help="joint: one Dis call on real and fake images (paper); separate: a call each (BN never mixes them)",
    )
    p.add_argument("--dis-lr-scale", type=positive_float, help="Dis learning rate = --lr times this")
    p.add_argument(
        "--decoder-ema",
        type=_number(float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
        metavar="DECAY",
        help="sample and export from an EMA of the decoder's weights with this decay (0: the last weights)",
    )
    p.add_argument(
        "--pixel-sigma",
        type=positive_float,
        help="--mode vae: std of the pixel Gaussian p(x|z) on [-1, 1] pixels (paper: 1.0)",
    )
    p.add_argument(
        "--recalibrate-bn",
        type=non_negative_int,
        default=50,
        metavar="N",
        help="after training, average the decoder's BN statistics exactly over N batches of prior "
        "latents, so eval mode and the export sample like batch statistics (default 50; 0: keep the running ones)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--amp", action="store_true", help="bf16 autocast (CPU with AVX512-BF16, recent GPUs), else fp16 on CUDA"
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--resume", type=Path, help="continue exactly from this checkpoint.pt")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps (500)")
    p.add_argument("--log-every", type=positive_int, default=50, help="steps between metrics lines (50)")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="downloads go here (data)")
    p.add_argument("--num-workers", type=non_negative_int, help="DataLoader workers (default: 4 on CUDA, 0 on CPU)")
    p.add_argument(
        "--eval-images", type=positive_int, help="held-out images for eval.json (default: all, at most 10,000)"
    )
    p.add_argument("--export-to", type=Path, help="models folder: export a bundle after training")
    p.add_argument("--name", help="bundle name (with --export-to)")
    p.add_argument("--version", help="bundle version (with --export-to; default: model_core.export's)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse and check the flags; exit with status 2 and one line when they cannot work."""
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        parse_dataset(a.dataset)
    except UsageError as exc:
        parser.error(str(exc))
    options = recipe_options(a.recipe, {k: getattr(a, k) for k in RECIPE_OPTIONS})
    if options["equilibrium"] and launched_world_size() > 1:
        parser.error("--equilibrium is not supported under torchrun: each process would gate differently")
    if (a.export_to is None) != (a.name is None):
        parser.error("--export-to and --name go together")
    if a.version is not None and a.export_to is None:
        parser.error("--version needs --export-to and --name")
    if a.export_to is not None and importlib.util.find_spec("onnx") is None:
        parser.error("--export-to needs onnx (install the [train] extra)")
    epochs = a.epochs if (a.epochs is not None or a.max_steps is not None) else DEFAULT_EPOCHS
    return TrainConfig(
        preset=a.preset,
        dataset=a.dataset,
        out=a.out,
        mode=a.mode,
        epochs=epochs,
        max_steps=a.max_steps,
        batch_size=a.batch_size,
        lr=a.lr,
        recipe=a.recipe,
        **options,
        recalibrate_bn=a.recalibrate_bn,
        device=a.device,
        amp=a.amp,
        seed=a.seed,
        resume=a.resume,
        checkpoint_every=a.checkpoint_every,
        log_every=a.log_every,
        data_dir=a.data_dir,
        num_workers=a.num_workers,
        eval_images=a.eval_images,
        export_to=a.export_to,
        name=a.name,
        version=a.version,
    )


def configure_logging() -> None:
    """INFO lines on stderr (through tqdm, so the bar stays whole); only warnings from ranks > 0."""
    handler = TqdmLoggingHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    rank = int(os.environ.get("RANK", "0"))
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def _fail(status: int, exc: Exception) -> int:
    """One line on stderr for an expected failure; the exit status."""
    sys.stderr.write(f"{PROG}: error: {' '.join(str(exc).splitlines())}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run vaegan-train; return the exit status (0 ok, 1 the run failed, 2 bad input)."""
    cfg = parse_args(argv)
    configure_logging()
    from trainer.loop import train  # after parsing: --help and flag errors stay fast

    try:
        train(cfg)
    except (UsageError, DataError) as exc:
        return _fail(2, exc)
    except (TrainingError, OSError) as exc:  # e.g. the disk filled up under the run folder
        return _fail(1, exc)
    except KeyboardInterrupt:
        return _fail(130, Exception("interrupted"))
    return 0
