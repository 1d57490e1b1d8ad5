"""The bundle's file names and manifest.json (format_version 1, docs/bundle.md) as pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_core.config import Mode
from model_core.images import VALUE_RANGE

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "LATEST"
NETWORKS = ("encoder", "decoder", "discriminator_features")  # the three ONNX networks, by name
ONNX_SUFFIX = ".onnx"  # a network's file is its name and this suffix (docs/bundle.md)


def network_file(network: str) -> str:
    """``decoder`` -> ``decoder.onnx``: the bundle's file of a network."""
    return network + ONNX_SUFFIX


def network_of(fname: str) -> str:
    """``decoder.onnx`` -> ``decoder``: the network a bundle file holds."""
    return fname.removesuffix(ONNX_SUFFIX)


NETWORK_FILES = tuple(network_file(network) for network in NETWORKS)
CLASS_MEANS = "class_means.npy"  # per-class mean posterior latents (K, Z) float32: Sec. 5's attribute vectors
PRIOR = "prior.npz"  # the fitted latent prior: a Gaussian mixture over mu(x) (model_core/bundle/prior.py)
MAX_CLASSES = 1000
ResizeFilter = Literal["bicubic", "bilinear", "lanczos", "nearest"]  # Pillow's filters of the same names
ClassName = Annotated[str, Field(min_length=1, max_length=64)]


class BundleError(Exception):
    """A bundle is missing, incomplete, tampered with or of an unknown format."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageSpec(_Frozen):
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: Literal[1, 3]


class Preprocessing(_Frozen):
    """What the trainer did to an image before the encoder saw it; the service repeats it."""

    channels: Literal[1, 3]
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    value_range: tuple[float, float] = VALUE_RANGE
    fit: tuple[int, int]  # (h, w) the content is resized to before padding
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right, filled with the background
    resize_filter: ResizeFilter = "bicubic"
    crop: tuple[int, int, int, int] | None = None  # top, left, height, width
    crop_source: tuple[int, int] | None = None  # (H, W) of the images the crop applies to
    blur_sigma: float | None = None
    invert: bool = False


class Training(_Frozen):
    epochs: int
    steps: int
    seed: int
    mode: Mode
    gamma: float
    batch_size: int | None = None
    lr: float | None = None
    gan_inputs: str | None = None
    generator_loss: str | None = None
    equilibrium: bool | None = None
    recipe: str | None = None  # the vaegan-train recipe ("paper", "default") the options came from
    options: dict[str, Any] | None = None  # every recipe option the run used (trainer/recipes.py)
    sampling_decoder: Literal["last", "ema"] | None = None  # which decoder weights decoder.onnx holds


class OrtSessionOptions(BaseModel):
    """The onnxruntime session options a bundle recommends, stored as manifest.export["ort_session"].

    The one home of their defaults: the exporter writes ``OrtSessionOptions().model_dump()``, the
    service parses the manifest's dict through this model and fills in what it leaves out. Keys
    this build does not know (a newer exporter's) are ignored. Why these values: docs/benchmarks.md,
    "Runtime".
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    graph_optimization_level: str = "ORT_ENABLE_ALL"  # an ort.GraphOptimizationLevel name; beats BASIC
    intra_op_num_threads: int = Field(default=1, ge=0)  # 0: onnxruntime's default
    inter_op_num_threads: int = Field(default=1, ge=0)
    execution_mode: str = "ORT_SEQUENTIAL"  # an ort.ExecutionMode name
    allow_spinning: bool = False  # spinning pool threads of several sessions steal the cores from each other

    def to_ort(self) -> Any:
        """These options as an ``onnxruntime.SessionOptions``; AttributeError names an unknown enum value."""
        import onnxruntime as ort  # only where a session is made: the schema itself needs no onnxruntime

        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.graph_optimization_level)
        options.execution_mode = getattr(ort.ExecutionMode, self.execution_mode)
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = self.inter_op_num_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        options.log_severity_level = 3  # errors only: the callers log what matters
        return options


class PriorInfo(_Frozen):
    """manifest.prior: what prior.npz holds and how it was chosen (docs/bundle.md)."""

    file: Literal["prior.npz"] = "prior.npz"
    kind: Literal["gaussian-mixture"] = "gaussian-mixture"
    covariance: Literal["full"] = "full"
    fitted_to: str = "posterior means mu(x) of the training split"
    components: int = Field(gt=0, le=1000)
    class_components: int = Field(default=0, ge=0, le=1000)  # 0: no per-class mixtures
    selection: str  # the rule that chose the number of components
    candidates: tuple[int, ...] = ()
    fit_size: int = Field(ge=0)  # latents the mixture was fitted to
    heldout_size: int = Field(ge=0)  # latents the selection and the reference were scored on
    heldout_log_likelihood: float | None = None  # mean log p(mu) of those held-out latents


class TensorSpec(_Frozen):
    name: str
    shape: tuple[int | None, ...]  # None: a dynamic axis (the batch)


class Signature(_Frozen):
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class Manifest(_Frozen):
    """manifest.json, format_version 1 (docs/bundle.md)."""

    format_version: int
    name: str
    version: str
    created_at: str
    preset: str
    image: ImageSpec
    latent_dim: int = Field(gt=0)
    similarity_features: int = Field(gt=0)
    dataset: str
    preprocessing: Preprocessing
    training: Training
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    metrics: dict[str, float] = Field(default_factory=dict)
    parity: dict[str, float]  # file -> max |onnxruntime - PyTorch|
    export: dict[str, Any] = Field(default_factory=dict)  # exporter, opset, variants, timings, ort_session
    signatures: dict[str, Signature]  # file -> ONNX inputs and outputs
    files: dict[str, str] = Field(default_factory=dict)  # file -> sha256
    # Labelled training data (optional: older bundles have none). num_classes > 0: a conditional
    # model whose encoder and decoder take a one-hot "label" (N, num_classes), in class_names order.
    num_classes: int = Field(default=0, ge=0, le=MAX_CLASSES)
    class_names: tuple[ClassName, ...] = Field(default=(), max_length=MAX_CLASSES)
    class_means: str | None = None  # CLASS_MEANS when the bundle holds the per-class mean latents
    prior: PriorInfo | None = None  # the fitted latent prior in PRIOR (optional: older bundles sample N(0, I))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


class Bundle(_Frozen):
    """A verified bundle on disk, with the bytes its checksums were verified on (``data``, by file name)."""

    path: Path
    manifest: Manifest
    data: dict[str, bytes] = Field(default_factory=dict, repr=False, exclude=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def read(self, name: str) -> bytes:
        """A file's verified bytes (read once, when its checksum was checked); from disk if not kept."""
        return self.data[name] if name in self.data else self.file(name).read_bytes()


def network_signatures(
    image: ImageSpec, latent_dim: int, similarity_features: int, num_classes: int = 0
) -> dict[str, Signature]:
    """What each network file takes and returns, batch axis dynamic (docs/bundle.md, "manifest.json").

    A conditional model (``num_classes`` > 0) has a second input, "label" (N, K), to Enc and Dec.
    """
    img = (None, image.channels, image.height, image.width)

    def spec(name: str, shape: tuple[int | None, ...]) -> TensorSpec:
        return TensorSpec(name=name, shape=shape)

    label = (spec("label", (None, num_classes)),) if num_classes else ()
    return {
        "encoder.onnx": Signature(
            inputs=(spec("image", img), *label),
            outputs=(spec("mu", (None, latent_dim)), spec("logvar", (None, latent_dim))),
        ),
        "decoder.onnx": Signature(inputs=(spec("z", (None, latent_dim)), *label), outputs=(spec("image", img),)),
        "discriminator_features.onnx": Signature(
            inputs=(spec("image", img),), outputs=(spec("features", (None, similarity_features)),)
        ),
    }


def first_error(exc: ValidationError) -> tuple[str, str]:
    """(dotted field path, message) of a pydantic error's first entry: what a one-line refusal names."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]
