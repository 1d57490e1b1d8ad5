"""Open Inference Protocol v2 (docs/api.md): NVIDIA's tritonclient against a live vaegan-serve of both
published bundles, and the protocol's error and binary rules in process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from model_core.bundle import NETWORKS, load_bundle, network_file, resolve
from service.app import create_app
from tests.checkout import REPO
from tests.service.helpers import CONDITIONAL_NAME, PRETRAINED, PRETRAINED_NAME, settings_for
from tests.service.live_server import LiveServer

BUNDLES = (PRETRAINED_NAME, CONDITIONAL_NAME)


def example_inputs(bundle: str, network: str, rows: int = 3) -> dict[str, np.ndarray]:
    """Seeded inputs for every input the manifest's signature names, labels one-hot."""
    manifest = load_bundle(resolve(PRETRAINED, bundle)).manifest
    rng = np.random.default_rng(7)
    inputs = {}
    for spec in manifest.signatures[network_file(network)].inputs:
        shape = (rows, *(int(d) for d in spec.shape[1:]))
        if spec.name == "label":
            inputs[spec.name] = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], rows)]
        else:
            inputs[spec.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return inputs


def onnxruntime_outputs(bundle: str, network: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What onnxruntime gives on the bundle's own file: the reference."""
    session = ort.InferenceSession(
        str(resolve(PRETRAINED, bundle) / network_file(network)), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs), strict=True))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("oip") / "serve.log"
    live_server = LiveServer(PRETRAINED, log, model_name=",".join(BUNDLES), inference_threads=2)
    try:
        live_server.wait_ready()
        yield live_server
    finally:
        live_server.stop()


@pytest.fixture(scope="module")
def live(server: LiveServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def test_the_client_script_of_docs_scaling_runs_against_both_bundles(server: LiveServer) -> None:
    text = (REPO / "docs" / "scaling.md").read_text()
    script = text.split("one client script runs against either", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    for bundle in BUNDLES[:1]:  # the script's own input is the unconditional decoder's
        run = subprocess.run(
            [sys.executable, "-c", script, f"127.0.0.1:{server.port}", bundle],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("(4, 1, 32, 32)"), run.stdout


def infer(client: httpclient.InferenceServerClient, model: str, inputs: dict[str, np.ndarray], binary: bool):
    """The tritonclient call any Triton user writes (docs/scaling.md shows the same code)."""
    tensors = []
    for name, array in inputs.items():
        tensor = httpclient.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return client.infer(model, tensors)


def test_server_and_every_model_are_ready_with_their_metadata(live: httpclient.InferenceServerClient) -> None:
    assert live.is_server_live() and live.is_server_ready()
    assert "binary_tensor_data" in live.get_server_metadata()["extensions"]
    for bundle in BUNDLES:
        manifest = load_bundle(resolve(PRETRAINED, bundle)).manifest
        for network in NETWORKS:
            model = f"{bundle}_{network}"
            assert live.is_model_ready(model)
            metadata = live.get_model_metadata(model)
            assert metadata["versions"] == [manifest.version]
            signature = manifest.signatures[network_file(network)]
            assert [(t["name"], t["shape"]) for t in metadata["inputs"]] == [
                (spec.name, [-1, *spec.shape[1:]]) for spec in signature.inputs
            ]
            assert {t["datatype"] for t in metadata["inputs"] + metadata["outputs"]} == {"FP32"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("bundle", BUNDLES)
def test_infer_on_every_network_equals_onnxruntime(live, bundle: str, binary: bool) -> None:
    for network in NETWORKS:
        inputs = example_inputs(bundle, network)
        result = infer(live, f"{bundle}_{network}", inputs, binary)
        for name, expected in onnxruntime_outputs(bundle, network, inputs).items():
            np.testing.assert_allclose(
                result.as_numpy(name), expected, rtol=1e-5, atol=1e-5, err_msg=f"{network}.{name}"
            )


def test_the_client_gets_each_error_as_its_message(live: httpclient.InferenceServerClient) -> None:
    z = np.zeros((2, 32), np.float32)
    with pytest.raises(InferenceServerException, match=r"no model 'mnist32-vae_decoder'.*mnist32-vaegan_decoder"):
        infer(live, "mnist32-vae_decoder", {"z": z}, True)
    with pytest.raises(InferenceServerException, match=r"shape \[2, 31\]"):
        infer(live, "mnist32-vaegan_decoder", {"z": z[:, :31]}, True)
    tensor = httpclient.InferInput("z", [2, 32], "FP64")
    tensor.set_data_from_numpy(z.astype(np.float64))
    with pytest.raises(InferenceServerException, match="datatype 'FP64'"):
        live.infer("mnist32-vaegan_decoder", [tensor])
    with pytest.raises(InferenceServerException, match=r"takes inputs \['label', 'z'\]"):
        infer(live, "mnist32-cvaegan_decoder", {"z": z}, False)  # the conditional decoder needs its label
    assert not live.is_model_ready("mnist32-vaegan_generator")


# In process: what tritonclient never sends.


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(settings_for(PRETRAINED, model_name=PRETRAINED_NAME, max_samples=4))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


DECODER = "/v2/models/mnist32-vaegan_decoder"


def binary_body(header: dict, *arrays: np.ndarray) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + b"".join(a.tobytes() for a in arrays), {"Inference-Header-Content-Length": str(len(text))}


@pytest.mark.parametrize(
    ("tensor", "problem"),
    [
        ({"shape": [5, 32], "data": [0.0] * 160}, "batch 5; 1 to 4 rows"),
        ({"shape": [2, 32], "data": [0.0] * 63}, "63 numbers for shape"),
        ({"shape": [2, 32], "data": ["a"] * 64}, "must be numbers"),
        ({"shape": [2, 32]}, "has no data"),
        ({"shape": [2, 32], "data": [[0.0] * 32, [0.0] * 31]}, "must be numbers"),
    ],
)
def test_bad_tensors_are_400_with_the_protocol_error_body(client: TestClient, tensor: dict, problem: str) -> None:
    response = client.post(f"{DECODER}/infer", json={"inputs": [{"name": "z", "datatype": "FP32", **tensor}]})
    assert response.status_code == 400
    body = response.json()
    assert problem in body["error"] and body["code"] == "bad_request" and "request_id" in body


def test_nested_json_data_and_binary_outputs(client: TestClient) -> None:
    z = np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)
    nested = client.post(f"{DECODER}/infer", json={"id": "r1", "inputs": [
        {"name": "z", "shape": [2, 32], "datatype": "FP32", "data": z.tolist()}]})  # fmt: skip
    assert nested.status_code == 200 and nested.json()["id"] == "r1"
    image = np.asarray(nested.json()["outputs"][0]["data"], np.float32).reshape(2, 1, 32, 32)
    header = {"inputs": [{"name": "z", "shape": [2, 32], "datatype": "FP32", "parameters": {"binary_data_size": 256}}],
              "parameters": {"binary_data_output": True}}  # fmt: skip
    body, headers = binary_body(header, z)
    answer = client.post(f"{DECODER}/infer", content=body, headers=headers)
    length = int(answer.headers["Inference-Header-Content-Length"])
    described = json.loads(answer.content[:length])["outputs"][0]
    assert described["parameters"]["binary_data_size"] == 2 * 32 * 32 * 4
    np.testing.assert_array_equal(np.frombuffer(answer.content[length:], "<f4").reshape(2, 1, 32, 32), image)


@pytest.mark.parametrize(
    ("header", "payload", "length", "problem"),
    [
        ({"binary_data_size": 256}, np.full((2, 32), np.nan, np.float32).tobytes(), None, "NaN or infinite"),
        ({"binary_data_size": 256}, b"\0" * 200, None, "256 binary bytes declared, 200 left"),
        ({"binary_data_size": 200}, b"\0" * 200, None, "200 bytes for [2, 32] FP32"),
        ({"binary_data_size": 256}, b"\0" * 260, None, "4 binary bytes after the last tensor"),
        ({"binary_data_size": -1}, b"", None, "must be a byte count"),
        ({"binary_data_size": 256}, b"\0" * 256, "x9", "is not a length"),
    ],
)
def test_bad_binary_tensors_are_400(client: TestClient, header: dict, payload: bytes, length, problem: str) -> None:
    request = {"inputs": [{"name": "z", "shape": [2, 32], "datatype": "FP32", "parameters": header}]}
    body, headers = binary_body(request)
    if length is not None:
        headers["Inference-Header-Content-Length"] = length
    response = client.post(f"{DECODER}/infer", content=body + payload, headers=headers)
    assert response.status_code == 400 and problem in response.json()["error"], response.json()


def test_versions_unknown_outputs_and_oversized_bodies(client: TestClient) -> None:
    version = client.get(DECODER).json()["versions"][0]
    request = {"inputs": [{"name": "z", "shape": [1, 32], "datatype": "FP32", "data": [0.0] * 32}]}
    assert client.post(f"{DECODER}/versions/{version}/infer", json=request).status_code == 200
    stale = client.post(f"{DECODER}/versions/1/infer", json=request)
    assert stale.status_code == 404 and version in stale.json()["error"]
    unknown = client.post(f"{DECODER}/infer", json=request | {"outputs": [{"name": "mu"}]})
    assert unknown.status_code == 400 and "this model gives ['image']" in unknown.json()["error"]
    huge = client.post(f"{DECODER}/infer", content=b"[" + b"0," * 200_000 + b"0]")
    assert huge.status_code == 413  # refused before parsing: no 400,000 Python floats
    assert client.post(f"{DECODER}/infer", content=b"{nope").status_code == 400


def test_the_triton_repository_offers_the_same_models_names_and_shapes(client: TestClient, tmp_path: Path) -> None:
    """So the client code above runs unchanged against Triton (checked offline, on vaegan-triton's configs)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    from service.triton.config import TritonOptions
    from service.triton.repository import write_repository

    written = write_repository(resolve(PRETRAINED, PRETRAINED_NAME), tmp_path, TritonOptions(kind="cpu"))
    assert sorted(m.name for m in written) == sorted(f"mnist32-vaegan_{network}" for network in NETWORKS)
    for model in written:
        config = text_format.Parse((model.path / "config.pbtxt").read_text(), mc.ModelConfig())
        metadata = client.get(f"/v2/models/{model.name}").json()
        for ours, theirs in ((metadata["inputs"], config.input), (metadata["outputs"], config.output)):
            # Triton reports a batching model's tensors with the batch axis first, as -1.
            triton = [(t.name, "FP32" if t.data_type == mc.TYPE_FP32 else "?", [-1, *t.dims]) for t in theirs]
            assert [(t["name"], t["datatype"], t["shape"]) for t in ours] == triton, model.name
        assert config.max_batch_size > 0
