"""Open Inference Protocol v2 over REST: server metadata, model metadata and readiness, infer.

The raw-tensor face of the same server: a protocol model is one network of a served bundle
(``<bundle>_<network>``, as ``vaegan-triton`` names it), run through the same micro-batchers, row
limit (VAEGAN_MAX_SAMPLES) and deadlines as the image routes. Its version is the bundle's version.
Errors under /v2/models answer ``{"error": text}`` (service/protocol.py; docs/api.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Header, Request, Response

from model_core.bundle import NETWORKS
from service.dependencies import RegistryDep, SettingsDep
from service.errors import NotFound, NotReady, protocol_error_responses
from service.protocol import BINARY, HEADER_LENGTH, decode_inputs, encode_outputs, split_body, tensor_metadata
from service.registry import ModelRegistry
from service.runtime import ModelRuntime, Network
from service.schemas import ServerMetadata
from service.triton import PLATFORM, network_model_name
from service.uploads import json_body_limit, read_body

router = APIRouter(tags=["open inference protocol"])
BASE = "/v2/models/{model_name}"
VERSIONED = "/v2/models/{model_name}/versions/{model_version}"


def _network(registry: ModelRegistry, model_name: str, model_version: str | None) -> tuple[ModelRuntime, Network]:
    """The runtime and network ``<bundle>_<network>`` names; 404 for an unknown model or version."""
    served = {network_model_name(b, n): (b, n) for b in registry.managers for n in NETWORKS}
    if model_name not in served:
        raise NotFound(f"no model {model_name!r} is served here; models: {', '.join(served) or 'none'}")
    bundle, network = served[model_name]
    runtime = registry.runtime(bundle)  # 503 while the bundle has no runtime
    if model_version not in (None, "", runtime.version):
        raise NotFound(f"model {model_name!r} serves version {runtime.version!r}, not {model_version!r}")
    return runtime, runtime.networks[network]


@router.get("/v2", response_model=ServerMetadata)
async def server_metadata(request: Request) -> ServerMetadata:
    """The server's name, version and the protocol extensions it supports."""
    return ServerMetadata(name="vaegan", version=request.app.version, extensions=["binary_tensor_data"])


async def model_metadata(registry: RegistryDep, model_name: str, model_version: str | None = None) -> dict[str, Any]:
    """The model's inputs and outputs: FP32 tensors, the batch axis -1 (the manifest's signature)."""
    runtime, network = _network(registry, model_name, model_version)
    return {
        "name": model_name,
        "versions": [runtime.version],
        "platform": PLATFORM,
        "inputs": tensor_metadata(network.inputs),
        "outputs": tensor_metadata(network.outputs),
    }


async def model_ready(registry: RegistryDep, model_name: str, model_version: str | None = None) -> dict[str, Any]:
    """200 when the model's bundle is loaded and ready; 404 for an unknown model, 503 otherwise."""
    runtime, _ = _network(registry, model_name, model_version)
    manager = registry.get(runtime.model)
    if not manager.ready:
        raise NotReady(f"{model_name}: {manager.reason}")
    return {"name": model_name, "ready": True}


async def infer(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    model_name: str,
    model_version: str | None = None,
    header_length: Annotated[str | None, Header(alias=HEADER_LENGTH)] = None,
) -> Response:
    """Run one network on the request's tensors (JSON data or binary), through its micro-batcher."""
    runtime, network = _network(registry, model_name, model_version)
    numbers = sum(int(np.prod(row)) for row in network.inputs.values())
    body = await read_body(request, json_body_limit(settings.max_samples, numbers, len(network.inputs), rest=4096))
    parsed, binary = split_body(body, header_length)
    runtime.acquire()
    try:
        inputs = decode_inputs(parsed, binary, network.inputs, settings.max_samples)
        outputs = await runtime.run(network.name, inputs)
    finally:
        runtime.release()
    answer = encode_outputs(parsed, model_name, runtime.version, dict(zip(network.outputs, outputs, strict=True)))
    if answer.header_length is None:
        return Response(answer.body, media_type="application/json")
    return Response(answer.body, media_type=BINARY, headers={HEADER_LENGTH: str(answer.header_length)})


for path in (BASE, VERSIONED):
    router.add_api_route(path, model_metadata, methods=["GET"], responses=protocol_error_responses(404, 422, 503))
    router.add_api_route(
        f"{path}/ready", model_ready, methods=["GET"], responses=protocol_error_responses(404, 422, 503)
    )
    router.add_api_route(
        f"{path}/infer",
        infer,
        methods=["POST"],
        response_class=Response,
        responses=protocol_error_responses(400, 404, 413, 422, 503, 504),
    )
