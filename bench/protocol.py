"""The Open Inference Protocol's cost per request beside ``/decode``'s, on one live ``vaegan-serve``.

One server (bench/serve.py's seeded mnist32 bundle, default settings) takes, in a rotating order
each round, the same work as four requests: 16 latents to the decoder as ``POST /decode`` (a PNG
grid back, what the REST route answers), as protocol ``infer`` with JSON tensors in and out, and
with the binary tensor extension in and out; beside them a raw onnxruntime loop runs the decoder on
the same 16 latents (the limit). Each cell is ``concurrency`` clients back to back; the figures are
medians over rounds: requests per second, p50 latency, and the server's CPU milliseconds per request.

Keys (last line, one JSON object): ``infer_binary_over_decode_cpu`` and ``infer_json_over_decode_cpu``
= server CPU per request of the protocol / of /decode at concurrency 1; ``*_extra_ms`` = the same
as a difference of p50 latencies (ms). Never run beside training: it times a 2-core machine.
Run: ``python -m bench.protocol [--rounds 5] [--out bench/results/protocol.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

from bench import report
from bench.load import SAMPLE_N, Cell, Request, drive, measure_raw, summarize
from bench.servers import NAME, export_seeded_bundle, serve
from model_core.bundle import LATEST, load_bundle, resolve
from service.sessions import CPU, session_options, session_settings
from service.settings import Settings

TARGETS = ("decode", "infer json", "infer binary", "raw ort")
DECODER = f"/v2/models/{NAME}_decoder/infer"


def requests_for(z: np.ndarray) -> dict[str, Request]:
    """The same 16 latents as each route's request, encoded once."""
    rows, width = z.shape
    decode = json.dumps({"z": z.tolist()}).encode()
    tensor = {"name": "z", "shape": [rows, width], "datatype": "FP32"}
    as_json = json.dumps({"inputs": [tensor | {"data": z.ravel().tolist()}]}).encode()
    binary = {"inputs": [tensor | {"parameters": {"binary_data_size": z.nbytes}}]}
    header = json.dumps(binary | {"parameters": {"binary_data_output": True}}).encode()
    return {
        "decode": Request("POST", "/decode", decode, {"content-type": "application/json"}),
        "infer json": Request("POST", DECODER, as_json, {"content-type": "application/json"}),
        "infer binary": Request(
            "POST", DECODER, header + z.astype("<f4").tobytes(), {"inference-header-content-length": str(len(header))}
        ),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.protocol", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    samples: dict[tuple[str, int], list[Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="vaegan-bench-protocol-") as tmp:
        work = Path(tmp)
        bundle_path = export_seeded_bundle(work / "models")
        env = {"VAEGAN_MODELS_DIR": str(work / "models"), "VAEGAN_MODEL_NAME": NAME, "VAEGAN_LOG_LEVEL": "warning"}
        manifest = load_bundle(resolve(work / "models", NAME, LATEST)).manifest
        options = session_options(session_settings(manifest, Settings()))
        decoder = ort.InferenceSession(str(bundle_path / "decoder.onnx"), sess_options=options, providers=[CPU])
        z = np.random.default_rng(1).standard_normal((SAMPLE_N, manifest.latent_dim), dtype=np.float32)
        requests = requests_for(z)
        with serve("protocol", env, work / "serve.log") as server:
            loop = asyncio.new_event_loop()
            client = httpx.AsyncClient(base_url=server.url, timeout=60.0, limits=httpx.Limits(max_connections=64))
            for name, request in requests.items():  # each answers 200 before anything is timed
                response = loop.run_until_complete(
                    client.request(request.method, request.path, content=request.body, headers=request.headers)
                )
                assert response.status_code == 200, (name, response.text[:300])
            for r in range(args.rounds):
                for c in args.concurrency:
                    for target in TARGETS[r % 4 :] + TARGETS[: r % 4]:
                        if target == "raw ort":
                            cell = measure_raw(lambda: decoder.run(None, {"z": z}), c, 10**6, args.seconds)
                        else:
                            loop.run_until_complete(drive(client, requests[target], c, 2 * c, args.seconds))  # warm
                            cpu0 = server.cpu_seconds()
                            cell = loop.run_until_complete(drive(client, requests[target], c, 10**6, args.seconds))
                            cell.server_cpu = server.cpu_seconds() - cpu0
                        samples.setdefault((target, c), []).append(cell)
            loop.run_until_complete(client.aclose())
            loop.close()
    return report_of(samples, args, time.perf_counter() - started)


def report_of(samples: dict[tuple[str, int], list[Cell]], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    table = {f"{target} c={c}": summarize(cells) for (target, c), cells in samples.items()}
    print(f"{'target':14s} {'conc':>4s} {'req/s':>9s} {'p50 ms':>9s} {'cpu ms/req':>11s}")
    for (target, c), _ in samples.items():
        row = table[f"{target} c={c}"]
        print(f"{target:14s} {c:4d} {row['rps']:9.1f} {row['p50_ms']:9.2f} {row['cpu_ms']:11.2f}")
    c = min(args.concurrency)

    def over(key: str, target: str) -> float:
        return round(table[f"{target} c={c}"][key] / table[f"decode c={c}"][key], 3)

    def extra_ms(target: str) -> float:
        return round(table[f"{target} c={c}"]["p50_ms"] - table[f"decode c={c}"]["p50_ms"], 3)

    summary = {
        "infer_binary_over_decode_cpu": over("cpu_ms", "infer binary"),
        "infer_json_over_decode_cpu": over("cpu_ms", "infer json"),
        "infer_binary_extra_ms": extra_ms("infer binary"),
        "infer_json_extra_ms": extra_ms("infer json"),
        "concurrency_of_keys": c,
        "rows_per_request": SAMPLE_N,
        "rounds": args.rounds,
        "cell_seconds": args.seconds,
        "seconds": round(seconds, 1),
        "machine": report.machine(onnxruntime=ort.__version__, httpx=httpx.__version__),
        "results": table,
    }
    report.emit(summary, args.out)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
