"""What the fitted prior costs the service: its draw beside the decoder call of /sample?n=16, and the
drift score beside the encoder call of /encode.

Candidates are timed in interleaved rounds (bench.runtime.measure) on the published
pretrained/mnist32-vaegan bundle, in the service's own code (service/latents.py, service/priors.py)
and with the session options the bundle recommends:

- ``noise``: the seeded eps and u of one /sample?n=16 (all the standard prior needs);
- ``draw_fitted``: noise, then the fitted mixture's draw (what /sample adds for prior=fitted);
- ``decode``: decoder.onnx on those 16 latents;
- ``drift``: log E_q[p(z)] and typicality of one posterior (what /encode and /reconstruct add);
- ``encode``: encoder.onnx on one image.

Keys (last line, one JSON object): ``fitted_draw_over_decode`` = (draw_fitted - noise) / decode
(target <= 0.05), ``drift_over_encode`` = drift / encode. Run: ``python -m bench.prior [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.runtime import measure
from model_core.bundle import OrtSessionOptions, load_bundle, resolve
from service import latents
from service.labels import Classes
from service.priors import Priors

ROOT = Path(__file__).resolve().parent.parent
N = 16


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", type=Path, default=ROOT / "pretrained")
    p.add_argument("--name", default="mnist32-vaegan")
    p.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "prior.json")
    a = p.parse_args(argv)
    bundle = load_bundle(resolve(a.models_dir, a.name))
    priors = Priors.of(bundle, Classes.of(bundle))
    assert priors.fitted is not None, f"{a.name} has no fitted prior"
    options = OrtSessionOptions.model_validate(bundle.manifest.export.get("ort_session") or {}).to_ort()
    providers = ["CPUExecutionProvider"]
    decoder = ort.InferenceSession(str(bundle.file("decoder.onnx")), options, providers=providers)
    encoder = ort.InferenceSession(str(bundle.file("encoder.onnx")), options, providers=providers)
    dim = bundle.manifest.latent_dim
    eps, u = latents.noise(1, N, dim)
    z = priors.draw("fitted", eps, u).z
    image = np.random.default_rng(0).uniform(-1, 1, (1, 1, 32, 32)).astype(np.float32)
    mu, logvar = encoder.run(["mu", "logvar"], {"image": image})
    runs = {
        "noise": lambda: latents.noise(1, N, dim),
        "draw_fitted": lambda: priors.draw("fitted", *latents.noise(1, N, dim)),
        "decode": lambda: decoder.run(None, {"z": z}),
        "drift": lambda: priors.log_density(mu, logvar),
        "encode": lambda: encoder.run(None, {"image": image}),
    }
    rounds, min_seconds = (5, 0.05) if a.quick else (15, 0.2)
    seconds = measure(runs, rounds, min_seconds, budget=30 if a.quick else 120)
    summary = {
        "fitted_draw_over_decode": (seconds["draw_fitted"] - seconds["noise"]) / seconds["decode"],
        "drift_over_encode": seconds["drift"] / seconds["encode"],
        "seconds": seconds,
        "bundle": f"{bundle.manifest.name}/{bundle.manifest.version}",
        "components": priors.fitted.mixture.components,
        "targets": {"fitted_draw_over_decode": "<= 0.05"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "onnxruntime": ort.__version__},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main()) + "\n")
