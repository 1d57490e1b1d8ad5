"""Open Inference Protocol v2 (KServe v2, Triton's HTTP API): tensors in and out of the networks.

A protocol model is one network of one served bundle, named as ``vaegan-triton`` names its Triton
models, ``<bundle>_<network>`` (``mnist32-vaegan_decoder``), with the manifest's tensor names and
shapes, so one client talks to ``vaegan-serve`` and to Triton alike. Tensors are FP32, as JSON
``data`` (flat or nested, row-major) or in the binary tensor data extension: the body is the JSON
header (``Inference-Header-Content-Length`` bytes) followed by each binary tensor's bytes in order
of its ``binary_data_size`` parameter. See docs/api.md, "Open Inference Protocol".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from service.errors import BadRequest, validation_text

DATATYPE = "FP32"  # every input and output of a vaegan network
HEADER_LENGTH = "Inference-Header-Content-Length"  # the binary extension's header
BINARY = "application/octet-stream"


class TensorIn(BaseModel):
    name: str = Field(max_length=128)
    shape: list[int] = Field(max_length=8)
    datatype: str = Field(max_length=16)
    parameters: dict[str, Any] = {}
    data: list[Any] | None = None


class OutputWanted(BaseModel):
    name: str = Field(max_length=128)
    parameters: dict[str, Any] = {}


class InferRequest(BaseModel):
    id: str | None = Field(default=None, max_length=256)
    parameters: dict[str, Any] = {}
    inputs: list[TensorIn] = Field(max_length=8)
    outputs: list[OutputWanted] | None = Field(default=None, max_length=8)


@dataclass(frozen=True)
class Answer:
    """An infer response: the JSON body, or the JSON header and the binary tensors after it."""

    body: bytes
    header_length: int | None  # set when binary tensors follow the JSON


def split_body(body: bytes, header_length: str | None) -> tuple[InferRequest, bytes]:
    """The request's JSON header parsed, and the binary tensor bytes that follow it (b"" without)."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest(f"{HEADER_LENGTH} {header_length!r} is not a length within the {len(body)}-byte body")
        json_part, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        return InferRequest.model_validate_json(json_part), binary
    except ValidationError as exc:
        raise BadRequest(f"the inference request is malformed: {validation_text(exc.errors())}") from None


def decode_inputs(
    request: InferRequest, binary: bytes, expected: dict[str, tuple[int, ...]], max_rows: int
) -> dict[str, np.ndarray]:
    """Each input as a float32 array of its declared shape, checked against the network's signature."""
    names = [tensor.name for tensor in request.inputs]
    if sorted(names) != sorted(expected):
        raise BadRequest(f"this model takes inputs {sorted(expected)}, got {names}")
    arrays, offset = {}, 0
    for tensor in request.inputs:
        shape = _check_shape(tensor, expected[tensor.name], max_rows)
        size = _binary_size(tensor)
        if size is None:
            arrays[tensor.name] = _from_json(tensor, shape)
            continue
        if offset + size > len(binary):
            raise BadRequest(f"input {tensor.name!r}: {size} binary bytes declared, {len(binary) - offset} left")
        arrays[tensor.name] = _from_bytes(tensor, shape, binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} binary bytes after the last tensor")
    rows = {len(array) for array in arrays.values()}
    if len(rows) > 1:
        raise BadRequest(f"inputs {names} must have the same batch size, not {sorted(rows)}")
    return arrays


def _check_shape(tensor: TensorIn, row: tuple[int, ...], max_rows: int) -> tuple[int, ...]:
    if tensor.datatype != DATATYPE:
        raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype!r}; this model takes {DATATYPE}")
    shape = tuple(tensor.shape)
    if len(shape) != 1 + len(row) or shape[1:] != row:
        raise BadRequest(
            f"input {tensor.name!r}: shape {list(shape)}; this model takes [-1, {', '.join(map(str, row))}]"
        )
    if not 1 <= shape[0] <= max_rows:
        raise BadRequest(f"input {tensor.name!r}: batch {shape[0]}; 1 to {max_rows} rows (VAEGAN_MAX_SAMPLES)")
    return shape


def _binary_size(tensor: TensorIn) -> int | None:
    size = tensor.parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(f"input {tensor.name!r}: binary_data_size must be a byte count, not {size!r}")
    if tensor.data is not None:
        raise BadRequest(f"input {tensor.name!r}: give data or binary_data_size, not both")
    return size


def _from_json(tensor: TensorIn, shape: tuple[int, ...]) -> np.ndarray:
    if tensor.data is None:
        raise BadRequest(f"input {tensor.name!r} has no data (nor binary_data_size)")
    try:
        array = np.asarray(tensor.data, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest(f"input {tensor.name!r}: data must be numbers, flat or nested row-major") from None
    if array.size != int(np.prod(shape)):
        raise BadRequest(f"input {tensor.name!r}: {array.size} numbers for shape {list(shape)}")
    return _finite(tensor.name, array.reshape(shape))


def _from_bytes(tensor: TensorIn, shape: tuple[int, ...], data: bytes) -> np.ndarray:
    if len(data) != 4 * int(np.prod(shape)):
        raise BadRequest(f"input {tensor.name!r}: {len(data)} bytes for {list(shape)} FP32 (4 bytes each)")
    return _finite(tensor.name, np.frombuffer(data, dtype="<f4").reshape(shape))


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    if not np.isfinite(array).all():
        raise BadRequest(f"input {name!r} holds NaN or infinite values")
    return array


def encode_outputs(request: InferRequest, model: str, version: str, outputs: dict[str, np.ndarray]) -> Answer:
    """The response body: the outputs asked for (all by default), each as JSON data or binary."""
    wanted = request.outputs if request.outputs is not None else [OutputWanted(name=name) for name in outputs]
    unknown = [o.name for o in wanted if o.name not in outputs]
    if unknown:
        raise BadRequest(f"no output {unknown}; this model gives {list(outputs)}")
    all_binary = bool(request.parameters.get("binary_data_output", False))
    described, chunks = [], []
    for output in wanted:
        array = np.ascontiguousarray(outputs[output.name], dtype="<f4")
        entry: dict[str, Any] = {"name": output.name, "datatype": DATATYPE, "shape": list(array.shape)}
        if output.parameters.get("binary_data", all_binary):
            entry["parameters"] = {"binary_data_size": array.nbytes}
            chunks.append(array.tobytes())
        else:
            entry["data"] = array.ravel().tolist()
        described.append(entry)
    header: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": described}
    if request.id is not None:
        header["id"] = request.id
    text = json.dumps(header, separators=(",", ":")).encode()
    return Answer(text + b"".join(chunks), len(text) if chunks else None)


def tensor_metadata(shapes: dict[str, tuple[int, ...]]) -> list[dict[str, Any]]:
    """``[{"name", "datatype", "shape"}]`` with the batch axis as -1, as Triton reports it."""
    return [{"name": name, "datatype": DATATYPE, "shape": [-1, *row]} for name, row in shapes.items()]
