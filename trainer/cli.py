"""vaegan-train: the command line. ``parse_args`` builds a TrainConfig, ``main`` runs it.

Bad input ends with one line on stderr and exit status 2; a run that cannot go on (a checkpoint
that cannot be written) with one line and status 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, get_args

from model_core.config import PRESETS, DisConditioning, DisPasses, GanInputs, GeneratorLoss, Mode, ObjectiveConfig
from trainer.config import Device, TrainConfig, TrainingError, UsageError
from trainer.datasets import dataset_forms, parse_dataset
from trainer.distributed import launched_world_size
from trainer.mnist import DataError
from trainer.progress import TqdmLoggingHandler
from trainer.recipes import DEFAULT_RECIPE, OBJECTIVE_OPTIONS, RECIPE_OPTIONS, RECIPES, recipe_options

PROG = "vaegan-train"
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


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


def _prior_components(text: str) -> int | None:
    """--prior-components: "auto" (None) or an integer >= 0."""
    return None if text == "auto" else int(non_negative_int(text))


def build_parser() -> argparse.ArgumentParser:
    """The flags of vaegan-train (README.md, "Train and export"); a flag not given is absent (TrainConfig's default)."""
    p = _Parser(
        prog=PROG,
        description="Train a VAE-GAN (Larsen et al. 2016) and write runs/NAME.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="network sizes (tiny: test scale)")
    p.add_argument("--dataset", required=True, help=dataset_forms(" | "))
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/NAME")
    _model_flags(p)
    p.add_argument(
        "--epochs",
        type=positive_int,
        help=f"passes over the data (default {DEFAULTS['epochs']}, unbounded when only --max-steps is given)",
    )
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    p.add_argument("--batch-size", type=positive_int, help=f"global batch ({DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"RMSProp learning rate ({DEFAULTS['lr']})")
    _recipe_flags(p)
    p.add_argument(
        "--recalibrate-bn",
        type=non_negative_int,
        metavar="N",
        help="after training, average the decoder's BN statistics exactly over N batches of prior latents, so eval "
        f"mode and the export sample like batch statistics ({DEFAULTS['recalibrate_bn']}; 0: the running ones)",
    )
    p.add_argument(
        "--prior-components",
        type=_prior_components,
        metavar="auto|N",
        help="the latent prior fitted after training (a Gaussian mixture over mu(x), what /sample draws from): "
        "auto (default) chooses its size by held-out likelihood, N fixes it, 0 fits none (N(0, I) only)",
    )
    p.add_argument("--device", choices=get_args(Device), help=f"({DEFAULTS['device']})")
    p.add_argument(
        "--amp", action="store_true", help="bf16 autocast (CPU with AVX512-BF16, recent GPUs), else fp16 on CUDA"
    )
    p.add_argument("--seed", type=non_negative_int, help=f"({DEFAULTS['seed']})")
    _run_folder_flags(p)
    p.add_argument("--export-to", type=Path, help="models folder: export a bundle after training")
    p.add_argument("--name", help="bundle name (with --export-to)")
    p.add_argument("--version", help="bundle version (with --export-to; default: model_core.export's)")
    return p


def _model_flags(p: argparse.ArgumentParser) -> None:
    """What the networks are besides their preset: class-conditional or not, and the VAE baseline."""
    p.add_argument(
        "--conditional",
        action="store_true",
        help="class-conditional: one-hot labels into Enc, Dec and Dis (embedded-mnist, mnist, fashion-mnist, "
        "folder:PATH with one sub-folder per class)",
    )
    p.add_argument(
        "--dis-conditioning",
        choices=get_args(DisConditioning),
        help=f"how a conditional Dis sees the label ({DEFAULTS['dis_conditioning']}: projection plus a class head "
        "(AC-GAN); planes: vae-gan-tf's label planes)",
    )
    p.add_argument(
        "--mode", choices=get_args(Mode), help="vaegan (Dis_l likelihood + GAN, default) or the plain VAE baseline"
    )


def _run_folder_flags(p: argparse.ArgumentParser) -> None:
    """What the run writes and reads besides the bundle: resume, checkpoints, snapshots, metrics, data."""
    p.add_argument("--resume", type=Path, help="continue exactly from this checkpoint.pt")
    p.add_argument("--checkpoint-every", type=positive_int, help=f"steps ({DEFAULTS['checkpoint_every']})")
    p.add_argument(
        "--snapshot-every",
        type=positive_int,
        metavar="N",
        help="also keep the checkpoint of every N-th step as snapshots/stepNNNNNN.pt (vaegan-export and "
        "bench.quality --curve read them)",
    )
    p.add_argument("--log-every", type=positive_int, help=f"steps between metrics lines ({DEFAULTS['log_every']})")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files to runs/NAME/tensorboard (the [tensorboard] extra)",
    )
    p.add_argument("--data-dir", type=Path, help=f"downloads go here ({DEFAULTS['data_dir']})")
    p.add_argument("--num-workers", type=non_negative_int, help="DataLoader workers (default: 4 on CUDA, 0 on CPU)")
    p.add_argument(
        "--eval-images", type=positive_int, help="held-out images for eval.json (default: all, at most 10,000)"
    )


def _recipe_flags(p: argparse.ArgumentParser) -> None:
    """--recipe and the options it sets (trainer/recipes.py); each flag overrides its recipe."""
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="default (the default): the measured best (docs/benchmarks.md); paper: the paper and its authors' "
        "settings. The flags below override it",
    )
    p.add_argument("--gamma", type=non_negative_float, help="weight of L_llike against L_GAN for the decoder")
    p.add_argument("--equilibrium", action=argparse.BooleanOptionalAction, help="the authors' Dec/Dis balance rule")
    p.add_argument(
        "--gan-inputs", choices=get_args(GanInputs), help="three: x, Dec(z), Dec(z_p) (paper); two: x, Dec(z_p)"
    )
    p.add_argument("--generator-loss", choices=get_args(GeneratorLoss))
    p.add_argument(
        "--dis-passes",
        choices=get_args(DisPasses),
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
        "--pixel-sigma", type=positive_float, help="--mode vae: std of the pixel Gaussian p(x|z) on [-1, 1] pixels"
    )
    p.add_argument(
        "--r1-gamma",
        type=non_negative_float,
        metavar="GAMMA",
        help="lazy R1 penalty: every --r1-every steps Dis also descends GAMMA/2 ||grad_x Dis(x)||^2 on real "
        "images (Mescheder et al. 2018; 0: off)",
    )
    p.add_argument(
        "--r1-every", type=positive_int, metavar="N", help=f"steps between R1 steps ({DEFAULTS['r1_every']})"
    )
    p.add_argument(
        "--class-weight",
        type=non_negative_float,
        help="--conditional, --dis-conditioning auxiliary: weight of the class head's cross-entropy for Dis and Dec",
    )
    p.add_argument("--kl-weight", type=positive_float, help="weight of the KL in the encoder's objective (paper: 1)")


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse and check the flags; exit with status 2 and one line when they cannot work."""
    parser = build_parser()
    a = vars(parser.parse_args(argv))  # the flags given, and the required ones
    try:
        kind, _ = parse_dataset(a["dataset"])
    except UsageError as exc:
        parser.error(str(exc))
    if a.get("conditional") and kind == "celeba":
        parser.error("--conditional needs labelled data: celeba: images carry no class labels here")
    if "dis_conditioning" in a and not a.get("conditional"):
        parser.error("--dis-conditioning needs --conditional")
    recipe = a.pop("recipe", DEFAULT_RECIPE)
    options = recipe_options(recipe, {k: a.pop(k) for k in RECIPE_OPTIONS if k in a})
    if options["equilibrium"] and launched_world_size() > 1:
        parser.error("--equilibrium is not supported under torchrun: each process would gate differently")
    if ("export_to" in a) != ("name" in a):
        parser.error("--export-to and --name go together")
    if "version" in a and "export_to" not in a:
        parser.error("--version needs --export-to and --name")
    if "export_to" in a and importlib.util.find_spec("onnx") is None:
        parser.error("--export-to needs onnx (install the [train] extra)")
    if a.get("tensorboard") and importlib.util.find_spec("tensorboard") is None:
        parser.error("--tensorboard needs the tensorboard package (install the [tensorboard] extra)")
    if "max_steps" in a and "epochs" not in a:
        a["epochs"] = None  # only --max-steps bounds the run
    mode = {"mode": a.pop("mode")} if "mode" in a else {}
    objective = ObjectiveConfig(**mode, **{k: options.pop(k) for k in OBJECTIVE_OPTIONS})
    return TrainConfig(objective=objective, recipe=recipe, **options, **a)


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
