"""onnxruntime vs PyTorch eager for the decoder and the encoder, both presets, batch 1/16/64.

Every candidate of one (preset, network, batch) case is timed in the same round, round after
round (interleaved, so a neighbour's burst of load hits them all alike), and the medians over
rounds are compared. Candidates:

- ``eager``: the eval-mode PyTorch network (what a user of the checkpoint would run);
- ``plain``: the same module exported as it is (batch norm left to the exporter);
- the export's variants (model_core.export): batch norm folded, and for the decoder
  ``convtranspose``, ``phase1`` or ``phase4`` upsampling;
- at n=16 (not with --quick), the shipped variant under other session options: intra-op threads,
  thread spinning, graph optimisation level.

Every other session uses the options the export recommends (model_core.bundle.OrtSessionOptions().model_dump(),
recorded in manifest.export and used by the service) except that, like eager PyTorch, it runs
--threads intra-op threads: the keys compare the runtimes, not thread counts. On a CPU shared
with other busy processes, compare with --threads 1: a 2-thread run there is slowed many times.

Keys (last line, one JSON object): ``ort_over_eager_{decode,encode}_{paper64,mnist32}`` = eager
time / time of what the export ships (its default variant and recommended session options) at
n=16. Weights are random (seeded) with non-trivial batch-norm statistics: speed does not depend
on what was learned. Run: ``python -m bench.runtime [--quick] [--out bench/results/runtime.json]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from model_core import bundle, export, inference
from model_core.config import PRESETS
from model_core.vaegan import VAEGAN

BATCHES = (1, 16, 64)
KEY_BATCH = 16
DECODER_VARIANTS: tuple[inference.DecoderVariant, ...] = ("convtranspose", "phase1", "phase4")
SESSION_SWEEP: dict[
    str, dict[str, Any]
] = {  # name -> changes to the recommended session options (intra threads None: --threads)
    "1 thread": {"intra_op_num_threads": 1},
    "threads+spin": {"intra_op_num_threads": None, "allow_spinning": True},
    "EXTENDED": {"graph_optimization_level": "ORT_ENABLE_EXTENDED"},
    "BASIC": {"graph_optimization_level": "ORT_ENABLE_BASIC"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and presets sizes kept (<= 90 s)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for eager and ORT")
    p.add_argument("--presets", nargs="+", default=["mnist32", "paper64"], choices=sorted(PRESETS))
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5 quick, 15 full)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON object here")
    return p.parse_args(argv)


def seeded_model(preset: str) -> VAEGAN:
    """Random weights with non-trivial batch-norm statistics (as after training)."""
    torch.manual_seed(0)
    model = VAEGAN(PRESETS[preset])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def session(data: bytes, changes: dict[str, Any], threads: int) -> ort.InferenceSession:
    """A session with the recommended options, ``changes`` applied (threads None: ``threads``)."""
    opts = {k: threads if v is None else v for k, v in changes.items()}
    return export.ort_session(data, opts)


def run_session(sess: ort.InferenceSession, input_name: str, x: np.ndarray) -> Any:
    return sess.run(None, {input_name: x})


def candidates(
    model: VAEGAN, net: str, threads: int, sweep: bool
) -> dict[str, tuple[Callable[[np.ndarray], Any], float]]:
    """name -> (run on a numpy batch, max |ORT - eager| on a batch of 7) for one network."""
    cfg = model.config
    if net == "decode":
        example = torch.randn(7, cfg.latent_dim, generator=torch.Generator().manual_seed(1))
        eager_module: nn.Module = model.decoder
        graphs: dict[str, nn.Module] = {"plain": model.decoder}
        graphs |= {v: inference.InferenceDecoder(model.decoder, v) for v in DECODER_VARIANTS}
        names: tuple[tuple[str, ...], tuple[str, ...]] = (("z",), ("image",))
        shipped: str = inference.default_decoder_variant(cfg)
    else:
        example = torch.rand(7, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
        eager_module = model.encoder
        graphs = {"plain": model.encoder, "folded": inference.InferenceEncoder(model.encoder)}
        names = (("image",), ("mu", "logvar"))
        shipped = "folded"

    with torch.inference_mode():
        reference = eager_module(example)
        reference = reference[0] if isinstance(reference, tuple) else reference

    def eager(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return eager_module(torch.from_numpy(x))

    out: dict[str, tuple[Callable[[np.ndarray], Any], float]] = {"eager": (eager, 0.0)}
    for name, module in graphs.items():
        with torch.no_grad():
            data = export.to_onnx(module, example[:2], *names)
        variants: dict[str, dict[str, Any]] = {name: {"intra_op_num_threads": None}}  # as many threads as eager
        if name == shipped and sweep:
            variants |= {f"{name}[{k}]": v for k, v in SESSION_SWEEP.items()}
        for label, changes in variants.items():
            sess = session(data, changes, threads)
            err = float(np.max(np.abs(sess.run([names[1][0]], {names[0][0]: example.numpy()})[0] - reference.numpy())))
            out[label] = (functools.partial(run_session, sess, names[0][0]), err)
    return out


def calibrate(fn: Callable[[], Any], min_seconds: float) -> int:
    """Calls per timing sample so that one sample lasts about ``min_seconds``."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, int(min_seconds / once))


def measure(runs: Mapping[str, Callable[[], Any]], rounds: int, min_seconds: float, budget: float) -> dict[str, float]:
    """Median seconds per call of each candidate over interleaved rounds (the order rotates each round).

    Fewer rounds (at least one) when a round would not fit ``budget`` seconds: a loaded machine
    slows every call, and --quick must stay within its time.
    """
    for fn in runs.values():
        fn()  # warm-up: first-call allocations and ORT's lazy initialisation
    start = time.perf_counter()
    reps = {name: calibrate(fn, min_seconds) for name, fn in runs.items()}
    one_round = max(time.perf_counter() - start, min_seconds * len(runs))
    rounds = max(1, min(rounds, int(budget / one_round)))
    samples: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            start = time.perf_counter()
            for _ in range(reps[name]):
                runs[name]()
            samples[name].append((time.perf_counter() - start) / reps[name])
    return {name: statistics.median(s) for name, s in samples.items()}


@dataclass(frozen=True)
class Timing:
    """How every case is timed: torch and onnxruntime threads, the session sweep, rounds and budget."""

    threads: int
    sweep: bool  # also the shipped variant under other session options (at KEY_BATCH)
    rounds: int
    min_seconds: float  # of one timed repetition
    budget: float  # seconds of timing per (network, preset, batch) case


def time_network(model: VAEGAN, preset: str, net: str, timing: Timing) -> tuple[dict[str, Any], float]:
    """Every candidate of one network at every batch: its parity, ms per batch, and the key at KEY_BATCH."""
    cfg = model.config
    cands = candidates(model, net, timing.threads, sweep=timing.sweep)
    shipped = inference.default_decoder_variant(cfg) if net == "decode" else "folded"
    parity = {name: err for name, (_, err) in cands.items() if name != "eager"}
    result: dict[str, Any] = {"parity_max_abs": parity, "ms": {}}
    key = float("nan")
    rng = np.random.default_rng(0)
    for n in BATCHES:
        shape = (n, cfg.latent_dim) if net == "decode" else (n, cfg.channels, cfg.image_size, cfg.image_size)
        x = (
            rng.standard_normal(shape).astype(np.float32)
            if net == "decode"
            else rng.uniform(-1, 1, shape).astype(np.float32)
        )
        chosen = {k: v for k, v in cands.items() if n == KEY_BATCH or "[" not in k}
        runs = {k: functools.partial(f, x) for k, (f, _) in chosen.items()}
        medians = measure(runs, timing.rounds, timing.min_seconds, timing.budget)
        result["ms"][n] = {k: round(v * 1e3, 3) for k, v in medians.items()}
        ratios = {k: medians["eager"] / v for k, v in medians.items() if k != "eager"}
        print(
            f"{net:6s} {preset:8s} n={n:<3d} eager {medians['eager'] * 1e3:8.2f} ms | "
            + " ".join(f"{k} {r:.2f}x" for k, r in ratios.items()),
            flush=True,
        )
        if n == KEY_BATCH:
            key = round(ratios[shipped], 3)
    return result, key


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 11)
    min_seconds = 0.01 if args.quick else 0.05
    budget = 4.0 if args.quick else 60.0  # seconds of timing per (network, preset, batch) case
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    keys: dict[str, float] = {}

    timing = Timing(args.threads, not args.quick, rounds, min_seconds, budget)
    for preset in args.presets:
        model = seeded_model(preset)
        for net in ("decode", "encode"):
            result, key = time_network(model, preset, net, timing)
            results[f"{net}_{preset}"], keys[f"ort_over_eager_{net}_{preset}"] = result, key

    summary = {
        **keys,
        "shipped": {
            "decoder_variant": {p: inference.default_decoder_variant(PRESETS[p]) for p in args.presets},
            "ort_session": bundle.OrtSessionOptions().model_dump(),
        },
        "threads": args.threads,
        "rounds": rounds,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
