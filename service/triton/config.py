"""The ``config.pbtxt`` of one ONNX file: Triton's ModelConfig in protobuf text format.

Inputs and outputs (names, dims) come from the bundle's manifest, their element types from the ONNX
file itself (the repository checks both against the file). The batching defaults are the service's
own (service/settings.py) for the same reason the service has them: measured with bench/serve.py
on CPU, a decoder row costs about as much at batch 32 as at batch 1, and a deliberate wait costs
its own length per network at low load for no gain at high load (docs/benchmarks.md, "Serving").
So: batches up to 32 rows, preferred sizes 16 (one /sample of the default n=16) and 32 (the
cheapest per row), and no queue delay. On a GPU, where a batch of 32 costs about what a batch of
1 does, a delay may pay: measure it there (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from model_core.bundle import Manifest, OrtSessionOptions, TensorSpec
from service.settings import Settings

PLATFORM = "onnxruntime_onnx"  # Triton's ONNX backend; the protocol routes report the same (docs/api.md)
# onnxruntime's element types (NodeArg.type) -> Triton's data types.
DATA_TYPES = {
    "tensor(float)": "TYPE_FP32",
    "tensor(float16)": "TYPE_FP16",
    "tensor(double)": "TYPE_FP64",
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(bool)": "TYPE_BOOL",
}
_DEFAULT_MAX_BATCH = int(Settings.model_fields["max_batch"].default)
_DEFAULT_WAIT_MS = float(Settings.model_fields["max_wait_ms"].default)


class ConfigError(Exception):
    """A bundle's file cannot be described to Triton as asked."""


def _default_preferred() -> tuple[int, ...]:
    return (_DEFAULT_MAX_BATCH // 2, _DEFAULT_MAX_BATCH)


InstanceKind = Literal["gpu", "cpu"]  # instance_group kind: KIND_GPU or KIND_CPU; vaegan-triton --kind


@dataclass(frozen=True)
class TritonOptions:
    """How Triton should serve each model of the repository."""

    kind: InstanceKind = "gpu"
    instances: int = 1  # model instances per GPU (KIND_GPU) or in all (KIND_CPU: one per core you give Triton)
    max_batch: int = _DEFAULT_MAX_BATCH  # max_batch_size: rows per call, VAEGAN_MAX_BATCH's default
    preferred: tuple[int, ...] = field(default_factory=_default_preferred)  # preferred_batch_size
    queue_delay_us: int = round(_DEFAULT_WAIT_MS * 1000)  # max_queue_delay_microseconds, VAEGAN_MAX_WAIT_MS's default
    version: int = 1  # the Triton version folder the bundle becomes

    def check(self) -> None:
        """Refuse options Triton would refuse (or silently ignore)."""
        if self.max_batch < 1 or self.instances < 1 or self.version < 1 or self.queue_delay_us < 0:
            raise ConfigError("--max-batch, --instances and --triton-version must be >= 1, --queue-delay-us >= 0")
        if any(not 1 <= size <= self.max_batch for size in self.preferred):
            raise ConfigError(f"preferred batch sizes {list(self.preferred)} must lie in 1..{self.max_batch}")


def _quoted(text: str) -> str:
    """A protobuf text-format string literal (our names, versions and digests are printable ASCII)."""
    if not text.isascii() or not text.isprintable():
        raise ConfigError(f"{text!r} cannot be written into config.pbtxt")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensors(label: str, specs: Sequence[TensorSpec], types: Mapping[str, str]) -> list[str]:
    """The entries of an input [...] or output [...] list, batch axis left out (Triton adds it)."""
    entries = []
    for spec in specs:
        where = f"{label}: {spec.name!r}"
        if not spec.shape or spec.shape[0] is not None:
            raise ConfigError(f"{where} has shape {spec.shape}; Triton's batching needs a dynamic first axis")
        data_type = DATA_TYPES.get(types.get(spec.name, ""))
        if data_type is None:
            raise ConfigError(f"{where} has element type {types.get(spec.name)}, not one Triton takes here")
        dims = ", ".join(str(-1 if d is None else d) for d in spec.shape[1:])
        entries.append(f"  {{\n    name: {_quoted(spec.name)}\n    data_type: {data_type}\n    dims: [ {dims} ]\n  }}")
    return entries


def interface(model: str, manifest: Manifest, fname: str, types: Mapping[str, str], max_batch: int) -> str:
    """What a client of the model sees: name, platform, batch limit, inputs and outputs.

    Every version in a Triton model folder is served with one config, so a later version must
    keep this part unchanged (the repository checks it).
    """
    signature = manifest.signatures[fname]
    label = f"bundle {manifest.name}/{manifest.version} {fname}"
    inputs = ",\n".join(_tensors(label, signature.inputs, types))
    outputs = ",\n".join(_tensors(label, signature.outputs, types))
    return (
        f"name: {_quoted(model)}\nplatform: {_quoted(PLATFORM)}\nmax_batch_size: {max_batch}\n"
        f"input [\n{inputs}\n]\noutput [\n{outputs}\n]\n"
    )


def _parameter(key: str, value: str) -> str:
    return f"parameters {{\n  key: {_quoted(key)}\n  value {{ string_value: {_quoted(value)} }}\n}}\n"


def serving(options: TritonOptions, provenance: Mapping[str, str], session: OrtSessionOptions) -> str:
    """How Triton runs the model: instances, dynamic batching, the ORT threads, the bundle it came from."""
    preferred = ", ".join(str(size) for size in options.preferred)
    batching = f"  preferred_batch_size: [ {preferred} ]\n" if options.preferred else ""
    text = (
        f"instance_group [\n  {{\n    count: {options.instances}\n    kind: KIND_{options.kind.upper()}\n  }}\n]\n"
        f"dynamic_batching {{\n{batching}  max_queue_delay_microseconds: {options.queue_delay_us}\n}}\n"
    )
    # The bundle's recommended onnxruntime threads (one per session: parallelism comes from instances).
    text += _parameter("intra_op_thread_count", str(session.intra_op_num_threads))
    text += _parameter("inter_op_thread_count", str(session.inter_op_num_threads))
    return text + "".join(_parameter(key, value) for key, value in provenance.items())


def model_config(
    model: str,
    manifest: Manifest,
    fname: str,
    types: Mapping[str, str],
    options: TritonOptions,
    provenance: Mapping[str, str],
) -> str:
    """The whole config.pbtxt of ``fname`` of the bundle ``manifest`` describes."""
    recommended = manifest.export.get("ort_session")
    session = OrtSessionOptions.model_validate(recommended if isinstance(recommended, dict) else {})
    header = f"# {model}: {fname} of bundle {manifest.name}/{manifest.version}, written by vaegan-triton.\n"
    return header + interface(model, manifest, fname, types, options.max_batch) + serving(options, provenance, session)
